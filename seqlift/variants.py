"""Variants in, windows out: a VCF or TSV of variants read, checked against the genome and cut into ref and alt
windows of the model's input length (the input side of ``seqlift variants``; ``effects`` scores them).

Windows (docs in the README, "Variant effects"): for a model of input length L, the ref window of a variant at
1-based ``POS`` starts at ``POS − 1 − L//2`` (0-based), so the variant's first base sits at index ``L//2``. The alt
window keeps that start: the bases before the variant, the ALT allele, then the genome after the REF allele, cut or
extended on the right to L. SNVs, deletions and insertions alike.
"""

from __future__ import annotations

import contextlib
import gzip
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import references as refs_mod
from . import sequences as seqs
from .errors import SeqliftError

BASES = frozenset("ACGTN")
# The null shuffles' seed stream is kept apart from the references' (seed, index) stream: the golden-ratio
# constant, so that --null's shuffles of a SNV's window are not its reference shuffles.
NULL_SEED_OFFSET = 0x9E3779B9


@dataclass(frozen=True)
class Variant:
    """One ALT allele of a record: ``pos`` 1-based as in VCF; ``ref`` and ``alt`` upper-case bases."""

    chrom: str
    pos: int
    ref: str
    alt: str
    id: str

    @property
    def where(self) -> str:
        return f"variant {self.id} ({self.chrom}:{self.pos})"


class InvalidVariant(SeqliftError):
    """A variant whose REF is not the genome's, or whose window is not on the genome (what --skip-invalid skips)."""


# ----------------------------------------------------------------------------- reading
def _is_symbolic(allele: str | None) -> bool:
    """``<DEL>``, ``*``, breakends (``A[chr2:5[``), a missing ``.``: no sequence to put in a window."""
    return not allele or allele in (".", "*") or allele.startswith("<") or "[" in allele or "]" in allele


def _variants_of(chrom: str, pos: int, ref: str, alts, vid: str | None, where: str) -> tuple[list[Variant], int]:
    """One ``Variant`` per sequence ALT of a record (a multi-allelic one gives several), and the symbolic ones
    skipped."""
    ref = ref.upper()
    if not ref or set(ref) - BASES:
        raise SeqliftError(f"{where}: REF {ref!r} is not A, C, G, T or N bases")
    if pos < 1:
        raise SeqliftError(f"{where}: POS {pos} must be 1 or more (1-based, as in VCF)")
    out, skipped = [], 0
    for alt in alts or [None]:
        if _is_symbolic(alt):
            skipped += 1
            continue
        alt = alt.upper()
        if set(alt) - BASES:
            raise SeqliftError(f"{where}: ALT {alt!r} is not A, C, G, T or N bases (nor a symbolic allele)")
        name = vid if vid and vid != "." else f"{chrom}:{pos}:{ref}:{alt}"
        out.append(Variant(chrom, pos, ref, alt, name))
    return out, skipped


def _is_vcf(path: Path) -> bool:
    """A VCF starts with ``##fileformat=VCF`` (plain, bgzip or gzip); a TSV does not."""
    opener = gzip.open if _gzipped(path) else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            return handle.readline().startswith("##fileformat=VCF")
    except (OSError, EOFError):
        return False


