"""``seqlift score`` end to end against the engine alone, and the shuffle's rate per core, in one run.

On the BPNet-like model of ``engine_speed.py`` (1000 bp, 20 dinucleotide shuffles per sequence):

- engine: ``Explainer.deeplift`` on references made beforehand (the rate the device sets);
- shuffle: ``shuffled_references`` alone, on 1 thread and on every core (``numba``'s threads);
- end to end: the ``seqlift score`` job (``pipeline.prepare`` and ``run``: FASTA read, one-hot, shuffles, scoring,
  HDF5 + TSV written), with its prefetch thread and, for comparison, with every step in turn.

The shuffle's rate per core tells how many cores keep a GPU fed: cores ≈ engine rate / rate per core.

Usage: python benchmarks/end_to_end.py [--n-seqs 48] [--json benchmarks/results/end_to_end_cpu_tensorflow.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_speed import LENGTH, N_REFS, bpnet_like  # noqa: E402

import seqlift  # noqa: E402
from seqlift import backend, pipeline  # noqa: E402
from seqlift.references import shuffled_references  # noqa: E402


class InTurn:
    """``pipeline.Prefetch`` without the thread: each chunk is prepared only when it is needed."""

    def __init__(self, items, depth=2):
        self.items = items

    def __enter__(self):
        return self

    def __iter__(self):
        return iter(self.items)

    def __exit__(self, *exc):
        return False


def score_job(model_path, fasta, out):
    plan = pipeline.prepare(pipeline.build_request(str(model_path), str(fasta), out=out, normalize=False),
                            lambda n: [0])
    start = time.perf_counter()
    pipeline.run(plan)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-seqs", type=int, default=48)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    n = args.n_seqs
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, LENGTH))]
    result = {"backend": backend.NAME, "n_seqs": n, "n_refs": N_REFS, "length": LENGTH,
              "cores": numba.config.NUMBA_NUM_THREADS}

    shuffled_references(x[:2], N_REFS, 0)  # load the compiled shuffle
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        start = time.perf_counter()
        refs = shuffled_references(x, N_REFS, 0)
        result[f"shuffle_seq_per_s_{threads}_threads"] = n / (time.perf_counter() - start)
    result["shuffle_seq_per_s_per_core"] = result["shuffle_seq_per_s_1_threads"]

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model = bpnet_like()
        model.save(folder / "model.keras")
        explainer = seqlift.Explainer(model)
        explainer.deeplift(x[:12], refs[:12])  # compile
        times = []
        for _ in range(2):  # the better of two: these machines are noisy
            start = time.perf_counter()
            explainer.deeplift(x, refs)
            times.append(time.perf_counter() - start)
        result["engine_seq_per_s"] = n / min(times)

        alphabet = np.array(list("ACGT"))
        (folder / "in.fa").write_text("".join(f">s{i}\n{''.join(alphabet[row.argmax(-1)])}\n" for i, row in enumerate(x)))
        score_job(folder / "model.keras", folder / "in.fa", folder / "warm.h5")  # compile the job's steps
        with_prefetch = min(score_job(folder / "model.keras", folder / "in.fa", folder / f"a{k}.h5") for k in range(2))
        prefetch = pipeline.Prefetch
        pipeline.Prefetch = InTurn
        try:
            in_turn = min(score_job(folder / "model.keras", folder / "in.fa", folder / f"b{k}.h5") for k in range(2))
        finally:
            pipeline.Prefetch = prefetch
    result["end_to_end_seq_per_s"] = n / with_prefetch
    result["end_to_end_in_turn_seq_per_s"] = n / in_turn
    result["end_to_end_over_engine_rate"] = result["end_to_end_seq_per_s"] / result["engine_seq_per_s"]
    result["in_turn_over_engine_rate"] = result["end_to_end_in_turn_seq_per_s"] / result["engine_seq_per_s"]
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
