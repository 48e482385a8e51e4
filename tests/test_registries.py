"""What a newcomer adds by touching one module: an output format (destinations), an attribution method (methods) and
a layer's DeepLIFT rule (rules), each registered here from outside the package and used end to end."""

import numpy as np
import pytest

from seqlift import SeqliftError, pipeline
from seqlift.destinations import EXTRA_OUTPUTS, ExtraOutput, ScoreOutputs, register_output
from seqlift.scorefile import read_scores


class ContribNpy(ExtraOutput):
    """A new format: the projected contributions ``(N, T, L, 4)`` as one ``.npy``, streamed chunk by chunk."""

    keyword = "contrib_npy"
    help = "Also write the contributions as one .npy."

    def stream(self, outputs, value, plan):
        return _NpyStream(outputs.file(value, self.option, None))


class _NpyStream:
    def __init__(self, path):
        self.path, self.parts = path, []

    def write(self, names, one_hot, scores):
        self.parts.append(scores.contributions)

    def close(self, n):
        with open(self.path, "wb") as handle:
            np.save(handle, np.concatenate(self.parts))

    def discard(self):
        self.parts = []


@pytest.fixture
def contrib_npy():
    register_output(ContribNpy())
    yield
    del EXTRA_OUTPUTS["contrib_npy"]


def test_a_registered_output_format_is_an_option_checked_and_written(files, tmp_path, contrib_npy):
    out, npy = tmp_path / "s.h5", tmp_path / "c.npy"
    assert "contrib_npy" in ScoreOutputs.keywords()
    request = pipeline.build_request(str(files / "model.h5"), str(files / "in.fa"), out=out, contrib_npy=str(npy),
                                     n_refs=2)
    result = pipeline.run(pipeline.prepare(request, lambda n: [0, 1]))
    scores = read_scores(result.out)
    written = np.load(npy)
    assert written.shape == (9, 2, 40, 4)
    assert np.array_equal(written[:, 0], scores["contrib"])  # the file's first task, as the score file holds it
    # a file already there that the format cannot tell as its own is refused, before any work
    npy.write_text("mine")
    with pytest.raises(SeqliftError, match="--contrib-npy .*c.npy"):
        pipeline.prepare(pipeline.build_request(str(files / "model.h5"), str(files / "in.fa"), out=tmp_path / "t.h5",
                                                contrib_npy=str(npy)), lambda n: [0])
    assert npy.read_text() == "mine"


def test_registering_an_output_keyword_again_replaces_it_and_bad_keywords_are_refused(contrib_npy):
    again = register_output(ContribNpy())
    assert EXTRA_OUTPUTS["contrib_npy"] is again
    for keyword in ("out", "chrom_sizes", "not-an-identifier"):
        bad = ContribNpy()
        bad.keyword = keyword
        with pytest.raises(ValueError, match="keyword"):
            register_output(bad)


# ----------------------------------------------------------------------------- an attribution method
def midpoint_gradient_step(explainer, targets):
    """A method written outside seqlift: the gradient at the midpoint between each reference and the input,
    times ``x − ref`` (integrated gradients with one step)."""
    from keras import ops

    from seqlift import backend
    from seqlift.engine import pair_differences, summarize

    (target,) = targets

    def step(x, ref):
        n_refs, shape = ref.shape[1], tuple(x.shape[1:])
        flat_ref = ops.reshape(ref, (-1,) + shape)
        d = pair_differences(x, ref)
        grad, _ = backend.input_gradient(lambda z: (explainer.target_on(z, target),), flat_ref + 0.5 * d)
        t_x = explainer.target_on(x, target)
        dt = ops.reshape(ops.expand_dims(t_x, 1) - ops.reshape(explainer.target_on(flat_ref, target), (-1, n_refs)),
                         (-1,))
        return summarize(grad, d, ref, dt, t_x)

    return explainer.compile(step)


