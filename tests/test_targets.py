"""What is explained (logit, sum, profile) and both-strand averaging, checked against NumPy and by hand."""

import h5py
import keras
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from keras import layers
from scipy.special import logsumexp

import seqlift
from seqlift import SeqliftError, references
from seqlift.cli.main import cli
from seqlift.engine import Explainer
from seqlift.scoring import explainer_for_sequences
from seqlift.sequences import reverse_complement

from helpers import RULES, one_hot, randomize

LENGTH = 50


def bpnet(length=LENGTH, seed=0):
    """BPNet-style: a conv stem, dilated residual convolutions, a profile head over 2 strands, a counts head."""
    inp = keras.Input((length, 4))
    h = layers.Conv1D(8, 9, padding="same", activation="relu")(inp)
    for dilation in (2, 4):
        h = layers.Add()([h, layers.Conv1D(8, 3, padding="same", dilation_rate=dilation, activation="relu")(h)])
    profile = layers.Conv1D(2, 11, padding="same", name="profile")(h)
    counts = layers.Dense(1, name="counts")(layers.GlobalAveragePooling1D()(h))
    return randomize(keras.Model(inp, [profile, counts]), seed=seed, scale=0.3)


def profile_target(logits):
    """t = Σ softmax(ℓ̄)·ℓ̄ over positions × strands, ℓ̄ = ℓ − mean(ℓ) (bpnet-lite's ProfileWrapper): ``(N,)``."""
    flat = logits.reshape(len(logits), -1).astype(np.float64)
    centred = flat - flat.mean(1, keepdims=True)
    w = np.exp(centred - centred.max(1, keepdims=True))
    return ((w / w.sum(1, keepdims=True)) * centred).sum(1)


NUMPY_TARGETS = {
    ("logit", "profile"): lambda out: out.reshape(len(out), -1)[:, 7],
    ("sum", "counts"): lambda out: out.reshape(len(out), -1).sum(1),
    ("sum", "profile"): lambda out: out.reshape(len(out), -1).sum(1),
    ("profile", "profile"): profile_target,
}


# profile under every rule: the default tier takes Rescale, the slow tier the others (3-4 s each)
@pytest.mark.parametrize("target, output, rules", [
    *[(t, o, ["rescale"]) for t, o in sorted(NUMPY_TARGETS)],
    pytest.param("profile", "profile", [r for r in RULES if r != "rescale"], marks=pytest.mark.slow)])
def test_summation_to_delta_for_each_target_against_numpy(target, output, rules):
    rng = np.random.default_rng(5)
    model = bpnet()
    x, refs = one_hot(rng, (4, LENGTH)), one_hot(rng, (4, 3, LENGTH))
    head = ["profile", "counts"].index(output)
    t = NUMPY_TARGETS[(target, output)]
    t_x = t(model.predict(x, verbose=0)[head])
    t_ref = t(model.predict(refs.reshape(-1, LENGTH, 4), verbose=0)[head]).reshape(4, 3).mean(1)
    for rule in rules:
        att = Explainer(model, rule=rule, output=output).deeplift(x, refs, target=7 if target == "logit" else target)
        scale = 1 + np.abs(t_x) + np.abs(t_ref)
        np.testing.assert_allclose(att.prediction, t_x, atol=2e-5 * scale.max())
        np.testing.assert_allclose(att.reference_prediction, t_ref, atol=2e-5 * scale.max())
        total = att.contributions.reshape(4, -1).sum(1)
        np.testing.assert_allclose(total, t_x - t_ref, atol=2e-5 * scale.max())
        assert np.all(att.delta <= 1e-5 * scale)


