"""Where each motif sits: Fi-NeMo's hit caller (the ``finemo`` library) on a score file's contributions.

seqlift does not re-implement hit calling. It feeds Fi-NeMo (``finemo.hitcaller.fit_contribs``: the projected
contributions reconstructed as a sparse non-negative sum of the motifs' CWMs, both strands, each trimmed to its
core) one chunk of sequences at a time, and gives the hits back in the user's coordinates: positions in each
scored sequence and, for a BED-scored file or ``chrom:start-end`` names, on the genome (windows scored on the
minus strand mapped back onto the plus strand).

Motifs come from a ``seqlift motifs`` folder (its ``modisco_results.h5``, named by its ``motifs.tsv``), a
modisco-lite results file, or a MEME file (each PWM as a CWM: its logo's letter heights, see ``meme_cwm``).
Fi-NeMo runs on torch: ``pip install 'seqlift[hits]'``; nothing else in seqlift imports it.
"""

from __future__ import annotations

import contextlib
import heapq
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SeqliftError
from .motifs import (MOTIFS_SOURCE, Pattern, check_seqlets_belong, genome_placement, on_plus_strand, oriented,
                     read_motif_database, read_seqlets, trim_core)
from .outputs import Outputs
from .files import VARIANTS, file_kind
from .rowfile import check_source, write_source
from .scorefile import ScoreFile
from .variantfile import VariantFile

# Fi-NeMo's own defaults (``finemo call-hits``): the L1 penalty, and the core a CWM is trimmed to (positions whose
# summed |contribution| reaches this fraction of the largest).
LAMBDA = 0.7
TRIM_THRESHOLD = 0.3
CHUNK = 2000  # sequences per call: Fi-NeMo's batch; memory is set by it, not by the file
TOP_PAIRS = 6  # spacing histograms drawn for the most frequently co-occurring pairs of motifs
# Every file seqlift hits writes in its folder, scores' and variants' alike: with --force, those an earlier run left
# that this one does not write are removed (``Outputs.folder``'s owns), so the folder never mixes two runs.
OWNS = ("hits.tsv", "hits.bed", "hits_source.json", "motif_summary.tsv", "cooccurrence.tsv", "cooccurrence.png",
        "spacing.tsv", "spacing_*__*.png", "variant_hits.tsv", "variant_hits_summary.tsv")
SOURCE = "hits_source.json"  # the score file the hits are of (its path and sha256), and the motifs
HITS_COLUMNS = ["name", "index", "chrom", "start", "end", "strand", "motif", "match", "coefficient", "correlation",
                "importance", "seq_start", "seq_end", "seq_strand"]


@dataclass(frozen=True)
class MotifSet:
    """Motifs as Fi-NeMo takes them: motif ``k`` forward at row ``2k`` and as its reverse complement at ``2k + 1``.

    names: ``(M,)``; matches: each motif's best database match, or ''. cwms: ``(2M, 4, W)`` float32 of unit norm;
    masks: ``(2M, W)`` int8, 1 on the core; core: ``(2M, 2)`` its ``[start, end)``.
    """

    names: tuple[str, ...]
    matches: tuple[str, ...]
    cwms: np.ndarray
    masks: np.ndarray
    core: np.ndarray
    source: Path

    @property
    def width(self) -> int:
        return self.cwms.shape[2]


