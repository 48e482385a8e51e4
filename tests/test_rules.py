"""DeepLIFT's rules (seqlift.rules): a hand-worked example per rule; summation to delta for every layer and rule."""

import zlib

import keras
import numpy as np
import pytest
from keras import layers

import seqlift
from seqlift import methods, rules
from seqlift.engine import Explainer

from helpers import (
    RULES,
    assert_summation,
    head,
    one_hot,
    randomize,
    transformer_block,
    trunk,
)


# --- appendix C: o = min(i1, i2) = i1 − ReLU(i1 − i2) --------------------------------------
def min_network():
    inp = keras.Input((2,))
    h1 = layers.Dense(1, use_bias=False, name="h1")(inp)
    h2 = layers.ReLU(name="h2")(h1)
    o = layers.Dense(1, use_bias=False, name="o")(layers.Concatenate()([inp, h2]))
    model = keras.Model(inp, o)
    model.get_layer("h1").set_weights([np.array([[1.0], [-1.0]], "float32")])
    model.get_layer("o").set_weights([np.array([[1.0], [0.0], [-1.0]], "float32")])
    return model


@pytest.mark.parametrize("i1,i2", [(3.0, 1.0), (1.0, 3.0), (2.0, 2.0)])
def test_min_network_rescale_gives_all_importance_to_one_input(i1, i2):
    x = np.array([[i1, i2]], "float32")
    c = seqlift.deeplift(min_network(), x, np.zeros((1, 2), "float32"), rule="rescale")[0]
    # Appendix C §3.3: C(i1) = i1(1 − r), C(i2) = i2·r, r = max(0, i1 − i2)/(i1 − i2).
    if i1 > i2:
        np.testing.assert_allclose(c, [0.0, i2], atol=1e-6)
    elif i1 < i2:
        np.testing.assert_allclose(c, [i1, 0.0], atol=1e-6)
    assert c.sum() == pytest.approx(min(i1, i2), abs=1e-6)


@pytest.mark.parametrize("i1,i2", [(3.0, 1.0), (1.0, 3.0), (2.0, 2.0), (5.0, 0.5)])
def test_min_network_reveal_cancel_splits_importance_equally(i1, i2):
    x = np.array([[i1, i2]], "float32")
    c = seqlift.deeplift(min_network(), x, np.zeros((1, 2), "float32"), rule="reveal-cancel")[0]
    # Appendix C §3.4: RevealCancel gives ½·min(i1, i2) to each input.
    np.testing.assert_allclose(c, [0.5 * min(i1, i2)] * 2, atol=1e-6)


def test_rescale_hand_worked_relu():
    # y = ReLU(2·x − 1), x = 3, ref = 0: Δy = 5 − 0 = 5, m = 5/3 exactly (secant, not gradient 2).
    inp = keras.Input((1,))
    model = keras.Model(inp, layers.Dense(1, activation="relu")(inp))
    model.layers[1].set_weights([np.array([[2.0]], "float32"), np.array([-1.0], "float32")])
    ex = Explainer(model)
    att = ex.deeplift(np.array([[3.0]], "float32"), np.zeros((1, 1), "float32"))
    np.testing.assert_allclose(att.contributions, [[5.0]], rtol=1e-6)
    np.testing.assert_allclose(att.hypothetical, [[5.0 / 3.0]], rtol=1e-6)


def test_product_rule_hand_worked():
    # y = a·b; a: 1 → 3, b: 2 → 5. m_a = b0 + ½Δb = 3.5, m_b = a0 + ½Δa = 2; C = (7, 6), Δy = 13.
    inp = keras.Input((2,))
    a = layers.Cropping1D((0, 1))(layers.Reshape((2, 1))(inp))
    b = layers.Cropping1D((1, 0))(layers.Reshape((2, 1))(inp))
    model = keras.Model(inp, layers.Flatten()(layers.Multiply()([a, b])))
    att = Explainer(model).deeplift(np.array([[3.0, 5.0]], "float32"), np.array([[1.0, 2.0]], "float32"))
    np.testing.assert_allclose(att.contributions, [[7.0, 6.0]], rtol=1e-6)