def test_profile_fixed_weights_holds_the_sequences_softmax_weights_as_chrombpnet():
    """t = Σ w(x)·ℓ̄ with the sequence's weights held fixed: its contributions sum to Σ w(x)·(ℓ̄(x) − ℓ̄(ref)), the
    reference's prediction is Σ w(x)·ℓ̄(ref); the exact profile target's change differs by the weights' own."""
    rng = np.random.default_rng(8)
    model = bpnet()
    x, refs = one_hot(rng, (3, LENGTH)), one_hot(rng, (3, 4, LENGTH))

    def centred(v):
        flat = v.reshape(len(v), -1).astype(np.float64)
        return flat - flat.mean(1, keepdims=True)

    logits_x = centred(model.predict(x, verbose=0)[0])
    logits_ref = centred(model.predict(refs.reshape(-1, LENGTH, 4), verbose=0)[0]).reshape(3, 4, -1)
    w = np.exp(logits_x) / np.exp(logits_x).sum(1, keepdims=True)
    explainer = Explainer(model, output="profile")
    fixed = explainer.deeplift(x, refs, target="profile-fixed-weights")
    np.testing.assert_allclose(fixed.prediction, profile_target(model.predict(x, verbose=0)[0]), atol=1e-5)
    np.testing.assert_allclose(fixed.reference_prediction, (w[:, None] * logits_ref).sum(-1).mean(1), atol=1e-5)
    np.testing.assert_allclose(fixed.contributions.reshape(3, -1).sum(1),
                               (w[:, None] * (logits_x[:, None] - logits_ref)).sum(-1).mean(1), atol=1e-5)
    exact = explainer.deeplift(x, refs, target="profile")
    assert np.abs(fixed.contributions - exact.contributions).max() > 1e-3
    with pytest.raises(SeqliftError, match="target 'profile-fixed-weights' on an output of one value"):
        Explainer(model, output="counts").deeplift(x, refs, target="profile-fixed-weights")


def _profile_multipliers(x, x0):
    """The profile rule by hand, on ℓ = x: product rule for Σ w·ℓ̄, softmax rule for Δw (float64, in log
    space: each side's log Σ exp with its own shift, so logits thousands apart stay finite)."""
    centred, centred0 = x - x.mean(), x0 - x0.mean()
    lse, lse0 = logsumexp(centred), logsumexp(centred0)
    shift = max(lse, lse0)
    a, a0 = np.exp(centred - shift), np.exp(centred0 - shift)  # both sums scaled by exp(−shift)
    s, s0 = np.exp(lse - shift), np.exp(lse0 - shift)
    w, w0 = np.exp(centred - lse), np.exp(centred0 - lse0)
    m_exp = (a - a0) / (centred - centred0)  # Rescale of each exponential
    m_log = (lse - lse0) / (s - s0)  # Rescale of the log of their sum
    m_w = (w - w0) / ((centred - lse) - (centred0 - lse0))  # Rescale of the outer exponential
    jacobian = m_w[:, None] * (np.eye(len(x)) - m_log * m_exp[None, :])  # m(Δℓ̄_i → Δw_k)
    m_centred = 0.5 * (w + w0) + 0.5 * (centred + centred0) @ jacobian  # w̄ + Σ_k ℓ̄̄_k m(Δℓ̄ → Δw_k)
    return m_centred - m_centred.mean()  # back through ℓ̄ = ℓ − mean(ℓ)


@pytest.mark.parametrize("spread", [1.0, 1000.0])
def test_profile_rule_matches_its_formula_worked_in_numpy(spread):
    # spread 1000: logits as a wide chrombpnet profile head gives (kernel std 0.3: ~2,000); the reference's
    # softmax sum underflows under one shift shared with the input, which made every score NaN
    rng = np.random.default_rng(6)
    inp = keras.Input((6, 2))
    model = keras.Model(inp, layers.Identity()(inp))  # the profile logits are the input itself
    x, ref = rng.normal(size=(1, 6, 2)) * spread, rng.normal(size=(1, 6, 2)) * spread
    att = Explainer(model).deeplift(x.astype("float32"), ref.astype("float32"), target="profile")
    expected = _profile_multipliers(x.ravel(), ref.ravel()) * (x - ref).ravel()
    np.testing.assert_allclose(att.contributions.ravel(), expected, atol=1e-5 * spread)
    assert att.contributions.sum() == pytest.approx(profile_target(x)[0] - profile_target(ref)[0], abs=1e-5 * spread)


def test_profile_value_holds_the_weights_constant_for_gradient_methods():
    # chrombpnet's stop-gradient: ∂t/∂ℓ = w − mean(w) with w = softmax(ℓ̄) on the input.
    rng = np.random.default_rng(7)
    inp = keras.Input((8, 2))
    model = keras.Model(inp, layers.Identity()(inp))
    x = rng.normal(size=(3, 8, 2)).astype("float32")
    att = seqlift.attribute(Explainer(model), "grad-x-input", x, np.zeros((1, 8, 2), "float32"), target="profile")
    flat = x.reshape(3, -1) - x.reshape(3, -1).mean(1, keepdims=True)
    w = np.exp(flat) / np.exp(flat).sum(1, keepdims=True)
    np.testing.assert_allclose(att.contributions.reshape(3, -1), (w - 1 / 16) * x.reshape(3, -1), atol=1e-6)