@pytest.fixture
def midpoint_method():
    from seqlift.methods import METHODS, Method, register_method

    method = register_method(Method("midpoint-gradient", "gradient at the midpoint × (x − ref)",
                                    midpoint_gradient_step, uses_references=True))
    yield method
    del METHODS["midpoint-gradient"]


def test_a_registered_method_scores_through_the_pipeline(files, tmp_path, midpoint_method):
    from seqlift.methods import attribute, register_method

    request = pipeline.build_request(str(files / "model.h5"), str(files / "in.fa"), out=tmp_path / "m.h5",
                                     method="midpoint-gradient", n_refs=3, seed=2)
    plan = pipeline.prepare(request, lambda n: [0])
    written = read_scores(pipeline.run(plan).out)
    assert written["attrs"]["method"] == "midpoint-gradient"
    # the same as integrated gradients with one step, against the same references
    refs = plan.references.make(written["one_hot"], 0, list(written["names"]))
    one_step = attribute(plan.explainer, "integrated-gradients", written["one_hot"], refs, 0, ig_steps=1)
    np.testing.assert_allclose(written["hypothetical"], one_step.hypothetical, rtol=1e-6, atol=1e-7)
    with pytest.raises(SeqliftError, match="is not a seqlift.methods.Method"):
        register_method("midpoint-gradient")


# ----------------------------------------------------------------------------- a layer's DeepLIFT rule
def square_rule():
    """A rule written outside seqlift: y = x², whose difference from the reference is exactly
    (x + x0)·Δx, so its multiplier is x + x0 = 2x − Δx."""
    from keras import ops

    from seqlift import rules

    class Square(rules.Op):
        linear = False

        def forward(self, xs):
            return ops.square(xs[0])

        def delta(self, xs, ds, ctx):
            x, d = rules.by_pair(xs[0], ds[0], ctx.n_refs)
            dv = ops.stop_gradient(d)
            m = 2.0 * x - dv
            return rules.flat_pairs(rules.with_multiplier(m * dv, m, d))

    return Square


def test_a_registered_layer_with_a_rule_of_its_own_sums_to_delta(tmp_path):
    import keras
    from keras import layers, ops

    import seqlift
    from seqlift import rules
    from seqlift.frontends.keras import lowering

    Square = square_rule()
    # the hand-worked example: x = 3, x0 = 1: Δy = 9 − 1 = 8 = m·Δx with m = 3 + 1 = 4
    ctx = rules.Context(n_refs=1)
    dy = Square("sq", "Square").delta([ops.convert_to_tensor([[3.0]])], [ops.convert_to_tensor([[2.0]])], ctx)
    assert float(ops.convert_to_numpy(dy)[0, 0]) == 8.0

    class SquareLayer(layers.Layer):
        def call(self, x):
            return ops.square(x)

    seqlift.register_layer(SquareLayer, lambda lower, layer, inputs: lower.graph.add(Square(layer.name, "SquareLayer"),
                                                                                      inputs))
    try:
        inp = keras.Input((20, 4))
        h = SquareLayer()(layers.Conv1D(3, 5, activation="relu")(inp))
        model = keras.Model(inp, layers.Dense(1)(layers.Flatten()(h)))
        rng = np.random.default_rng(0)
        for w in model.weights:
            w.assign(rng.normal(size=w.shape).astype("float32") * 0.5)
        x = np.eye(4, dtype="float32")[rng.integers(0, 4, (3, 20))]
        ref = np.eye(4, dtype="float32")[rng.integers(0, 4, (3, 2, 20))]
        attribution = seqlift.Explainer(model, normalize=False).deeplift(x, ref)
        from helpers import assert_summation

        assert_summation(attribution)
        assert np.abs(attribution.delta).max() < 1e-4
        expected = model.predict(x, verbose=0)[:, 0] - model.predict(ref.reshape(-1, 20, 4), verbose=0).reshape(3, 2).mean(1)
        np.testing.assert_allclose(attribution.contributions.reshape(3, -1).sum(1), expected, rtol=1e-4, atol=1e-4)
    finally:
        lowering.CONVERTERS.pop(SquareLayer, None)