def _gzipped(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _read_vcf(path: Path) -> tuple[list[Variant], int]:
    """Variants of a VCF (plain, bgzip or plain gzip) read by pysam (htslib's parser, the one bcftools uses).

    The file is given to pysam as a stream (an open file): htslib reads all three alike in one pass, where a path
    makes pysam ask for the position after the header, which a plain-gzip file cannot give (NotImplementedError)."""
    import pysam

    variants, skipped = [], 0
    verbosity = pysam.set_verbosity(0)  # htslib's own stderr lines (no index, parse errors): ours say it in one line
    try:
        with open(path, "rb") as handle:
            vcf = pysam.VariantFile(handle)
            try:
                for number, record in enumerate(vcf, start=1):
                    found, n = _variants_of(record.chrom, record.pos, record.ref or "", record.alts, record.id,
                                            f"{path}: record {number} ({record.chrom}:{record.pos})")
                    variants += found
                    skipped += n
            finally:
                with contextlib.suppress(OSError, TypeError):  # closing a failed stream fails again (naming the
                    vcf.close()  # file object: a TypeError): the first error is the one to report
    except (ValueError, OSError) as exc:
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        if "does not have valid header" in message:  # pysam's words name the file object
            message = "no valid header: ##fileformat=VCF... and #CHROM lines"
        raise SeqliftError(f"{path}: malformed VCF ({message})") from None
    finally:
        pysam.set_verbosity(verbosity)
    return variants, skipped


def _read_tsv(path: Path) -> tuple[list[Variant], int]:
    """Variants of a TSV ``chrom pos ref alt [id]`` (1-based pos; '#' lines and a ``chrom`` header skipped;
    ALT may list several alleles, comma-separated)."""
    variants, skipped = [], 0
    opener = gzip.open if _gzipped(path) else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                if not line.strip() or line.startswith("#") or line.lower().startswith("chrom\t"):
                    continue
                fields = line.split("\t")
                where = f"{path}:{number}"
                if len(fields) not in (4, 5):
                    raise SeqliftError(f"{where}: expected tab-separated chrom, pos, ref, alt and an optional id, "
                                       f"found {len(fields)} column(s)")
                if not fields[1].isdigit():
                    raise SeqliftError(f"{where}: pos {fields[1]!r} is not a 1-based position")
                found, n = _variants_of(fields[0], int(fields[1]), fields[2], fields[3].split(","),
                                        fields[4] if len(fields) == 5 else None, where)
                variants += found
                skipped += n
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise SeqliftError(f"{path}: not a VCF or a TSV of variants ({type(exc).__name__})") from None
    return variants, skipped


def read_variants(path) -> list[Variant]:
    """Every ALT allele of a VCF (plain, bgzip or gzip) or a TSV ``chrom pos ref alt [id]``, in file order.

    Symbolic alleles (``<DEL>``, ``*``, breakends) are skipped with a count in a warning; a missing ID becomes
    ``chrom:pos:ref:alt``.
    """
    path = Path(path)
    if not path.is_file():
        raise SeqliftError(f"{path}: variant file not found")
    variants, skipped = _read_vcf(path) if _is_vcf(path) else _read_tsv(path)
    if not variants:
        raise SeqliftError(f"{path}: no variants with sequence alleles"
                           + (f" ({skipped} symbolic or missing ALT allele(s) skipped)" if skipped else ""))
    if skipped:
        warnings.warn(f"{path}: skipped {skipped} symbolic or missing ALT allele(s) (<DEL>, *, breakends)",
                      stacklevel=2)
    return variants


# ----------------------------------------------------------------------------- windows
def window_start(pos: int, length: int) -> int:
    """0-based start of a variant's windows: its first base at index ``length // 2``."""
    return pos - 1 - length // 2


def span_length(variant: Variant, length: int) -> int:
    """Genome bases the two windows read: L, plus the deleted length that the alt window extends by."""
    return length + max(0, len(variant.ref) - len(variant.alt))


def place_alleles(span: str, variant: Variant, length: int) -> tuple[str, str]:
    """The ref and alt windows from a genome span starting at the window start (``span_length`` bases):
    REF or ALT at ``length // 2``, then the span after REF, cut to ``length``."""
    centre = length // 2
    after = span[centre + len(variant.ref):]
    ref = (span[:centre] + variant.ref + after)[:length]
    alt = (span[:centre] + variant.alt + after)[:length]
    return ref, alt


def variant_windows(genome, variant: Variant, length: int, sizes: dict[str, int]) -> tuple[str, str]:
    """The ref and alt windows of ``variant`` (strings of ``length`` bases) from an open genome, after checking
    its chromosome, that REF equals the genome (case-insensitive) and that both windows lie on the chromosome.
    Raises ``InvalidVariant`` naming the variant."""
    if variant.chrom not in sizes:
        raise InvalidVariant(f"{variant.where}: chromosome '{variant.chrom}' is not in the genome")
    size = sizes[variant.chrom]
    start = window_start(variant.pos, length)
    stop = start + span_length(variant, length)
    genome_ref = str(genome[variant.chrom][variant.pos - 1:variant.pos - 1 + len(variant.ref)])
    if genome_ref.upper() != variant.ref:
        raise InvalidVariant(f"{variant.where}: REF {variant.ref} does not match the genome's "
                             f"{genome_ref.upper() or '(nothing: past the chromosome end)'}; check the genome build")
    if start < 0 or stop > size:
        raise InvalidVariant(f"{variant.where}: its {length} bp windows {variant.chrom}:{max(start, 0)}-{stop} "
                             f"fall off {variant.chrom} (length {size})")
    span = str(genome[variant.chrom][start:stop])
    return span[:length], place_alleles(span, variant, length)[1]  # the ref window is the genome's, case kept


@dataclass(frozen=True)
class VariantSource:
    """The variants to score, checked against the genome, as a ``pipeline.SequenceSource`` serves sequences:
    ``chunks`` yields ``(ids, ref one-hot (n, L, 4), alt one-hot (n, L, 4), variants)``; nothing is encoded
    before it is reached."""

    path: str
    length: int
    genome: str
    variants: tuple
    n_skipped: int = 0
    regions = None  # no BED regions: a score file's chrom/start datasets do not apply
    windows_per_row = 2  # ref and alt: both windows' references are in flight (scale.batch_size)

    @classmethod
    def open(cls, path, length: int, genome=None, skip_invalid=False) -> VariantSource:
        """Read every variant and check it on the genome (REF, chromosome, windows) before any work."""
        if not genome:
            raise SeqliftError("seqlift variants needs --genome GENOME.fa (the variants' reference genome)")
        variants = read_variants(path)
        fasta, sizes = seqs.open_genome(genome), seqs.fasta_lengths(genome)
        kept, skipped = [], 0
        for variant in variants:
            try:
                variant_windows(fasta, variant, length, sizes)
            except InvalidVariant as exc:
                if not skip_invalid:
                    raise SeqliftError(f"{path}: {exc}; --skip-invalid skips such variants") from None
                skipped += 1
                continue
            kept.append(variant)
        if not kept:
            raise SeqliftError(f"{path}: no variant left to score: all {skipped} were skipped (--skip-invalid)")
        if skipped:
            warnings.warn(f"{path}: skipped {skipped} variant(s) whose REF does not match the genome or whose "
                          "windows fall off their chromosome (--skip-invalid)", stacklevel=2)
        return cls(str(path), length, str(genome), tuple(kept), skipped)

    @property
    def n_sequences(self) -> int:
        return len(self.variants)

    def chunks(self, size: int):
        """``(ids, ref (n, L, 4), alt (n, L, 4), variants)`` for successive chunks of at most ``size`` variants."""
        fasta, sizes = seqs.open_genome(self.genome), seqs.fasta_lengths(self.genome)
        for first in range(0, len(self.variants), size):
            chunk = self.variants[first:first + size]
            windows = [variant_windows(fasta, v, self.length, sizes) for v in chunk]
            ref = np.stack([seqs.one_hot_encode(r, v.id) for (r, _), v in zip(windows, chunk)])
            alt = np.stack([seqs.one_hot_encode(a, v.id) for (_, a), v in zip(windows, chunk)])
            yield [v.id for v in chunk], ref, alt, chunk

    def composition(self) -> np.ndarray:
        """ACGT composition of every ref window (a frequency reference's default background)."""
        return refs_mod.composition(ref for _, ref, _, _ in self.chunks(1024))

    def spans(self, chunk) -> list[str]:
        """The genome span each variant of ``chunk`` reads (``span_length`` bases from the window start)."""
        fasta = seqs.open_genome(self.genome)
        return [str(fasta[v.chrom][window_start(v.pos, self.length):
                                   window_start(v.pos, self.length) + span_length(v, self.length)]) for v in chunk]


def null_windows(span: str, variant: Variant, length: int, k: int, seed: int, index: int) -> tuple[np.ndarray,
                                                                                                      np.ndarray]:
    """``k`` shuffled controls of a variant (variant-scorer's shuffled control): its genome span
    (``span_length`` bases) dinucleotide-shuffled ``k`` times with a seed drawn from ``(seed + NULL_SEED_OFFSET,
    index)``, then REF and ALT placed at ``length // 2`` exactly as on the genome (``place_alleles``).
    Returns ref and alt one-hot, each ``(k, L, 4)``."""
    one_hot = seqs.one_hot_encode(span, variant.id)[None]
    shuffled = refs_mod.shuffled_references(one_hot, k, (seed + NULL_SEED_OFFSET) % 2**32, index, [variant.id])[0]
    refs, alts = [], []
    for row in shuffled:
        ref, alt = place_alleles(seqs.decode(row), variant, length)
        refs.append(seqs.one_hot_encode(ref, variant.id))
        alts.append(seqs.one_hot_encode(alt, variant.id))
    return np.stack(refs), np.stack(alts)