def _pool_model():
    inp = keras.Input((2, 1))
    return keras.Model(inp, layers.Flatten()(layers.MaxPooling1D(2)(inp)))


@pytest.mark.parametrize("x, ref, expected", [
    # max rose (Δy = 4 − 3 = 1): all to the input's max, position 2 (Δx = 4, m = 1/4): the seeds' rule
    ((1.0, 4.0), (3.0, 0.0), (0.0, 1.0)),
    # max fell (Δy = 1 − 2 = −1): to the reference's max, position 2 (Δx = −2, m = ½); the seeds'
    # rule would give −1 to position 1 through m = −2
    ((1.0, 0.0), (0.5, 2.0), (0.0, -1.0)),
    # tie in the input (ReLU zeros): Δy = 0 − 0.5 = −0.5 to the reference's max, m = 1
    ((0.0, 0.0), (0.05, 0.5), (0.0, -0.5)),
    # unchanged max at position 1, reference larger at 2: Δy = −3 to position 2
    ((2.0, 2.0), (2.0, 5.0), (0.0, -3.0)),
    # tie in the reference: Δy = 0.1 − 0.5 = −0.4 to its first maximum (Δx = −0.5, m = 0.8), as torch's max
    # pooling and tangermeme choose
    ((0.0, 0.1), (0.5, 0.5), (-0.4, 0.0)),
])
def test_max_pool_rule_hand_worked(x, ref, expected):
    att = Explainer(_pool_model()).deeplift(np.array([x], "float32")[..., None], np.array([ref], "float32")[..., None])
    np.testing.assert_allclose(att.contributions[0, :, 0], expected, atol=1e-7)


def test_max_pool_input_that_did_not_change_takes_the_gradient():
    # x = (0.3, 0.1), ref = (0.3, 0.5): Δy = −0.2 to the reference's max (m = 0.5); position 1 did not change and
    # is the input's maximum: its multiplier is the gradient, 1 (tangermeme's), though it contributes nothing
    att = Explainer(_pool_model()).deeplift(np.array([[[0.3], [0.1]]], "float32"), np.array([[[0.3], [0.5]]], "float32"))
    np.testing.assert_allclose(att.contributions[0, :, 0], (0.0, -0.2), atol=1e-7)
    np.testing.assert_allclose(att.hypothetical[0, :, 0], (1 * (1 - 0.3), 0.5 * (1 - 0.5)), atol=1e-7)  # m (1 − ref)


def test_max_pool_multipliers_lie_between_zero_and_one():
    rng = np.random.default_rng(0)
    x, ref = rng.normal(size=(200, 2, 1)).astype("float32"), rng.normal(size=(200, 2, 1)).astype("float32")
    att = Explainer(_pool_model()).deeplift(x, ref[:, None])
    m = att.hypothetical[..., 0]  # one channel: hypothetical = m − m·ref
    multipliers = np.where(np.abs(x - ref)[..., 0] > 0, att.contributions[..., 0] / (x - ref)[..., 0], 0)
    assert multipliers.min() >= -1e-6 and multipliers.max() <= 1 + 1e-6
    assert m.shape == (200, 2)


def test_linear_model_equals_gradient_times_input_with_zero_reference():
    rng = np.random.default_rng(1)
    inp = keras.Input((20, 4))
    h = layers.Conv1D(5, 4, padding="same")(inp)
    h = layers.AveragePooling1D(2)(h)
    out = layers.Dense(3)(layers.Flatten()(h))
    model = randomize(keras.Model(inp, out))
    x = rng.normal(size=(6, 20, 4)).astype("float32")
    c = seqlift.deeplift(model, x, np.zeros((1, 20, 4), "float32"), target=2)
    from seqlift import backend

    grad, _ = backend.ADAPTER.input_gradient(lambda z: (model(z)[:, 2],), backend.to_tensor(x))
    grad = backend.to_numpy(grad)
    np.testing.assert_allclose(c, grad * x, atol=1e-5)


