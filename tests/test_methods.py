"""The method registry (seqlift.methods) and methods besides DeepLIFT (gradients, mutagenesis), worked by hand."""

import keras
import numpy as np
import pandas as pd
import pytest
from keras import layers

from seqlift.simulation import evaluation as bench
from seqlift import simulation as sim_mod
from seqlift.simulation import metrics
from seqlift.simulation.model import build_model
from seqlift import SeqliftError
from seqlift.engine import Explainer
from seqlift.methods import DEEPLIFT, METHODS, Method, attribute, get_method, in_silico_mutagenesis


def linear_model(length=6):
    inp = keras.Input((length, 4))
    model = keras.Model(inp, layers.Dense(1, use_bias=True)(layers.Flatten()(inp)))
    w = np.arange(length * 4, dtype="float32").reshape(-1, 1) / 10
    model.layers[-1].set_weights([w, np.array([0.5], "float32")])
    return model, w.reshape(length, 4)


def tiny_model(length=8):
    """Conv1D(3, 3) softplus → average pooling → Dense(2): nonlinear and smooth (integrated gradients converges)."""
    inp = keras.Input((length, 4))
    h = layers.AveragePooling1D(2)(layers.Conv1D(3, 3, activation="softplus")(inp))
    model = keras.Model(inp, layers.Dense(2)(layers.Flatten()(h)))
    rng = np.random.default_rng(4)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype("float32"))
    return model


# Integrated gradients' 32 steps make it the slowest case by far (24 s): the slow tier runs it.
@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.slow) if name == "integrated-gradients" else m
                                    for name, m in METHODS.items()], ids=list(METHODS))
def test_every_registered_method_scores_several_targets_and_complete_ones_sum_to_delta(method):
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (3, 8))]
    refs = np.eye(4, dtype="float32")[rng.integers(0, 4, (3, 2, 8))]
    ex = Explainer(tiny_model())
    options = {"ig_steps": 128} if "ig_steps" in method.options else {}
    both = attribute(ex, method.name, x, refs, target=[0, 1], **options)
    assert len(both) == 2
    for target, att in enumerate(both):
        one = attribute(ex, method, x, refs, target=target, **options)
        np.testing.assert_allclose(att.hypothetical, one.hypothetical, atol=1e-6)  # one pass or one per target
        assert att.contributions.shape == att.hypothetical.shape == x.shape
        assert np.isfinite(att.contributions).all() and np.abs(att.contributions).sum() > 0
        np.testing.assert_allclose(att.prediction, ex.predict(x)[:, target], rtol=1e-5, atol=1e-5)
        if method.complete:  # Σ C = t(x) − t(ref), per reference (delta) and on average
            scale = np.maximum(1.0, np.abs(att.prediction) + np.abs(att.reference_prediction))
            assert (att.delta <= 1e-4 * scale).all(), att.delta
            np.testing.assert_allclose(att.contributions.reshape(3, -1).sum(1), att.prediction
                                       - att.reference_prediction, atol=1e-4 * scale.max())


def test_registry_records_are_frozen_and_unknown_names_and_options_are_refused():
    assert list(METHODS)[0] == DEEPLIFT.name and get_method(DEEPLIFT) is DEEPLIFT
    assert all(isinstance(m, Method) and m is get_method(name) for name, m in METHODS.items())
    with pytest.raises(AttributeError):
        DEEPLIFT.complete = False
    with pytest.raises(SeqliftError, match="unknown method 'lime'; choose one of deeplift, "):
        get_method("lime")
    ex, x = Explainer(tiny_model()), np.eye(4, dtype="float32")[[0, 1, 2, 3, 3, 2, 1, 0]][None]
    with pytest.raises(SeqliftError, match="no method takes the option ig_step "):
        attribute(ex, DEEPLIFT.name, x, np.zeros((1, 8, 4), "float32"), ig_step=4)
    plain = attribute(ex, DEEPLIFT.name, x, np.zeros((1, 8, 4), "float32"))
    other = attribute(ex, DEEPLIFT.name, x, np.zeros((1, 8, 4), "float32"), ig_steps=4)  # integrated gradients'
    assert np.array_equal(plain.contributions, other.contributions)


