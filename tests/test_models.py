"""The ways to give a model (Keras 2 JSON + weights, FILE.py:FUNCTION, custom layers, several inputs)."""

import json
import re
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from click.testing import CliRunner
from keras import layers

import seqlift
from seqlift import SeqliftError, pipeline
from seqlift.cli.main import cli
from seqlift.engine import Explainer
from seqlift.frontends import import_file

from helpers import assert_summation, head, one_hot, randomize, trunk

LENGTH = 24
N_SEQS = 5
README = Path(__file__).resolve().parents[1] / "README.md"


# ----------------------------------------------------------------------------------- Keras 2 files
def _keras2_layer(kind, name, **config):
    """A layer config as Keras 2.1/2.2 write it, with that era's initializer and regularizer entries."""
    base = {"name": name, "trainable": True}
    if kind in ("Conv1D", "Dense"):
        base.update({"activation": "linear", "use_bias": True, "kernel_regularizer": None, "bias_regularizer": None,
                     "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None,
                     "kernel_initializer": {"class_name": "VarianceScaling", "config": {
                         "scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": None}},
                     "bias_initializer": {"class_name": "Zeros", "config": {}}})
    if kind == "Conv1D":
        base.update({"strides": [1], "padding": "valid", "dilation_rate": [1]})
    base.update(config)
    return {"class_name": kind, "config": base}