# --- summation to delta, every supported layer, every rule -----------------------------------


def _activation(name):
    return lambda h: layers.Activation(name)(layers.Conv1D(6, 3)(h))


LAYER_CASES = {
    "Conv1D-valid-stride2": lambda h: layers.Conv1D(5, 3, strides=2, activation="relu")(h),
    "Conv1D-same-dilated": lambda h: layers.Conv1D(5, 3, padding="same", dilation_rate=2, activation="elu")(h),
    "Conv1D-causal": lambda h: layers.Conv1D(5, 3, padding="causal", dilation_rate=3, activation="relu")(h),
    "Dense-on-sequence": lambda h: layers.Dense(4, activation="tanh")(h),
    "ReLU": lambda h: layers.ReLU(negative_slope=0.1, threshold=0.2)(layers.Conv1D(6, 3)(h)),
    "PReLU": lambda h: layers.PReLU()(layers.Conv1D(6, 3)(h)),
    "LeakyReLU": lambda h: layers.LeakyReLU(0.2)(layers.Conv1D(6, 3)(h)),
    "ELU": lambda h: layers.ELU()(layers.Conv1D(6, 3)(h)),
    **{f"Activation-{n}": _activation(n) for n in
       ["sigmoid", "tanh", "softplus", "gelu", "swish", "exponential", "linear", "relu", "selu", "softsign",
        "mish", "relu6", "hard_sigmoid", "log_sigmoid", "celu", "hard_silu", "silu", "elu", "leaky_relu"]},
    "Permute": lambda h: layers.Permute((2, 1))(h),
    "UpSampling1D": lambda h: layers.UpSampling1D(2)(h),
    "Inference-identities": lambda h: layers.Identity()(layers.ActivityRegularization(0.1)(
        layers.AlphaDropout(0.1)(layers.GaussianDropout(0.1)(h)))),
    "MaxPooling1D": lambda h: layers.MaxPooling1D(2)(h),
    "MaxPooling1D-same-overlap": lambda h: layers.MaxPooling1D(3, strides=2, padding="same")(h),
    "AveragePooling1D": lambda h: layers.AveragePooling1D(3, strides=2, padding="same")(h),
    "GlobalAveragePooling1D": lambda h: layers.GlobalAveragePooling1D()(h),
    "GlobalMaxPooling1D": lambda h: layers.GlobalMaxPooling1D()(h),
    "BatchNormalization": lambda h: layers.ReLU()(layers.BatchNormalization()(layers.Conv1D(6, 3)(h))),
    "Dropout-kin": lambda h: layers.GaussianNoise(0.1)(layers.SpatialDropout1D(0.2)(layers.Dropout(0.5)(h))),
    "Reshape": lambda h: layers.Reshape((-1, 3))(h),
    "Cropping1D": lambda h: layers.Cropping1D((2, 1))(h),
    "ZeroPadding1D": lambda h: layers.ZeroPadding1D(2)(h),
    "Add-residual": lambda h: layers.Add()([h, layers.Conv1D(6, 3, padding="same", activation="relu")(h)]),
    "Subtract": lambda h: layers.Subtract()([h, layers.Conv1D(6, 1, activation="relu")(h)]),
    "Average": lambda h: layers.Average()([h, layers.Conv1D(6, 1, activation="sigmoid")(h)]),
    "Concatenate": lambda h: layers.Concatenate()([h, layers.Conv1D(3, 1, activation="relu")(h)]),
    "Multiply-gate": lambda h: layers.Multiply()([h, layers.Conv1D(6, 1, activation="sigmoid")(h)]),
    "Multiply-product-of-branches": lambda h: layers.Multiply()([layers.Conv1D(6, 3, padding="same")(h), h, h]),
    "Softmax-inside": lambda h: layers.Softmax(axis=-1)(layers.Conv1D(6, 3)(h)),
    "Softmax-over-positions": lambda h: layers.Softmax(axis=1)(layers.Conv1D(6, 3)(h)),
    "Dense-softmax-activation": lambda h: layers.Dense(5, activation="softmax")(h),
    "LayerNormalization": lambda h: layers.LayerNormalization()(layers.Conv1D(6, 3)(h)),
    "LayerNormalization-no-affine-two-axes": lambda h: layers.LayerNormalization(axis=[1, 2], center=False,
                                                                                   scale=False)(h),
    "RMSNormalization": lambda h: layers.RMSNormalization()(layers.Conv1D(6, 3)(h)),
    "EinsumDense": lambda h: layers.EinsumDense("abc,cd->abd", (16, 4), bias_axes="d", activation="relu")(h),
    "MultiHeadAttention": lambda h: layers.MultiHeadAttention(2, 3)(h, h),
    "MultiHeadAttention-cross-gated": lambda h: layers.MultiHeadAttention(2, 3, value_dim=4, use_gate=True)(
        layers.Conv1D(5, 3, padding="same")(h), h, key=layers.Conv1D(4, 1)(h)),
}


