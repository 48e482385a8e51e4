"""Genome-scale tracks (issue 15): ``seqlift bigwig`` on a million 1000-bp windows, its peak memory and time,
and identical values to a small run on some of the same windows.

The synthetic score file has the layout ``seqlift score`` writes for BED input (``names``, ``chrom``,
``start``, ``strand``, ``one_hot``, ``contrib`` and ``hypothetical`` with the same chunking and gzip level, and the
per-sequence ``prediction``, ``reference_prediction`` and ``delta``), which every reader checks before use
(``hypothetical`` holds the contributions again: nothing here reads it for its values). Windows slide by ``--step`` over chromosomes of 50 Mbp, so
with the default step every base is the mean of two windows and each chromosome is one unbroken chain
of overlapping windows; a last small chromosome ``chrS`` holds 100 windows.

The small runs: the windows of ``chrS`` alone, and 100 consecutive windows in the middle of ``chr1``, each
written to its own small score file and turned into a bigWig. ``chrS`` must match the big track base for
base; the ``chr1`` slice must match inside the bases that no window outside the slice reaches.

Peak memory is the ``bigwig`` process's maximum resident set (``getrusage`` of the child).

Usage: python benchmarks/bigwig.py [--n-windows 1000000] [--folder DIR] [--json benchmarks/results/bigwig_1M.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

CHROM_BASES = 50_000_000
BLOCK = 4096


def layout(n_windows: int, length: int, step: int) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Chromosome sizes and ``(chrom, start)`` of every window: chains over 50-Mbp chromosomes, then chrS."""
    per_chrom = (CHROM_BASES - length) // step + 1
    windows, k = [], 0
    big = n_windows - 100
    while len(windows) < big:
        k += 1
        take = min(per_chrom, big - len(windows))
        windows += [(f"chr{k}", i * step) for i in range(take)]
    sizes = {f"chr{c}": CHROM_BASES for c in range(1, k + 1)}
    windows += [("chrS", i * step) for i in range(100)]
    sizes["chrS"] = 99 * step + length
    return sizes, windows