def test_explainer_deeplift_is_the_registry_path():
    rng = np.random.default_rng(1)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (2, 8))]
    refs = np.eye(4, dtype="float32")[rng.integers(0, 4, (3, 8))]
    ex = Explainer(tiny_model())
    direct = ex.deeplift(x, refs, target=1)
    assert np.array_equal(direct.contributions, attribute(ex, DEEPLIFT.name, x, refs, target=1).contributions)
    assert (DEEPLIFT.name, (ex.target(1),), ()) in ex._steps  # one compiled step, cached once for both


def test_ism_of_a_linear_model_is_the_weight_difference():
    model, w = linear_model()
    x = np.eye(4, dtype="float32")[[0, 1, 2, 3, 0, 1]][None]
    att = in_silico_mutagenesis(Explainer(model), x, 0)
    effect = w - (w * x[0]).sum(-1, keepdims=True)  # t(x with b at i) − t(x)
    np.testing.assert_allclose(att.hypothetical[0], effect - effect.mean(-1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(att.contributions[0], att.hypothetical[0] * x[0], atol=1e-6)
    assert np.isnan(att.delta).all()
    several = in_silico_mutagenesis(Explainer(model), x, [0, 0])
    np.testing.assert_allclose(several[1].hypothetical, att.hypothetical)


def test_gradient_methods_on_a_linear_model():
    model, w = linear_model()
    ex = Explainer(model)
    x = np.eye(4, dtype="float32")[[0, 1, 2, 3, 0, 1]][None]
    zero = np.zeros((1, 6, 4), "float32")
    gxi = attribute(ex, "grad-x-input", x, zero)
    np.testing.assert_allclose(gxi.contributions[0], w * x[0], atol=1e-6)
    np.testing.assert_allclose(attribute(ex, "saliency", x, zero).hypothetical[0], np.abs(w), atol=1e-6)
    ig = attribute(ex, "integrated-gradients", x, zero)
    np.testing.assert_allclose(ig.contributions[0], w * x[0], atol=1e-5)  # linear: IG = gradient × input


@pytest.mark.slow  # 5 s; IG's linear case above stays in the default tier
def test_integrated_gradients_completeness_on_a_nonlinear_model():
    rng = np.random.default_rng(0)
    inp = keras.Input((12, 4))
    h = layers.Conv1D(4, 3, activation="softplus")(inp)
    model = keras.Model(inp, layers.Dense(1)(layers.Flatten()(h)))
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (3, 12))]
    ref = np.full((1, 12, 4), 0.25, "float32")
    att = attribute(Explainer(model), "integrated-gradients", x, ref, ig_steps=64)
    scale = np.abs(att.prediction - att.reference_prediction).max()
    assert att.delta.max() <= 1e-3 * max(scale, 1.0)


def test_guided_backprop_drops_negative_gradients_through_relu():
    # o = −ReLU(x): the gradient reaching the ReLU is negative, so guided backprop passes nothing.
    inp = keras.Input((1,))
    h = layers.Dense(1, use_bias=False)(inp)
    model = keras.Model(inp, layers.Dense(1, use_bias=False)(layers.ReLU()(h)))
    model.layers[1].set_weights([np.array([[1.0]], "float32")])
    model.layers[3].set_weights([np.array([[-1.0]], "float32")])
    x = np.array([[2.0]], "float32")
    ex = Explainer(model)
    assert attribute(ex, "guided-backprop", x, np.zeros((1, 1), "float32")).contributions[0, 0] == 0.0
    assert attribute(ex, "grad-x-input", x, np.zeros((1, 1), "float32")).contributions[0, 0] == pytest.approx(-2.0)


def test_scan_finds_the_planted_motif_with_its_log_odds():
    pwm = sim_mod.load_motif("GATA1")
    lo = sim_mod.log_odds(pwm, sim_mod.PAPER_BACKGROUND)
    seq = np.eye(4, dtype="float32")[np.zeros(40, int)]
    best = lo.argmax(1)
    seq[17:17 + len(lo)] = np.eye(4)[best]
    (matches,) = metrics.scan(seq[None], lo, top=3)
    assert matches[0] == (17, pytest.approx(lo.max(1).sum()))
    starts = [s for s, _ in matches]
    assert all(abs(a - b) >= len(lo) for i, a in enumerate(starts) for b in starts[i + 1:])  # non-overlapping


