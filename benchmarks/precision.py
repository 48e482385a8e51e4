"""Float32 precision of DeepLIFT scores against a float64 truth: seqlift beside captum.

For two models (a 2-convolution model with an ACGT-frequency reference, and a dilated residual
model with dinucleotide-shuffled references), on the same weights and references:

- seqlift error: seqlift's float32 scores against seqlift's own engine run in float64 (Keras floatx
  float64, the same rules), for Rescale, RevealCancel and genomics;
- captum error: captum's DeepLift (Rescale, its only rule) in float32 against captum in float64, on a
  PyTorch copy of the weights;
- a check that the two float64 computations agree (same method, same weights): they should to ~1e-12.

Each error is max |float32 − float64| over all contributions, relative to the largest |float64| score.
Needs torch (a CPU build: pip install torch==2.13.0) and captum for the captum column.

Usage: python benchmarks/precision.py [--n-seqs 16] [--json benchmarks/results/precision.json]
"""

from __future__ import annotations

import argparse
import json

import keras
import numpy as np
from keras import layers

import seqlift
from seqlift.methods import RESCALE, RULES
from seqlift.references import frequency_reference, shuffled_references



def two_conv(length):
    inp = keras.Input((length, 4))
    h = layers.Conv1D(32, 11, activation="relu")(inp)
    h = layers.Conv1D(32, 11, activation="relu")(h)
    h = layers.GlobalAveragePooling1D()(h)
    h = layers.Dense(16, activation="relu")(h)
    return keras.Model(inp, layers.Dense(1)(h))


def dilated_residual(length):
    inp = keras.Input((length, 4))
    h = layers.Conv1D(32, 21, padding="same", activation="relu")(inp)
    for i in range(1, 5):
        h = layers.Add()([h, layers.Conv1D(32, 3, padding="same", dilation_rate=2**i, activation="relu")(h)])
    h = layers.GlobalAveragePooling1D()(h)
    h = layers.Dense(16, activation="relu")(h)
    return keras.Model(inp, layers.Dense(1)(h))


def build(builder, length, weights, dtype):
    keras.config.set_dtype_policy(dtype)
    try:
        model = builder(length)
        model.set_weights([w.astype(dtype) for w in weights])
    finally:
        keras.config.set_dtype_policy("float32")
    return model


def seqlift_scores(model, x, refs, rule, dtype):
    keras.config.set_floatx(dtype)
    try:
        return seqlift.Explainer(model, rule=rule).deeplift(x.astype(dtype), refs.astype(dtype)).contributions
    finally:
        keras.config.set_floatx("float32")


def torch_twin(model, dtype):
    """A PyTorch copy of a Keras model built by ``two_conv`` or ``dilated_residual`` (one ReLU module per use)."""
    import torch
    from torch import nn

    convs = [lay for lay in model.layers if isinstance(lay, layers.Conv1D)]
    denses = [lay for lay in model.layers if isinstance(lay, layers.Dense)]
    residual = any(isinstance(lay, layers.Add) for lay in model.layers)

    def conv(lay):
        k, w_in, w_out = lay.kernel.shape
        c = nn.Conv1d(w_in, w_out, k, padding=lay.padding, dilation=lay.dilation_rate[0])
        c.weight.data = torch.tensor(np.asarray(lay.kernel).transpose(2, 1, 0))
        c.bias.data = torch.tensor(np.asarray(lay.bias))
        return c

    def dense(lay):
        d = nn.Linear(*lay.kernel.shape)
        d.weight.data = torch.tensor(np.asarray(lay.kernel).T)
        d.bias.data = torch.tensor(np.asarray(lay.bias))
        return d

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList(conv(c) for c in convs)
            self.relus = nn.ModuleList(nn.ReLU() for _ in range(len(convs) + 1))
            self.dense1, self.dense2 = dense(denses[0]), dense(denses[1])

        def forward(self, x):  # x: (N, 4, L)
            h = self.relus[0](self.convs[0](x))
            for c, relu in zip(self.convs[1:], self.relus[1:]):
                h = h + relu(c(h)) if residual else relu(c(h))
            h = self.relus[-1](self.dense1(h.mean(-1)))
            return self.dense2(h)

    return Twin().to(getattr(torch, dtype)).eval()


def captum_scores(model, x, refs, dtype):
    import torch
    from captum.attr import DeepLift

    twin = torch_twin(model, dtype)
    n, r = refs.shape[:2]
    inputs = torch.tensor(np.repeat(x, r, axis=0).transpose(0, 2, 1).astype(dtype))
    baselines = torch.tensor(refs.reshape((n * r,) + refs.shape[2:]).transpose(0, 2, 1).astype(dtype))
    attr = DeepLift(twin).attribute(inputs, baselines, target=0).detach().numpy()
    return attr.transpose(0, 2, 1).reshape((n, r) + x.shape[1:]).mean(1)


def relative_error(approx, truth):
    return float(np.abs(approx - truth).max() / np.abs(truth).max())


def measure(name, builder, length, n_seqs, reference, seed=0):
    keras.utils.set_random_seed(seed)
    model32 = builder(length)
    rng = np.random.default_rng(seed)
    for w in model32.weights:  # trained-looking scales, alive ReLUs
        w.assign(rng.normal(0, 0.5 / np.sqrt(max(1, np.prod(w.shape[:-1]))), w.shape).astype("float32")
                 + (0.05 if len(w.shape) == 1 else 0.0))
    weights = [np.asarray(w) for w in model32.get_weights()]
    model64 = build(builder, length, weights, "float64")
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n_seqs, length))]
    if reference == "frequency":
        refs = np.broadcast_to(frequency_reference([0.3, 0.2, 0.2, 0.3], length)[None], (n_seqs, 1, length, 4)).copy()
    else:
        refs = shuffled_references(x, 10, seed)
    row = {"model": name, "reference": reference, "n_seqs": n_seqs, "length": length}
    truth = {}
    for rule in RULES:
        truth[rule] = seqlift_scores(model64, x, refs, rule, "float64")
        row[f"seqlift_{rule}"] = relative_error(seqlift_scores(model32, x, refs, rule, "float32"), truth[rule])
    try:
        c64 = captum_scores(model64, x, refs, "float64")
        row["captum_rescale"] = relative_error(captum_scores(model32, x, refs, "float32"), c64)
        row["float64_seqlift_vs_captum"] = relative_error(truth[RESCALE], c64)
    except ImportError:
        row["captum_rescale"] = None
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-seqs", type=int, default=16)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = [measure("2-conv", two_conv, 200, args.n_seqs, "frequency"),
            measure("dilated residual", dilated_residual, 500, args.n_seqs, "shuffle")]
    for row in rows:
        print(f"{row['model']} ({row['reference']} reference): "
              + ", ".join(f"{k} {v:.2g}" for k, v in row.items() if isinstance(v, float)))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"backend": keras.backend.backend(), "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
