"""DeepLIFT speed on PyTorch models: seqlift (lowered from torch, default backend) vs tangermeme vs the floor.

Models (random weights, nothing downloaded):

- bpnet-lite ``BPNet``, 64 filters, 8 dilated layers, 2,114 bp input as ChromBPNet uses (no control
  tracks), explained through ``CountWrapper`` (the counts head);
- a small ``enformer-pytorch`` Enformer (``--enformer-*`` options), the sum of its 'human' head;
- ``bpnet-api``: what a bpnet-lite user types first, ``seqlift.deeplift(module, X, refs, output=1,
  target='sum')`` on a ``BPNet`` of 32 filters and 4 layers, 1,000 bp, 10 references per sequence (the
  Python API, its explainer cached on the module after a first call), against tangermeme's
  ``deep_lift_shap`` on ``CountWrapper(module)`` with the same references, in the same run.

Each sequence is explained against 20 dinucleotide-shuffled references. In one run this measures:

- seqlift: sequences/s of ``Explainer.deeplift`` on the module (compiled step warmed up first);
- floor: one compiled forward+backward (gradient w.r.t. the input) of the same lowered graph over the
  sequences + references, batched the same way (what engine_speed.py calls plain), and the module's
  own forward+backward in eager torch over the same data (torch_floor);
- tangermeme: ``deep_lift_shap`` on the module, same inputs and references (Enformer: tangermeme has no
  rule for its functional operations, so its scores there are not DeepLIFT's; only its speed is reported).

Usage: python benchmarks/torch_models.py [--n-seqs 8] [--tangermeme-seqs 4] [--models bpnet,enformer,bpnet-api]
[--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import seqlift
from seqlift import backend
from seqlift.references import shuffled_references

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_speed import timed  # noqa: E402  (one timer for every benchmark)

N_REFS = 20


def bpnet():
    import torch
    from bpnetlite.bpnet import BPNet, CountWrapper

    torch.manual_seed(0)
    model = BPNet(n_filters=64, n_layers=8, n_control_tracks=0, trimming=(2114 - 1000) // 2, verbose=False)
    return CountWrapper(model).eval(), 2114, "NCL", None


def enformer(dim, depth, length):
    import torch
    from enformer_pytorch import Enformer

    torch.manual_seed(0)
    model = Enformer.from_hparams(dim=dim, depth=depth, heads=4, output_heads={"human": 16}, target_length=length // 16,
                                  attn_dim_key=16, num_downsamples=4, dim_divisible_by=16, dropout_rate=0.0,
                                  attn_dropout=0.0, pos_dropout=0.0).eval()

    class HumanSum(torch.nn.Module):
        """The explained scalar as a module output, for tangermeme: the sum of the 'human' head."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):  # tangermeme gives (N, 4, L); Enformer reads (N, L, 4)
            return self.inner(x.transpose(1, 2))["human"].sum(dim=(1, 2)).unsqueeze(-1)

    return HumanSum(model).eval(), length, "NCL", None