def test_oracle_scores_are_perfect_and_inverted_scores_are_the_worst():
    motifs = pd.DataFrame({"name": ["a", "b"], "motif": ["GATA1", "TAL1"], "start": [2, 5], "end": [6, 9]})
    truth = metrics.motif_mask(["a", "b"], motifs, 12, ("GATA1", "TAL1"))
    assert truth.sum() == 8 and truth[0, 2:6].all() and truth[1, 5:9].all()
    oracle = truth.astype(float)
    assert metrics.auroc(truth.ravel(), oracle.ravel()) == 1.0
    assert metrics.auprc(truth.ravel(), oracle.ravel()) == 1.0
    assert metrics.auroc(truth.ravel(), -oracle.ravel()) == 0.0
    only_gata = metrics.motif_mask(["a", "b"], motifs, 12, ("GATA1",))
    assert only_gata.sum() == 4


def test_false_negative_fraction_counts_strong_both_motif_matches_scored_at_most_zero():
    matches = pd.DataFrame({
        "name": list("abcde"), "class": ["both", "both", "both", "gata1_only", "both"],
        "motif": ["GATA1"] * 5, "start": 0, "log_odds": [8.0, 9.0, 7.5, 10.0, 3.0],
        "score": [0.5, -0.1, 0.0, -5.0, -5.0],
    })
    # strong (≥ 7) and both-motif: a, b, c; b and c score ≤ 0
    assert metrics.false_negative_fraction(matches, "GATA1") == pytest.approx(2 / 3)
    assert np.isnan(metrics.false_negative_fraction(matches, "TAL1"))


def test_sensitivity_n_of_an_exact_additive_attribution_is_one():
    rng = np.random.default_rng(0)
    per_position = rng.normal(size=(5, 30))
    masks = metrics.sensitivity_n_masks(5, 30, ns=(1, 5), subsets=10, seed=1)
    # a model whose output drop is exactly the summed attribution of the removed positions
    drops = {n: (m * per_position[:, None, :]).sum(-1)[..., None] for n, m in masks.items()}
    sens = metrics.sensitivity_n(per_position, masks, drops, 0)
    assert sens[1] == pytest.approx(1.0) and sens[5] == pytest.approx(1.0)
    noise = {n: rng.normal(size=d.shape) for n, d in drops.items()}
    assert abs(metrics.sensitivity_n(per_position, masks, noise, 0)[5]) < 0.5


@pytest.mark.slow  # 6-8 s; the default tier tests its metrics one by one above
def test_benchmark_runs_end_to_end_on_a_tiny_simulation(tmp_path):
    sim = sim_mod.simulate(n_seqs=80, length=150, seed=2)
    sim_mod.write(sim, tmp_path)
    build_model(150).save(tmp_path / "model.h5")
    table = bench.run_benchmark(tmp_path, tmp_path / "out", methods=["deeplift-rescale-shuffle", "grad-x-input"],
                                n_refs=2, sensitivity_seqs=4, motifs=True)
    assert set(table["method"]) == {"deeplift-rescale-shuffle", "grad-x-input"} and len(table) == 6
    recovery = pd.read_csv(tmp_path / "out" / "motif_recovery.tsv", sep="\t")
    assert list(recovery.columns) == ["method", "gata1_recovered", "gata1_seqlets", "tal1_recovered", "tal1_seqlets",
                                      "n_patterns", "note"]
    assert not recovery["gata1_recovered"].any()  # an untrained model has learned no motif
    for name in ["benchmark.tsv", "benchmark.md", "scatter_GATA1.png", "scatter_TAL1.png", "sensitivity_n.png"]:
        assert (tmp_path / "out" / name).exists()
    deeplift = table[table["method"] == "deeplift-rescale-shuffle"]
    assert (deeplift["max_delta"] < 1e-3).all()