def write_score_file(path: Path, windows, rows, length: int):
    """``rows`` (indices into ``windows``) as a score file; each row's data is seeded by its index."""
    chunk = (64, length, 4)
    with h5py.File(path, "w") as h5:
        n = len(rows)
        h5.attrs.update(seqlift_version="benchmark", tasks=np.array([0]), method="deeplift", n_sequences=n)
        for key in ("names", "chrom", "strand"):
            h5.create_dataset(key, (n,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(1024,))
        h5.create_dataset("start", (n,), maxshape=(None,), dtype="int64", chunks=(1024,))
        for key in ("one_hot", "contrib", "hypothetical"):
            h5.create_dataset(key, (n, length, 4), maxshape=(None, length, 4), dtype="float32", chunks=chunk, compression="gzip",
                              compression_opts=1)
        for key in ("prediction", "reference_prediction", "delta"):
            h5.create_dataset(key, (n,), maxshape=(None,), dtype="float32", chunks=(1024,))
        for b in range(0, n, BLOCK):
            ids = rows[b:b + BLOCK]
            one_hot, contrib = synthetic_rows(ids, length)
            chrom = [windows[i][0] for i in ids]
            start = np.array([windows[i][1] for i in ids], np.int64)
            h5["names"][b:b + len(ids)] = [f"{c}:{s}-{s + length}" for c, s in zip(chrom, start)]
            h5["chrom"][b:b + len(ids)] = chrom
            h5["strand"][b:b + len(ids)] = ["+"] * len(ids)
            h5["start"][b:b + len(ids)] = start
            h5["one_hot"][b:b + len(ids)] = one_hot
            h5["contrib"][b:b + len(ids)] = contrib
            h5["hypothetical"][b:b + len(ids)] = contrib
            h5["prediction"][b:b + len(ids)] = contrib.sum((1, 2))
            h5["reference_prediction"][b:b + len(ids)] = 0
            h5["delta"][b:b + len(ids)] = 0


def synthetic_rows(ids, length: int):
    """One-hot bases and a contribution on the observed base, the same for a row whatever file holds it."""
    one_hot = np.zeros((len(ids), length, 4), np.float32)
    contrib = np.zeros_like(one_hot)
    for j, i in enumerate(ids):
        rng = np.random.default_rng(int(i))
        base = rng.integers(0, 4, length)
        one_hot[j, np.arange(length), base] = 1
        contrib[j, np.arange(length), base] = rng.standard_normal(length, dtype=np.float32)
    return one_hot, contrib


def covered(windows, length: int, step: int) -> int:
    """Bases covered by the windows: each chromosome's chain spans (windows − 1) steps and one window."""
    counts: dict[str, int] = {}
    for chrom, _ in windows:
        counts[chrom] = counts.get(chrom, 0) + 1
    return sum((k - 1) * step + length for k in counts.values())


def bigwig(scores: Path, sizes: Path, out: Path) -> float:
    """Wall seconds of ``seqlift bigwig`` on ``scores``."""
    # this interpreter's seqlift (an install, or a checkout on PYTHONPATH), not whichever `seqlift` is on PATH
    command = [sys.executable, "-m", "seqlift.cli.main", "bigwig", str(scores), "--chrom-sizes", str(sizes),
               "--out", str(out)]
    began = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - began


def compare(big: Path, small: Path, chrom: str, lo: int, hi: int) -> bool:
    """Whether both tracks hold the same values (NaN where neither has one) on ``chrom:[lo, hi)``."""
    import pyBigWig

    a = np.array(pyBigWig.open(str(big)).values(chrom, lo, hi))
    b = np.array(pyBigWig.open(str(small)).values(chrom, lo, hi))
    return bool(np.array_equal(a, b, equal_nan=True)) and not np.isnan(a).all()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-windows", type=int, default=1_000_000)
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--step", type=int, default=500)
    parser.add_argument("--folder", type=Path, default=None, help="where the files go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        folder = Path(tmp)
        sizes, windows = layout(args.n_windows, args.length, args.step)
        (folder / "sizes").write_text("".join(f"{c}\t{s}\n" for c, s in sizes.items()))
        began = time.perf_counter()
        write_score_file(folder / "big.h5", windows, np.arange(len(windows)), args.length)
        result = {"n_windows": len(windows), "length": args.length, "step": args.step, "cores": os.cpu_count(),
                  "chromosomes": len(sizes), "bases_covered": covered(windows, args.length, args.step),
                  "score_file_GB": round((folder / "big.h5").stat().st_size / 1e9, 2),
                  "write_synthetic_s": round(time.perf_counter() - began, 1)}
        print(result, flush=True)
        result["bigwig_s"] = round(bigwig(folder / "big.h5", folder / "sizes", folder / "big.bw"), 1)
        result["bigwig_peak_rss_MB"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
        result["bigwig_windows_per_s"] = round(len(windows) / result["bigwig_s"])
        result["bigwig_file_GB"] = round((folder / "big.bw").stat().st_size / 1e9, 2)
        print(result, flush=True)
        chr_s = np.arange(len(windows) - 100, len(windows))
        middle = np.arange(len(windows) // 4, len(windows) // 4 + 100)
        checks = {}
        for label, rows in (("chrS", chr_s), ("middle", middle)):
            write_score_file(folder / f"{label}.h5", windows, rows, args.length)
            bigwig(folder / f"{label}.h5", folder / "sizes", folder / f"{label}.bw")
            chrom, first = windows[rows[0]]
            last = windows[rows[-1]][1] + args.length
            # inside the slice: from the end of the window before it to the start of the window after it
            lo, hi = (first, last) if label == "chrS" else (first + args.length, last - args.length)
            checks[f"{label} {chrom}:{lo}-{hi}"] = compare(folder / "big.bw", folder / f"{label}.bw", chrom, lo, hi)
        result["identical_to_small_runs"] = checks
        print(result, flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if not all(checks.values()):
        sys.exit("the big track differs from a small run on the same windows")


if __name__ == "__main__":
    main()
