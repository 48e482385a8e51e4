"""Peak resident memory of `seqlift score` at two input sizes: it must stay flat (streaming).

Writes random 200 bp sequences, scores them with the shipped simulation model and 20 dinucleotide
shuffles per sequence, each size in its own process, and reports each process's peak RSS
(``wait4``'s ru_maxrss) and its throughput.

Usage: python benchmarks/memory.py [--sizes 10000 100000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = Path(__file__).resolve().parent.parent / "data" / "simulations" / "model.h5"


def write_fasta(path: Path, n: int, length: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    letters = np.array(list("ACGT"))
    with open(path, "w") as handle:
        for start in range(0, n, 10000):
            block = letters[rng.integers(0, 4, (min(10000, n - start), length))]
            handle.write("".join(f">s{start + i}\n{''.join(row)}\n" for i, row in enumerate(block)))


def peak_rss_mb(cmd: list[str]) -> tuple[float, float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, elapsed, proc.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            fasta = Path(tmp) / f"in{n}.fa"
            write_fasta(fasta, n, args.length)
            cmd = [sys.executable, "-m", "seqlift.cli.main", "score", str(MODEL), str(fasta), "--out", str(Path(tmp) / f"o{n}.h5"),
                   "--n-refs", "20", "--quiet"]
            rss, seconds, _ = peak_rss_mb(cmd)
            results.append({"n_sequences": n, "peak_rss_mb": round(rss, 1), "seconds": round(seconds, 1),
                            "sequences_per_s": round(n / seconds, 1)})
            print(json.dumps(results[-1]), flush=True)
    if len(results) >= 2:
        print(json.dumps({"rss_ratio_largest_over_smallest": round(results[-1]["peak_rss_mb"] / results[0]["peak_rss_mb"], 3)}))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
