"""The DeepLIFT rules and layers, checked the way the method is stated (docs/method.md)."""

import re
import zlib

import keras
import numpy as np
import pytest
from keras import layers

import seqlift
from seqlift import SeqliftError, methods, rules
from seqlift.engine import Explainer

# Summation to delta must hold to float32 rounding: |Σ C − Δt| ≤ ATOL + RTOL·(|t(x)| + |t(ref)|).
ATOL, RTOL = 1e-5, 2e-5
RULES = list(methods.RULES)


def randomize(model, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        values = rng.normal(size=w.shape) * scale
        if "moving_variance" in w.path:
            values = np.abs(values) + 0.5
        w.assign(values.astype("float32"))
    return model


def one_hot(rng, shape):
    return np.eye(4, dtype="float32")[rng.integers(0, 4, shape)]


def assert_summation(attribution):
    scale = np.abs(attribution.prediction) + np.abs(attribution.reference_prediction)
    assert np.all(attribution.delta <= ATOL + RTOL * scale), attribution.delta.max()


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
])
def test_max_pool_rule_hand_worked(x, ref, expected):
    att = Explainer(_pool_model()).deeplift(np.array([x], "float32")[..., None], np.array([ref], "float32")[..., None])
    np.testing.assert_allclose(att.contributions[0, :, 0], expected, atol=1e-7)


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
    from seqlift import _backend

    grad, _ = _backend.input_gradient(lambda z: (model(z)[:, 2],), _backend.to_tensor(x))
    grad = _backend.to_numpy(grad)
    np.testing.assert_allclose(c, grad * x, atol=1e-5)


# --- summation to delta, every supported layer, every rule -----------------------------------
def _trunk(inp):
    return layers.Conv1D(6, 3, padding="same", activation="relu")(inp)


def _head(h):
    h = layers.Flatten()(h) if len(h.shape) == 3 else h
    return layers.Dense(1)(layers.Dense(5, activation="relu")(h))


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


# Cases whose RevealCancel path differs in kind (sign splits through weights, pooling, merges, products,
# softmax, normalization, attention): the default tier runs RevealCancel on these, the slow tier on all.
REVEAL_CANCEL_DEFAULT = {"Conv1D-causal", "Dense-on-sequence", "ReLU", "PReLU", "MaxPooling1D", "BatchNormalization",
                         "Add-residual", "Subtract", "Concatenate", "Multiply-gate", "Softmax-inside",
                         "LayerNormalization", "MultiHeadAttention-cross-gated", "Activation-sigmoid"}


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
    model = randomize(keras.Model(inp, _head(LAYER_CASES[case](_trunk(inp)))), seed=3)
    x, refs = one_hot(rng, (4, 16)), one_hot(rng, (4, 3, 16))
    att = Explainer(model, rule=rule).deeplift(x, refs)
    assert_summation(att)
    # The engine's forward pass is the model's.
    np.testing.assert_allclose(att.prediction, model.predict(x, verbose=0)[:, 0], rtol=1e-5, atol=1e-5)
    # Each reference's prediction matches the model on that reference.
    ref_pred = model.predict(refs.reshape(-1, 16, 4), verbose=0)[:, 0].reshape(4, 3).mean(1)
    np.testing.assert_allclose(att.reference_prediction, ref_pred, rtol=1e-4, atol=1e-4)


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


