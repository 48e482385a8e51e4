"""Peak resident memory of `seqlift hits` at several numbers of sequences: it must stay flat (chunks).

Writes score files of random 1,000 bp sequences with random projected contributions (Fi-NeMo finds few hits in
them, so the run measures reading, fitting and writing, not a table of hits), and calls hits of the simulation's
two motifs (a MEME file) in each, each size in its own process, reporting each process's peak RSS (``wait4``'s
ru_maxrss) and its time.

Usage: python benchmarks/hits_memory.py [--sizes 5000 20000 50000 100000] [--length 1000] [--json OUT]

Each size's score file is written before its run (100,000 × 1,000 bp: 1.4 GB, in the system's temporary
folder).
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

MOTIFS = Path(__file__).resolve().parent.parent / "data" / "simulations" / "simulation_motifs.meme"


def write_scores(path: Path, n: int, length: int, seed: int = 0):
    from seqlift.outputs import Outputs
    from seqlift.scorefile import ScoreWriter
    from seqlift.scoring import Scores

    rng = np.random.default_rng(seed)
    with Outputs() as outputs:
        writer = ScoreWriter(outputs, path, length, [0], {"tasks": np.array([0]), "method": "deeplift"})
        for start in range(0, n, 1000):
            k = min(1000, n - start)
            one_hot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (k, length))]
            contrib = (one_hot * rng.normal(0, 0.05, (k, length, 1))).astype(np.float32)[:, None]
            zeros = np.zeros((k, 1), np.float32)
            writer.append([f"s{start + i}" for i in range(k)], one_hot, Scores(contrib, contrib, zeros, zeros, zeros))
        writer.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            scores = Path(tmp) / f"s{n}.h5"
            write_scores(scores, n, args.length)
            cmd = [sys.executable, "-m", "seqlift.cli.main", "hits", str(scores), "--motifs", str(MOTIFS), "--out",
                   str(Path(tmp) / f"hits{n}"), "--device", "cpu", "--quiet"]
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()[-2000:]}")
            hits = sum(1 for _ in open(Path(tmp) / f"hits{n}" / "hits.tsv")) - 1
            results.append({"n_sequences": n, "length": args.length, "hits": hits,
                            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "seconds": round(seconds, 1)})
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