@pytest.mark.parametrize("target, message", [("shape", "unknown target 'shape'"), (2.5, "not an output index"),
                                             (100, "out of range")])
def test_bad_targets_are_errors_naming_them(target, message):
    ex = Explainer(bpnet(), output="profile")
    with pytest.raises(SeqliftError, match=message):
        ex.deeplift(np.zeros((1, LENGTH, 4), "float32"), np.zeros((1, LENGTH, 4), "float32"), target=target)


def test_a_task_with_a_whole_output_target_is_an_error():
    with pytest.raises(SeqliftError, match="--task applies to --target logit"):
        seqlift.score(bpnet(), np.zeros((1, LENGTH, 4), "float32"), tasks=[3], output="profile", target="profile")


# --- both strands ------------------------------------------------------------------------------
def _strand_model():
    inp = keras.Input((30, 4))
    h = layers.Conv1D(6, 5, activation="relu")(inp)
    h = layers.Dense(4, activation="relu")(layers.Flatten()(layers.MaxPooling1D(2)(h)))
    return randomize(keras.Model(inp, layers.Dense(2)(h)), seed=8, scale=0.4)


def test_rc_average_equals_two_runs_combined_by_hand():
    rng = np.random.default_rng(9)
    explainer = explainer_for_sequences(_strand_model())
    x = one_hot(rng, (3, 30))
    both = seqlift.score(explainer, x, tasks=[0, 1], n_refs=3, seed=4, rc_average=True)
    forward = seqlift.score(explainer, x, tasks=[0, 1], n_refs=3, seed=4)
    # The reverse complement's references are the reverse complements of the forward shuffles.
    shuffles = references.shuffled_references(x, 3, 4, 0)
    reverse = seqlift.score(explainer, reverse_complement(x), tasks=[0, 1], reference=reverse_complement(shuffles))
    np.testing.assert_allclose(both.contributions,
                               0.5 * (forward.contributions + reverse_complement(reverse.contributions)), atol=1e-7)
    np.testing.assert_allclose(both.hypothetical, 0.5 * (forward.hypothetical + reverse_complement(reverse.hypothetical)),
                               atol=1e-7)
    np.testing.assert_allclose(both.prediction, 0.5 * (forward.prediction + reverse.prediction), atol=1e-7)
    np.testing.assert_allclose(both.reference_prediction,
                               0.5 * (forward.reference_prediction + reverse.reference_prediction), atol=1e-7)
    np.testing.assert_array_equal(both.delta, np.maximum(forward.delta, reverse.delta))
    # Summation to delta holds for the average: Σ C = mean over strands of t(x) − t(ref).
    np.testing.assert_allclose(both.contributions.sum((2, 3)), both.prediction - both.reference_prediction, atol=1e-4)


def _rc_symmetric_model():
    """Conv filters in reverse-complement pairs with tied weights after pooling: f(x) = f(rc(x)) exactly."""
    inp = keras.Input((30, 4))
    conv = layers.Conv1D(8, 5, activation="relu")
    dense = layers.Dense(1)
    model = keras.Model(inp, dense(layers.GlobalAveragePooling1D()(conv(inp))))
    rng = np.random.default_rng(10)
    kernel, bias, weight = rng.normal(size=(5, 4, 4)), rng.normal(size=4) * 0.1, rng.normal(size=(4, 1))
    conv.set_weights([np.concatenate([kernel, kernel[::-1, ::-1]], axis=2).astype("float32"),
                      np.concatenate([bias, bias]).astype("float32")])
    dense.set_weights([np.concatenate([weight, weight]).astype("float32"), np.zeros(1, "float32")])
    return model