def _pairs(forward: dict[str, np.ndarray], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward CWMs ``{name: (4, W)}`` (one width) → Fi-NeMo's rows: each normalized, followed by its reverse complement,
    with their cores (finemo's ``trim_motif``)."""
    from finemo.data_io import trim_motif

    cwms, masks, core = [], [], []
    for name, cwm in forward.items():
        norm = np.sqrt((cwm ** 2).sum())
        if not np.isfinite(norm) or norm == 0:
            raise SeqliftError(f"--motifs: motif '{name}' carries no information (a flat or empty matrix); leave it "
                               "out")
        cwm = cwm / norm
        start, end = trim_motif(cwm, threshold)
        width = cwm.shape[1]
        for matrix, span in ((cwm, (start, end)), (cwm[::-1, ::-1], (width - end, width - start))):
            mask = np.zeros(width, np.int8)
            mask[span[0]:span[1]] = 1
            cwms.append(matrix)
            masks.append(mask)
            core.append(span)
    return np.stack(cwms).astype(np.float32), np.stack(masks), np.array(core, np.int64)


def meme_cwm(pwm: np.ndarray) -> np.ndarray:
    """A MEME motif's probabilities ``(4, W)`` as a CWM: each letter's height in its logo, probability × information
    content (bits), the evidence a base at that position carries."""
    p = np.clip(np.asarray(pwm, np.float64), 1e-9, None)
    p = p / p.sum(0, keepdims=True)
    return p * (2 + (p * np.log2(p)).sum(0, keepdims=True))


def read_motifs(path, threshold: float = TRIM_THRESHOLD) -> MotifSet:
    """The motifs of a ``seqlift motifs`` folder, a modisco-lite ``.h5`` or a MEME file (one-line errors naming it)."""
    path = Path(path)
    if not path.exists():
        raise SeqliftError(f"--motifs {path}: not found; give a seqlift motifs folder, a modisco-lite .h5 or a "
                           "MEME file")
    if path.is_dir():
        return _from_motifs_folder(path, threshold)
    if path.suffix in (".h5", ".hdf5"):
        patterns = modisco_patterns(path)
        cwms, masks, core = _pairs({p.name: p.cwm.T for p in patterns}, threshold)
        return MotifSet(tuple(p.name for p in patterns), ("",) * len(patterns), cwms, masks, core, path)
    database = read_motif_database(path, "--motifs")
    width = max(np.shape(pwm)[1] for pwm in database.values())
    forward = {name: np.pad(meme_cwm(pwm), ((0, 0), (0, width - np.shape(pwm)[1]))) for name, pwm in database.items()}
    cwms, masks, core = _pairs(forward, threshold)
    return MotifSet(tuple(database), ("",) * len(database), cwms, masks, core, path)


def modisco_patterns(path: Path) -> list[Pattern]:
    """The patterns of a modisco-lite results file as ``seqlift motifs`` shows them: ``pos_pattern_0``, ... then
    the negative ones, each ``oriented`` on the strand whose consensus sorts first."""
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError:
        raise SeqliftError(f"--motifs {path}: not an HDF5 file (give modisco-lite's modisco_results.h5)") from None
    patterns = []
    with h5:
        for group, sign in (("pos_patterns", "pos"), ("neg_patterns", "neg")):
            found = h5[group] if group in h5 else {}
            for key in sorted(found, key=lambda k: (len(k), k)):  # pattern_2 before pattern_10
                if not {"contrib_scores", "sequence"} <= set(found[key]):
                    raise SeqliftError(f"--motifs {path}: pattern {group}/{key} has no contrib_scores or sequence: "
                                       "not a modisco-lite results file")
                cwm = np.asarray(found[key]["contrib_scores"], np.float64)
                patterns.append(oriented(Pattern(f"{sign}_{key}", sign, np.asarray(found[key]["sequence"]), cwm,
                                                 core=trim_core(cwm))))
    if not patterns:
        raise SeqliftError(f"--motifs {path}: holds no patterns (no pos_patterns or neg_patterns)")
    return patterns


def _from_motifs_folder(folder: Path, threshold: float) -> MotifSet:
    """A ``seqlift motifs`` folder: the CWMs of its ``modisco_results.h5``, on the strand ``seqlift motifs`` shows
    them, named by their best TOMTOM match in its ``motifs.tsv``."""
    table, _ = read_seqlets(folder)
    results = folder / "modisco_results.h5"
    if len(table) == 0:
        raise SeqliftError(f"--motifs {folder}: seqlift motifs found no patterns there; there is nothing to call")
    if not results.is_file():
        raise SeqliftError(f"--motifs {folder}: no modisco_results.h5; give a folder written by seqlift motifs")
    by_name = {p.name: p for p in modisco_patterns(results)}
    missing = [name for name in table["pattern"] if name not in by_name]
    if missing:
        raise SeqliftError(f"--motifs {folder}: motifs.tsv names {missing[0]}, which modisco_results.h5 does not "
                           "hold; rerun seqlift motifs")
    cwms, masks, core = _pairs({name: by_name[name].cwm.T for name in table["pattern"]}, threshold)
    matches = tuple(m if isinstance(m, str) else "" for m in table["best_match"])
    return MotifSet(tuple(table["pattern"]), matches, cwms, masks, core, folder)


# ---------------------------------------------------------------------------------------------- calling
def steady_heap(threshold: int = 4 << 20):
    """Have glibc's malloc give every block of ``threshold`` bytes or more its own mapping, returned when freed.

    By default glibc raises that threshold (up to 32 MB) each time such a block is freed, after which the 4-32 MB
    tensors torch makes and frees at every step of Fi-NeMo's fit are cut from the heap, which fragments and is not
    given back: peak resident memory of ``seqlift hits`` then grew chunk after chunk (966 to 1,158 MB over 8
    chunks of 1,000 × 1,000 bp on CPU; 865 MB throughout with this). Process-wide, so the command line calls it, not
    ``call_hits``; a no-op where the C library has no ``mallopt`` (not glibc)."""
    import ctypes

    try:
        ctypes.CDLL(None).mallopt(-3, int(threshold))  # M_MMAP_THRESHOLD (malloc.h); fixing it stops the raising
    except (AttributeError, OSError):
        pass


def fit_hits(motifs: MotifSet, contrib: np.ndarray, one_hot: np.ndarray, lambdas: np.ndarray,
             device=None) -> tuple[pd.DataFrame, int]:
    """Fi-NeMo's hits in one block of sequences: ``contrib`` and ``one_hot`` ``(n, L, 4)``.

    Returns ``(hits, n_unconverged)``: one row per hit with the block's row ``index``, ``motif`` (index into
    ``motifs.names``), ``seq_start``/``seq_end`` (the core, 0-based, end exclusive, in the scored sequence),
    ``seq_strand`` ('-': the motif's reverse complement), ``coefficient`` (in the file's units: Fi-NeMo's
    coefficient × the sequence's scale²), ``correlation`` (cosine similarity of CWM and scores) and ``importance``
    (summed |contribution| over the core).

    Fi-NeMo places a motif only where its whole width (cores and flanks: 50 bp for TF-MoDISco's patterns) lies in
    the sequence, so a core near either end could never be called: the sequences are padded with ``W − 1`` empty
    positions on each side (no base, no score) and the hits are shifted back, keeping those whose core lies in the
    sequence. On the shipped example this raised recall of the planted instances from 0.757 to 0.93.
    """
    import torch
    from finemo.hitcaller import fit_contribs

    n, length = contrib.shape[:2]
    pad = motifs.width - 1
    padded = lambda a, dtype: np.ascontiguousarray(np.pad(a, ((0, 0), (pad, pad), (0, 0))).transpose(0, 2, 1), dtype)  # noqa: E731
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        hits, qc = fit_contribs(motifs.cwms, padded(contrib, np.float32), padded(one_hot, np.int8), motifs.masks,
                                False, np.asarray(lambdas, np.float32), batch_size=min(n, CHUNK),
                                device=torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")))
    unconverged = sum("not converged" in str(w.message) or "failed for region" in str(w.message) for w in caught)
    hits, qc = ({name: frame[name].to_numpy() for name in frame.columns} for frame in (hits, qc))  # polars columns
    scale = np.zeros(n)
    scale[qc["peak_id"].astype(np.int64)] = qc["global_scale"]
    row, rows, start = (hits[key].astype(np.int64) for key in ("peak_id", "motif_id", "hit_start"))
    start = start - pad
    table = pd.DataFrame({
        "index": row, "motif": rows // 2,
        "seq_start": start + motifs.core[rows, 0], "seq_end": start + motifs.core[rows, 1],
        "seq_strand": np.where(rows % 2 == 0, "+", "-"),
        "coefficient": hits["hit_coefficient"].astype(np.float64) * scale[row] ** 2,
        "correlation": hits["hit_similarity"].astype(np.float64),
        "importance": hits["hit_importance"].astype(np.float64) * scale[row]})
    table = table[(table["seq_start"] >= 0) & (table["seq_end"] <= length)]  # a core in the padding is no hit
    return table.sort_values(["index", "seq_start", "motif", "seq_strand"], kind="stable").reset_index(drop=True), \
        unconverged


class Medians:
    """Exact medians of float32 values per group, in memory that does not grow with the values: they are appended,
    block by block, to a scratch file of records (``group`` int32, then one float32 per key), and each median is
    found by radix selection on the values' bits, three passes over that file (11, 11 and 10 bits of the sortable
    key), counting per group into ``(groups, 2048)`` arrays."""

    BLOCK = 1 << 18  # records read at a time (some 40 bytes each while counted)
    DIGITS = ((21, 11), (10, 11), (0, 10))  # (shift, bits) of each pass, most significant first

    def __init__(self, path: Path, groups: int, keys: tuple[str, ...]):
        self.path, self.groups, self.keys = Path(path), groups, keys
        self.dtype = np.dtype([("group", "<i4")] + [(key, "<f4") for key in keys])
        self.counts = np.zeros(groups, np.int64)
        self._handle = open(self.path, "wb")

    def add(self, group: np.ndarray, values: dict):
        records = np.empty(len(group), self.dtype)
        records["group"] = group
        for key in self.keys:
            records[key] = values[key]
        records.tofile(self._handle)
        self.counts += np.bincount(group, minlength=self.groups)

    @staticmethod
    def _sortable(values: np.ndarray) -> np.ndarray:
        """float32 → uint32 whose order is the floats' order (negative: all bits flipped; else the sign bit set)."""
        bits = values.view(np.uint32)
        return np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000))

    @staticmethod
    def _float(keys: np.ndarray) -> np.ndarray:
        keys = keys.astype(np.uint32)
        return np.where(keys >> 31, keys & np.uint32(0x7FFFFFFF), ~keys).view(np.float32)

    def medians(self) -> dict[str, np.ndarray]:
        """``{key: (groups,)}`` float64: the median of each group's values (NaN for a group without any)."""
        self._handle.close()
        ranks = np.stack([(self.counts - 1) // 2, self.counts // 2])  # (2, groups): the lower and upper middle
        found = {}
        for key in self.keys:
            prefix = np.zeros((2, self.groups), np.uint64)  # the sortable key's bits found so far
            remaining = ranks.copy()
            known = 0  # how many of the top bits prefix holds
            for shift, bits in self.DIGITS:
                counts = np.zeros((2, self.groups, 1 << bits), np.int64)
                for block in self._blocks():
                    group, sortable = block["group"].astype(np.int64), self._sortable(block[key]).astype(np.uint64)
                    digit = ((sortable >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)
                    for side in range(2):
                        keep = (sortable >> np.uint64(32 - known)) == prefix[side, group] if known else \
                            np.ones(len(group), bool)
                        counts[side] += np.bincount(group[keep] * (1 << bits) + digit[keep],
                                                    minlength=self.groups << bits).reshape(self.groups, 1 << bits)
                cumulative = counts.cumsum(-1)
                for side in range(2):
                    chosen = (cumulative[side] <= remaining[side][:, None]).sum(-1)  # first digit past the rank
                    chosen = np.minimum(chosen, (1 << bits) - 1)
                    below = np.where(chosen > 0, np.take_along_axis(cumulative[side], np.maximum(chosen - 1, 0)[:, None],
                                                                    -1)[:, 0], 0)
                    remaining[side] -= below
                    prefix[side] = (prefix[side] << np.uint64(bits)) | chosen.astype(np.uint64)
                known += bits
            low, high = (self._float(prefix[side]).astype(np.float64) for side in range(2))
            found[key] = np.where(self.counts > 0, (low + high) / 2, np.nan)
        return found

    def _blocks(self):
        records = np.memmap(self.path, self.dtype, "r") if self.path.stat().st_size else np.zeros(0, self.dtype)
        for start in range(0, len(records), self.BLOCK):
            yield np.array(records[start:start + self.BLOCK])
        del records

    def close(self):
        self._handle.close()
        self.path.unlink(missing_ok=True)


def _pairs_within(groups: np.ndarray, itself: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(first, second)``: the positions of every pair of entries in the same group of ``groups`` (sorted), each
    unordered pair once with ``first`` before ``second`` or, with ``itself``, every ordered pair and each entry with
    itself."""
    positions = np.arange(len(groups))
    ends = np.searchsorted(groups, groups, side="right")
    begins = np.searchsorted(groups, groups, side="left") if itself else positions + 1
    lengths = ends - begins
    first = np.repeat(positions, lengths)
    offsets = np.arange(len(first)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return first, np.repeat(begins, lengths) + offsets


class Summary:
    """What ``motif_summary.tsv``, ``cooccurrence.tsv`` and the spacing histograms need, added one block at a time
    in memory that does not grow with the hits: per motif its counts, per pair of motifs counts and a spacing
    histogram, and the hits' values for the exact medians in a scratch file (``Medians``, at ``scratch``)."""

    KEYS = ("importance", "coefficient", "correlation")

    def __init__(self, motifs: MotifSet, length: int, scratch: Path):
        m = len(motifs.names)
        self.motifs, self.length, self.n = motifs, length, 0
        self.values = Medians(scratch, m, self.KEYS)
        self.sequences = np.zeros(m, np.int64)
        self.together = np.zeros((m, m), np.int64)
        # spacing: start of the second motif's core minus the first's, -length..length
        self.spacing = np.zeros((m, m, 2 * length + 1), np.int64)

    def add(self, hits: pd.DataFrame, n: int):
        self.n += n
        self.values.add(hits["motif"].to_numpy(np.int64), {key: hits[key].to_numpy(np.float32) for key in self.KEYS})
        order = np.argsort(hits["index"].to_numpy(), kind="stable")  # fit_hits' order within each sequence
        index, motif = hits["index"].to_numpy(np.int64)[order], hits["motif"].to_numpy(np.int64)[order]
        start = hits["seq_start"].to_numpy(np.int64)[order]
        m = len(self.motifs.names)
        present = np.unique(index * m + motif)  # (sequence, motif), by sequence
        self.sequences += np.bincount(present % m, minlength=m)
        first, second = _pairs_within(present // m, itself=True)
        np.add.at(self.together, (present[first] % m, present[second] % m), 1)
        first, second = _pairs_within(index, itself=False)
        swap = motif[first] > motif[second]  # each pair once, the motif that comes first in the list first
        first, second = np.where(swap, second, first), np.where(swap, first, second)
        np.add.at(self.spacing, (motif[first], motif[second], start[second] - start[first] + self.length), 1)

    def motif_table(self) -> pd.DataFrame:
        medians = self.values.medians()
        return pd.DataFrame({
            "motif": list(self.motifs.names), "match": list(self.motifs.matches), "instances": self.values.counts,
            "sequences": self.sequences, "fraction_of_sequences": self.sequences / max(self.n, 1),
            **{f"median_{key}": medians[key] for key in self.KEYS}})

    def close(self):
        self.values.close()

    def cooccurrence(self) -> pd.DataFrame:
        """Sequences holding both motifs (the diagonal: sequences holding the motif)."""
        names = list(self.motifs.names)
        return pd.DataFrame(self.together, index=pd.Index(names, name="motif"), columns=names)

    def top_pairs(self, k: int = TOP_PAIRS) -> list[tuple[int, int]]:
        """The ``k`` pairs of motifs (a motif with itself included) with the most spaced instances, most first."""
        counts = self.spacing.sum(-1)
        pairs = [(int(counts[a, b]), a, b) for a in range(len(counts)) for b in range(a, len(counts)) if counts[a, b]]
        return [(a, b) for _, a, b in sorted(pairs, key=lambda t: (-t[0], t[1], t[2]))[:k]]


def call_hits(scores_path, motifs_path, outdir, task=None, lambda_: float = LAMBDA,
              threshold: float = TRIM_THRESHOLD, chunk: int = CHUNK, device=None, force: bool = False,
              progress=lambda n: None, started=lambda n: None) -> dict:
    """``seqlift hits``: Fi-NeMo's hits of the motifs of ``motifs_path`` in the score file, written into ``outdir``:
    ``hits.tsv``, ``hits.bed`` (when the sequences have genome coordinates), ``motif_summary.tsv``,
    ``cooccurrence.tsv`` and ``cooccurrence.png``, ``spacing.tsv`` and ``spacing_A__B.png`` per top pair.

    A ``seqlift variants`` file goes to ``call_variant_hits``. The score file is read ``chunk`` sequences at a time; ``started(n)`` is called once every input is checked,
    ``progress(k)`` after each chunk of ``k`` sequences. Returns ``{"hits", "sequences", "unconverged", "bed"}``.
    """
    if not 0 < threshold < 1:
        raise SeqliftError(f"--trim-threshold {threshold}: must lie between 0 and 1")
    if not np.isfinite(lambda_) or lambda_ <= 0:
        # Fi-NeMo divides its duality gap (the convergence test) by lambda, and keeps hits correlating >= lambda
        raise SeqliftError(f"--lambda {lambda_:g}: must be a number above 0 (Fi-NeMo's L1 penalty and the least "
                           f"correlation a hit keeps; at 0 its fit never converges); its default is {LAMBDA}")
    if file_kind(scores_path) == VARIANTS:
        return call_variant_hits(scores_path, motifs_path, outdir, task, lambda_, threshold, chunk, device, force,
                                 progress, started)
    outputs = Outputs([scores_path, motifs_path])
    outputs.check_folder(outdir, force)
    motifs = read_motifs(motifs_path, threshold)
    with ScoreFile(scores_path, task) as scores:
        if motifs.width > scores.length:
            raise SeqliftError(f"--motifs {motifs_path}: its motifs are {motifs.width} bp wide but the sequences of "
                               f"{scores.path} have {scores.length}; call hits on longer sequences")
        if Path(motifs_path).is_dir():
            check_seqlets_belong(read_seqlets(motifs_path)[1], scores.names, motifs_path, scores.path)
            check_source(motifs_path, MOTIFS_SOURCE, scores.path, "--motifs", "seqlift motifs")
        placement = genome_placement(scores.names, scores.length, scores.regions())
        lambdas = np.full(len(motifs.cwms), lambda_, np.float32)
        n_hits = unconverged = 0
        with outputs:
            tmp = outputs.folder(outdir, force, owns=OWNS)
            write_source(tmp, SOURCE, scores_path, motifs=Path(motifs_path).resolve())
            started(scores.n)
            # nothing here grows with the file: each chunk's hits go to hits.tsv and the BED runs as it is done
            summary, bed = Summary(motifs, scores.length, tmp / ".hits.values"), BedRuns(tmp)
            try:
                with open(tmp / "hits.tsv", "w") as handle:
                    handle.write("\t".join(HITS_COLUMNS) + "\n")
                    for start in range(0, scores.n, chunk):
                        index = np.arange(start, min(start + chunk, scores.n))
                        contrib, one_hot = scores.rows("contrib", index), scores.rows("one_hot", index)
                        hits, failed = fit_hits(motifs, contrib, one_hot, lambdas, device)
                        del contrib, one_hot
                        unconverged += failed
                        summary.add(hits, len(index))
                        hits["index"] += start
                        table = _placed(hits, motifs, scores.names, placement, scores.length)
                        table[HITS_COLUMNS].to_csv(handle, sep="\t", index=False, header=False, float_format="%.6g")
                        if placement is not None:
                            bed.add(table)
                        n_hits += len(table)
                        progress(len(index))
                if placement is not None:
                    bed.write(tmp / "hits.bed")
                summary.motif_table().to_csv(tmp / "motif_summary.tsv", sep="\t", index=False, float_format="%.6g")
            finally:
                summary.close()
                bed.close()
            summary.cooccurrence().to_csv(tmp / "cooccurrence.tsv", sep="\t")
            _write_spacing(summary, tmp)
    return {"hits": n_hits, "sequences": summary.n, "unconverged": unconverged, "bed": placement is not None}


VARIANT_COLUMNS = ["variant", "chrom", "pos", "ref", "alt", "motif", "match", "strand", "start", "end", "change",
                   "ref_coefficient", "alt_coefficient", "ref_correlation", "alt_correlation"]


def call_variant_hits(variants_path, motifs_path, outdir, task=None, lambda_: float = LAMBDA,
                      threshold: float = TRIM_THRESHOLD, chunk: int = CHUNK, device=None, force: bool = False,
                      progress=lambda n: None, started=lambda n: None) -> dict:
    """``seqlift hits`` on a ``seqlift variants`` file: Fi-NeMo's hits in each variant's ref and alt windows,
    compared where they touch the variant, into ``outdir/variant_hits.tsv`` (one line per motif instance the
    variant destroys, creates or keeps: its coefficients in both windows) and ``variant_hits_summary.tsv``.

    An instance touches the variant when its core overlaps the variant's bases (``variant_index`` ..
    ``variant_index + max(len REF, len ALT)``); the two windows' instances are paired by motif, strand and start
    (both windows start at the same base). ``start``/``end`` are on the genome (0-based, end exclusive; in the alt
    window past an indel they are the alt window's). Returns ``{"variants", "destroyed", "created", "kept"}``.
    """
    outputs = Outputs([variants_path, motifs_path])
    outputs.check_folder(outdir, force)
    motifs = read_motifs(motifs_path, threshold)  # a motifs folder of any score file: the motifs of peaks, say
    with VariantFile(variants_path, task) as variants:
        n, length, centre = variants.n, variants.length, variants.variant_index
        if motifs.width > length:
            raise SeqliftError(f"--motifs {motifs_path}: its motifs are {motifs.width} bp wide but the windows of "
                               f"{variants_path} have {length}; call hits on longer windows")
        lambdas = np.full(len(motifs.cwms), lambda_, np.float32)
        rows, counts = [], {"destroyed": 0, "created": 0, "kept": 0}
        with outputs:
            tmp = outputs.folder(outdir, force, owns=OWNS)
            write_source(tmp, SOURCE, variants_path, motifs=Path(motifs_path).resolve())
            started(n)
            for first in range(0, n, chunk):
                index = np.arange(first, min(first + chunk, n))
                found = {side: fit_hits(motifs, variants.rows(f"{side}_contrib", index),
                                        variants.rows(f"{side}_one_hot", index), lambdas, device)[0]
                         for side in ("ref", "alt")}
                for i in index:
                    span = (centre, centre + max(len(variants.ref[i]), len(variants.alt[i])))
                    near = {side: _touching(hits[hits["index"] == i - first], span) for side, hits in found.items()}
                    for key in sorted(set(near["ref"]) | set(near["alt"])):
                        before, after = near["ref"].get(key), near["alt"].get(key)
                        change = "kept" if before is not None and after is not None else \
                            "destroyed" if after is None else "created"
                        counts[change] += 1
                        k, strand, start = key
                        hit = before if before is not None else after
                        window = variants.pos[i] - 1 - centre
                        rows.append((variants.names[i], variants.chrom[i], int(variants.pos[i]), variants.ref[i],
                                     variants.alt[i], motifs.names[k], motifs.matches[k], strand, window + start,
                                     window + int(hit["seq_end"]), change,
                                     *(_value(h, "coefficient") for h in (before, after)),
                                     *(_value(h, "correlation") for h in (before, after))))
                progress(len(index))
            table = pd.DataFrame(rows, columns=VARIANT_COLUMNS)
            table.to_csv(tmp / "variant_hits.tsv", sep="\t", index=False, float_format="%.6g")
            summary = table.groupby(["motif", "change"]).size().unstack(fill_value=0)
            summary = summary.reindex(columns=["destroyed", "created", "kept"], fill_value=0).reindex(
                list(motifs.names), fill_value=0)
            summary.insert(0, "match", list(motifs.matches))
            summary.to_csv(tmp / "variant_hits_summary.tsv", sep="\t")
    return {"variants": n, **counts}


def _value(hit, key) -> float:
    return np.nan if hit is None else float(hit[key])


def _touching(hits: pd.DataFrame, span: tuple[int, int]) -> dict:
    """``{(motif, strand, seq_start): hit}`` of the hits whose core overlaps ``span`` (a window's variant bases)."""
    near = hits[(hits["seq_start"] < span[1]) & (hits["seq_end"] > span[0])]
    return {(int(h["motif"]), h["seq_strand"], int(h["seq_start"])): h for _, h in near.iterrows()}


def _placed(hits: pd.DataFrame, motifs: MotifSet, names, placement, length: int) -> pd.DataFrame:
    """Hits with the sequence's name and, where ``placement`` gives it, genome coordinates (plus strand)."""
    table = hits.copy()
    table["name"] = names[table["index"].to_numpy()]
    table["match"] = [motifs.matches[k] for k in table["motif"]]
    table["motif"] = [motifs.names[k] for k in table["motif"]]
    if placement is None:
        table["chrom"] = ""
        table["start"], table["end"], table["strand"] = table["seq_start"], table["seq_end"], table["seq_strand"]
        return table
    placed = [on_plus_strand(placement[i], s, e, strand == "-", length)
              for i, s, e, strand in zip(table["index"], table["seq_start"], table["seq_end"], table["seq_strand"])]
    table["chrom"] = [p[0] for p in placed]
    table["start"] = np.array([p[1] for p in placed], np.int64)
    table["end"] = np.array([p[2] for p in placed], np.int64)
    table["strand"] = [p[3] for p in placed]
    return table


def _file_safe(name: str) -> str:
    """A motif's name as part of a file name: what is not a letter, digit, '.', '-' or '_' becomes '_'
    (HOMER's names hold '/', JASPAR's a space)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


class BedRuns:
    """hits.bed written without holding the file's hits: each block of hits is sorted and kept as a run, a scratch
    file in ``folder``; ``write`` merges the runs into BED6 sorted by chrom, start, end and motif, ties in the order
    the hits came (IGV opens it as it is). At most ``FAN_IN`` runs are open at once: more are merged into one first.
    The score column is the coefficient scaled to 0-1000 over the file (its largest kept as runs are added), so a
    browser's shading follows it."""

    FAN_IN = 64
    COLUMNS = ["chrom", "start", "end", "motif", "coefficient", "strand"]

    def __init__(self, folder: Path):
        self.folder, self.runs, self.top, self._made = Path(folder), [], 0.0, 0

    def add(self, table: pd.DataFrame):
        if not len(table):
            return
        bed = table[self.COLUMNS].copy()
        bed["motif"] = bed["motif"].str.replace(r"\s+", "_", regex=True)  # BED's fields may be split on any space
        bed = bed.sort_values(["chrom", "start", "end", "motif"], kind="stable")
        self.top = max(self.top, float(bed["coefficient"].max()))
        path = self._new_run()
        bed.to_csv(path, sep="\t", index=False, header=False)  # floats as repr: read back exactly
        self.runs.append(path)
        if len(self.runs) >= self.FAN_IN:
            merged = self._new_run()
            with open(merged, "w") as handle:
                handle.writelines(_merge_runs(self.runs))
            self.close()
            self.runs = [merged]

    def write(self, path: Path):
        top = self.top or 1.0
        with open(path, "w") as handle:
            for line in _merge_runs(self.runs):
                chrom, start, end, motif, coefficient, strand = line.rstrip("\n").split("\t")
                score = min(max(round(1000 * float(coefficient) / top), 0), 1000)  # half to even, as np.rint
                handle.write(f"{chrom}\t{start}\t{end}\t{motif}\t{score}\t{strand}\n")
        self.close()

    def _new_run(self) -> Path:
        self._made += 1
        return self.folder / f".hits.bed.run{self._made}"

    def close(self):
        for run in self.runs:
            run.unlink(missing_ok=True)
        self.runs = []


def _merge_runs(runs: list[Path]):
    """The lines of sorted BED runs, merged: by chrom, start, end and motif, ties in the runs' order."""
    def keyed(handle):
        for line in handle:
            chrom, start, end, motif = line.split("\t", 4)[:4]
            yield (chrom, int(start), int(end), motif), line

    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(open(run)) for run in runs]
        for _, line in heapq.merge(*(keyed(handle) for handle in handles), key=lambda item: item[0]):
            yield line


def _write_spacing(summary: Summary, folder: Path):
    """spacing.tsv (pair, distance, count) for the top pairs, one histogram each, and the co-occurrence heatmap."""
    from . import plots

    names = summary.motifs.names
    rows = []
    for a, b in summary.top_pairs():
        counts = summary.spacing[a, b]
        distance = np.arange(-summary.length, summary.length + 1)
        nonzero = counts > 0
        rows += [(names[a], names[b], int(d), int(c)) for d, c in zip(distance[nonzero], counts[nonzero])]
        plots.draw_spacing(distance, counts, names[a], names[b],
                           folder / f"spacing_{_file_safe(names[a])}__{_file_safe(names[b])}.png")
    pd.DataFrame(rows, columns=["motif_a", "motif_b", "distance", "count"]).to_csv(folder / "spacing.tsv", sep="\t",
                                                                                   index=False)
    plots.draw_cooccurrence(summary.cooccurrence(), summary.n, folder / "cooccurrence.png")


def check_hits_belong(folder, scores_path, option="--hits"):
    """Refuse, in one line, a ``seqlift hits`` folder made from another score file than ``scores_path``."""
    check_source(folder, SOURCE, scores_path, option, "seqlift hits")


def read_hits(folder) -> pd.DataFrame:
    """A ``seqlift hits`` folder's ``hits.tsv``: one row per hit (``HITS_COLUMNS``); one-line errors naming it."""
    folder = Path(folder)
    path = folder / "hits.tsv"
    if not path.is_file() and (folder / "variant_hits.tsv").is_file():
        raise SeqliftError(f"--hits {folder}: holds a variant file's hits (variant_hits.tsv), which seqlift view does "
                           "not draw; open variant_hits.tsv as a table")
    if not path.is_file():
        raise SeqliftError(f"--hits {folder}: no hits.tsv; give a folder written by seqlift hits")
    try:
        table = pd.read_csv(path, sep="\t", dtype={"name": str, "motif": str, "match": str, "chrom": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SeqliftError(f"--hits {folder}: unreadable hits.tsv ({type(exc).__name__})") from None
    missing = [c for c in HITS_COLUMNS if c not in table.columns]
    if missing:
        raise SeqliftError(f"--hits {folder}: hits.tsv lacks column {missing[0]}; rerun seqlift hits")
    for column in ("index", "seq_start", "seq_end", "coefficient", "correlation", "importance"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(values.to_numpy(np.float64)))
        if column in ("index", "seq_start", "seq_end") and not len(bad):
            bad = np.flatnonzero(values.to_numpy(np.float64) % 1 != 0)
        if len(bad):
            raise SeqliftError(f"--hits {folder}: hits.tsv line {bad[0] + 2}: {column} {table[column].iloc[bad[0]]!r} "
                               "is not a number it can hold; rerun seqlift hits")
        table[column] = values
    if ((table["seq_start"] < 0) | (table["seq_end"] <= table["seq_start"])).any():
        raise SeqliftError(f"--hits {folder}: hits.tsv has a hit that ends before it starts or starts before 0; "
                           "rerun seqlift hits")
    table["match"] = table["match"].fillna("")
    return table