def tangermeme_scores(module, xm, rm, batch_size, args=None):
    """tangermeme's ``deep_lift_shap`` hypothetical scores of ``xm`` (N, 4, L) against ``rm`` (N, R, 4, L), and
    its seconds (after a warm-up call on the first sequence)."""
    import torch
    from tangermeme.deep_lift_shap import deep_lift_shap

    xt, rt = torch.from_numpy(xm), torch.from_numpy(rm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deep_lift_shap(module, xt[:1], references=rt[:1], device="cpu", batch_size=batch_size)
        start = time.perf_counter()
        scores = deep_lift_shap(module, xt, references=rt, device="cpu", batch_size=batch_size,
                                hypothetical=True).numpy()
    return scores, time.perf_counter() - start


def measure_api(n_seqs, n_refs=10, length=1000):
    """The ``bpnet-api`` row: ``seqlift.deeplift`` on a bpnet-lite BPNet against tangermeme, one run."""
    import torch
    from bpnetlite.bpnet import BPNet, CountWrapper

    torch.manual_seed(0)
    module = BPNet(n_filters=32, n_layers=4, n_control_tracks=0, verbose=False).eval()
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n_seqs, length))]
    refs = shuffled_references(x, n_refs, seed=0)
    xm, rm = x.transpose(0, 2, 1).copy(), refs.transpose(0, 1, 3, 2).copy()  # the module's layout

    def call():
        return seqlift.deeplift(module, xm, rm, output=1, target="sum", scores="hypothetical")

    def uncached():  # every call captured, lowered and compiled again: the API before its cache worked
        object.__delattr__(module, "_seqlift_explainers")
        return call()

    start = time.perf_counter()
    call()  # captures, lowers and compiles
    first_s = time.perf_counter() - start
    api_s = timed(call, repeats=5)
    hypothetical = call()
    uncached_s = timed(uncached, repeats=1)
    explainer = seqlift.Explainer(module, output=1, input_shape=xm.shape[1:])  # what seqlift score runs
    explainer.deeplift(xm, rm, target="sum")
    explainer_s = timed(lambda: explainer.deeplift(xm, rm, target="sum"), repeats=5)
    expected, tm_s = tangermeme_scores(CountWrapper(module), xm, rm, n_seqs * n_refs)
    return {
        "model": f"bpnet-lite BPNet 32x4, {length} bp, seqlift.deeplift(module, X, refs, output=1, target='sum')",
        "length": length,
        "n_seqs": n_seqs,
        "n_refs": n_refs,
        "first_call_s": first_s,
        "seqlift_api_seq_per_s": n_seqs / api_s,
        "seqlift_api_uncached_seq_per_s": n_seqs / uncached_s,
        "seqlift_explainer_seq_per_s": n_seqs / explainer_s,
        "tangermeme_seqs": n_seqs,
        "tangermeme_seq_per_s": n_seqs / tm_s,
        "seqlift_api_over_tangermeme_speed": tm_s / api_s,
        "max_relative_diff_vs_tangermeme": float(np.abs(hypothetical - expected).max() / np.abs(expected).max()),
    }


def plain_pass(explainer, batch):
    """A compiled gradient of the lowered graph's output w.r.t. its input: the floor in seqlift's backend."""
    from keras import ops

    graph = explainer.graph

    def grad(x):
        def total(z):
            out = explainer.forward(z)[graph.output]
            return (ops.sum(ops.reshape(out, (ops.shape(out)[0], -1)), axis=-1),)

        return backend.ADAPTER.input_gradient(total, x)[0]

    step = explainer.compile(grad)
    fixed = explainer.fixed_rows(None, 1)

    def run(data):
        with backend.scope():
            for start in range(0, len(data), batch):
                backend.to_numpy(step(backend.to_tensor(data[start:start + batch]), backend.to_tensor(fixed)))

    return run


def torch_floor(module, batch):
    """The module's own forward+backward in eager torch (what tangermeme's pass costs at least)."""
    import torch

    def run(data):
        for start in range(0, len(data), batch):
            x = torch.from_numpy(np.ascontiguousarray(data[start:start + batch].transpose(0, 2, 1)))
            x.requires_grad_(True)
            out = module(x)
            (g,) = torch.autograd.grad(out.sum(), x)

    return run


