"""bigWig tracks of per-base scores at genome coordinates taken from ``chrom:start-end`` names."""

from __future__ import annotations

from dataclasses import dataclass
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


# libBigWig stores chromosome sizes and positions as unsigned 32-bit numbers.
BIGWIG_MAX_LENGTH = 2**32 - 1


@dataclass(frozen=True)
class Windows:
    """Genome windows as arrays: ``chroms`` (names), and per record ``chrom`` (index into chroms), ``start``, ``end``."""

    chroms: list[str]
    chrom: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def coordinate_order(self) -> np.ndarray:
        """Record indices sorted by chromosome name, then start (stable: ties keep file order)."""
        rank = np.argsort(np.argsort(self.chroms, kind="stable"))
        return np.lexsort((self.start, rank[self.chrom]))


def genome_windows(names, sizes, coordinates=None) -> Windows:
    """Every record's window (from ``coordinates`` ``(chrom, start, end)`` or its ``chrom:start-end`` name),
    checked against the chromosome sizes."""
    codes: dict[str, int] = {}
    chrom, start, end = (np.empty(len(names), np.int64) for _ in range(3))
    for i, name in enumerate(names):
        coords = coordinates[i] if coordinates is not None else parse_coordinates(str(name))
        if coords is None:
            raise SeqliftError(f"record '{name}': name is not genome coordinates chrom:start-end")
        if coords[0] not in sizes:
            raise SeqliftError(f"record '{name}': chromosome '{coords[0]}' is not in the chromosome sizes")
        chrom[i], start[i], end[i] = codes.setdefault(coords[0], len(codes)), coords[1], coords[2]
    windows = Windows(list(codes), chrom, start, end)
    limits = np.array([sizes[c] for c in windows.chroms], np.int64)
    if len(limits) and limits.max() > BIGWIG_MAX_LENGTH:
        c = windows.chroms[int(limits.argmax())]
        raise SeqliftError(f"chromosome '{c}': its size {sizes[c]} is beyond what a bigWig file can hold "
                           f"({BIGWIG_MAX_LENGTH} bp); check the chromosome sizes")
    before = np.flatnonzero((start < 0) | (end <= start))  # libBigWig crashes on these, it never reports them
    if len(before):
        i = before[0]
        raise SeqliftError(f"record '{names[i]}': window {windows.chroms[chrom[i]]}:{start[i]}-{end[i]} is not on "
                           "the genome (a start below 0, or an end not after the start)")
    past = np.flatnonzero(end > limits[chrom]) if len(names) else []
    if len(past):
        name, c = names[past[0]], windows.chroms[chrom[past[0]]]
        raise SeqliftError(f"record '{name}': ends past {c} (length {sizes[c]})")
    return windows


def write_bigwig(names, read_values, length: int, sizes: dict[str, int], out, block=4096, coordinates=None,
                 reverse=None, inputs=(), force=False):
    """Per-base values at the coordinates of ``names``; overlapping windows are averaged per base.

    ``read_values(indices)`` returns the ``(len(indices), L)`` values of those records. Records are read
    in coordinate order a block at a time, and bases are written as soon as no later window can reach
    them, so memory is set by the block and the number of records, never by the genome's size or by how
    far a chain of overlapping windows runs. coordinates: ``(chrom, start, end)`` per record instead of
    parsing names. reverse: a boolean per record, True for a record scored on the minus strand (its
    values are flipped back onto the plus strand). inputs: files ``out`` may not overwrite. force: replace
    an existing file at ``out`` (a bigWig cannot say who wrote it, so without ``force`` any is refused).
    """
    windows = genome_windows(names, sizes, coordinates)
    wrong = np.flatnonzero(windows.end - windows.start != length)
    if len(wrong):
        i = wrong[0]
        raise SeqliftError(f"record '{names[i]}': spans {windows.end[i] - windows.start[i]} bp but has {length} scores")
    with Outputs(inputs) as outputs:
        tmp = outputs.file(out, ours=_any_file if force else None)
        import pyBigWig  # opened only on a path known to be writable: libBigWig crashes on failure

        outputs.ensure_room(tmp, int((windows.end - windows.start).sum()) * 6)  # float32 a base, compressed, zooms: < 6 bytes
        bw = pyBigWig.open(str(tmp), "w")
        if bw is None:
            raise SeqliftError(f"{out}: cannot write the bigWig file")
        try:
            bw.addHeader([(c, sizes[c]) for c in sorted(windows.chroms)], maxZooms=10)
            track = _Track(bw)
            order = windows.coordinate_order()
            for b in range(0, len(order), block):
                ids = order[b:b + block]
                for i, row in zip(ids, read_values(ids)):
                    flip = reverse is not None and reverse[i]
                    track.add(windows.chroms[windows.chrom[i]], int(windows.start[i]), row[::-1] if flip else row)
            track.finish()
        finally:
            bw.close()
    return Path(out)


class _Track:
    """Per-base sums and counts over the current run of overlapping or abutting windows, which arrive in start
    order: every base left of the newest window's start is final, and is written once a megabase of them has
    gathered (or the run ends), so the buffer holds about a megabase plus one window."""

    FLUSH_BASES = 1 << 20

    def __init__(self, bw):
        self.bw = bw
        self.chrom, self.lo, self.hi = None, 0, 0  # the run covers [lo, hi) of chrom; nothing before lo is held
        self.total = np.zeros(0)
        self.count = np.zeros(0)

    def add(self, chrom: str, start: int, row: np.ndarray):
        if chrom != self.chrom or start > self.hi:
            self.finish()
            self.chrom, self.lo, self.hi = chrom, start, start
        elif start - self.lo >= self.FLUSH_BASES:
            self._write(start)
        end = start + len(row)
        if end - self.lo > len(self.total):
            size = max(2 * len(self.total), end - self.lo)
            self.total = np.concatenate([self.total, np.zeros(size - len(self.total))])
            self.count = np.concatenate([self.count, np.zeros(size - len(self.count))])
        self.total[start - self.lo:end - self.lo] += row
        self.count[start - self.lo:end - self.lo] += 1
        self.hi = max(self.hi, end)

    def _write(self, upto: int):
        """Write the bases ``[lo, upto)`` (each covered by at least one window) and drop them from the buffer."""
        n, used = upto - self.lo, self.hi - self.lo
        self.bw.addEntries(self.chrom, self.lo, values=self.total[:n] / self.count[:n], span=1, step=1)
        for buffer in (self.total, self.count):
            buffer[:used - n] = buffer[n:used]
            buffer[used - n:used] = 0
        self.lo = upto

    def finish(self):
        if self.chrom is not None and self.hi > self.lo:
            self._write(self.hi)
        self.chrom = None


def write_bigwig_file(scores_path, out, chrom_sizes=None, genome=None, task=None, hypothetical_max=False, inputs=(),
                      force=False):
    """``seqlift bigwig``: a score file's per-base track, read in blocks. ``inputs``: more files ``out`` may
    not overwrite (the score file, sizes and genome are always among them); force: as in ``write_bigwig``."""
    inputs = [scores_path, chrom_sizes, genome, *inputs]
    Outputs(inputs).check_file(out, ours=_any_file)  # inputs, folders (an input is refused even with force)
    if Path(out).exists() and not force:
        raise SeqliftError(f"--out {out}: exists, and a bigWig cannot say who wrote it; add --force to replace it, "
                           "or choose another name")
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
                            reverse=reverse, inputs=inputs, force=force)


def _any_file(path) -> bool:
    return True