def test_on_a_reverse_complement_symmetric_model_both_strands_agree():
    rng = np.random.default_rng(11)
    model = _rc_symmetric_model()
    x = one_hot(rng, (4, 30))
    np.testing.assert_allclose(model.predict(x, verbose=0), model.predict(reverse_complement(x), verbose=0), atol=1e-5)
    explainer = explainer_for_sequences(model)
    refs = references.shuffled_references(x, 3, 0, 0)
    forward = seqlift.score(explainer, x, reference=refs)
    reverse = seqlift.score(explainer, reverse_complement(x), reference=reverse_complement(refs))
    np.testing.assert_allclose(reverse_complement(reverse.hypothetical), forward.hypothetical, atol=1e-5)
    np.testing.assert_allclose(reverse_complement(reverse.contributions), forward.contributions, atol=1e-5)
    np.testing.assert_allclose(reverse.prediction, forward.prediction, atol=1e-5)
    both = seqlift.score(explainer, x, n_refs=3, seed=0, rc_average=True)
    np.testing.assert_allclose(both.contributions, forward.contributions, atol=1e-5)


# --- the command line --------------------------------------------------------------------------
def test_score_records_the_target_and_rc_average(tmp_path):
    rng = np.random.default_rng(12)
    bpnet().save(tmp_path / "bpnet.keras")
    seqs = ["".join(rng.choice(list("ACGT"), LENGTH)) for _ in range(3)]
    (tmp_path / "in.fa").write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    out = tmp_path / "p.h5"
    args = ["score", tmp_path / "bpnet.keras", tmp_path / "in.fa", "--output", "profile", "--n-refs", 2, "--quiet"]
    result = CliRunner().invoke(cli, [str(a) for a in args + ["--target", "profile", "--rc-average", "--out", out]])
    assert result.exit_code == 0, result.output
    with h5py.File(out) as f:
        assert f.attrs["target"] == "profile" and bool(f.attrs["rc_average"]) is True
        total = f["contrib"][()].reshape(3, -1).sum(1)
        np.testing.assert_allclose(total, f["prediction"][()] - f["reference_prediction"][()], atol=1e-4)
    summary = pd.read_csv(tmp_path / "p.tsv", sep="\t")
    assert list(summary["target"]) == ["profile"] * 3
    fixed = CliRunner().invoke(cli, [str(a) for a in args + ["--target", "profile-fixed-weights", "--out",
                                                             tmp_path / "f.h5"]])
    assert fixed.exit_code == 0, fixed.output
    with h5py.File(tmp_path / "f.h5") as f:
        assert f.attrs["target"] == "profile-fixed-weights"
    bad = CliRunner().invoke(cli, [str(a) for a in args + ["--target", "sum", "--task", 2, "--out", tmp_path / "b.h5"]])
    assert bad.exit_code == 1 and "--task applies to --target logit" in bad.output
    assert not (tmp_path / "b.h5").exists()


def _rc_symmetric_model_with_control():
    """f(x, c) = f(rc(x), c reversed along positions, strands kept), as the published BPNet's control track
    flips: filter pairs (K, rc K) on the sequence and (Kc, Kc reversed) on the control, added before the ReLU,
    tied after pooling."""
    seq, control = keras.Input((30, 4), name="sequence"), keras.Input((30, 2), name="control")
    conv, conv_c, dense = layers.Conv1D(8, 5), layers.Conv1D(8, 5, use_bias=False), layers.Dense(1)
    h = layers.Activation("relu")(layers.Add()([conv(seq), conv_c(control)]))
    model = keras.Model([seq, control], dense(layers.GlobalAveragePooling1D()(h)))
    rng = np.random.default_rng(13)
    kernel, kernel_c, bias = rng.normal(size=(5, 4, 4)), rng.normal(size=(5, 2, 4)), rng.normal(size=4) * 0.1
    weight = rng.normal(size=(4, 1))
    conv.set_weights([np.concatenate([kernel, kernel[::-1, ::-1]], axis=2).astype("float32"),
                      np.concatenate([bias, bias]).astype("float32")])
    conv_c.set_weights([np.concatenate([kernel_c, kernel_c[::-1]], axis=2).astype("float32")])
    dense.set_weights([np.concatenate([weight, weight]).astype("float32"), np.zeros(1, "float32")])
    return model


