"""Variant effects (issue 20): ``seqlift variants`` variants/s on the shipped simulation model against ``seqlift
score``'s sequences/s on the same ref windows in the same run, and the peak memory at two numbers of variants.

A synthetic genome (chromosomes of 1 Mbp, the simulation's background) gets one SNV every 250 bp, REF taken from
the genome, ALT its transition. Each command runs in its own process (``python -m seqlift.cli.main``), timed
from start to exit (model loading included: a few seconds); peak memory is that process's maximum resident set
(``getrusage`` of the child). Both use the default 20 dinucleotide-shuffled references per window; ``variants``
scores two windows per variant, so half of ``score``'s sequences/s is the target. ``--null K`` adds K shuffled
controls per variant (forward passes only).

Usage: python benchmarks/variants.py [--sizes 10000,100000] [--rate-variants 2000] [--null 20]
                                     [--json benchmarks/results/variants_cpu_tensorflow.json]
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

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "data" / "simulations" / "model.h5"
CHROM = 1_000_000
SPACING = 250
LENGTH = 200


def make_inputs(folder: Path, n: int) -> tuple[Path, Path, Path]:
    """A genome holding ``n`` SNVs spaced ``SPACING`` bp apart, their TSV, and a FASTA of their ref windows."""
    rng = np.random.default_rng(0)
    per_chrom = (CHROM - 2 * LENGTH) // SPACING
    n_chroms = -(-n // per_chrom)
    genome, variants, windows = folder / f"genome{n}.fa", folder / f"variants{n}.tsv", folder / f"windows{n}.fa"
    with open(genome, "w") as g, open(variants, "w") as v, open(windows, "w") as w:
        left = n
        for c in range(1, n_chroms + 1):
            bases = np.array(list("ACGT"))[rng.choice(4, CHROM, p=[0.3, 0.2, 0.2, 0.3])]
            text = "".join(bases)
            g.write(f">chr{c}\n{text}\n")
            for k in range(min(per_chrom, left)):
                pos = LENGTH + k * SPACING + 1  # 1-based
                ref = text[pos - 1]
                v.write(f"chr{c}\t{pos}\t{ref}\t{'GATC'['ACGT'.index(ref)]}\n")
                start = pos - 1 - LENGTH // 2
                w.write(f">chr{c}:{start}-{start + LENGTH}\n{text[start:start + LENGTH]}\n")
            left -= min(per_chrom, left)
    return genome, variants, windows


# A fresh parent per command, so that its RUSAGE_CHILDREN peak is that command's alone.
_WRAPPER = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def timed(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one seqlift command in a child process."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _WRAPPER, sys.executable, "-m", "seqlift.cli.main", *args, "--quiet"],
                          check=True, env=env, stdout=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - began
    return seconds, int(done.stdout.split()[-1]) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate-variants", type=int, default=2000)
    parser.add_argument("--sizes", default="10000,100000", help="Variant counts whose peak memory is measured.")
    parser.add_argument("--null", type=int, default=20)
    parser.add_argument("--json", default=None)
    options = parser.parse_args()
    result = {"cores": os.cpu_count(), "model": str(MODEL.relative_to(REPO)), "n_refs": 20, "task": 1}
    with tempfile.TemporaryDirectory(prefix="seqlift-variants-bench-") as scratch:
        folder = Path(scratch)
        n = options.rate_variants
        genome, variants, windows = make_inputs(folder, n)
        common = [str(MODEL)]
        seconds, _ = timed(["score", *common, str(windows), "--task", "1", "--out", str(folder / "s.h5")])
        result.update(score_sequences=n, score_s=round(seconds, 1), score_seq_per_s=round(n / seconds, 1))
        seconds, _ = timed(["variants", *common, str(variants), "--genome", str(genome), "--task", "1",
                            "--out", str(folder / "v.h5")])
        result.update(variants=n, variants_s=round(seconds, 1), variants_per_s=round(n / seconds, 1))
        seconds, _ = timed(["variants", *common, str(variants), "--genome", str(genome), "--task", "1",
                            "--null", str(options.null), "--out", str(folder / "vn.h5")])
        result.update(null=options.null, variants_null_s=round(seconds, 1), variants_null_per_s=round(n / seconds, 1))
        print(json.dumps(result, indent=2), flush=True)
        for size in sorted(int(s) for s in options.sizes.split(",") if s):
            genome, variants, _ = make_inputs(folder, size)
            seconds, peak = timed(["variants", *common, str(variants), "--genome", str(genome), "--task", "1",
                                   "--out", str(folder / f"m{size}.h5")])
            result[f"peak_mib_{size}"] = round(peak, 1)
            result[f"variants_per_s_{size}"] = round(size / seconds, 1)
            print(json.dumps({f"peak_mib_{size}": result[f"peak_mib_{size}"],
                              f"variants_per_s_{size}": result[f"variants_per_s_{size}"]}), flush=True)
    print(json.dumps(result, indent=2))
    if options.json:
        Path(options.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