def _sequential_layers():
    """Conv1D → MaxPooling1D → Flatten → Dense → Dropout → Dense(2, sigmoid), as Keras 2.1.6 writes it."""
    return [
        _keras2_layer("Conv1D", "conv1d_1", batch_input_shape=[None, LENGTH, 4], dtype="float32", filters=4,
                      kernel_size=[5], activation="relu",
                      kernel_regularizer={"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.001}}),
        _keras2_layer("MaxPooling1D", "max_pooling1d_1", pool_size=[2], strides=[2], padding="valid"),
        _keras2_layer("Flatten", "flatten_1"),
        _keras2_layer("Dense", "dense_1", units=5, activation="relu"),
        _keras2_layer("Dropout", "dropout_1", rate=0.5, noise_shape=None, seed=None),
        _keras2_layer("Dense", "dense_2", units=2, activation="sigmoid"),
    ]


def _functional_config():
    """Input → Conv1D → BatchNormalization → ReLU → GlobalAveragePooling1D → Dense, as Keras 2.2.4 writes it."""
    def node(kind, name, parent, **config):
        layer = _keras2_layer(kind, name, **config)
        layer["name"] = name
        layer["inbound_nodes"] = [[[parent, 0, 0, {}]]] if parent else []
        return layer

    bn = {"axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": True, "scale": True,
          "beta_initializer": {"class_name": "Zeros", "config": {}}, "gamma_initializer": {"class_name": "Ones", "config": {}},
          "moving_mean_initializer": {"class_name": "Zeros", "config": {}},
          "moving_variance_initializer": {"class_name": "Ones", "config": {}},
          "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None}
    layers_ = [
        node("InputLayer", "input_1", None, batch_input_shape=[None, LENGTH, 4], dtype="float32", sparse=False),
        node("Conv1D", "conv1d_1", "input_1", filters=4, kernel_size=[5], padding="same", data_format="channels_last"),
        node("BatchNormalization", "batch_normalization_1", "conv1d_1", **bn),
        node("Activation", "activation_1", "batch_normalization_1", activation="relu"),
        node("GlobalAveragePooling1D", "global_average_pooling1d_1", "activation_1", data_format="channels_last"),
        node("Dense", "dense_1", "global_average_pooling1d_1", units=2),
    ]
    return {"class_name": "Model", "keras_version": "2.2.4", "backend": "tensorflow",
            "config": {"name": "model_1", "layers": layers_, "input_layers": [["input_1", 0, 0]],
                       "output_layers": [["dense_1", 0, 0]]}}


def _keras3_sequential():
    inp = keras.Input((LENGTH, 4))
    h = layers.Conv1D(4, 5, activation="relu", name="conv1d_1")(inp)
    h = layers.Flatten(name="flatten_1")(layers.MaxPooling1D(2, name="max_pooling1d_1")(h))
    h = layers.Dropout(0.5, name="dropout_1")(layers.Dense(5, activation="relu", name="dense_1")(h))
    return keras.Model(inp, layers.Dense(2, activation="sigmoid", name="dense_2")(h))


def _keras3_functional():
    inp = keras.Input((LENGTH, 4), name="input_1")
    h = layers.BatchNormalization(name="batch_normalization_1")(layers.Conv1D(4, 5, padding="same", name="conv1d_1")(inp))
    h = layers.GlobalAveragePooling1D(name="global_average_pooling1d_1")(layers.Activation("relu", name="activation_1")(h))
    return keras.Model(inp, layers.Dense(2, name="dense_1")(h))


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.5 + (1.0 if "variance" in w.path else 0.0))
    return model


def write_keras2_weights(path, model, keras_version="2.1.6"):
    """What Keras 2's save_weights writes, by hand: one group per layer, `layer/layer/kernel:0` datasets."""
    with h5py.File(path, "w") as f:
        names = [layer.name for layer in model.layers]
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = keras_version.encode()
        for layer in model.layers:
            group = f.create_group(layer.name)
            variables = list(layer.trainable_weights) + list(layer.non_trainable_weights)
            weight_names = [f"{layer.name}/{v.name}:0" for v in variables]
            group.attrs["weight_names"] = np.array([n.encode() for n in weight_names])
            for name, v in zip(weight_names, variables):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(v))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("formats")
    sequential, functional = _randomize(_keras3_sequential(), 0), _randomize(_keras3_functional(), 1)
    sequential.save(d / "sequential.h5")
    functional.save(d / "functional.h5")
    write_keras2_weights(d / "sequential_weights.h5", sequential)
    write_keras2_weights(d / "functional_weights.h5", functional, "2.2.4")
    (d / "sequential_216.json").write_text(json.dumps(
        {"class_name": "Sequential", "keras_version": "2.1.6", "backend": "tensorflow", "config": _sequential_layers()}))
    (d / "sequential_224.json").write_text(json.dumps(
        {"class_name": "Sequential", "keras_version": "2.2.4", "backend": "tensorflow",
         "config": {"name": "sequential_1", "layers": _sequential_layers()}}))
    (d / "functional_224.json").write_text(json.dumps(_functional_config()))
    np.savez(d / "weights.npz", *sequential.get_weights())
    (d / "build.py").write_text(
        "import keras, numpy as np\nfrom keras import layers\n\n\ndef make_model():\n"
        f"    inp = keras.Input(({LENGTH}, 4))\n"
        "    h = layers.Conv1D(4, 5, activation='relu')(inp)\n"
        "    h = layers.Dense(5, activation='relu')(layers.Flatten()(layers.MaxPooling1D(2)(h)))\n"
        "    model = keras.Model(inp, layers.Dense(2, activation='sigmoid')(layers.Dropout(0.5)(h)))\n"
        f"    stored = np.load({str(d / 'weights.npz')!r})\n"
        "    model.set_weights([stored[f'arr_{i}'] for i in range(len(stored.files))])\n"
        "    return model\n\n\ndef not_a_model():\n    return 42\n\n\ndef broken():\n    raise RuntimeError('no GPU here')\n")
    rng = np.random.default_rng(2)
    seqs = ["".join(rng.choice(list("ACGT"), LENGTH)) for _ in range(N_SEQS)]
    (d / "in.fa").write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    return d


def _one_hot(n=N_SEQS, seed=3):
    return np.eye(4, dtype="float32")[np.random.default_rng(seed).integers(0, 4, (n, LENGTH))]


def _max_relative(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("arch, weights, reference", [
    ("sequential_216.json", "sequential_weights.h5", "sequential.h5"),
    ("sequential_224.json", "sequential_weights.h5", "sequential.h5"),
    ("functional_224.json", "functional_weights.h5", "functional.h5"),
])
def test_keras2_json_and_weights_score_as_the_keras3_h5(files, arch, weights, reference):
    one_hot = _one_hot()
    expected = seqlift.score(str(files / reference), one_hot, tasks=[0, 1], n_refs=3)
    got = seqlift.score(str(files / arch), one_hot, tasks=[0, 1], n_refs=3, weights=str(files / weights))
    for key in ("contributions", "hypothetical", "prediction", "reference_prediction"):
        assert _max_relative(getattr(got, key), getattr(expected, key)) <= 1e-6, key


def test_python_function_scores_as_the_keras3_h5(files):
    one_hot = _one_hot()
    expected = seqlift.Explainer(str(files / "sequential.h5")).deeplift(one_hot, one_hot[::-1][:2], target=1)
    got = seqlift.Explainer(f"{files / 'build.py'}:make_model").deeplift(one_hot, one_hot[::-1][:2], target=1)
    assert _max_relative(got.contributions, expected.contributions) <= 1e-6
    # Weights from a Keras 2 file go into a rebuilt model by layer order when its names differ.
    by_order = seqlift.deeplift(f"{files / 'build.py'}:make_model", one_hot, one_hot[::-1][:2], target=1,
                                weights=str(files / "sequential_weights.h5"))
    assert _max_relative(by_order, expected.contributions) <= 1e-6


def run(args):
    return CliRunner().invoke(cli, [str(a) for a in args] + ["--quiet"])


@pytest.mark.parametrize("options", [
    ["--method", "grad-x-input"], ["--method", "ism"], ["--rule", "genomics", "--reference", "zeros"],
    ["--task", "all", "--n-refs", "2"],
])
def test_score_options_work_unchanged_with_a_json_model(files, tmp_path, options):
    common = [files / "in.fa", "--out"]
    a = run(["score", files / "sequential.h5", *common, tmp_path / "a.h5", *options])
    b = run(["score", files / "sequential_216.json", *common, tmp_path / "b.h5", "--weights",
             files / "sequential_weights.h5", *options])
    assert a.exit_code == 0 and b.exit_code == 0, (a.output, b.output)
    with h5py.File(tmp_path / "a.h5") as fa, h5py.File(tmp_path / "b.h5") as fb:
        assert _max_relative(fb["contrib"][()], fa["contrib"][()]) <= 1e-6
        assert fb.attrs["weights"] == str((files / "sequential_weights.h5").resolve())
        assert fb.attrs["model"] == str((files / "sequential_216.json").resolve())


def test_function_model_with_output_and_task_through_the_cli(files, tmp_path):
    two = tmp_path / "two.py"
    two.write_text(
        "import keras\nfrom keras import layers\n\n\ndef heads():\n"
        f"    inp = keras.Input(({LENGTH}, 4))\n"
        "    h = layers.Conv1D(3, 5, padding='same', activation='relu')(inp)\n"
        "    profile = layers.Flatten(name='profile')(layers.Conv1D(1, 3, padding='same')(h))\n"
        "    counts = layers.Dense(2, name='counts')(layers.GlobalAveragePooling1D()(h))\n"
        "    return keras.Model(inp, [profile, counts])\n")
    result = run(["score", f"{two}:heads", files / "in.fa", "--out", tmp_path / "f.h5", "--output", "counts",
                  "--task", "1", "--n-refs", "2"])
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "f.h5") as f:
        assert f.attrs["model"] == f"{two.resolve()}:heads" and list(f.attrs["tasks"]) == [1]


# ----------------------------------------------------------------------------------- custom layers
def _readme_example() -> str:
    """The README's reverse-complement convolution example, run as the documentation shows it."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    return next(b for b in blocks if b.startswith("# revcomp_layers.py"))


@pytest.fixture(scope="module")
def revcomp(tmp_path_factory):
    d = tmp_path_factory.mktemp("revcomp")
    (d / "revcomp_layers.py").write_text(_readme_example())
    module = import_file(d / "revcomp_layers.py", "test")
    inp = keras.Input((LENGTH, 4))
    h = module.RevCompConv1D(3, 5, activation="relu", name="rc")(inp)
    model = keras.Model(inp, layers.Dense(1)(layers.GlobalAveragePooling1D()(h)))
    _randomize(model, 4)
    model.save(d / "rc.keras")
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in model.get_layer("rc").weights)
    std_inp = keras.Input((LENGTH, 4))
    conv = layers.Conv1D(6, 5, activation="relu")
    std = keras.Model(std_inp, layers.Dense(1)(layers.GlobalAveragePooling1D()(conv(std_inp))))
    conv.set_weights([np.concatenate([kernel, kernel[::-1, ::-1]], -1), np.concatenate([bias, bias])])
    std.layers[-1].set_weights(model.layers[-1].get_weights())
    return d, model, std


def test_custom_layer_scores_as_the_equivalent_standard_layers(revcomp):
    d, model, std = revcomp
    one_hot = _one_hot()
    x_rc = one_hot[:, ::-1, ::-1]
    np.testing.assert_allclose(model.predict(one_hot, verbose=0), std.predict(one_hot, verbose=0), rtol=1e-5)
    got = seqlift.score(model, one_hot, n_refs=3)
    expected = seqlift.score(std, one_hot, n_refs=3)
    assert _max_relative(got.contributions, expected.contributions) <= 1e-6
    assert np.abs(got.delta).max() < 1e-4
    # Equivariance: on the reverse complement, each filter's output is its reverse-complemented twin's, reversed.
    conv = keras.Model(model.inputs[0], model.get_layer("rc").output)
    y, y_rc = keras.ops.convert_to_numpy(conv(one_hot)), keras.ops.convert_to_numpy(conv(x_rc))
    np.testing.assert_allclose(y_rc, y[:, ::-1][..., [3, 4, 5, 0, 1, 2]], rtol=1e-5, atol=1e-6)


def test_custom_layer_through_the_cli(revcomp, files, tmp_path):
    d, model, std = revcomp
    std.save(tmp_path / "std.keras")
    good = run(["score", d / "rc.keras", files / "in.fa", "--custom-objects", d / "revcomp_layers.py",
                "--out", tmp_path / "rc.h5", "--n-refs", "2"])
    assert good.exit_code == 0, good.output
    bad = run(["score", d / "rc.keras", files / "in.fa", "--out", tmp_path / "bad.h5"])
    assert bad.exit_code == 1 and not (tmp_path / "bad.h5").exists()
    assert "layer 'rc' is of class RevCompConv1D, which Keras does not define; give the Python file" in bad.stderr
    run(["score", tmp_path / "std.keras", files / "in.fa", "--out", tmp_path / "std.h5", "--n-refs", "2"])
    with h5py.File(tmp_path / "rc.h5") as a, h5py.File(tmp_path / "std.h5") as b:
        assert _max_relative(a["contrib"][()], b["contrib"][()]) <= 1e-6
        assert a.attrs["custom_objects"] == str((d / "revcomp_layers.py").resolve())


def test_register_layer_refuses_what_is_not_a_layer_class():
    with pytest.raises(seqlift.SeqliftError, match="not a Keras layer class"):
        seqlift.register_layer(int, lambda lower, layer, inputs: inputs[0])


# ----------------------------------------------------------------------------------- several inputs
def _bpnet_like(seed=5):
    """Sequence (L, 4) and control track (L, 2) inputs; profile and counts heads both read the control."""
    seq, control = keras.Input((LENGTH, 4), name="sequence"), keras.Input((LENGTH, 2), name="control")
    h = layers.Conv1D(6, 7, padding="same", activation="relu")(seq)
    h = layers.Add()([h, layers.Conv1D(6, 3, padding="same", dilation_rate=2, activation="relu")(h)])
    both = layers.Concatenate()([h, control])
    profile = layers.Flatten(name="profile")(layers.Conv1D(1, 5, padding="same")(both))
    gated = layers.Multiply()([layers.GlobalAveragePooling1D()(h), layers.Dense(6, activation="sigmoid")(
        layers.GlobalAveragePooling1D()(control))])
    counts = layers.Dense(1, name="counts")(layers.Concatenate()([gated, layers.GlobalAveragePooling1D()(control)]))
    return _randomize(keras.Model([seq, control], [profile, counts]), seed)


@pytest.mark.parametrize("output", [pytest.param("counts", marks=pytest.mark.slow), "profile"])
def test_fixed_control_track_shifts_predictions_but_contributes_nothing(output):
    model = _bpnet_like()
    explainer = seqlift.Explainer(model, output=output, normalize=True)
    assert explainer.graph.input_name == "sequence" and explainer.graph.fixed_inputs == [("control", (LENGTH, 2))]
    one_hot = _one_hot()
    refs = np.stack([_one_hot(4, seed=10 + i) for i in range(N_SEQS)])  # (N, R, L, 4)
    control = np.abs(np.random.default_rng(6).normal(size=(N_SEQS, LENGTH, 2))).astype("float32") * 3
    head = 0 if output == "profile" else 1
    target = 7 if output == "profile" else 0
    for extra in ({"control": control}, {"control": control[2]}, None):
        values = np.zeros_like(control) if extra is None else np.broadcast_to(extra["control"], control.shape)
        a = explainer.deeplift(one_hot, refs, target=target, extra=extra)
        keras_pred = model.predict([one_hot, values], verbose=0)[head].reshape(N_SEQS, -1)[:, target]
        np.testing.assert_allclose(a.prediction, keras_pred, rtol=1e-5, atol=1e-5)
        # Summation to delta: the sequence's contributions alone make up t(x) − t(ref).
        total = a.contributions.reshape(N_SEQS, -1).sum(1)
        np.testing.assert_allclose(total, a.prediction - a.reference_prediction, rtol=1e-4, atol=1e-5)
    zeros = explainer.deeplift(one_hot, refs, target=target)
    given = explainer.deeplift(one_hot, refs, target=target, extra={"control": control})
    assert np.abs(given.prediction - zeros.prediction).min() > 1e-3  # the track changes every prediction
    for method in ("grad-x-input", "integrated-gradients", "ism") if output == "counts" else ():
        scores = seqlift.attribute(explainer, method, one_hot, refs, target=target, extra={"control": control},
                                   ig_steps=4)
        np.testing.assert_allclose(scores.prediction, given.prediction, rtol=1e-5, atol=1e-5)
    scores = seqlift.score(model, one_hot, tasks=[target], reference=refs, output=output, input="sequence",
                           extra={"control": control})
    np.testing.assert_allclose(scores.prediction[:, 0], given.prediction, rtol=1e-6)
    np.testing.assert_allclose(scores.hypothetical[:, 0], given.hypothetical, rtol=1e-5, atol=1e-7)


def test_several_inputs_through_the_cli(files, tmp_path):
    _bpnet_like().save(tmp_path / "bpnet.keras")
    control = np.abs(np.random.default_rng(7).normal(size=(N_SEQS, LENGTH, 2))).astype("float32")
    np.save(tmp_path / "ctl.npy", control)
    np.save(tmp_path / "one.npy", control[:1])
    outs = {}
    for name, extra in [("per", ["--extra", f"control={tmp_path / 'ctl.npy'}", "--input", "sequence"]),
                        ("one", ["--extra", f"control={tmp_path / 'one.npy'}", "--input", "0"]), ("none", [])]:
        result = run(["score", tmp_path / "bpnet.keras", files / "in.fa", "--output", "counts",
                      "--out", tmp_path / f"{name}.h5", "--n-refs", "2", *extra])
        assert result.exit_code == 0, result.output
        with h5py.File(tmp_path / f"{name}.h5") as f:
            outs[name] = f["prediction"][()], f["contrib"][()], f["reference_prediction"][()], dict(f.attrs)
    pred, contrib, ref_pred, attrs = outs["per"]
    assert attrs["model_input"] == "sequence" and attrs["extra_inputs"] == f"control={(tmp_path / 'ctl.npy').resolve()}"
    assert outs["none"][3]["extra_inputs"] == "control=zeros"
    np.testing.assert_allclose(contrib.reshape(N_SEQS, -1).sum(1), pred - ref_pred, rtol=1e-4, atol=1e-5)
    assert np.abs(pred - outs["none"][0]).min() > 1e-4
    np.testing.assert_allclose(outs["one"][0][0], pred[0], rtol=1e-5)  # one row for all = row 0 for sequence 0
    request = pipeline.build_request(str(tmp_path / "bpnet.keras"), str(files / "in.fa"), out=tmp_path / "x.h5",
                                     weights="w.h5", custom_objects="c.py", extra=("control=ctl.npy",),
                                     reference="refs.fa")
    paths = set(map(str, request.input_paths()))
    assert {"w.h5", "c.py", "ctl.npy", "refs.fa", str(tmp_path / "bpnet.keras")} <= paths


def _bpnet_224_config():
    """Keras 2.2.4 JSON of a two-input model: a custom reverse-complement convolution on the sequence,
    then the control track concatenated, pooled, and a counts head (the issue's BPNet case, small)."""
    def node(kind, name, parents, **config):
        layer = _keras2_layer(kind, name, **config)
        layer["name"] = name
        layer["inbound_nodes"] = [[[p, 0, 0, {}] for p in parents]] if parents else []
        return layer

    layers_ = [
        node("InputLayer", "sequence", [], batch_input_shape=[None, LENGTH, 4], dtype="float32", sparse=False),
        node("InputLayer", "control", [], batch_input_shape=[None, LENGTH, 2], dtype="float32", sparse=False),
        node("RevCompConv1D", "rc", ["sequence"], filters=3, kernel_size=[5], padding="same", activation="relu",
             data_format="channels_last"),
        node("Concatenate", "concatenate_1", ["rc", "control"], axis=-1),
        node("GlobalAveragePooling1D", "global_average_pooling1d_1", ["concatenate_1"], data_format="channels_last"),
        node("Dense", "counts", ["global_average_pooling1d_1"], units=1),
    ]
    return {"class_name": "Model", "keras_version": "2.2.4", "backend": "tensorflow",
            "config": {"name": "bpnet", "layers": layers_, "input_layers": [["sequence", 0, 0], ["control", 0, 0]],
                       "output_layers": [["counts", 0, 0]]}}


def test_keras2_bpnet_with_custom_layer_and_control_track(revcomp, files, tmp_path):
    d = revcomp[0]
    module = import_file(d / "revcomp_layers.py", "test")
    seq, control = keras.Input((LENGTH, 4), name="sequence"), keras.Input((LENGTH, 2), name="control")
    h = module.RevCompConv1D(3, 5, padding="same", activation="relu", name="rc")(seq)
    h = layers.GlobalAveragePooling1D(name="global_average_pooling1d_1")(
        layers.Concatenate(name="concatenate_1")([h, control]))
    model = _randomize(keras.Model([seq, control], layers.Dense(1, name="counts")(h)), 8)
    model.save(tmp_path / "bpnet.keras")
    write_keras2_weights(tmp_path / "bpnet_weights.h5", model, "2.2.4")
    (tmp_path / "bpnet.json").write_text(json.dumps(_bpnet_224_config()))
    np.save(tmp_path / "ctl.npy", np.abs(np.random.default_rng(9).normal(size=(N_SEQS, LENGTH, 2))).astype("float32"))
    common = [files / "in.fa", "--custom-objects", d / "revcomp_layers.py", "--extra", f"control={tmp_path / 'ctl.npy'}",
              "--n-refs", "2"]
    a = run(["score", tmp_path / "bpnet.json", *common, "--weights", tmp_path / "bpnet_weights.h5", "--out",
             tmp_path / "a.h5"])
    b = run(["score", tmp_path / "bpnet.keras", *common, "--out", tmp_path / "b.h5"])
    assert a.exit_code == 0 and b.exit_code == 0, (a.output, b.output)
    with h5py.File(tmp_path / "a.h5") as fa, h5py.File(tmp_path / "b.h5") as fb:
        assert _max_relative(fa["contrib"][()], fb["contrib"][()]) <= 1e-6
        assert _max_relative(fa["prediction"][()], fb["prediction"][()]) <= 1e-6
        assert fa.attrs["model_input"] == "sequence"


# ----------------------------------------------------------------------------------- errors
def _write_bad_files(tmp):
    """Model files each wrong in one way, the files of the error cases below."""
    (tmp / "keras1.json").write_text(json.dumps({"class_name": "Sequential", "config": [
        {"class_name": "Convolution1D", "config": {"name": "c", "nb_filter": 4, "filter_length": 5}}]}))
    (tmp / "old.json").write_text(json.dumps({"class_name": "Sequential", "keras_version": "1.2.2", "config": []}))
    (tmp / "notmodel.json").write_text(json.dumps({"layers": []}))
    merge = {"class_name": "Merge", "config": {"name": "merge_1", "mode": "concat", "layers": []}}
    (tmp / "merge.json").write_text(json.dumps({"class_name": "Sequential", "keras_version": "2.0.6",
                                                "config": [merge] + _sequential_layers()}))
    (tmp / "broken.json").write_text("{not json")
    lam = _sequential_layers()
    lam.insert(2, {"class_name": "Lambda", "config": {"name": "lambda_1", "function": ["code", None, None]}})
    (tmp / "lambda.json").write_text(json.dumps({"class_name": "Sequential", "keras_version": "2.1.6", "config": lam}))
    custom = _sequential_layers()
    custom[0]["class_name"] = "RevCompConv1D"
    (tmp / "custom.json").write_text(json.dumps({"class_name": "Sequential", "keras_version": "2.2.4",
                                                 "config": custom}))
    (tmp / "small.h5").write_bytes(b"")
    write_keras2_weights(tmp / "wrong_weights.h5", _keras3_sequential())
    with h5py.File(tmp / "wrong_weights.h5", "a") as h:  # a layer short
        h.attrs["layer_names"] = np.array([n for n in h.attrs["layer_names"] if n != b"dense_2"])
    write_keras2_weights(tmp / "bad_shape.h5", _keras3_sequential())
    write_keras2_weights(tmp / "damaged.h5", _keras3_sequential())
    with h5py.File(tmp / "damaged.h5", "a") as h:
        del h["dense_1/dense_1/bias:0"]
    with h5py.File(tmp / "bad_shape.h5", "a") as h:
        del h["dense_2/dense_2/kernel:0"]
        h["dense_2"].create_dataset("dense_2/kernel:0", data=np.zeros((4, 2), "float32"))
    (tmp / "syntax.py").write_text("def oops(:\n")
    (tmp / "nolayers.py").write_text("X = 1\n")
    (tmp / "custom_unregistered.py").write_text(
        "import keras\n\n\nclass Doubler(keras.layers.Layer):\n    def call(self, x):\n        return 2 * x\n\n\n"
        f"def model():\n    inp = keras.Input(({LENGTH}, 4))\n    h = Doubler()(keras.layers.Conv1D(2, 3)(inp))\n"
        "    return keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(h)))\n\n\n"
        f"def two_dna():\n    a, b = keras.Input(({LENGTH}, 4), name='a'), keras.Input(({LENGTH}, 4), name='b')\n"
        "    h = keras.layers.Concatenate()([a, b])\n"
        "    return keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Flatten()(h)))\n\n\n"
        f"def lam():\n    inp = keras.Input(({LENGTH}, 4))\n    h = keras.layers.Lambda(lambda v: v * 2)(inp)\n"
        "    return keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(h)))\n\n\n"
        f"def any_length_track():\n    a, b = keras.Input(({LENGTH}, 4)), keras.Input((None, 2), name='track')\n"
        "    h = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling1D()(a),\n"
        "                                    keras.layers.GlobalAveragePooling1D()(b)])\n"
        "    return keras.Model([a, b], keras.layers.Dense(1)(h))\n")
    (tmp / "lowers_badly.py").write_text(
        "import keras\nimport seqlift\n\n\nclass Recurrent(keras.layers.Layer):\n    def call(self, x):\n"
        "        return x\n\n\nseqlift.register_layer(Recurrent, lambda lower, layer, inputs: lower.apply(\n"
        "    keras.layers.LSTM(2, return_sequences=True), inputs[0]))\n\n\n"
        f"def model():\n    inp = keras.Input(({LENGTH}, 4))\n    h = Recurrent()(inp)\n"
        "    return keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(h)))\n")
    _bpnet_like().save(tmp / "bpnet.keras")
    np.save(tmp / "ctl_bad.npy", np.zeros((3, LENGTH, 2), "float32"))
    np.save(tmp / "ctl_ok.npy", np.zeros((LENGTH, 2), "float32"))
    (tmp / "ctl.txt").write_text("0 1 2\n")


def _bad_models(files, tmp):
    _write_bad_files(tmp)
    f = files
    seq_json, seq_w = f / "sequential_216.json", f / "sequential_weights.h5"
    build, cu, bp = f / "build.py", tmp / "custom_unregistered.py", tmp / "bpnet.keras"
    fa = f / "in.fa"
    return [
        (["score", seq_json, fa], "a JSON architecture holds no weights; give them with --weights"),
        (["score", seq_w, fa], "holds weights only, no architecture; give the architecture as MODEL"),
        (["score", seq_json, fa, "--weights", tmp / "missing.h5"], "missing.h5: weights file not found"),
        (["score", seq_json, fa, "--weights", tmp / "small.h5"], "small.h5: not an HDF5 weights file"),
        (["score", seq_json, fa, "--weights", tmp / "wrong_weights.h5"], "weights for 2 layer(s) (conv1d_1, dense_1) but the model has 3"),
        (["score", seq_json, fa, "--weights", tmp / "bad_shape.h5"], "layer 'dense_2' holds weights of shapes"),
        (["score", seq_json, fa, "--weights", tmp / "damaged.h5"], "damaged.h5: a layer or weight it lists is missing"),
        (["score", seq_json, fa, "--weights", tmp / "notmodel.json"], "notmodel.json: not an HDF5 weights file"),
        (["score", tmp / "keras1.json", fa, "--weights", seq_w], "has Keras 1 arguments (nb_filter, filter_length)"),
        (["score", tmp / "old.json", fa, "--weights", seq_w], "written by Keras 1.2.2"),
        (["score", tmp / "notmodel.json", fa, "--weights", seq_w], "not a Keras 2 model architecture"),
        (["score", tmp / "merge.json", fa, "--weights", seq_w], "layer 'merge_1' is the old Merge layer"),
        (["score", tmp / "broken.json", fa, "--weights", seq_w], "broken.json: cannot be read as a Keras model"),
        (["score", tmp / "lambda.json", fa, "--weights", seq_w], "layer 'lambda_1' is a Lambda layer"),
        (["score", tmp / "custom.json", fa, "--weights", seq_w], "--custom-objects FILE.py"),
        (["score", f"{cu}:model", fa], "layer 'doubler' (Doubler) is a custom layer seqlift does not know"),
        (["score", f"{cu}:lam", fa], "is a Lambda layer, which seqlift cannot explain"),
        (["score", f"{cu}:two_dna", fa], "has 2 inputs (a (24, 4), b (24, 4)) and 2 of them with 4 channels"),
        (["score", f"{cu}:two_dna", fa, "--input", "c"], "has no input 'c' (inputs: a, b)"),
        (["score", f"{build}:nothing", fa], "has no function 'nothing' (functions: make_model, not_a_model, broken)"),
        (["score", f"{build}:not_a_model", fa], "returned int, not a model (a keras.Model or torch.nn.Module)"),
        (["score", f"{build}:broken", fa], "calling it failed (RuntimeError: no GPU here)"),
        (["score", f"{tmp / 'syntax.py'}:f", fa], "importing it failed (SyntaxError"),
        (["score", f"{tmp / 'gone.py'}:f", fa], "gone.py: file not found"),
        (["score", bp, fa, "--output", "counts", "--custom-objects", tmp / "nolayers.py"], "defines no Keras layer class"),
        (["score", bp, fa, "--output", "counts", "--custom-objects", tmp / "gone.py"], "--custom-objects"),
        (["score", bp, fa, "--output", "counts", "--extra", "control"], "--extra control: expected NAME=FILE.npy"),
        (["score", bp, fa, "--output", "counts", "--extra", f"bias={tmp / 'ctl_bad.npy'}"], "no such input"),
        (["score", bp, fa, "--output", "counts", "--extra", f"control={tmp / 'ctl_bad.npy'}"], "shape (3, 24, 2)"),
        (["score", bp, fa, "--output", "counts", "--extra", f"control={tmp / 'ctl.txt'}"], "not a NumPy .npy array"),
        (["score", bp, fa, "--output", "counts", "--extra", f"control={tmp / 'no.npy'}"], "file not found"),
        (["score", seq_json, fa, "--weights", seq_w, "--out", seq_w], "is one of this run's inputs"),
        (["score", f"{cu}:two_dna", fa, "--input", "5"], "input 5 is out of range"),
        (["score", f"{cu}:any_length_track", fa], "input 'track' has shape (None, 2): an input held fixed needs a"),
        (["score", f"{tmp / 'lowers_badly.py'}:model", fa], "uses LSTM, which seqlift cannot lower"),
        (["score", bp, fa, "--output", "counts", "--custom-objects", seq_json], "not a Python file (.py)"),
        (["score", bp, fa, "--output", "counts", "--extra", f"control={tmp / 'ctl_ok.npy'}", "--extra",
          f"control={tmp / 'ctl_ok.npy'}"], "input 'control' is given twice"),
    ]


def test_every_new_error_is_one_line_exit_1_and_no_output(files, tmp_path):
    for args, message in _bad_models(files, tmp_path):
        out = Path(args[args.index("--out") + 1]) if "--out" in args else tmp_path / "never.h5"
        before = out.read_bytes() if out.exists() else None
        result = run(args if "--out" in args else args + ["--out", out])
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, (message, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output
        assert (out.read_bytes() == before) if before is not None else not out.exists()
        assert not list(tmp_path.glob(".never*")) and not (tmp_path / "never.tsv").exists()


def test_model_round_trips_through_h5_and_keras_files(tmp_path):
    rng = np.random.default_rng(10)
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, head(trunk(inp))))
    x, refs = one_hot(rng, (2, 16)), one_hot(rng, (2, 16))
    expected = seqlift.deeplift(model, x, refs)
    for name in ["m.h5", "m.keras"]:
        model.save(tmp_path / name)
        np.testing.assert_allclose(seqlift.deeplift(str(tmp_path / name), x, refs), expected, atol=1e-6)


def test_missing_and_non_model_files_are_errors(tmp_path):
    with pytest.raises(SeqliftError, match="not found"):
        Explainer(tmp_path / "nope.h5")
    bad = tmp_path / "bad.h5"
    bad.write_text("not a model")
    with pytest.raises(SeqliftError, match="bad.h5"):
        Explainer(bad)


def test_a_tf_keras_2_h5_file_loads_and_predicts_as_keras_2_did():
    # tests/data/keras2_functional.h5 was written by tf_keras 2.21 (Keras 2): Conv1D, BatchNormalization,
    # MaxPooling1D, a residual Add, Flatten, Dense, Dropout, softmax; the .npz holds Keras 2's predictions.
    from pathlib import Path

    data = Path(__file__).parent / "data"
    expected = np.load(data / "keras2_functional_expected.npz")
    ex = Explainer(data / "keras2_functional.h5", normalize=True)
    logits = ex.predict(expected["x"])
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected["probabilities"], atol=1e-6)
    att = ex.deeplift(expected["x"], np.roll(expected["x"], 1, axis=0)[:, None], target=2)
    assert_summation(att)


