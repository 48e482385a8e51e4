"""bigWig tracks of per-base scores at genome coordinates taken from ``chrom:start-end`` names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import SeqliftError
from .outputs import Outputs
from .scorefile import ScoreFile
from .sequences import fasta_lengths, parse_coordinates


def read_chrom_sizes(chrom_sizes=None, genome=None) -> dict[str, int]:
    """Chromosome sizes from a two-column sizes file or a genome FASTA (its index)."""
    if chrom_sizes:
        path = Path(chrom_sizes)
        if not path.exists():
            raise SeqliftError(f"{path}: chromosome sizes file not found")
        sizes = {}
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError) as exc:
            raise SeqliftError(f"{path}: not a chromosome sizes text file ({type(exc).__name__})") from None
        for number, line in enumerate(text.splitlines(), start=1):
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


def per_base_values(contrib: np.ndarray, hypothetical: np.ndarray | None = None) -> np.ndarray:
    """``(n, L)``: projected contribution summed over bases, or (given ``hypothetical``) the
    hypothetical score of the strongest base."""
    if hypothetical is not None:
        pick = np.abs(hypothetical).argmax(-1)
        return np.take_along_axis(hypothetical, pick[..., None], -1)[..., 0]
    return contrib.sum(-1)


def genome_windows(names, sizes, coordinates=None):
    """``(chrom, start, end)`` of every record (from ``coordinates`` or its name), checked against the sizes."""
    windows = []
    for i, name in enumerate(names):
        coords = coordinates[i] if coordinates is not None else parse_coordinates(str(name))
        if coords is None:
            raise SeqliftError(f"record '{name}': name is not genome coordinates chrom:start-end")
        chrom, start, end = coords
        if chrom not in sizes:
            raise SeqliftError(f"record '{name}': chromosome '{chrom}' is not in the chromosome sizes")
        if end > sizes[chrom]:
            raise SeqliftError(f"record '{name}': ends past {chrom} (length {sizes[chrom]})")
        windows.append((chrom, start, end))
    return windows


def write_bigwig(names, read_values, length: int, sizes: dict[str, int], out, block=4096, coordinates=None,
                 reverse=None, inputs=()):
    """Per-base values at the coordinates of ``names``; overlapping windows are averaged per base.

    ``read_values(indices)`` returns the ``(len(indices), L)`` values of those records, so records
    are read in coordinate order a block at a time and a run of overlapping windows is written as
    soon as it ends: memory is set by the block and the longest run, not by the number of records.
    coordinates: ``(chrom, start, end)`` per record instead of parsing names. reverse: a boolean per
    record, True for a record scored on the minus strand (its values are flipped back onto the plus
    strand). inputs: files ``out`` may not overwrite.
    """
    windows = genome_windows(names, sizes, coordinates)
    for name, (_, start, end) in zip(names, windows):
        if end - start != length:
            raise SeqliftError(f"record '{name}': spans {end - start} bp but has {length} scores")
    chroms = sorted({w[0] for w in windows})
    order = sorted(range(len(windows)), key=lambda i: (windows[i][0], windows[i][1]))
    with Outputs(inputs) as outputs:
        tmp = outputs.file(out)
        import pyBigWig  # opened only on a path known to be writable: libBigWig crashes on failure

        covered = sum(end - start for _, start, end in windows)
        outputs.ensure_room(tmp, covered * 6)  # float32 per base, compressed, plus zoom levels: < 6 bytes
        bw = pyBigWig.open(str(tmp), "w")
        if bw is None:
            raise SeqliftError(f"{out}: cannot write the bigWig file")
        try:
            _write_runs(bw, sizes, chroms, windows, order, read_values, block, reverse)
        finally:
            bw.close()
    return Path(out)


def _write_runs(bw, sizes, chroms, windows, order, read_values, block, reverse):
    bw.addHeader([(c, sizes[c]) for c in chroms], maxZooms=10)
    run = None  # [chrom, lo, total, count] of the current run of overlapping windows

    def flush():
        # a run is a chain of overlapping windows: every base in it is covered
        bw.addEntries(run[0], int(run[1]), values=(run[2] / run[3]).tolist(), span=1, step=1)

    for b in range(0, len(order), block):
        ids = order[b:b + block]
        for i, row in zip(ids, read_values(ids)):
            if reverse is not None and reverse[i]:
                row = row[::-1]
            chrom, start, end = windows[i]
            if run is None or chrom != run[0] or start >= run[1] + len(run[2]):
                if run is not None:
                    flush()
                run = [chrom, start, np.zeros(0), np.zeros(0)]
            grow = end - run[1] - len(run[2])
            if grow > 0:
                run[2] = np.concatenate([run[2], np.zeros(grow)])
                run[3] = np.concatenate([run[3], np.zeros(grow)])
            run[2][start - run[1]:end - run[1]] += row
            run[3][start - run[1]:end - run[1]] += 1
    if run is not None:
        flush()


def write_bigwig_file(scores_path, out, chrom_sizes=None, genome=None, task=None, hypothetical_max=False, inputs=()):
    """``seqlift bigwig``: a score file's per-base track, read in blocks. ``inputs``: more files ``out`` may
    not overwrite (the score file, sizes and genome are always among them)."""
    inputs = [scores_path, chrom_sizes, genome, *inputs]
    Outputs(inputs).check_file(out)
    sizes = read_chrom_sizes(chrom_sizes, genome)
    with ScoreFile(scores_path, task) as scores:
        def read_values(ids):
            contrib = scores.rows("contrib", ids)
            return per_base_values(contrib, scores.rows("hypothetical", ids) if hypothetical_max else None)

        regions = scores.regions()
        coordinates = reverse = None
        if regions is not None:
            coordinates = [(c, s, s + scores.length) for c, s, _ in regions]
            reverse = [strand == "-" for _, _, strand in regions]
        return write_bigwig(scores.names, read_values, scores.length, sizes, out, coordinates=coordinates,
                            reverse=reverse, inputs=inputs)
