"""Speed of every way to call seqlift, in one run, on the BPNet-like model of ``engine_speed.py``.

Each row is sequences/s (1000 bp, 20 dinucleotide shuffles per sequence), all timed in one process:

- ``explainer``: an ``Explainer`` reused (steady state: its steps are compiled);
- ``one_call_first`` / ``one_call_second``: ``seqlift.deeplift(model, X, refs)`` called twice with the
  same model object (the second call reuses the lowered graph and compiled step);
- ``one_call_path_second``: the same with the model given as a path;
- ``reveal-cancel`` and ``genomics``: reused explainers with those rules;
- ``plain``: one compiled forward+backward pass over the same pairs (the floor).

Usage: python benchmarks/paths.py [--n-seqs 24] [--json benchmarks/results/paths_cpu_tensorflow.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_speed import LENGTH, N_REFS, bpnet_like, plain_pass, random_inputs  # noqa: E402

import seqlift  # noqa: E402
from seqlift import backend  # noqa: E402
from seqlift.methods import GENOMICS, RESCALE, REVEAL_CANCEL, RULES  # noqa: E402


def seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-seqs", type=int, default=24)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x, refs = random_inputs(rng, args.n_seqs)
    model = bpnet_like()
    n = args.n_seqs
    times = {}

    explainers = {rule: seqlift.Explainer(model, rule=rule) for rule in RULES}
    for rule, explainer in explainers.items():
        explainer.deeplift(x, refs)  # compile
        times["explainer" if rule == RESCALE else rule] = min(seconds(lambda: explainer.deeplift(x, refs))
                                                                for _ in range(2))
    fresh = bpnet_like(seed=1)  # a model object the one-call API has not seen
    times["one_call_first"] = seconds(lambda: seqlift.deeplift(fresh, x, refs))
    times["one_call_second"] = seconds(lambda: seqlift.deeplift(fresh, x, refs))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        fresh.save(path)
        times["one_call_path_first"] = seconds(lambda: seqlift.deeplift(str(path), x, refs))
        times["one_call_path_second"] = seconds(lambda: seqlift.deeplift(str(path), x, refs))
    pairs = np.concatenate([x, refs.reshape(-1, LENGTH, 4)])
    batch = max(1, 256 // N_REFS) * (N_REFS + 1)
    plain = plain_pass(model, batch)
    plain(pairs[:batch])  # compile
    times["plain"] = min(seconds(lambda: plain(pairs)) for _ in range(2))

    result = {"backend": backend.NAME, "n_seqs": n, "n_refs": N_REFS, "length": LENGTH,
              "seq_per_s": {k: n / v for k, v in times.items()},
              "one_call_second_over_explainer_time": times["one_call_second"] / times["explainer"],
              "one_call_path_second_over_explainer_time": times["one_call_path_second"] / times["explainer"],
              "reveal_cancel_over_rescale_time": times[REVEAL_CANCEL] / times["explainer"],
              "genomics_over_rescale_time": times[GENOMICS] / times["explainer"],
              "explainer_over_plain_time": times["explainer"] / times["plain"]}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