# A script run by real tf-keras 2.x (Keras 2) in its own process: each model's to_json(), save_weights() and
# save() (HDF5), and its predictions on fixed inputs, as a lab that trained with tf.keras would have them.
TF_KERAS_WRITER = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tf_keras as k
from tf_keras import layers

out = sys.argv[1]
k.utils.set_random_seed(0)
models = {}
# Sequential with an InputLayer, and with input_shape on its first layer (then its config has an
# InputLayer *and* batch_input_shape on the Conv1D)
models["sequential_input_layer"] = k.Sequential([
    layers.InputLayer(input_shape=(40, 4)), layers.Conv1D(6, 5, activation="relu", padding="same"),
    layers.MaxPooling1D(2), layers.Flatten(), layers.Dense(2, activation="sigmoid")])
models["sequential_input_shape"] = k.Sequential([
    layers.Conv1D(6, 5, activation="relu", input_shape=(40, 4)), layers.BatchNormalization(),
    layers.GlobalMaxPooling1D(), layers.Dense(1)])
inp = k.Input((40, 4), name="sequence")
h = layers.Conv1D(6, 5, activation="relu", padding="same", input_shape=(40, 4))(inp)
h = layers.Add()([h, layers.Conv1D(6, 3, padding="same", dilation_rate=2, activation="relu")(h)])
models["functional"] = k.Model(inp, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling1D()(h)))
inner = k.Sequential([layers.Conv1D(4, 3, activation="relu", input_shape=(40, 4)),
                      layers.GlobalAveragePooling1D()], name="inner")
