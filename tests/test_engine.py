"""The Explainer (seqlift.engine): targets, batching, determinism, reference layouts, out-of-memory retries."""


import keras
import numpy as np
import pytest
from keras import layers

import seqlift
from seqlift import SeqliftError
from seqlift.engine import Explainer

from helpers import assert_summation, head, one_hot, randomize, trunk


@pytest.mark.parametrize("final", ["sigmoid", "softmax"])
def test_target_is_the_logit_and_softmax_is_mean_normalized(final):
    rng = np.random.default_rng(2)
    inp = keras.Input((10, 4))
    h = layers.Dense(4, activation="relu")(layers.Flatten()(inp))
    model = randomize(keras.Model(inp, layers.Dense(3, activation=final)(h)))
    x, refs = one_hot(rng, (3, 10)), one_hot(rng, (3, 2, 10))
    att = Explainer(model).deeplift(x, refs, target=1)
    logits = keras.Model(inp, model.layers[-1].output).predict(x, verbose=0)
    dense = model.layers[-1]
    z = x.reshape(3, -1)
    z = np.maximum(z @ model.layers[2].get_weights()[0] + model.layers[2].get_weights()[1], 0)
    z = z @ dense.get_weights()[0] + dense.get_weights()[1]
    expected = z[:, 1] - (z.mean(1) if final == "softmax" else 0.0)
    np.testing.assert_allclose(att.prediction, expected, rtol=1e-5, atol=1e-5)
    assert logits.shape == (3, 3)
    assert_summation(att)


def test_hypothetical_projected_on_observed_base_sums_like_raw_contributions():
    rng = np.random.default_rng(6)
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, head(trunk(inp))))
    x, refs = one_hot(rng, (5, 16)), one_hot(rng, (5, 4, 16))
    att = Explainer(model, rule="genomics").deeplift(x, refs)
    projected = att.hypothetical * x
    np.testing.assert_allclose(projected.sum(-1), att.contributions.sum(-1), atol=1e-5)


def test_same_inputs_same_scores_bit_for_bit_whatever_the_batch_size():
    rng = np.random.default_rng(7)
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, head(trunk(inp))))
    x, refs = one_hot(rng, (7, 16)), one_hot(rng, (7, 3, 16))
    first = Explainer(model).deeplift(x, refs, batch_size=3).contributions
    again = Explainer(model).deeplift(x, refs, batch_size=3).contributions
    assert np.array_equal(first, again)


def test_one_explainer_serves_different_reference_counts_and_batch_sizes():
    rng = np.random.default_rng(11)
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, head(trunk(inp))))
    ex = Explainer(model)
    x = one_hot(rng, (5, 16))
    for refs, batch in [(one_hot(rng, (5, 4, 16)), 2), (one_hot(rng, (1, 16)), 5), (one_hot(rng, (5, 2, 16)), 3)]:
        assert_summation(ex.deeplift(x, refs, batch_size=batch))


def test_shared_and_per_input_references_agree():
    rng = np.random.default_rng(8)
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, head(trunk(inp))))
    x, refs = one_hot(rng, (3, 16)), one_hot(rng, (2, 16))
    shared = seqlift.deeplift(model, x, refs)
    per_input = seqlift.deeplift(model, x, np.broadcast_to(refs, (3, 2, 16, 4)))
    np.testing.assert_allclose(shared, per_input, atol=1e-6)


def test_target_out_of_range_is_an_error():
    inp = keras.Input((16, 4))
    model = keras.Model(inp, head(trunk(inp)))
    with pytest.raises(SeqliftError, match="out of range"):
        Explainer(model).deeplift(np.zeros((1, 16, 4), "float32"), np.zeros((1, 16, 4), "float32"), target=3)