def measure(name, module, length, n_seqs, tangermeme_seqs, skip_tangermeme):
    import torch

    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n_seqs, length))]  # (N, L, 4)
    refs = shuffled_references(x, N_REFS, seed=0)  # (N, R, L, 4)
    xm, rm = x.transpose(0, 2, 1).copy(), refs.transpose(0, 1, 3, 2).copy()  # the module's layout
    start = time.perf_counter()
    explainer = seqlift.Explainer(module, input_shape=xm.shape[1:])
    lower_s = time.perf_counter() - start
    from seqlift.engine import PAIRS_PER_STEP_CPU

    batch = min(max(1, PAIRS_PER_STEP_CPU // N_REFS), n_seqs)
    explainer.deeplift(xm[:batch], rm[:batch], batch_size=batch)  # compile
    seqlift_s = timed(lambda: explainer.deeplift(xm, rm, batch_size=batch), repeats=2)
    attribution = explainer.deeplift(xm, rm, batch_size=batch)

    pairs = np.concatenate([x, refs.reshape(-1, length, 4)])
    plain = plain_pass(explainer, batch * (N_REFS + 1))
    plain(pairs[: batch * (N_REFS + 1)])
    plain_s = timed(lambda: plain(pairs), repeats=2)
    eager = torch_floor(module, batch * (N_REFS + 1))
    eager(pairs[: batch * (N_REFS + 1)])
    eager_s = timed(lambda: eager(pairs), repeats=1)

    with torch.no_grad():
        own = module(torch.from_numpy(xm)).numpy().reshape(n_seqs, -1)[:, 0]
    scale = np.maximum(1.0, np.abs(attribution.prediction) + np.abs(attribution.reference_prediction))
    result = {
        "model": name,
        "length": length,
        "n_seqs": n_seqs,
        "n_refs": N_REFS,
        "batch_sequences": batch,
        "capture_and_lower_s": lower_s,
        "seqlift_seq_per_s": n_seqs / seqlift_s,
        "plain_fwd_bwd_seq_per_s": n_seqs / plain_s,
        "seqlift_over_plain_time": seqlift_s / plain_s,
        "torch_eager_fwd_bwd_seq_per_s": n_seqs / eager_s,
        "seqlift_over_torch_eager_floor_time": seqlift_s / eager_s,
        "max_relative_convergence_delta": float((attribution.delta / scale).max()),
        "prediction_vs_module_max_abs_diff": float(np.abs(attribution.prediction - own).max()),
    }
    if not skip_tangermeme:
        try:
            import tangermeme  # noqa: F401
        except ImportError:
            result["tangermeme"] = "not installed"
        else:
            n = min(tangermeme_seqs, n_seqs)
            tm, tm_s = tangermeme_scores(module, xm[:n], rm[:n], batch * N_REFS)
            result["tangermeme_seqs"] = n
            result["tangermeme_seq_per_s"] = n / tm_s
            result["seqlift_over_tangermeme_speed"] = result["seqlift_seq_per_s"] / result["tangermeme_seq_per_s"]
            result["max_relative_diff_vs_tangermeme"] = float(np.abs(attribution.hypothetical[:n] - tm).max()
                                                               / np.abs(tm).max())
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-seqs", type=int, default=8)
    parser.add_argument("--tangermeme-seqs", type=int, default=4)
    parser.add_argument("--models", default="bpnet,enformer")
    parser.add_argument("--enformer-dim", type=int, default=96)
    parser.add_argument("--enformer-depth", type=int, default=2)
    parser.add_argument("--enformer-length", type=int, default=1024)
    parser.add_argument("--skip-tangermeme", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import torch

    results = {"backend": backend.NAME, "device": "cpu", "torch_threads": torch.get_num_threads(), "models": []}
    for name in args.models.split(","):
        if name == "bpnet-api":
            results["models"].append(measure_api(args.n_seqs))
            print(json.dumps(results["models"][-1], indent=2), flush=True)
            continue
        module, length, _, _ = bpnet() if name == "bpnet" else enformer(args.enformer_dim, args.enformer_depth,
                                                                        args.enformer_length)
        label = ("bpnet-lite BPNet 64x8, 2114 bp (CountWrapper)" if name == "bpnet" else
                 f"enformer-pytorch dim {args.enformer_dim} depth {args.enformer_depth}, {args.enformer_length} bp")
        results["models"].append(measure(label, module, length, args.n_seqs, args.tangermeme_seqs,
                                         args.skip_tangermeme))
        print(json.dumps(results["models"][-1], indent=2), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