inp = k.Input((40, 4))
models["nested"] = k.Model(inp, layers.Dense(1)(layers.Dense(3, activation="relu")(inner(inp))))
seq, control = k.Input((40, 4), name="seq"), k.Input((40, 2), name="control")
h = layers.Conv1D(4, 3, activation="relu", padding="same")(seq)
models["two_inputs"] = k.Model([seq, control], layers.Dense(1)(layers.Flatten()(layers.Concatenate()([h, control]))))
rng = np.random.default_rng(0)
x = np.eye(4, dtype="float32")[rng.integers(0, 4, (5, 40))]
c = rng.random((5, 40, 2)).astype("float32")
np.save(f"{out}/x.npy", x)
np.save(f"{out}/control.npy", c)
for name, m in models.items():
    for w in m.weights:  # away from initial values: biases, BatchNormalization statistics
        w.assign(w.numpy() + rng.normal(size=w.shape).astype("float32") * 0.1
                 + (1.0 if "moving_variance" in w.name else 0.0))
    open(f"{out}/{name}.json", "w").write(m.to_json())
    m.save_weights(f"{out}/{name}_weights.h5")
    m.save(f"{out}/{name}.h5")
    np.save(f"{out}/{name}_pred.npy", m.predict([x, c] if name == "two_inputs" else x, verbose=0))