def test_softmax_feature_pushing_all_classes_equally_gets_zero():
    # A bias-like input that adds the same amount to every class logit cannot change the softmax.
    inp = keras.Input((2,))
    model = keras.Model(inp, layers.Dense(3, activation="softmax", use_bias=False)(inp))
    model.layers[1].set_weights([np.array([[1.0, 1.0, 1.0], [2.0, -1.0, 0.5]], "float32")])
    c = seqlift.deeplift(model, np.array([[1.0, 1.0]], "float32"), np.zeros((1, 2), "float32"), target=0)
    assert c[0, 0] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_normalization_preserves_predictions_on_one_hot_input(padding):
    rng = np.random.default_rng(4)
    inp = keras.Input((25, 4))
    h = layers.Conv1D(7, 5, padding=padding, dilation_rate=2, activation="relu")(inp)
    model = randomize(keras.Model(inp, layers.Dense(2)(layers.Flatten()(h))), scale=1.0)
    x = one_hot(rng, (8, 25))
    ex = Explainer(model, normalize=True)
    assert ex.normalized == [model.layers[1].name]
    kernel = keras.ops.convert_to_numpy(ex.graph.nodes[1].op.kernel)
    np.testing.assert_allclose(kernel.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(ex.predict(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_grouped_first_convolution_is_not_normalized_and_says_so():
    inp = keras.Input((12, 4))
    model = randomize(keras.Model(inp, layers.Dense(1)(layers.Flatten()(layers.Conv1D(4, 3, groups=2)(inp)))))
    with pytest.warns(UserWarning, match="grouped convolution"):
        ex = Explainer(model, normalize=True)
    assert ex.normalized == []


def test_normalization_makes_zero_reference_the_average_base():
    inp = keras.Input((12, 4))
    model = randomize(keras.Model(inp, layers.Dense(1)(layers.Flatten()(layers.Conv1D(3, 3)(inp)))))
    ex = Explainer(model, normalize=True)
    zero = ex.predict(np.zeros((1, 12, 4), "float32"))
    uniform = ex.predict(np.full((1, 12, 4), 0.25, "float32"))
    np.testing.assert_allclose(zero, uniform, rtol=1e-5, atol=1e-5)
    assert not np.allclose(Explainer(model).predict(np.zeros((1, 12, 4), "float32")), zero)


def test_hypothetical_projected_on_observed_base_sums_like_raw_contributions():
    rng = np.random.default_rng(6)
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, _head(_trunk(inp))))
    x, refs = one_hot(rng, (5, 16)), one_hot(rng, (5, 4, 16))
    att = Explainer(model, rule="genomics").deeplift(x, refs)
    projected = att.hypothetical * x
    np.testing.assert_allclose(projected.sum(-1), att.contributions.sum(-1), atol=1e-5)


class _ScaledDense(layers.Dense):
    """A Dense subclass that computes what Dense computes (a renamed class, as in a user's model)."""


def test_rule_table_is_keyed_by_layer_class_and_matches_subclasses():
    inp = keras.Input((8, 4))
    h = layers.Conv1D(3, 3, activation="relu")(inp)
    h = layers.Activation("tanh")(_ScaledDense(4)(layers.Flatten()(h)))  # standalone: ruled by the dense before it
    model = randomize(keras.Model(inp, layers.Dense(1, activation="relu")(h)))

    def rules_of(rule):
        nodes = Explainer(model, rule=rule).graph.nodes
        return [(node.source.__name__, node.rule) for node in nodes if isinstance(node.op, rules.Elementwise)]

    rc, rs = methods.REVEAL_CANCEL, methods.RESCALE
    assert rules_of(methods.GENOMICS) == [("Conv1D", rs), ("Activation", rc), ("Dense", rc)]
    assert rules_of({layers.Conv1D: rc}) == [("Conv1D", rc), ("Activation", rs), ("Dense", rs)]
    assert rules_of({_ScaledDense: rc, "*": rc}) == [("Conv1D", rc), ("Activation", rc), ("Dense", rc)]
    assert rules_of({_ScaledDense: rc}) == [("Conv1D", rs), ("Activation", rc), ("Dense", rs)]
    with pytest.raises(SeqliftError, match="rule table key 'Dense': give a Keras layer class"):
        Explainer(model, rule={"Dense": rc})
    with pytest.raises(SeqliftError, match="unknown rule 'reveal_cancel'; choose rescale, reveal-cancel, genomics"):
        Explainer(model, rule="reveal_cancel")


def test_same_inputs_same_scores_bit_for_bit_whatever_the_batch_size():
    rng = np.random.default_rng(7)
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, _head(_trunk(inp))))
    x, refs = one_hot(rng, (7, 16)), one_hot(rng, (7, 3, 16))
    first = Explainer(model).deeplift(x, refs, batch_size=3).contributions
    again = Explainer(model).deeplift(x, refs, batch_size=3).contributions
    assert np.array_equal(first, again)


def test_one_explainer_serves_different_reference_counts_and_batch_sizes():
    rng = np.random.default_rng(11)
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, _head(_trunk(inp))))
    ex = Explainer(model)
    x = one_hot(rng, (5, 16))
    for refs, batch in [(one_hot(rng, (5, 4, 16)), 2), (one_hot(rng, (1, 16)), 5), (one_hot(rng, (5, 2, 16)), 3)]:
        assert_summation(ex.deeplift(x, refs, batch_size=batch))


def test_shared_and_per_input_references_agree():
    rng = np.random.default_rng(8)
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, _head(_trunk(inp))))
    x, refs = one_hot(rng, (3, 16)), one_hot(rng, (2, 16))
    shared = seqlift.deeplift(model, x, refs)
    per_input = seqlift.deeplift(model, x, np.broadcast_to(refs, (3, 2, 16, 4)))
    np.testing.assert_allclose(shared, per_input, atol=1e-6)