# Variants of layers already covered by another case: the slow tier (pytest -m slow).
SLOW_CASES = {"Multiply-product-of-branches", "Softmax-over-positions", "Dense-softmax-activation",
              "LayerNormalization-no-affine-two-axes", "MultiHeadAttention"}


# The default tier runs RevealCancel on these four kinds of path (sign splits through weights, pooling, merges,
# products); the slow tier, which CI also runs, on every case (softmax, normalization and attention included). With
# 14 of them the default tier passed five minutes.
REVEAL_CANCEL_DEFAULT = {"Dense-on-sequence", "MaxPooling1D", "Add-residual", "Multiply-gate"}


def _layer_rule_cases():
    """Every layer case under every rule. The default tier: every case under Rescale, the cases above under
    RevealCancel; the slow tier (which CI also runs) the rest, the genomics rule and variants."""
    for case in sorted(LAYER_CASES):
        for rule in RULES:
            slow = (case in SLOW_CASES or rule == "genomics"
                    or (rule == methods.REVEAL_CANCEL and case not in REVEAL_CANCEL_DEFAULT))
            yield pytest.param(case, rule, marks=pytest.mark.slow) if slow else (case, rule)


@pytest.mark.parametrize("case, rule", list(_layer_rule_cases()))
def test_summation_to_delta(case, rule):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, head(LAYER_CASES[case](trunk(inp)))), seed=3)
    x, refs = one_hot(rng, (4, 16)), one_hot(rng, (4, 3, 16))
    att = Explainer(model, rule=rule).deeplift(x, refs)
    assert_summation(att)
    # The engine's forward pass is the model's.
    np.testing.assert_allclose(att.prediction, model.predict(x, verbose=0)[:, 0], rtol=1e-5, atol=1e-5)
    # Each reference's prediction matches the model on that reference.
    ref_pred = model.predict(refs.reshape(-1, 16, 4), verbose=0)[:, 0].reshape(4, 3).mean(1)
    np.testing.assert_allclose(att.reference_prediction, ref_pred, rtol=1e-4, atol=1e-4)


def test_softmax_feature_pushing_all_classes_equally_gets_zero():
    # A bias-like input that adds the same amount to every class logit cannot change the softmax.
    inp = keras.Input((2,))
    model = keras.Model(inp, layers.Dense(3, activation="softmax", use_bias=False)(inp))
    model.layers[1].set_weights([np.array([[1.0, 1.0, 1.0], [2.0, -1.0, 0.5]], "float32")])
    c = seqlift.deeplift(model, np.array([[1.0, 1.0]], "float32"), np.zeros((1, 2), "float32"), target=0)
    assert c[0, 0] == pytest.approx(0.0, abs=1e-7)