def test_rc_average_with_a_stranded_control_track_gives_rc_equivariant_scores():
    rng = np.random.default_rng(14)
    model = _rc_symmetric_model_with_control()
    x = one_hot(rng, (4, 30))
    c = rng.random((4, 30, 2)).astype("float32") * 2
    flipped = c[:, ::-1]  # positions reversed, strands kept
    np.testing.assert_allclose(model.predict([x, c], verbose=0), model.predict([reverse_complement(x), flipped],
                                                                                 verbose=0), atol=1e-5)
    explainer = explainer_for_sequences(model, input="sequence")
    options = dict(n_refs=3, seed=0, rc_average=True)
    both = seqlift.score(explainer, x, extra={"control": c}, extra_rc={"control": "reverse"}, **options)
    refs = references.shuffled_references(x, 3, 0, 0)
    forward = seqlift.score(explainer, x, reference=refs, extra={"control": c})
    # The model is RC-equivariant, so both strands agree and their average is either strand's scores ...
    np.testing.assert_allclose(both.contributions, forward.contributions, atol=1e-5)
    np.testing.assert_allclose(both.prediction, forward.prediction, atol=1e-5)
    # ... and the scores of the reverse complement (with its flipped track) are the scores flipped.
    reverse = seqlift.score(explainer, reverse_complement(x), reference=reverse_complement(refs),
                            extra={"control": flipped}, extra_rc={"control": "reverse"}, rc_average=True)
    np.testing.assert_allclose(reverse_complement(reverse.hypothetical), forward.hypothetical, atol=1e-5)
    # The partner values given as an array are the named flip.
    given = seqlift.score(explainer, x, extra={"control": c}, extra_rc={"control": flipped}, **options)
    np.testing.assert_array_equal(given.hypothetical, both.hypothetical)
    # A flip that is not the model's (strands swapped too) mixes strands that disagree.
    wrong = seqlift.score(explainer, x, extra={"control": c}, extra_rc={"control": "both"}, **options)
    assert np.abs(wrong.contributions - forward.contributions).max() > 1e-3
    with pytest.raises(SeqliftError, match="say how it flips on the reverse strand with --extra-rc control=reverse"):
        seqlift.score(explainer, x, extra={"control": c}, **options)
    with pytest.raises(SeqliftError, match="applies to --rc-average"):
        seqlift.score(explainer, x, extra={"control": c}, extra_rc={"control": "reverse"}, n_refs=3)


def test_extra_rc_through_the_cli(tmp_path):
    rng = np.random.default_rng(15)
    _rc_symmetric_model_with_control().save(tmp_path / "m.keras")
    seqs = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(3)]
    (tmp_path / "in.fa").write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    np.save(tmp_path / "ctl.npy", rng.random((3, 30, 2)).astype("float32"))
    args = ["score", tmp_path / "m.keras", tmp_path / "in.fa", "--extra", f"control={tmp_path / 'ctl.npy'}",
            "--n-refs", 2, "--quiet"]
    run = CliRunner().invoke(cli, [str(a) for a in args + ["--out", tmp_path / "one.h5"]])
    both = CliRunner().invoke(cli, [str(a) for a in args + ["--rc-average", "--extra-rc", "control=reverse",
                                                            "--out", tmp_path / "both.h5"]])
    assert run.exit_code == 0 and both.exit_code == 0, run.output + both.output
    with h5py.File(tmp_path / "one.h5") as one, h5py.File(tmp_path / "both.h5") as f:
        assert f.attrs["extra_rc"] == "control=reverse" and bool(f.attrs["rc_average"])
        np.testing.assert_allclose(f["contrib"][()], one["contrib"][()], atol=1e-5)


def test_each_target_name_the_cli_lists_is_one_kind():
    from seqlift import choices, targets

    assert tuple(targets.KINDS) == choices.TARGETS  # the CLI lists choices.TARGETS without Keras
    assert all(kind.name == name and targets.resolve(name, 2).kind is kind for name, kind in targets.KINDS.items())
    assert targets.resolve(1, 2) == targets.Target(targets.LOGIT, 1) and targets.resolve(1, 2).label == "logit 1"


def test_each_reference_name_is_one_kind():
    spec = references.ReferenceSpec.parse("zeros")
    assert spec.kind == "zeros" and spec.source is references.ZEROS and spec.attributes()["reference"] == "zeros"
    assert references.REFERENCE_KINDS == ("shuffle", "frequency", "zeros")  # what --reference names besides a FASTA