print(k.__version__)
"""


@pytest.fixture(scope="module")
def tf_keras_files(tmp_path_factory):
    """Files written by real tf-keras 2.x (``tf_keras``), in a subprocess: each model's JSON, weights, .h5, predictions."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("tf_keras")
    done = subprocess.run([sys.executable, "-c", TF_KERAS_WRITER, str(folder)], capture_output=True, text=True)
    if "No module named 'tf_keras'" in done.stderr:
        pytest.skip("tf_keras is not installed (pip install tf-keras)")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith("2."), done.stdout
    return folder


# The default tier keeps the cases that failed before (input shapes on layers, a nested Sequential); the rest is slow.
TF_KERAS_CASES = [(form, name) for form in ("json", "h5") for name in ("sequential_input_layer", "sequential_input_shape",
                                                                       "functional", "nested", "two_inputs")]
DEFAULT_TIER = {("json", "sequential_input_shape"), ("json", "functional"), ("json", "nested"), ("h5", "nested")}


@pytest.mark.parametrize("form,name", [pytest.param(*case, marks=() if case in DEFAULT_TIER else pytest.mark.slow)
                                       for case in TF_KERAS_CASES])
def test_models_saved_by_real_tf_keras_load_and_predict_as_tf_keras_did(tf_keras_files, name, form):
    from seqlift.frontends.keras.models import load_model

    d = tf_keras_files
    model = (load_model(d / f"{name}.json", weights=d / f"{name}_weights.h5") if form == "json"
             else load_model(d / f"{name}.h5"))
    x, control = np.load(d / "x.npy"), np.load(d / "control.npy")
    inputs = [x, control] if name == "two_inputs" else x
    np.testing.assert_allclose(np.asarray(model.predict(inputs, verbose=0)), np.load(d / f"{name}_pred.npy"),
                               atol=2e-6, rtol=1e-5)
    explainer = Explainer(model, normalize=True)
    extra = {"control": control} if name == "two_inputs" else None
    assert_summation(explainer.deeplift(x, np.roll(x, 1, axis=0)[:, None], extra=extra))


def test_a_tf_keras_sequential_json_scores_through_the_cli(tf_keras_files, tmp_path):
    d = tf_keras_files
    letters = np.array(list("ACGT"))[np.load(d / "x.npy").argmax(-1)]
    (tmp_path / "in.fa").write_text("".join(f">s{i}\n{''.join(row)}\n" for i, row in enumerate(letters)))
    result = CliRunner().invoke(cli, ["score", str(d / "sequential_input_shape.json"), str(tmp_path / "in.fa"),
                                      "--weights", str(d / "sequential_input_shape_weights.h5"), "--n-refs", "2",
                                      "--out", str(tmp_path / "o.h5"), "--quiet"])
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "o.h5") as f:
        assert f["contrib"].shape == (5, 40, 4) and np.abs(f["contrib"][:]).max() > 0
