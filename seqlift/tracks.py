"""bigWig tracks of per-base scores at genome coordinates taken from ``chrom:start-end`` names."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import SeqliftError
from .scorefile import read_scores
from .sequences import fasta_lengths, parse_coordinates


def read_chrom_sizes(chrom_sizes=None, genome=None) -> dict[str, int]:
    """Chromosome sizes from a two-column sizes file or a genome FASTA (its index)."""
    if chrom_sizes:
        path = Path(chrom_sizes)
        if not path.exists():
            raise SeqliftError(f"{path}: chromosome sizes file not found")
        sizes = {}
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) < 2 or not fields[1].isdigit():
                raise SeqliftError(f"{path}:{number}: expected 'chrom<TAB>size'")
            sizes[fields[0]] = int(fields[1])
        return sizes
    if genome:
        return fasta_lengths(genome)
    raise SeqliftError("bigWig needs chromosome sizes: give --chrom-sizes FILE or --genome GENOME.fa")


def per_base_values(data: dict, hypothetical_max=False) -> np.ndarray:
    """``(N, L)``: projected contribution summed over bases, or the strongest hypothetical base."""
    if hypothetical_max:
        hyp = data["hypothetical"]
        pick = np.abs(hyp).argmax(-1)
        return np.take_along_axis(hyp, pick[..., None], -1)[..., 0]
    return data["contrib"].sum(-1)


def _clusters(windows):
    """Group windows ``(start, end, values)`` sorted by start into runs of overlapping ones."""
    group, group_end = [], -1
    for window in windows:
        if group and window[0] >= group_end:
            yield group
            group, group_end = [], -1
        group.append(window)
        group_end = max(group_end, window[1])
    if group:
        yield group


def write_bigwig(names, values: np.ndarray, sizes: dict[str, int], out):
    """Per-base ``values`` ``(N, L)`` at the coordinates of ``names``; overlapping windows are averaged."""
    import pyBigWig

    by_chrom: dict[str, list] = {}
    for name, row in zip(names, values):
        coords = parse_coordinates(str(name))
        if coords is None:
            raise SeqliftError(f"record '{name}': name is not genome coordinates chrom:start-end")
        chrom, start, end = coords
        if end - start != len(row):
            raise SeqliftError(f"record '{name}': spans {end - start} bp but has {len(row)} scores")
        if chrom not in sizes:
            raise SeqliftError(f"record '{name}': chromosome '{chrom}' is not in the chromosome sizes")
        if end > sizes[chrom]:
            raise SeqliftError(f"record '{name}': ends past {chrom} (length {sizes[chrom]})")
        by_chrom.setdefault(chrom, []).append((start, end, row))
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    chroms = sorted(by_chrom)
    bw = pyBigWig.open(str(tmp), "w")
    try:
        bw.addHeader([(c, sizes[c]) for c in chroms], maxZooms=10)
        for chrom in chroms:
            for group in _clusters(sorted(by_chrom[chrom], key=lambda w: w[0])):
                lo, hi = group[0][0], max(w[1] for w in group)
                total, count = np.zeros(hi - lo), np.zeros(hi - lo)
                for start, end, row in group:
                    total[start - lo:end - lo] += row
                    count[start - lo:end - lo] += 1
                # a cluster is a chain of overlapping windows: every base in [lo, hi) is covered
                bw.addEntries(chrom, int(lo), values=(total / count).tolist(), span=1, step=1)
        bw.close()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def write_bigwig_file(scores_path, out, chrom_sizes=None, genome=None, task=None, hypothetical_max=False):
    """``seqlift bigwig``: read a score file and write its per-base track."""
    data = read_scores(scores_path, task)
    sizes = read_chrom_sizes(chrom_sizes, genome)
    return write_bigwig(data["names"], per_base_values(data, hypothetical_max), sizes, out)
