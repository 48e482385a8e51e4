"""DeepLIFT speed on a BPNet-like model: seqlift vs a plain forward+backward pass vs tangermeme.

Model: 1000 bp one-hot input, Conv1D 64×21, six residual dilated Conv1D 64×3 (dilation 2..64),
global average pooling, Dense(1). Each sequence is explained against 20 dinucleotide-shuffled
references. In one run this measures:

- seqlift: sequences/s of ``Explainer.deeplift`` (compiled step warmed up first);
- plain: one compiled forward+backward (gradient w.r.t. the input) over the same
  sequences + references, batched the same way: the cost floor of any gradient-based explainer;
- tangermeme: ``deep_lift_shap`` on a PyTorch copy of the same weights and the same references
  (skipped when tangermeme is not installed; ``pip install '.[bench]'`` with a CPU torch first).

Usage: python benchmarks/engine_speed.py [--n-seqs 32] [--device cpu|gpu] [--json OUT]
Set KERAS_BACKEND=jax or torch to measure another backend.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import seqlift
from seqlift import backend
from seqlift.references import shuffled_references

LENGTH, FILTERS, N_REFS = 1000, 64, 20


def bpnet_like(seed=0):
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input((LENGTH, 4))
    h = layers.Conv1D(FILTERS, 21, padding="same", activation="relu")(inp)
    for i in range(1, 7):
        conv = layers.Conv1D(FILTERS, 3, padding="same", dilation_rate=2**i, activation="relu")(h)
        h = layers.Add()([h, conv])
    h = layers.GlobalAveragePooling1D()(h)
    return keras.Model(inp, layers.Dense(1)(h))


def random_inputs(rng, n_seqs, length=LENGTH):
    """``n_seqs`` random one-hot sequences and ``N_REFS`` dinucleotide shuffles of each (seed 0)."""
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n_seqs, length))]
    return x, shuffled_references(x, N_REFS, seed=0)


def timed(fn, repeats=1):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def plain_pass(model, batch):
    """A compiled gradient of the model's output w.r.t. its input; the floor for any explainer."""
    from keras import ops

    step = backend.ADAPTER.compile(lambda x: backend.ADAPTER.input_gradient(lambda z: (ops.sum(model(z), axis=-1),), x)[0])

    def run(data):
        with backend.scope():
            for start in range(0, len(data), batch):
                backend.to_numpy(step(backend.to_tensor(data[start:start + batch])))

    return run