def test_nested_sequential_model_is_inlined():
    rng = np.random.default_rng(9)
    inner = keras.Sequential([keras.Input((16, 6)), layers.Conv1D(4, 3, activation="relu"), layers.Flatten()])
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, layers.Dense(1)(inner(_trunk(inp)))))
    att = Explainer(model).deeplift(one_hot(rng, (2, 16)), one_hot(rng, (2, 2, 16)))
    assert_summation(att)


def test_model_round_trips_through_h5_and_keras_files(tmp_path):
    rng = np.random.default_rng(10)
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, _head(_trunk(inp))))
    x, refs = one_hot(rng, (2, 16)), one_hot(rng, (2, 16))
    expected = seqlift.deeplift(model, x, refs)
    for name in ["m.h5", "m.keras"]:
        model.save(tmp_path / name)
        np.testing.assert_allclose(seqlift.deeplift(str(tmp_path / name), x, refs), expected, atol=1e-6)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda h: layers.LSTM(3)(h), ["'lstm", "LSTM", "not supported"]),
        (lambda h: layers.MultiHeadAttention(2, 3)(h, h, use_causal_mask=True),
         ["'multi_head_attention", "MultiHeadAttention", "use_causal_mask", "unmasked"]),
        (lambda h: layers.Activation("log_softmax")(h), ["log_softmax", "not supported"]),
    ],
)
def test_unsupported_layer_is_an_error_naming_it(make, words):
    inp = keras.Input((16, 4))
    model = keras.Model(inp, _head(make(inp)))
    with pytest.raises(SeqliftError) as err:
        Explainer(model)
    for word in words:
        assert word in str(err.value)


def test_softmax_over_another_axis_is_an_error():
    inp = keras.Input((16, 4))
    model = keras.Model(inp, layers.Softmax(axis=1)(layers.Conv1D(3, 3)(inp)))
    with pytest.raises(SeqliftError, match="only a softmax over the last axis"):
        Explainer(model)
    last = keras.Model(inp, layers.Softmax(axis=-1)(layers.Conv1D(3, 3)(inp)))
    assert Explainer(last).graph.final_activation == "softmax"


def test_target_out_of_range_is_an_error():
    inp = keras.Input((16, 4))
    model = keras.Model(inp, _head(_trunk(inp)))
    with pytest.raises(SeqliftError, match="out of range"):
        Explainer(model).deeplift(np.zeros((1, 16, 4), "float32"), np.zeros((1, 16, 4), "float32"), target=3)


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


def test_out_of_memory_halves_the_batch_and_gives_the_same_scores(monkeypatch):
    from seqlift import _backend

    rng = np.random.default_rng(12)
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, _head(_trunk(inp))))
    x, refs = one_hot(rng, (6, 16)), one_hot(rng, (6, 2, 16))
    expected = Explainer(model).deeplift(x, refs, batch_size=6).contributions
    ex = Explainer(model)
    real = _backend.to_numpy
    calls = {"n": 0}

    def exhausted_at_six(value):
        calls["n"] += 1
        if value.shape[0] == 6:
            raise RuntimeError("RESOURCE_EXHAUSTED: out of memory allocating the step")
        return real(value)

    monkeypatch.setattr(_backend, "to_numpy", exhausted_at_six)
    with pytest.warns(UserWarning, match="retrying with 3 sequences"):
        got = ex.deeplift(x, refs, batch_size=6).contributions
    np.testing.assert_allclose(got, expected, atol=1e-6)
    monkeypatch.setattr(_backend, "to_numpy", lambda v: (_ for _ in ()).throw(ValueError("not memory")))
    with pytest.raises(ValueError, match="not memory"):
        ex.deeplift(x, refs, batch_size=6)


def _two_headed():
    inp = keras.Input((20, 4))
    h = layers.Conv1D(6, 5, padding="same", activation="relu")(inp)
    profile = layers.Flatten(name="profile")(layers.Conv1D(1, 3, padding="same")(h))
    counts = layers.Dense(1, name="counts")(layers.GlobalAveragePooling1D()(h))
    return randomize(keras.Model(inp, [profile, counts]), seed=13)


