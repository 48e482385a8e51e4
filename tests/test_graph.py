"""Lowering a Keras model (seqlift.graph): normalization, the rule table, heads, attention, unsupported layers."""

import re

import keras
import numpy as np
import pytest
from keras import layers

from seqlift import SeqliftError, methods, rules
from seqlift.engine import Explainer

from helpers import assert_summation, head, one_hot, randomize, transformer_block, trunk


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
    with pytest.raises(SeqliftError, match="rule table key 'Dense': give a layer class"):
        Explainer(model, rule={"Dense": rc})
    with pytest.raises(SeqliftError, match="unknown rule 'reveal_cancel'; choose rescale, reveal-cancel, genomics"):
        Explainer(model, rule="reveal_cancel")


def test_nested_sequential_model_is_inlined():
    rng = np.random.default_rng(9)
    inner = keras.Sequential([keras.Input((16, 6)), layers.Conv1D(4, 3, activation="relu"), layers.Flatten()])
    inp = keras.Input((16, 4))
    model = randomize(keras.Model(inp, layers.Dense(1)(inner(trunk(inp)))))
    att = Explainer(model).deeplift(one_hot(rng, (2, 16)), one_hot(rng, (2, 2, 16)))
    assert_summation(att)


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
    model = keras.Model(inp, head(make(inp)))
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


def test_layer_norm_and_attention_forward_passes_are_the_models():
    rng = np.random.default_rng(22)
    model = randomize(transformer_block(1), seed=1)
    x = one_hot(rng, (4, 24))
    logits = keras.Model(model.inputs, model.layers[-1].output).predict(x, verbose=0)
    np.testing.assert_allclose(Explainer(model).predict(x), logits, rtol=1e-5, atol=1e-5)
