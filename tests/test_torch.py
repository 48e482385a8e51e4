"""The PyTorch front end (seqlift.frontends.torch): bpnet-lite, gReLU-style and Enformer modules with random
weights, against tangermeme and the modules' own outputs; the ways to give a module; its errors."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import seqlift  # noqa: E402
from seqlift import SeqliftError, methods  # noqa: E402
from seqlift.cli.main import cli  # noqa: E402

import tangermeme_toys as toys  # noqa: E402
from helpers import assert_summation  # noqa: E402

RTOL = 1e-5  # scores equal another tool's to this fraction of their largest magnitude


def one_hot_ncl(rng, n, length, refs=None):
    """Random one-hot DNA in torch's layout: ``(n, 4, L)``, or ``(n, refs, 4, L)``."""
    shape = (n, length) if refs is None else (n, refs, length)
    return np.ascontiguousarray(np.moveaxis(np.eye(4, dtype="float32")[rng.integers(0, 4, shape)], -1, -2))


def bpnet(n_control_tracks=0, seed=0):
    bpnet_module = pytest.importorskip("bpnetlite.bpnet")
    torch.manual_seed(seed)
    return bpnet_module.BPNet(n_filters=16, n_layers=4, n_control_tracks=n_control_tracks, trimming=30,
                              verbose=False).eval()


def assert_close(got, expected, rtol=RTOL):
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() <= rtol * scale, np.abs(got - expected).max() / scale