def test_out_of_memory_halves_the_batch_and_gives_the_same_scores(monkeypatch):
    from seqlift import backend

    rng = np.random.default_rng(12)
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, head(trunk(inp))))
    x, refs = one_hot(rng, (6, 16)), one_hot(rng, (6, 2, 16))
    expected = Explainer(model).deeplift(x, refs, batch_size=6).contributions
    ex = Explainer(model)
    real = backend.to_numpy
    calls = {"n": 0}

    def exhausted_at_six(value):
        calls["n"] += 1
        if value.shape[0] == 6:
            raise RuntimeError("RESOURCE_EXHAUSTED: out of memory allocating the step")
        return real(value)

    monkeypatch.setattr(backend, "to_numpy", exhausted_at_six)
    with pytest.warns(UserWarning, match="retrying with 3 sequences"):
        got = ex.deeplift(x, refs, batch_size=6).contributions
    np.testing.assert_allclose(got, expected, atol=1e-6)
    monkeypatch.setattr(backend, "to_numpy", lambda v: (_ for _ in ()).throw(ValueError("not memory")))
    with pytest.raises(ValueError, match="not memory"):
        ex.deeplift(x, refs, batch_size=6)


def test_the_backend_adapter_is_keras_backends_and_each_adapter_implements_the_same_methods():
    from seqlift import backend

    assert backend.NAME == backend.ADAPTER.name == keras.backend.backend()
    assert type(backend.ADAPTER) is backend.ADAPTERS[keras.backend.backend()]
    assert set(backend.ADAPTERS) == {"tensorflow", "jax", "torch"}

    def methods(cls):
        return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}

    for adapter in [*backend.ADAPTERS.values(), backend.UnsupportedBackend]:
        assert issubclass(adapter, backend.Backend) and not adapter.__abstractmethods__, adapter
        assert methods(adapter) == methods(backend.Backend), adapter
    # a backend without an adapter (Keras's numpy) is refused where autodiff is needed, as before the adapters
    with pytest.raises(RuntimeError, match="Keras backend 'numpy' is not supported; use tensorflow, jax or torch"):
        backend.UnsupportedBackend("numpy").input_gradient(lambda z: (z,), None)


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="SEQLIFT_TORCH_COMPILE applies to the torch backend")
def test_torch_compile_gives_the_eager_scores(monkeypatch):
    rng = np.random.default_rng(0)
    inp = keras.Input((24, 4))
    h = layers.Conv1D(4, 5, padding="same", activation="relu")(inp)
    model = randomize(keras.Model(inp, layers.Dense(1)(layers.GlobalAveragePooling1D()(h))))
    x, refs = one_hot(rng, (3, 24)), one_hot(rng, (3, 4, 24))
    eager = Explainer(model).deeplift(x, refs)
    monkeypatch.setenv("SEQLIFT_TORCH_COMPILE", "1")
    compiled = Explainer(model).deeplift(x, refs)
    assert_summation(compiled)
    np.testing.assert_allclose(compiled.contributions, eager.contributions, rtol=1e-5, atol=1e-7)


def test_every_module_loads_keras_through_the_quiet_backend():
    # seqlift benchmark printed TensorFlow's C++ log lines: targets.py imported keras before seqlift.backend, which
    # hides what TensorFlow writes on fd 2 while it loads. Each module that imports keras (or tensorflow) at its top
    # level imports backend first, or lives in a package whose __init__ does.
    import ast
    from pathlib import Path

    root = Path(seqlift.__file__).parent
    loud = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "backend.py":
            continue
        first = None
        for node in ast.parse(path.read_text()).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            relative = isinstance(node, ast.ImportFrom) and node.level
            if relative and (node.module == "backend" or "backend" in [a.name for a in node.names]):
                first = first or "backend"
            elif not relative and any(n.split(".")[0] in ("keras", "tensorflow") for n in names):
                first = first or "keras"
        package_quiet = (path.parent / "__init__.py").is_file() and path.parent != root and \
            "import backend" in (path.parent / "__init__.py").read_text()
        if first == "keras" and not package_quiet:
            loud.append(str(path.relative_to(root)))
    assert loud == []
