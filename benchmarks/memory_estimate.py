"""How close ``--batch-size auto``'s memory estimate is to the memory a compiled DeepLIFT step really takes.

Three models (random weights), each explained against 8 references per sequence:

- small: the DeepLIFT paper's simulation model shape (200 bp, Conv1D 50×11 twice, max pooling, Dense);
- bpnet: the BPNet-like benchmark model (1000 bp, Conv1D 64×21, six residual dilated Conv1D 64×3);
- large: issue 18's model (1,346 bp, Conv1D 128×21, seven residual dilated Conv1D 128×3).

Each (model, pairs per step) runs in its own process: the model is built and lowered, the host's peak
resident memory is reset (``/proc/self/clear_refs``), one step of ``pairs`` (sequence, reference) pairs
is compiled and run, and the rise of the peak (VmHWM) over the resident memory before the step is what
the step took. ``per_pair_measured`` is the slope between the two pair counts (what a larger batch
costs; compilation and the model are the intercept); ``per_pair_estimate`` is
``Explainer.bytes_per_pair()``, which ``--batch-size auto`` divides the free memory by.

Usage: python benchmarks/memory_estimate.py [--pairs 64 512] [--json OUT]   (Linux, CPU)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

N_REFS = 8
MODELS = {"small": (200, 50, 11, 0), "bpnet": (1000, 64, 21, 6), "large": (1346, 128, 21, 7)}


def build(name: str):
    """(length, filters, first kernel, dilated layers) of ``MODELS[name]`` as a Keras model."""
    import keras
    from keras import layers

    length, filters, kernel, dilated = MODELS[name]
    keras.utils.set_random_seed(0)
    inp = keras.Input((length, 4))
    h = layers.Conv1D(filters, kernel, padding="same", activation="relu")(inp)
    if dilated == 0:  # the simulation model: two convolutions, pooling, dense layers
        h = layers.Conv1D(filters, kernel, padding="same", activation="relu")(h)
        h = layers.MaxPooling1D(40, strides=20)(h)
        h = layers.Dense(50, activation="relu")(layers.Flatten()(h))
        return keras.Model(inp, layers.Dense(3, activation="sigmoid")(h))
    for i in range(1, dilated + 1):
        h = layers.Add()([h, layers.Conv1D(filters, 3, padding="same", dilation_rate=2**i, activation="relu")(h)])
    return keras.Model(inp, layers.Dense(1)(layers.GlobalAveragePooling1D()(h)))


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(key)


def measure(name: str, pairs: int) -> dict:
    """In this process: the step's peak memory above the resident memory before it, and the estimate."""
    import numpy as np

    import seqlift

    explainer = seqlift.Explainer(build(name), normalize=True)
    length = MODELS[name][0]
    per_pair = explainer.bytes_per_pair()
    rng = np.random.default_rng(0)
    n = pairs // N_REFS
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))]
    refs = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, N_REFS, length))]
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    explainer.deeplift(x, refs, batch_size=n)
    return {"model": name, "length": length, "pairs": pairs, "step_peak_bytes": _status("VmHWM") - before,
            "per_pair_estimate": per_pair, "estimate_bytes": per_pair * pairs}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, nargs=2, default=[64, 512])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # MODEL PAIRS: measure in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]))))
        return
    results = []
    for name in args.models:
        runs = []
        for pairs in args.pairs:
            out = subprocess.run([sys.executable, __file__, "--one", name, str(pairs)], capture_output=True,
                                 text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        low, high = runs
        slope = (high["step_peak_bytes"] - low["step_peak_bytes"]) / (high["pairs"] - low["pairs"])
        row = {"model": name, "length": low["length"], "runs": runs, "per_pair_measured": round(slope),
               "per_pair_estimate": low["per_pair_estimate"],
               "estimate_over_measured": round(low["per_pair_estimate"] / slope, 2) if slope > 0 else None,
               "largest_step_over_estimate": round(high["step_peak_bytes"] / high["estimate_bytes"], 2)}
        results.append(row)
        print(f"{name:6s} {low['length']:5d} bp  measured {slope / 2**20:8.2f} MiB/pair  estimate "
              f"{row['per_pair_estimate'] / 2**20:8.2f} MiB/pair  ({row['estimate_over_measured']}x); "
              f"{high['pairs']} pairs: step {high['step_peak_bytes'] / 2**30:.2f} GiB, "
              f"estimate {high['estimate_bytes'] / 2**30:.2f} GiB", flush=True)
    if args.json:
        import keras

        Path(args.json).write_text(json.dumps({"backend": keras.backend.backend(), "machine": platform.processor()
                                               or platform.machine(), "n_refs": N_REFS, "results": results},
                                              indent=1) + "\n")


if __name__ == "__main__":
    main()