def test_multi_output_models_explain_the_chosen_head():
    rng = np.random.default_rng(13)
    model = _two_headed()
    x, refs = one_hot(rng, (4, 20)), one_hot(rng, (4, 3, 20))
    profile, counts = model.predict(x, verbose=0)
    by_name = Explainer(model, output="counts").deeplift(x, refs)
    assert_summation(by_name)
    np.testing.assert_allclose(by_name.prediction, counts[:, 0], rtol=1e-5, atol=1e-5)
    by_index = Explainer(model, output=0).deeplift(x, refs, target=7)
    assert_summation(by_index)
    np.testing.assert_allclose(by_index.prediction, profile[:, 7], rtol=1e-5, atol=1e-5)
    # the counts head's graph holds none of the profile head's layers
    assert "profile" not in [n.op.name for n in Explainer(model, output="counts").graph.nodes]


@pytest.mark.parametrize("output, message", [(None, "has 2 outputs (profile, counts)"),
                                             ("shape", "no output 'shape'"), (2, "output 2 is out of range")])
def test_choosing_a_multi_output_head_errors(output, message):
    with pytest.raises(SeqliftError, match=re.escape(message)):
        Explainer(_two_headed(), output=output)


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


@pytest.mark.parametrize("seed", [s if s < 4 else pytest.param(s, marks=pytest.mark.slow) for s in range(15)])
def test_summation_to_delta_on_random_architectures(seed):
    rng = np.random.default_rng(1000 + seed)
    model = randomize(_random_architecture(seed), seed=seed)
    x, refs = one_hot(rng, (3, 24)), one_hot(rng, (3, 4, 24))
    for rule in RULES:
        att = Explainer(model, rule=rule, normalize=bool(seed % 2)).deeplift(x, refs, target=seed % 2)
        assert_summation(att)


def _transformer_block(seed):
    """A conv stem, one post-norm transformer block (attention, feed-forward), a dense head."""
    rng = np.random.default_rng(seed)
    inp = keras.Input((24, 4))
    h = layers.Conv1D(8, 5, padding="same", activation="relu")(inp)
    if rng.random() < 0.5:
        h = layers.MaxPooling1D(2)(h)
    attention = layers.MultiHeadAttention(2, 4, dropout=0.1, use_gate=bool(seed % 2))(h, h)
    h = layers.LayerNormalization()(layers.Add()([h, layers.Dropout(0.1)(attention)]))
    feed_forward = layers.Dense(8)(layers.Dense(16, activation=str(rng.choice(["gelu", "relu", "swish"])))(h))
    h = layers.LayerNormalization()(layers.Add()([h, feed_forward]))
    h = layers.GlobalAveragePooling1D()(h) if rng.random() < 0.5 else layers.Flatten()(h)
    return keras.Model(inp, layers.Dense(2, activation=str(rng.choice(["sigmoid", "softmax", "linear"])))(h))


@pytest.mark.parametrize("seed", [0] + [pytest.param(s, marks=pytest.mark.slow) for s in range(1, 4)])
def test_summation_to_delta_on_a_transformer_block(seed):
    rng = np.random.default_rng(2000 + seed)
    model = randomize(_transformer_block(seed), seed=seed)
    x, refs = one_hot(rng, (3, 24)), one_hot(rng, (3, 4, 24))
    logits = keras.Model(model.inputs, model.layers[-1].output).predict(x, verbose=0)
    for rule in RULES:
        att = Explainer(model, rule=rule, normalize=bool(seed % 2)).deeplift(x, refs, target=seed % 2)
        assert_summation(att)
    assert logits.shape == (3, 2)


def test_product_rule_is_exact_for_any_bilinear_map():
    # Δ(A·B) = Ā·ΔB + ΔA·B̄ for matrix products too (attention's scores and weighted values).
    from keras import ops

    from seqlift import rules

    rng = np.random.default_rng(21)
    a, a0, b, b0 = (rng.normal(size=(3, 4, 5)).astype("float32") for _ in range(4))
    b, b0 = b.transpose(0, 2, 1), b0.transpose(0, 2, 1)
    ta, tda, tb, tdb = (ops.convert_to_tensor(v) for v in (a, a - a0, b, b - b0))
    got = ops.convert_to_numpy(rules.bilinear(ops.matmul, ta, tda, tb, tdb))
    np.testing.assert_allclose(got, a @ b - a0 @ b0, atol=1e-5)


def test_layer_norm_and_attention_forward_passes_are_the_models():
    rng = np.random.default_rng(22)
    model = randomize(_transformer_block(1), seed=1)
    x = one_hot(rng, (4, 24))
    logits = keras.Model(model.inputs, model.layers[-1].output).predict(x, verbose=0)
    np.testing.assert_allclose(Explainer(model).predict(x), logits, rtol=1e-5, atol=1e-5)


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
