"""Sequences in (and out): the one FASTA reader and writer, the one BED reader and the one one-hot encoder.

FASTA files (plain or bgzip-compressed) are read through pyfaidx's index, record by record, so a
large file is never loaded whole. BED regions become windows of the model's input length centred
on the region (or on the narrowPeak summit), named ``chrom:start-end`` like ``bedtools getfasta``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import SeqliftError

ALPHABET = "ACGT"  # the order of the one-hot columns everywhere in seqlift
_CODES = np.full(256, -1, dtype=np.int8)
for _i, _c in enumerate(ALPHABET):
    _CODES[ord(_c)] = _CODES[ord(_c.lower())] = _i
_CODES[ord("N")] = _CODES[ord("n")] = 4
_TABLE = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), np.float32)])  # row 4: N


def one_hot_encode(sequence: str, name: str = "sequence") -> np.ndarray:
    """``(L, 4)`` float32 one-hot for A, C, G, T (either case); N is an all-zero row.

    Any other character is an error naming the record and the 1-based position.
    """
    raw = np.frombuffer(sequence.encode("ascii", errors="replace"), dtype=np.uint8)
    codes = _CODES[raw]
    bad = np.flatnonzero(codes < 0)
    if bad.size:
        pos = int(bad[0])
        raise SeqliftError(f"record '{name}': invalid character {sequence[pos]!r} at position {pos + 1} "
                           "(only A, C, G, T and N are allowed)")
    return _TABLE[codes]


def one_hot_to_codes(one_hot: np.ndarray) -> np.ndarray:
    """``(..., L, 4)`` one-hot → letter codes 0-3, and 4 for an all-zero row (N), as int8."""
    codes = one_hot.argmax(-1).astype(np.int8)
    codes[one_hot.sum(-1) == 0] = 4
    return codes


def codes_to_one_hot(codes: np.ndarray) -> np.ndarray:
    """Letter codes 0-4 ``(..., L)`` → float32 one-hot ``(..., L, 4)``, code 4 (N) an all-zero row."""
    return _TABLE[codes]


def codes_to_string(codes) -> str:
    """Letter codes 0-4 ``(L,)`` → a string of A, C, G, T and N."""
    return "".join(f"{ALPHABET}N"[c] for c in codes)


def decode(one_hot: np.ndarray) -> str:
    """``(L, 4)`` one-hot back to a string (N for all-zero rows)."""
    return codes_to_string(one_hot_to_codes(one_hot))


@dataclass
class Record:
    name: str
    sequence: str


def _index_cache() -> Path:
    """Where FASTA indexes go for files in folders seqlift cannot write (kept and reused, like samtools' own)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seqlift" / "fai"


def _index_path(path: Path) -> Path:
    """``FILE.fai`` beside the FASTA, or, in a read-only folder, one in the user's cache keyed by the file's
    resolved path, size and modification time (so a changed FASTA gets a new index, and no run leaves a
    temporary folder behind)."""
    index = Path(f"{path}.fai")
    if index.exists() or os.access(path.parent, os.W_OK):
        return index
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    folder = _index_cache() / key
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeqliftError(f"{path}: its folder is read-only and the index cache {folder} cannot be made "
                           f"({exc.strerror}); index it with `samtools faidx` where it can be written") from None
    return folder / f"{path.name}.fai"


def _pyfaidx(path: Path, index: Path):
    """pyfaidx's reader of ``path`` through ``index`` (made when missing). It never rebuilds an index it finds:
    pyfaidx would judge one stale by modification times alone, and overwrite it; ``_index_mismatch`` checks it
    against the file instead."""
    import warnings

    import pyfaidx

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is older than FASTA file", category=RuntimeWarning)
        return pyfaidx.Fasta(str(path), indexname=str(index), as_raw=True, sequence_always_upper=False,
                             read_long_names=False, rebuild=False, build_index=True)


# How far from where its index says a header line may start (bytes): further, the index is not this file's.
_HEADER_LIMIT = 1 << 16
# Indexes checked against their FASTA in this process: (index, its and the FASTA's size, time and inode).
_CHECKED_INDEXES: set[tuple] = set()


def _read_raw(faidx, start: int, size: int) -> bytes:
    """``size`` bytes of the FASTA's text from ``start`` (uncompressed offsets: through pyfaidx's .gzi for bgzip)."""
    if faidx._bgzf:
        import bisect

        from Bio.bgzf import make_virtual_offset

        found = bisect.bisect_left(faidx.gzi_index, start)  # as pyfaidx's own reads find a block
        block = faidx.gzi_index[found - 1 if found else 0]
        faidx.file.seek(make_virtual_offset(block.cstart, start - block.ustart))
    else:
        faidx.file.seek(start)
    return faidx.file.read(size)


def _index_mismatch(fasta) -> str | None:
    try:
        return _index_mismatch_of(fasta)
    except (OSError, ValueError, EOFError) as exc:  # bgzip blocks a stale .gzi points into the middle of
        return f"the file cannot be read where it points ({type(exc).__name__})"


def _index_mismatch_of(fasta) -> str | None:
    """Why an open FASTA's index does not describe its file (a record added, removed or changed since it was
    made), or None. Checked against the file's bytes, never its modification time: each record's header line
    ``>NAME`` lies between the end the index gives the record before it (blank lines allowed) and the offset it
    gives the record, and after the last record's last base comes nothing but white space. A few bytes read per
    record."""
    faidx, end = fasta.faidx, 0
    for name, record in faidx.index.items():
        if not 0 < record.offset - end <= _HEADER_LIMIT:
            return f"record '{name}' does not start right after the record before it"
        header = _read_raw(faidx, end, record.offset - end).lstrip(b" \t\r\n")
        if header[:1] != b">" or not header.endswith(b"\n") or header[1:].split(maxsplit=1)[:1] != [name.encode()]:
            return f"the line before record '{name}' (byte {record.offset}) is not its header '>{name}'"
        end = record.bend
    if not faidx.index:
        return None
    if record.rlen:  # from the last record's last base (the final newline may be missing)
        tail = _read_raw(faidx, end - (record.lenb - record.lenc) - 1, _HEADER_LIMIT)
        ends_there = tail[:1] not in (b"", b"\n", b"\r") and not tail[1:].strip()
    else:
        tail = _read_raw(faidx, end, _HEADER_LIMIT)
        ends_there = not tail.strip()
    if not ends_there or len(tail) == _HEADER_LIMIT:
        return f"the file does not end with record '{name}' of {record.rlen} bp"
    return None


def _checked_index(path: Path, index: Path, fasta, created: bool):
    """``fasta`` once its ``index`` (and, for bgzip, its ``.gzi``) is found to match ``path`` (``_index_mismatch``).
    An index of the user's is reported, never changed; one in seqlift's cache is made again. created: ``index`` was
    made just now, from the file (so only a bgzip file's existing .gzi can be stale)."""
    key = tuple((str(p), s.st_size, s.st_mtime_ns, s.st_ino) for p, s in ((index, index.stat()), (path, path.stat())))
    if key in _CHECKED_INDEXES:
        return fasta
    problem = _index_mismatch(fasta)
    if problem is None:
        _CHECKED_INDEXES.add(key)
        return fasta
    fasta.close()
    if created or index != Path(f"{path}.fai"):  # seqlift's own: just made, or in its cache
        index.unlink(missing_ok=True)
        if not created:
            return _open_fasta(path)
    stale = fasta.faidx.gzi_indexname if created else f"{index}" + (" (and its .gzi)" if fasta.faidx._bgzf else "")
    raise SeqliftError(f"{stale}: this FASTA index does not match {path} ({problem}); remove it and seqlift indexes the "
                       "FASTA again")


def _open_fasta(path):
    path = Path(path)
    if not path.exists():
        raise SeqliftError(f"{path}: FASTA file not found")
    if not path.is_file():
        raise SeqliftError(f"{path}: not a regular file (a pipe, device or folder); seqlift indexes its FASTA "
                           "input, so save it to a file first")
    if path.stat().st_size == 0:
        raise SeqliftError(f"{path}: FASTA file is empty")
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head != b"\x1f\x8b" and not head.startswith(b">"):
        raise SeqliftError(f"{path}: not a FASTA file (the first line must start with '>')")
    index = _index_path(path)
    created = not index.exists()
    try:
        fasta = _pyfaidx(path, index)
    except Exception as exc:  # noqa: BLE001 - pyfaidx raises many types for malformed files
        if created:
            index.unlink(missing_ok=True)  # an index of a file that is not FASTA helps nobody
        elif _indexes_in_scratch(path):  # the FASTA is fine: the index the user has beside it is not
            raise SeqliftError(f"{index}: this FASTA index does not match {path} (stale or damaged); remove it "
                               "and seqlift indexes the FASTA again") from None
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "BGZF" in message or "bgzip" in message.lower():
            message = "gzip-compressed FASTA must be bgzip-compressed (bgzip, not gzip)"
        raise SeqliftError(f"{path}: malformed FASTA ({message[:200]})") from None
    if created and not fasta.faidx._bgzf:  # just made from the file itself
        return fasta
    return _checked_index(path, index, fasta, created)


def open_genome(path):
    """An indexed genome FASTA (pyfaidx, indexed on first use): ``genome[chrom][start:end]`` is a string."""
    return _open_fasta(path)


def _indexes_in_scratch(path: Path) -> bool:
    """Whether ``path`` indexes cleanly into a scratch folder (removed again): tells a bad index from bad FASTA."""
    with tempfile.TemporaryDirectory(prefix="seqlift-fai-") as scratch:
        try:
            _pyfaidx(path, Path(scratch) / f"{path.name}.fai")
        except Exception:  # noqa: BLE001
            return False
        return True


def read_fasta(path) -> Iterator[Record]:
    """Records of a FASTA file in file order, each read when it is reached."""
    fasta = _open_fasta(path)
    keys = list(fasta.keys())
    if not keys:
        raise SeqliftError(f"{path}: FASTA file has no records")
    for key in keys:
        yield Record(key, str(fasta[key][:]))


def write_fasta(path, names, sequences):
    """A plain FASTA file, one line per sequence."""
    with open(path, "w") as handle:
        for name, sequence in zip(names, sequences):
            handle.write(f">{name}\n{sequence}\n")


def count_fasta(path) -> int:
    return len(_open_fasta(path).keys())


def fasta_names(path) -> list[str]:
    """Record names of a FASTA file in file order (from its index: no sequence is read)."""
    return list(_open_fasta(path).keys())


def fasta_lengths(path) -> dict[str, int]:
    fasta = _open_fasta(path)
    return {k: len(fasta[k]) for k in fasta.keys()}


# How a held-fixed input flips with the sequence (``--extra-rc NAME=FLIP``): axis 0 of an input's shape is
# its positions, its last axis its strands or channels.
EXTRA_FLIPS = {
    "reverse": (0,),  # positions reversed, strands kept (the control track of a published BPNet)
    "swap": (-1,),  # strands swapped, positions kept
    "both": (0, -1),  # positions reversed and strands swapped (a stranded track's reverse complement)
}
_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def reverse_complement(sequence):
    """The reverse complement of a DNA string (case and N kept), or of ACGT one-hot ``(..., L, 4)``.

    One-hot (and per-base scores laid out like it): positions reversed, A↔T and C↔G. Its own inverse,
    so it also maps scores of a reverse complement back onto the forward strand.
    """
    if isinstance(sequence, str):
        return sequence.translate(_COMPLEMENT)[::-1]
    return np.ascontiguousarray(np.asarray(sequence)[..., ::-1, ::-1])


@dataclass
class Region:
    """A window of the genome; ``strand`` '-' is scored on its reverse complement."""

    chrom: str
    start: int
    end: int
    strand: str = "+"
    label: str | None = None  # the BED name column, when it has one

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return f"{self.chrom}:{self.start}-{self.end}" + ("(-)" if self.strand == "-" else "")


class OffChromosome(SeqliftError):
    """A BED region whose window is not on the genome (what --skip-invalid skips)."""


def _bed_region(fields: list[str], where: str, chrom_sizes: dict[str, int], length: int) -> Region:
    """The window of one BED line (fields split on tabs). A narrowPeak line (exactly ten columns) is centred on
    its summit, the tenth column's offset from the start (-1: none); in BED12 that column is blockCount, not a
    position, and any other BED line is centred on the region's middle."""
    if len(fields) < 3:
        raise SeqliftError(f"{where}: a BED line needs chrom, start and end separated by tabs")
    try:
        start, end = int(fields[1]), int(fields[2])
    except ValueError:
        raise SeqliftError(f"{where}: start and end must be integers") from None
    if end <= start or start < 0:
        raise SeqliftError(f"{where}: end must be greater than start, both non-negative")
    centre = (start + end) // 2
    if len(fields) == 10 and fields[9] != "-1":
        if not fields[9].isdigit() or int(fields[9]) >= end - start:
            raise SeqliftError(f"{where}: the summit (column 10) must be -1 or an offset inside the "
                               f"{end - start} bp peak, not {fields[9]!r}")
        centre = start + int(fields[9])
    strand = fields[5] if len(fields) >= 6 else "."
    if strand not in ("+", "-", "."):
        raise SeqliftError(f"{where}: strand (column 6) must be +, - or ., not {strand!r}")
    label = fields[3] if len(fields) >= 4 and fields[3] not in ("", ".") else None
    chrom = fields[0]
    if chrom not in chrom_sizes:
        raise OffChromosome(f"{where}: chromosome '{chrom}' is not in the genome")
    w_start = centre - length // 2
    w_end = w_start + length
    if w_start < 0 or w_end > chrom_sizes[chrom]:
        raise OffChromosome(f"{where}: the {length} bp window {chrom}:{w_start}-{w_end} falls outside "
                         f"{chrom} (length {chrom_sizes[chrom]}); --skip-invalid skips such regions")
    return Region(chrom, w_start, w_end, "-" if strand == "-" else "+", label)


def is_bed(path) -> bool:
    """Whether ``path`` names BED regions (``.bed``, ``.narrowPeak``, optionally gzipped) rather than a FASTA."""
    return Path(str(path)).name.lower().removesuffix(".gz").endswith((".bed", ".narrowpeak"))


def read_bed_windows(bed_path, chrom_sizes: dict[str, int], length: int,
                     skip_invalid=False) -> tuple[list[Region], int]:
    """Windows of ``length`` bp centred on each BED region (on the summit for narrowPeak).

    A narrowPeak line's (ten columns) tenth column is the summit offset from the region start (-1: none);
    any other BED line (BED3-9, BED12) is centred on the region's middle. The fourth
    column (when present and not '.') names the record; a sixth column '-' scores the region's
    reverse complement. A region on an unknown chromosome or whose window falls outside it is an
    error naming the line, or is skipped with ``skip_invalid``. Returns the regions and the number
    skipped.
    """
    bed_path = Path(bed_path)
    if not bed_path.exists():
        raise SeqliftError(f"{bed_path}: BED file not found")
    regions, skipped = [], 0
    opener = gzip.open if bed_path.name.lower().endswith(".gz") else open
    try:
        with opener(bed_path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip() or line.startswith(("#", "track", "browser")):
                    continue
                try:
                    regions.append(_bed_region(line.rstrip("\r\n").split("\t"), f"{bed_path}:{number}",
                                               chrom_sizes, length))
                except OffChromosome:
                    if not skip_invalid:
                        raise
                    skipped += 1
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise SeqliftError(f"{bed_path}: not a BED text file ({type(exc).__name__})") from None
    if not regions:
        raise SeqliftError(f"{bed_path}: BED file has no regions" + (f" ({skipped} skipped)" if skipped else ""))
    return regions, skipped


def read_regions(genome_path, regions: list[Region]) -> Iterator[Record]:
    """Sequences of ``regions`` from an indexed genome FASTA (reverse-complemented on '-'), each read when reached."""
    fasta = _open_fasta(genome_path)
    for region in regions:
        sequence = str(fasta[region.chrom][region.start:region.end])
        yield Record(region.name, reverse_complement(sequence) if region.strand == "-" else sequence)


def encode_records(records, length: int, path) -> tuple[list[str], np.ndarray]:
    """Names and ``(n, L, 4)`` one-hot of records, checking each length against the model's."""
    names, arrays = [], []
    for record in records:
        if len(record.sequence) != length:
            raise SeqliftError(f"{path}: record '{record.name}' has length {len(record.sequence)} but the model "
                               f"takes {length} bp")
        names.append(record.name)
        arrays.append(one_hot_encode(record.sequence, record.name))
    if not arrays:
        return names, np.zeros((0, length, 4), np.float32)
    return names, np.stack(arrays)


def parse_coordinates(name: str):
    """``chrom:start-end`` → (chrom, start, end), or None when the name is not coordinates."""
    chrom, sep, span = name.rpartition(":")
    if not sep or "-" not in span or not chrom or any(c.isspace() for c in chrom):
        return None  # a chromosome name never holds white space (a tab would break every BED line)
    start, _, end = span.partition("-")
    if not (start.isdigit() and end.isdigit()) or int(end) <= int(start):
        return None
    return chrom, int(start), int(end)