def torch_copy(model):
    """The same network in PyTorch (channels first), for tangermeme."""
    import torch

    class BPNetLike(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.first = torch.nn.Conv1d(4, FILTERS, 21, padding=10)
            self.convs = torch.nn.ModuleList(
                torch.nn.Conv1d(FILTERS, FILTERS, 3, padding=2**i, dilation=2**i) for i in range(1, 7))
            self.relus = torch.nn.ModuleList(torch.nn.ReLU() for _ in range(7))
            self.dense = torch.nn.Linear(FILTERS, 1)

        def forward(self, x):
            h = self.relus[0](self.first(x))
            for conv, relu in zip(self.convs, self.relus[1:]):
                h = h + relu(conv(h))
            return self.dense(h.mean(-1))

    net = BPNetLike()
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv1D"]
    dense = model.layers[-1]
    with torch.no_grad():
        for target, layer in zip([net.first, *net.convs], convs):
            kernel, bias = layer.get_weights()
            target.weight.copy_(torch.from_numpy(kernel.transpose(2, 1, 0).copy()))
            target.bias.copy_(torch.from_numpy(bias))
        kernel, bias = dense.get_weights()
        net.dense.weight.copy_(torch.from_numpy(kernel.T.copy()))
        net.dense.bias.copy_(torch.from_numpy(bias))
    return net.eval()


def _gpu_name():
    try:
        import subprocess

        return subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-seqs", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=None, help="sequences per step (default: seqlift's)")
    parser.add_argument("--device", choices=["cpu", "gpu"], default=None)
    parser.add_argument("--skip-tangermeme", action="store_true")
    parser.add_argument("--tangermeme-seqs", type=int, default=8, help="tangermeme is slow: fewer sequences")
    parser.add_argument("--compare-cpu", type=int, default=0, metavar="N",
                        help="also score the first N sequences on the CPU and report the difference")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (args.n_seqs, LENGTH))]
    shuffled_references(x[:1], N_REFS, seed=0)  # load the compiled shuffle before timing it
    start = time.perf_counter()
    refs = shuffled_references(x, N_REFS, seed=0)
    shuffle_s = time.perf_counter() - start
    model = bpnet_like()
    explainer = seqlift.Explainer(model, normalize=True, device=args.device)
    on_gpu = args.device != "cpu" and backend.gpu_available()
    from seqlift.engine import PAIRS_PER_STEP_CPU, PAIRS_PER_STEP_GPU

    batch = args.batch_size or max(1, (PAIRS_PER_STEP_GPU if on_gpu else PAIRS_PER_STEP_CPU) // N_REFS)
    batch = min(batch, args.n_seqs)

    explainer.deeplift(x[:batch], refs[:batch], batch_size=batch)  # compile
    seqlift_s = timed(lambda: explainer.deeplift(x, refs, batch_size=batch), repeats=2)
    attribution = explainer.deeplift(x, refs, batch_size=batch)

    pairs = np.concatenate([x, refs.reshape(-1, LENGTH, 4)])
    plain = plain_pass(model, batch * (N_REFS + 1))
    plain(pairs[: batch * (N_REFS + 1)])  # compile
    plain_s = timed(lambda: plain(pairs), repeats=2)

    result = {
        "backend": backend.NAME,
        "device": "gpu" if on_gpu else "cpu",
        "n_seqs": args.n_seqs,
        "n_refs": N_REFS,
        "batch_sequences": batch,
        "seqlift_seq_per_s": args.n_seqs / seqlift_s,
        "plain_fwd_bwd_seq_per_s": args.n_seqs / plain_s,
        "seqlift_over_plain_time": seqlift_s / plain_s,
        "shuffle_seq_per_s": args.n_seqs / shuffle_s,
        "max_convergence_delta": float(attribution.delta.max()),
        "tensor_device": backend.ADAPTER.tensor_device(backend.to_tensor(x[:1], args.device)),
    }
    if on_gpu:
        result["gpu"] = _gpu_name()
    if args.compare_cpu and backend.ADAPTER.cpu_needs_hidden_gpu and on_gpu:
        result["cpu_comparison"] = "not in-process on torch (model variables live on the GPU): compare files of `seqlift score --device cpu`"
    elif args.compare_cpu:
        n = min(args.compare_cpu, args.n_seqs)
        cpu = seqlift.Explainer(model, normalize=True, device="cpu").deeplift(x[:n], refs[:n], batch_size=4)
        scale = float(np.abs(cpu.contributions).max())
        result["cpu_vs_this_device_max_abs_diff"] = float(np.abs(cpu.contributions - attribution.contributions[:n]).max())
        result["cpu_vs_this_device_relative"] = result["cpu_vs_this_device_max_abs_diff"] / scale
        result["cpu_max_convergence_delta"] = float(cpu.delta.max())
    if not args.skip_tangermeme:
        try:
            import torch
            from tangermeme.deep_lift_shap import deep_lift_shap
        except ImportError:
            result["tangermeme"] = "not installed"
        else:
            n = min(args.tangermeme_seqs, args.n_seqs)
            net = torch_copy(model)
            device = "cuda" if on_gpu and torch.cuda.is_available() else "cpu"
            net = net.to(device)
            xt = torch.from_numpy(x[:n].transpose(0, 2, 1).copy())
            rt = torch.from_numpy(refs[:n].transpose(0, 1, 3, 2).copy())
            with torch.no_grad():
                check = net(xt.to(device)).cpu().numpy()[:, 0]
            ours = explainer.predict(x[:n])[:, 0]
            result["torch_copy_max_abs_diff"] = float(np.abs(check - ours).max())
            pairs_per_step = batch * N_REFS  # tangermeme's batch_size counts (sequence, reference) pairs
            deep_lift_shap(net, xt[:1], references=rt[:1], target=0, device=device, batch_size=pairs_per_step)
            start = time.perf_counter()
            tm = deep_lift_shap(net, xt, references=rt, target=0, device=device, batch_size=pairs_per_step)
            tm_s = time.perf_counter() - start
            tm = tm.cpu().numpy()
            result["tangermeme_seq_per_s"] = n / tm_s
            result["seqlift_over_tangermeme_speed"] = result["seqlift_seq_per_s"] / result["tangermeme_seq_per_s"]
            # Same Rescale rule, weights and references: tangermeme returns projected scores.
            ours = attribution.hypothetical[:n] * x[:n]
            result["max_abs_diff_vs_tangermeme"] = float(np.abs(tm.transpose(0, 2, 1) - ours).max())
            result["max_abs_score"] = float(np.abs(ours).max())
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