def _random_architecture(seed):
    """A random stack of supported blocks with branches, ending in dense layers."""
    rng = np.random.default_rng(seed)
    inp = keras.Input((24, 4))
    h = layers.Conv1D(6, 5, padding="same", activation=str(rng.choice(["relu", "elu", "tanh"])))(inp)
    for _ in range(int(rng.integers(2, 5))):
        kind, c = rng.integers(0, 7), h.shape[-1]
        if kind == 0:
            h = layers.ReLU()(layers.BatchNormalization()(layers.Conv1D(6, 3, padding="same")(h)))
        elif kind == 1:
            h = layers.Add()([h, layers.Conv1D(c, 3, padding="same", dilation_rate=2, activation="relu")(h)])
        elif kind == 2:
            h = layers.Subtract()([h, layers.Conv1D(c, 1, activation="sigmoid")(h)])
        elif kind == 3 and h.shape[1] >= 4:
            h = layers.MaxPooling1D(2)(h)
        elif kind == 4 and h.shape[1] >= 4:
            h = layers.AveragePooling1D(2)(h)
        elif kind == 5:
            h = layers.Multiply()([h, layers.Conv1D(c, 1, activation="sigmoid")(h)])
        else:
            h = layers.Concatenate()([layers.Cropping1D((1, 1))(h), layers.Conv1D(2, 3, activation="softplus")(h)])
    h = layers.Flatten()(h) if rng.random() < 0.5 else layers.GlobalMaxPooling1D()(h)
    h = layers.Dense(8, activation=str(rng.choice(["relu", "gelu", "swish"])))(h)
    h = layers.Dense(6, activation="relu")(h)
    return keras.Model(inp, layers.Dense(2, activation=str(rng.choice(["sigmoid", "softmax", "linear"])))(h))


@pytest.mark.parametrize("seed", [pytest.param(s, marks=pytest.mark.slow) for s in range(15)])  # 9-14 s each
def test_summation_to_delta_on_random_architectures(seed):
    rng = np.random.default_rng(1000 + seed)
    model = randomize(_random_architecture(seed), seed=seed)
    x, refs = one_hot(rng, (3, 24)), one_hot(rng, (3, 4, 24))
    for rule in RULES:
        att = Explainer(model, rule=rule, normalize=bool(seed % 2)).deeplift(x, refs, target=seed % 2)
        assert_summation(att)


@pytest.mark.parametrize("seed", [pytest.param(s, marks=pytest.mark.slow) for s in range(4)])  # 12-17 s each
def test_summation_to_delta_on_a_transformer_block(seed):
    rng = np.random.default_rng(2000 + seed)
    model = randomize(transformer_block(seed), seed=seed)
    x, refs = one_hot(rng, (3, 24)), one_hot(rng, (3, 4, 24))
    logits = keras.Model(model.inputs, model.layers[-1].output).predict(x, verbose=0)
    for rule in RULES:
        att = Explainer(model, rule=rule, normalize=bool(seed % 2)).deeplift(x, refs, target=seed % 2)
        assert_summation(att)
    assert logits.shape == (3, 2)


def test_product_rule_is_exact_for_any_bilinear_map():
    # Δ(A·B) = Ā·ΔB + ΔA·B̄ for matrix products too (attention's scores and weighted values).
    from keras import ops


    rng = np.random.default_rng(21)
    a, a0, b, b0 = (rng.normal(size=(3, 4, 5)).astype("float32") for _ in range(4))
    b, b0 = b.transpose(0, 2, 1), b0.transpose(0, 2, 1)
    ta, tda, tb, tdb = (ops.convert_to_tensor(v) for v in (a, a - a0, b, b - b0))
    got = ops.convert_to_numpy(rules.bilinear(ops.matmul, ta, tda, tb, tdb))
    np.testing.assert_allclose(got, a @ b - a0 @ b0, atol=1e-5)
