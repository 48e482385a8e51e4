"""Where RevealCancel's time goes, against Rescale, on the BPNet-like model of ``engine_speed.py`` (one run).

Three explainers over the same sequences and dinucleotide shuffles, each timed at steady state (best of 3):

- ``rescale``: every nonlinearity under Rescale;
- ``reveal_cancel``: every nonlinearity under RevealCancel;
- ``split_only``: RevealCancel's sign-split linear maps (``Δy± = ½(WΔx ± |W||Δx|)`` forward, and both
  products' gradients backward), with the nonlinearity's own RevealCancel arithmetic replaced by the sum
  of the two parts. Not a valid rule; it measures what the exact split alone costs.

``split_only / rescale`` bounds from below what any RevealCancel that splits exactly can reach here.

Usage: python benchmarks/reveal_cancel.py [--n-seqs 8] [--json benchmarks/results/reveal_cancel_cpu_tensorflow.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_speed import LENGTH, N_REFS, bpnet_like, random_inputs  # noqa: E402

import seqlift  # noqa: E402
from seqlift import backend, rules  # noqa: E402


def steady_seconds(explainer, x, refs, repeats=3) -> float:
    explainer.deeplift(x[:2], refs[:2])  # compile
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        explainer.deeplift(x, refs)
        best = min(best, time.perf_counter() - began)
    return best


def split_only(self, xs, parts, ctx):
    dp, dn = parts()[0]
    return dp + dn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-seqs", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x, refs = random_inputs(rng, args.n_seqs)
    model = bpnet_like()
    seconds = {"rescale": steady_seconds(seqlift.Explainer(model, rule="rescale"), x, refs),
               "reveal_cancel": steady_seconds(seqlift.Explainer(model, rule="reveal-cancel"), x, refs)}
    exact = rules.Elementwise.reveal_cancel
    rules.Elementwise.reveal_cancel = split_only
    try:
        seconds["split_only"] = steady_seconds(seqlift.Explainer(model, rule="reveal-cancel"), x, refs)
    finally:
        rules.Elementwise.reveal_cancel = exact
    result = {"backend": backend.NAME, "n_seqs": args.n_seqs, "n_refs": N_REFS, "length": LENGTH,
              "seconds": {k: round(v, 3) for k, v in seconds.items()},
              "reveal_cancel_over_rescale": round(seconds["reveal_cancel"] / seconds["rescale"], 2),
              "split_only_over_rescale": round(seconds["split_only"] / seconds["rescale"], 2)}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