@pytest.mark.parametrize("n_control_tracks", [pytest.param(0, marks=pytest.mark.slow), 2])
def test_bpnet_counts_equal_tangermeme_deep_lift_shap(n_control_tracks):
    """The same module, inputs and references: hypothetical scores equal tangermeme's to 1e-5 relative."""
    bpnet_module = pytest.importorskip("bpnetlite.bpnet")
    tangermeme = pytest.importorskip("tangermeme.deep_lift_shap")
    rng = np.random.default_rng(n_control_tracks)
    x, refs = one_hot_ncl(rng, 3, 150), one_hot_ncl(rng, 3, 150, refs=5)
    model = bpnet(n_control_tracks)
    control = rng.random((3, 2, 150)).astype("float32") * 3 if n_control_tracks else None
    args = (torch.tensor(control),) if n_control_tracks else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = tangermeme.deep_lift_shap(bpnet_module.CountWrapper(model), torch.tensor(x), args=args,
                                             references=torch.tensor(refs), n_shuffles=5, hypothetical=True,
                                             device="cpu").numpy()
    extra = {"X_ctl": control} if n_control_tracks else None
    got = seqlift.Explainer(bpnet_module.CountWrapper(model)).deeplift(x, refs, extra=extra)
    assert got.hypothetical.shape == x.shape  # the module's own layout, (N, 4, L)
    assert_close(got.hypothetical, expected)
    assert_summation(got)
    counts = bpnet_module.CountWrapper(model)(torch.tensor(x), *(args or ())).detach().numpy().ravel()
    np.testing.assert_allclose(got.prediction, counts, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_bpnet_profile_target_is_profile_wrapper_and_sums_to_delta():
    bpnet_module = pytest.importorskip("bpnetlite.bpnet")
    rng = np.random.default_rng(3)
    x, refs = one_hot_ncl(rng, 3, 150), one_hot_ncl(rng, 3, 150, refs=4)
    control = rng.random((3, 2, 150)).astype("float32")
    model = bpnet(2)
    got = seqlift.deeplift(model, x, refs, target="profile", output=0, extra={"X_ctl": control})
    attribution = seqlift.Explainer(model, output=0).deeplift(x, refs, target="profile", extra={"X_ctl": control})
    np.testing.assert_array_equal(got, attribution.contributions)
    expected = bpnet_module.ProfileWrapper(model)(torch.tensor(x), torch.tensor(control)).detach().numpy().ravel()
    np.testing.assert_allclose(attribution.prediction, expected, rtol=1e-5, atol=1e-6)
    assert_summation(attribution)


class FixedWeightsProfile(torch.nn.Module):
    """chrombpnet's weightedsum_meannormed_logits on a BPNet's profile logits, in torch: the softmax of the
    mean-normalized logits detached (its tf.stop_gradient), times those logits, summed."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, X):
        logits = self.model(X)[0].reshape(len(X), -1)
        logits = logits - logits.mean(dim=-1, keepdim=True)
        return (torch.softmax(logits, dim=-1).detach() * logits).sum(dim=-1, keepdim=True)


def test_profile_fixed_weights_equals_tangermeme_on_chrombpnets_weighted_logits():
    """--target profile-fixed-weights is chrombpnet's convention: tangermeme's deep_lift_shap on its formula, to 1e-5;
    its prediction is bpnet-lite's ProfileWrapper's, its scores sum to Σ w(x)·Δℓ̄ (not to the profile's change)."""
    bpnet_module = pytest.importorskip("bpnetlite.bpnet")
    tangermeme = pytest.importorskip("tangermeme.deep_lift_shap")
    rng = np.random.default_rng(13)
    x, refs = one_hot_ncl(rng, 3, 150), one_hot_ncl(rng, 3, 150, refs=4)
    model = bpnet(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tangermeme: its deltas are not Σ C (the weights differ by sequence)
        expected = tangermeme.deep_lift_shap(FixedWeightsProfile(model), torch.tensor(x), references=torch.tensor(refs),
                                             hypothetical=True, device="cpu").numpy()
    got = seqlift.Explainer(model, output="profile").deeplift(x, refs, target="profile-fixed-weights")
    assert_close(got.hypothetical, expected)
    assert_summation(got)
    with torch.no_grad():
        profile = bpnet_module.ProfileWrapper(model)
        t_x = profile(torch.tensor(x)).numpy().ravel()
        t_ref = profile(torch.tensor(refs.reshape(-1, 4, 150))).numpy().reshape(3, 4).mean(1)
    np.testing.assert_allclose(got.prediction, t_x, rtol=1e-5, atol=1e-6)
    assert np.abs(got.reference_prediction - t_ref).max() > 1e-4  # Σ w(x)·ℓ̄(ref), not the references' profile


@pytest.mark.slow
def test_chrombpnet_bias_and_accessibility_counts_sum_to_delta():
    chrombpnet = pytest.importorskip("bpnetlite.chrombpnet")
    rng = np.random.default_rng(4)
    torch.manual_seed(4)
    bias = bpnet(0, seed=1)
    accessibility = bpnet(0, seed=2)
    model = chrombpnet.ChromBPNet(bias, accessibility).eval()
    x, refs = one_hot_ncl(rng, 2, 150), one_hot_ncl(rng, 2, 150, refs=4)
    for output, target in ((1, 0), (0, "profile")):
        attribution = seqlift.Explainer(model, output=output).deeplift(x, refs, target=target)
        assert_summation(attribution)
    counts = model(torch.tensor(x))[1].detach().numpy().ravel()
    got = seqlift.Explainer(model, output=1).deeplift(x, refs)
    np.testing.assert_allclose(got.prediction, counts, rtol=1e-5, atol=1e-6)


class DilatedConvModel(torch.nn.Module):
    """gReLU-style: a stem, dilated residual blocks (batch norm, GELU, dropout), pooling, a dense head."""

    def __init__(self, channels=12, blocks=3, tasks=2):
        super().__init__()
        self.stem = torch.nn.Conv1d(4, channels, 9, padding=4)
        self.blocks = torch.nn.ModuleList([torch.nn.Sequential(
            torch.nn.BatchNorm1d(channels), torch.nn.GELU(), torch.nn.Conv1d(channels, channels, 3, padding=2 ** i,
                                                                             dilation=2 ** i),
            torch.nn.Dropout(0.1)) for i in range(blocks)])
        self.pool = torch.nn.MaxPool1d(2)
        self.avg = torch.nn.AvgPool1d(2)
        self.norm = torch.nn.LayerNorm(channels)
        self.head = torch.nn.Sequential(torch.nn.Linear(channels, 8), torch.nn.ELU(), torch.nn.Linear(8, tasks))

    def forward(self, x):
        h = torch.relu(self.stem(x))
        for block in self.blocks:
            h = h + block(h)
        h = self.avg(self.pool(h))
        h = self.norm(h.mean(dim=-1))
        return torch.nn.functional.softplus(self.head(h))


def _randomize_batch_norm(model, rng):
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.copy_(torch.tensor(rng.normal(size=module.num_features) * 0.3))
                module.running_var.copy_(torch.tensor(rng.random(module.num_features) + 0.5))
    return model


@pytest.mark.slow
@pytest.mark.parametrize("rule", [methods.RESCALE, methods.REVEAL_CANCEL, methods.GENOMICS])
def test_dilated_conv_model_sums_to_delta_with_every_rule(rule):
    rng = np.random.default_rng(5)
    torch.manual_seed(5)
    model = _randomize_batch_norm(DilatedConvModel(), rng).eval()
    x, refs = one_hot_ncl(rng, 3, 64), one_hot_ncl(rng, 3, 64, refs=4)
    explainer = seqlift.Explainer(model, rule=rule)
    for task in (0, 1):
        attribution = explainer.deeplift(x, refs, target=task)
        assert_summation(attribution)
    expected = model(torch.tensor(x)).detach().numpy()[:, 1]
    np.testing.assert_allclose(attribution.prediction, expected, rtol=1e-5, atol=1e-6)


def test_genomics_rule_applies_reveal_cancel_after_linear_layers_only():
    torch.manual_seed(0)
    explainer = seqlift.Explainer(DilatedConvModel().eval(), rule=methods.GENOMICS, input_length=64)
    rules_of = {node.op.fn_name: node.rule for node in explainer.graph.nodes if hasattr(node.op, "fn_name")}
    assert rules_of["elu"] == methods.REVEAL_CANCEL
    assert rules_of["relu"] == rules_of["gelu"] == methods.RESCALE


@pytest.mark.slow
def test_small_enformer_sums_to_delta():
    enformer = pytest.importorskip("enformer_pytorch")
    torch.manual_seed(0)
    model = enformer.Enformer.from_hparams(dim=48, depth=1, heads=2, output_heads={"human": 3}, target_length=4,
                                           attn_dim_key=8, num_downsamples=3, dim_divisible_by=8, dropout_rate=0.0,
                                           attn_dropout=0.0, pos_dropout=0.0).eval()
    rng = np.random.default_rng(6)
    # Enformer reads (N, L, 4): the layout is found from the inputs' shape
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (2, 64))]
    refs = np.eye(4, dtype="float32")[rng.integers(0, 4, (2, 3, 64))]
    attribution = seqlift.Explainer(model, output="human").deeplift(x, refs, target="sum")
    scale = np.abs(attribution.prediction) + np.abs(attribution.reference_prediction)
    assert np.all(attribution.delta <= 1e-4 * scale)
    expected = model(torch.tensor(x))["human"].sum(dim=(1, 2)).detach().numpy()
    np.testing.assert_allclose(attribution.prediction, expected, rtol=1e-5)
    reference = model(torch.tensor(refs.reshape(-1, 64, 4)))["human"].sum(dim=(1, 2)).detach().numpy()
    np.testing.assert_allclose(attribution.reference_prediction, reference.reshape(2, 3).mean(1), rtol=1e-5)


class Flattened(torch.nn.Module):
    """``model``'s output ``output`` (all of it for None) as ``(N, -1)``: the only output shape tangermeme explains."""

    def __init__(self, model, output):
        super().__init__()
        self.model, self.output = model, output

    def forward(self, X):
        y = self.model(X)
        y = y if self.output is None else y[self.output]
        return y.reshape(len(y), -1)


# Where tangermeme's rules are seqlift's but for float32 secants: its Rescale divides Δy by Δx as computed, seqlift
# guards small differences (rules._secant). Attention (Transformer) has rules tangermeme has not: summation only.
SECANTS = {"MultiActivation": 1e-3, "CustomSqrt": 1e-3}


# The default tier keeps the ResidualConv and the two whose pooling rule changed; the rest (1-2 s each, the
# Transformer 12 s) run in the slow tier.
DEFAULT_TOYS = ("ResidualConv", "ConvPoolDense", "SmallDeepSEA")


@pytest.mark.parametrize("name", [n if n in DEFAULT_TOYS else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(toys.TOYS)])
def test_every_tangermeme_toy_model_scores_sums_to_delta_and_equals_deep_lift_shap(name):
    """The modules of tangermeme's tests/toy_models.py (rebuilt in tests/tangermeme_toys.py: its package does not
    ship them): each is lowered, sums to delta, and equals tangermeme's deep_lift_shap where their rules agree."""
    tangermeme = pytest.importorskip("tangermeme.deep_lift_shap")
    from tangermeme._deep_lift_utils import _nonlinear

    build, output, target = toys.TOYS[name]
    torch.manual_seed(0)
    model = build().eval()
    rng = np.random.default_rng(len(name))
    x, refs = one_hot_ncl(rng, 2, toys.LENGTH), one_hot_ncl(rng, 2, toys.LENGTH, refs=3)
    attribution = seqlift.Explainer(model, output=output).deeplift(x, refs, target=target)
    scale = np.maximum(1.0, np.abs(attribution.prediction) + np.abs(attribution.reference_prediction))
    assert np.all(attribution.delta <= 1e-4 * scale)
    with torch.no_grad():
        expected = Flattened(model, output)(torch.tensor(x))[:, target].numpy()
    np.testing.assert_allclose(attribution.prediction, expected, rtol=1e-5, atol=1e-5)
    if name == "Transformer":
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = tangermeme.deep_lift_shap(Flattened(model, output), torch.tensor(x), references=torch.tensor(refs),
                                           target=target, hypothetical=True, device="cpu",
                                           additional_nonlinear_ops={toys.CustomSqrtModule: _nonlinear}).numpy()
    assert_close(attribution.hypothetical, theirs, SECANTS.get(name, RTOL))


class Cumulative(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 3, 3)
        self.rconvs = torch.nn.ModuleList([torch.nn.Identity(), CumSum()])

    def forward(self, x):
        return self.rconvs[1](self.conv(x)).sum(dim=(1, 2))


class CumSum(torch.nn.Module):
    def forward(self, x):
        return torch.cumsum(x, dim=-1)


def test_an_operation_without_a_rule_is_named_with_its_module_path_before_any_work():
    with pytest.raises(SeqliftError, match=r"module 'rconvs\.1' \(CumSum\): operation aten\.cumsum\.default has no "
                                           "DeepLIFT rule"):
        seqlift.Explainer(Cumulative().eval(), input_length=20)


def test_each_aten_operator_is_one_row_that_says_how_it_keeps_channels_last():
    from seqlift.frontends.torch import lowering

    assert all(isinstance(row, lowering.Row) for row in lowering.ATEN.values())
    kept = {str(op) for op, row in lowering.ATEN.items() if row.channels_last is not None}
    assert {"aten.convolution.default", "aten._native_batch_norm_legit_no_training.default", "aten.slice.Tensor",
            "aten.relu.default", "aten.add.Tensor", "aten.mean.dim", "aten.cat.default"} <= kept
    assert not kept & {"aten.view.default", "aten.permute.default", "aten._softmax.default"}  # the module's layout


def test_several_outputs_are_named_as_forward_returns_them_or_as_the_module_says():
    """bpnet-lite's BPNet returns (y_profile, y_counts): its outputs are 'profile' and 'counts'; a module's
    output_names attribute names them; a return that is not a tuple of variables leaves the indices."""
    with pytest.raises(SeqliftError, match=r"BPNet has 2 outputs \(profile, counts\); choose one with output="):
        seqlift.Explainer(bpnet(), input_length=100)
    assert seqlift.Explainer(bpnet(), input_length=100, output="counts").graph.output_name == "counts"
    assert seqlift.Explainer(bpnet(), input_length=100, output=0).graph.output_name == "profile"
    with pytest.raises(SeqliftError, match="output 2 is out of range"):
        seqlift.Explainer(bpnet(), input_length=100, output=2)
    named = bpnet()
    named.output_names = ("shape", "total")
    assert seqlift.Explainer(named, input_length=100, output="total").graph.output_name == "total"
    named.output_names = ("shape",)
    with pytest.raises(SeqliftError, match=r"BPNet.output_names is \('shape',\): it must be 2 different names"):
        seqlift.Explainer(named, input_length=100, output=1)
    with pytest.raises(SeqliftError, match=r"ConvDense has 2 outputs \(0, 1\)"):
        seqlift.Explainer(toys.ConvDense().eval(), input_length=toys.LENGTH)


def test_deeplift_returns_the_projected_and_hypothetical_scores_that_score_writes():
    rng = np.random.default_rng(14)
    x, refs = one_hot_ncl(rng, 2, 100), one_hot_ncl(rng, 2, 100, refs=3)
    model = bpnet(0)
    raw, projected, hypothetical = seqlift.deeplift(model, x, refs, output="counts",
                                                    scores=("contributions", "projected", "hypothetical"))
    scores = seqlift.score(model, x, output="counts", reference=refs, normalize=False)
    np.testing.assert_allclose(projected, scores.contributions[:, 0], atol=1e-7)
    np.testing.assert_allclose(hypothetical, scores.hypothetical[:, 0], atol=1e-7)
    np.testing.assert_allclose(projected.sum(1), raw.sum(1), atol=1e-6)  # per position, the same total
    np.testing.assert_array_equal(seqlift.deeplift(model, x, refs, output="counts"), raw)
    with pytest.raises(SeqliftError, match="scores='projection': choose contributions, projected, hypothetical"):
        seqlift.deeplift(model, x, refs, output="counts", scores="projection")


def test_a_required_forward_input_must_be_given():
    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(4, 2, 3)

        def forward(self, x, bias_track):
            return (self.conv(x) + bias_track[:, :, 1:-1]).sum(dim=(1, 2))

    with pytest.raises(SeqliftError, match=r"TwoInputs.forward needs bias_track: give its values with --extra "
                                           r"bias_track=FILE.npy"):
        seqlift.Explainer(TwoInputs().eval(), input_length=20)
    rng = np.random.default_rng(0)
    x, refs = one_hot_ncl(rng, 2, 20), one_hot_ncl(rng, 2, 20, refs=3)
    track = rng.random((2, 2, 20)).astype("float32")
    assert_summation(seqlift.Explainer(TwoInputs().eval()).deeplift(x, refs, extra={"bias_track": track}))


def built(source):
    """The module ``make()`` returns in Python ``source`` (a FILE.py of the CLI tests, for the Python API)."""
    namespace = {}
    exec(source, namespace)
    return namespace["make"]().eval()


def test_the_python_api_lowers_a_module_once_and_again_once_its_weights_change(monkeypatch):
    """A notebook calls seqlift.deeplift again and again: one capture and compiled step per module and shape,
    until the weights are edited (in place, through .data too), when the module is lowered again."""
    import copy
    import pickle

    import seqlift.frontends.torch as front_end

    lowered = []
    lower = front_end.lower
    monkeypatch.setattr(front_end, "lower", lambda *a, **k: lowered.append(k["input_shape"]) or lower(*a, **k))
    torch.manual_seed(1)
    model = toys.ConvAvgDense().eval()  # a convolution, ReLU, mean over positions, dense: scores at any length
    rng = np.random.default_rng(1)
    x, refs = one_hot_ncl(rng, 2, 30), one_hot_ncl(rng, 2, 30, refs=3)
    first = seqlift.deeplift(model, x, refs)
    np.testing.assert_array_equal(seqlift.deeplift(model, x, refs), first)
    assert lowered == [(4, 30)]
    seqlift.deeplift(model, x[..., :20], refs[..., :20])  # another length: its own capture
    assert lowered == [(4, 30), (4, 20)]
    with torch.no_grad():
        model.dense.weight.mul_(-2)
    edited = seqlift.deeplift(model, x, refs)
    assert len(lowered) == 3 and np.abs(edited - first).max() > 1e-3
    model.conv.bias.data.add_(0.5)  # .data: in place, and unseen by the tensor's version counter
    edited = seqlift.deeplift(model, x, refs)
    assert len(lowered) == 4
    np.testing.assert_allclose(edited, seqlift.Explainer(model).deeplift(x, refs).contributions, atol=1e-6)
    # the cache does not travel with a copy or a pickle of the module
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert len(clone._seqlift_explainers) == 0


# ------------------------------------------------------------------------------------------ the ways to give one
BUILD = """
import torch
from bpnetlite.bpnet import BPNet


def make_model():
    torch.manual_seed(0)
    return BPNet(n_filters=8, n_layers=2, n_control_tracks={ctl}, trimming=10, verbose=False)


def not_a_model():
    return 3
"""


def _fasta(path, rng, n=5, length=60):
    with open(path, "w") as handle:
        for i in range(n):
            handle.write(f">s{i}\n{''.join(rng.choice(list('ACGT'), length))}\n")
    return str(path)


def _score_file(path):
    import h5py

    with h5py.File(path) as f:
        return {key: f[key][()] for key in ("hypothetical", "prediction", "delta", "one_hot")}


def test_cli_scores_a_function_returning_a_module_with_a_state_dict(tmp_path):
    from click.testing import CliRunner

    pytest.importorskip("bpnetlite")
    rng = np.random.default_rng(7)
    build = tmp_path / "build.py"
    build.write_text(BUILD.format(ctl=2))
    fasta = _fasta(tmp_path / "seqs.fa", rng)
    namespace = {}
    exec(BUILD.format(ctl=2), namespace)  # the architecture, with weights of its own (not the function's seed)
    module = namespace["make_model"]()
    torch.manual_seed(11)
    for parameter in module.parameters():
        torch.nn.init.normal_(parameter, std=0.2)
    torch.save(module.state_dict(), tmp_path / "state.pt")
    control = rng.random((5, 2, 60)).astype("float32")
    np.save(tmp_path / "ctl.npy", control)
    out = tmp_path / "scores.h5"
    result = CliRunner().invoke(cli, ["score", f"{build}:make_model", fasta, "--weights", str(tmp_path / "state.pt"),
                                      "--output", "1", "--n-refs", "3", "--extra", f"X_ctl={tmp_path / 'ctl.npy'}",
                                      "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    scores = _score_file(out)
    assert scores["hypothetical"].shape[-2:] == (60, 4)  # score files stay (..., L, 4)
    x = torch.tensor(np.moveaxis(scores["one_hot"], -1, -2).copy())
    expected = module.eval()(x, torch.tensor(control))[1].detach().numpy().reshape(scores["prediction"].shape)
    np.testing.assert_allclose(scores["prediction"], expected, rtol=1e-5, atol=1e-6)
    assert scores["delta"].max() < 1e-5
    import h5py

    with h5py.File(out) as f:
        assert f.attrs["output"] == "counts"  # --output 1 of forward's (y_profile, y_counts)


def test_cli_refuses_a_pickled_module_unless_allowed_and_names_the_option(tmp_path):
    from click.testing import CliRunner

    pytest.importorskip("bpnetlite")
    rng = np.random.default_rng(8)
    fasta = _fasta(tmp_path / "seqs.fa", rng, length=100)
    torch.save(bpnet(0), tmp_path / "whole.pt")
    runner = CliRunner()
    args = ["score", str(tmp_path / "whole.pt"), fasta, "--output", "0", "--target", "profile", "--n-refs", "2",
            "--out", str(tmp_path / "out.h5"), "--quiet"]
    refused = runner.invoke(cli, args)
    assert refused.exit_code != 0
    assert "holds a whole pickled model" in refused.output and "--allow-pickle" in refused.output
    assert not (tmp_path / "out.h5").exists()
    allowed = runner.invoke(cli, args + ["--allow-pickle"])
    assert allowed.exit_code == 0, allowed.output
    torch.save(bpnet(0).state_dict(), tmp_path / "state.pt")
    weights_only = runner.invoke(cli, args[:1] + [str(tmp_path / "state.pt")] + args[2:])
    assert "holds weights only" in weights_only.output and "FILE.py:FUNCTION" in weights_only.output


def test_cli_function_returning_neither_framework_names_both(tmp_path):
    from click.testing import CliRunner

    build = tmp_path / "build.py"
    build.write_text(BUILD.format(ctl=0))
    fasta = _fasta(tmp_path / "seqs.fa", np.random.default_rng(0))
    result = CliRunner().invoke(cli, ["score", f"{build}:not_a_model", fasta, "--out", str(tmp_path / "o.h5")])
    assert result.exit_code != 0
    assert "returned int, not a model (a keras.Model or torch.nn.Module)" in result.output


@pytest.mark.slow
def test_safetensors_weights_and_wrong_weights(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    model = bpnet(0, seed=3)
    safetensors.save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    rng = np.random.default_rng(9)
    x, refs = one_hot_ncl(rng, 2, 100), one_hot_ncl(rng, 2, 100, refs=2)
    fresh = bpnet(0, seed=4)
    loaded = seqlift.deeplift(fresh, x, refs, output=1, weights=str(tmp_path / "w.safetensors"))
    np.testing.assert_allclose(loaded, seqlift.deeplift(model, x, refs, output=1), rtol=1e-6, atol=1e-7)
    torch.save(bpnet(2).state_dict(), tmp_path / "other.pt")
    with pytest.raises(SeqliftError, match=r"--weights .*other.pt: does not fit the module"):
        seqlift.Explainer(bpnet(0), weights=str(tmp_path / "other.pt"), output=1, input_length=100)


@pytest.mark.slow
def test_score_takes_and_returns_the_modules_layout_and_rc_average_works():
    rng = np.random.default_rng(10)
    model = bpnet(0)
    x = one_hot_ncl(rng, 3, 100)
    scores = seqlift.score(model, x, output=1, n_refs=3, rc_average=True)
    assert scores.contributions.shape == (3, 1, 4, 100)
    assert np.all(scores.contributions[:, 0] * (1 - x) == 0)  # projected onto the observed base
    forward = seqlift.score(model, x, output=1, n_refs=3)
    assert not np.allclose(forward.hypothetical, scores.hypothetical)


def test_channels_last_module_is_found_and_layout_overrides():
    class ChannelsLast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(4, 5, 5, padding=2)
            self.linear = torch.nn.Linear(5, 1)

        def forward(self, x):  # (N, L, 4), as Enformer reads
            return self.linear(torch.relu(self.conv(x.transpose(1, 2))).mean(dim=-1))

    torch.manual_seed(0)
    model = ChannelsLast().eval()
    explainer = seqlift.Explainer(model, input_length=30)
    assert explainer.graph.input_layout == "channels_last"
    with pytest.raises(SeqliftError, match="torch.export could not capture it"):
        seqlift.Explainer(model, input_length=30, layout="NCL")
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (2, 30))]
    attribution = explainer.deeplift(x, np.zeros((1, 30, 4), "float32"))
    assert attribution.contributions.shape == (2, 30, 4)
    assert_summation(attribution)


class LogSpace(torch.nn.Module):
    """logsumexp over channels and a log_softmax over positions: the two log-space rules."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 3, 5, padding=2)

    def forward(self, x):
        h = self.conv(x)
        return torch.logsumexp(h, dim=1).sum(-1, keepdim=True) + torch.log_softmax(h, dim=-1)[:, 0, :3]


def test_logsumexp_and_log_softmax_sum_to_delta_and_match_the_module():
    rng = np.random.default_rng(12)
    torch.manual_seed(12)
    model = LogSpace().eval()
    x, refs = one_hot_ncl(rng, 3, 30), one_hot_ncl(rng, 3, 30, refs=4)
    explainer = seqlift.Explainer(model)
    attribution = explainer.deeplift(x, refs, target="sum")
    assert_summation(attribution)
    expected = model(torch.tensor(x)).detach().numpy().sum(-1)
    np.testing.assert_allclose(attribution.prediction, expected, rtol=1e-5, atol=1e-6)
    kinds = {type(node.op).__name__ for node in explainer.graph.nodes}
    assert "LogSumExp" in kinds


FIXED_LENGTH = """
import torch


class Basset(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 8, 5, padding=2)
        self.pool = torch.nn.MaxPool1d(4)
        self.dense = torch.nn.Linear(8 * 50, 1)

    def forward(self, x):
        return self.dense(self.pool(torch.relu(self.conv(x))).reshape(x.shape[0], -1))


def make():
    return Basset()
"""


def test_a_module_built_for_another_length_is_one_line_naming_the_lengths_it_takes(tmp_path, capfd):
    """--length 150 on a module whose dense layer takes 200 bp (pooled by 4: 200 to 203): one line on stderr, no torch
    traceback, naming the module and the lengths; the same from Python."""
    from click.testing import CliRunner

    (tmp_path / "build.py").write_text(FIXED_LENGTH)
    fasta = _fasta(tmp_path / "seqs.fa", np.random.default_rng(15), n=2, length=150)
    result = CliRunner().invoke(cli, ["score", f"{tmp_path / 'build.py'}:make", fasta, "--length", "150", "--n-refs", "2",
                                      "--out", str(tmp_path / "o.h5"), "--quiet"])
    assert result.exit_code == 1
    assert "Basset takes sequences of 200 to 203 bp, not 150: give --length 200" in result.output
    assert "Traceback" not in capfd.readouterr().err  # torch logs a failed capture's traceback itself
    rng = np.random.default_rng(16)
    with pytest.raises(SeqliftError, match="Basset takes sequences of 200 to 203 bp, not 150"):
        seqlift.deeplift(built(FIXED_LENGTH), one_hot_ncl(rng, 1, 150), one_hot_ncl(rng, 1, 150, refs=2))


SMALL = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 6, 5, padding=2)
        self.linear = torch.nn.Linear(6, 1)

    def forward(self, x):
        return self.linear(torch.relu(self.conv(x)).mean(-1))


def make():
    torch.manual_seed(0)
    return Net()
"""


def test_a_torch_model_scores_bed_and_variant_windows_with_length(tmp_path):
    """A module that fixes no length takes --length L for BED and variant windows, scored as FASTA of them is."""
    from click.testing import CliRunner

    from seqlift.scorefile import read_scores

    rng = np.random.default_rng(9)
    genome = "".join(rng.choice(list("ACGT"), 400))
    (tmp_path / "genome.fa").write_text(f">chr1\n{genome}\n")
    (tmp_path / "build.py").write_text(SMALL)
    (tmp_path / "peaks.bed").write_text("chr1\t100\t160\n")
    (tmp_path / "window.fa").write_text(f">chr1:90-170\n{genome[90:170]}\n")
    (tmp_path / "snv.tsv").write_text(f"chr1\t201\t{genome[200]}\t{'A' if genome[200] != 'A' else 'C'}\n")
    model, runner = f"{tmp_path / 'build.py'}:make", CliRunner()
    common = ["--n-refs", "2", "--quiet"]
    missing = runner.invoke(cli, ["score", model, str(tmp_path / "peaks.bed"), "--genome", str(tmp_path / "genome.fa"),
                                  "--out", str(tmp_path / "b.h5"), *common])
    assert missing.exit_code == 1 and "--length L" in missing.output
    for args in (["score", model, str(tmp_path / "peaks.bed"), "--genome", str(tmp_path / "genome.fa"), "--length", "80",
                  "--out", str(tmp_path / "b.h5")],
                 ["score", model, str(tmp_path / "window.fa"), "--out", str(tmp_path / "w.h5")],
                 ["variants", model, str(tmp_path / "snv.tsv"), "--genome", str(tmp_path / "genome.fa"), "--length",
                  "80", "--out", str(tmp_path / "v.h5")]):
        result = runner.invoke(cli, args + common)
        assert result.exit_code == 0, result.output
    bed, fasta = read_scores(tmp_path / "b.h5"), read_scores(tmp_path / "w.h5")
    np.testing.assert_array_equal(bed["contrib"], fasta["contrib"])
    import h5py

    with h5py.File(tmp_path / "v.h5") as h5:
        assert h5["ref_one_hot"].shape == (1, 80, 4) and np.isfinite(h5["ref_contrib"][()]).all()
