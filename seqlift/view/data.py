"""What the viewer shows, read from the files on demand: a score file's table and one sequence at a time.

``open_source(path)`` returns a ``ScoreSource`` (any file ``seqlift score`` or ``seqlift merge`` writes) or a
``VariantSource`` (a variant file: both alleles' windows per variant). The table's columns are small ``(N, T)``
arrays kept in memory; per-base scores are read from the HDF5 file only for the sequence asked for, so a file of
100,000 sequences opens in seconds with memory set by N, not by N × L.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SeqliftError
from ..files import VARIANTS, file_kind
from ..rowfile import is_summary, summary_path
from ..scorefile import ScoreFile
from ..variantfile import VariantFile
from ..sequences import one_hot_to_codes, parse_coordinates

# Rows of per-base scores summed per chunk while the totals column is computed in the background.
TOTALS_BLOCK = 2048


def _per_task(values: np.ndarray) -> np.ndarray:
    """``(N,)`` or ``(N, T)`` → ``(N, T)`` float64 (JSON-friendly)."""
    values = np.asarray(values, np.float64)
    return values[:, None] if values.ndim == 1 else values


class Source:
    """A file's table (``columns``: name → ``(N, T)`` or ``(N,)``), and one record's arrays by ``record(i, task)``."""

    kind = ""
    #: columns sorted by their size (|value|): a variant's effect, whose strongest breaks of either sign come first
    by_size: tuple[str, ...] = ()

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = threading.Lock()  # h5py handles are not shared across threads without it
        self.columns: dict[str, np.ndarray] = {}
        self.names: np.ndarray = np.array([], dtype=object)
        self.coords: list[str] = []
        self.tasks: list[int] = [0]
        self.length = 0
        self.attrs: dict = {}
        self.totals_done = 0  # rows whose total contribution is known

    @property
    def n(self) -> int:
        return len(self.names)

    def meta(self) -> dict:
        return {"kind": self.kind, "file": self.path.name, "n": self.n, "length": self.length, "tasks": self.tasks,
                "target": str(self.attrs.get("target", "logit")), "method": str(self.attrs.get("method", "")),
                "rule": str(self.attrs.get("rule", "")), "columns": list(self.columns), "by_size": list(self.by_size),
                "totals_done": self.totals_done}

    def table(self, task_index: int, rows: np.ndarray) -> list[dict]:
        """The table's cells of ``rows`` for one task."""
        out = []
        for i in rows.tolist():
            row = {"i": i, "name": self.names[i], "coords": self.coords[i]}
            for key, values in self.columns.items():
                value = values[i, task_index] if values.ndim == 2 else values[i]
                row[key] = None if not np.isfinite(value) else float(value)
            out.append(row)
        return out

    def order(self, task_index: int, sort: str, descending: bool, query: str) -> np.ndarray:
        """Row indices matching ``query`` (a name substring, or a ``chrom:start-end`` region they overlap),
        sorted by column ``sort`` ('name', 'coords' or a table column; unknown values last)."""
        rows = self._matching(query)
        if sort in ("name", "coords"):
            keys = np.asarray(self.names if sort == "name" else self.coords, dtype=object)[rows]
            order = sorted(range(len(rows)), key=lambda k: keys[k], reverse=descending)
            return rows[np.asarray(order, dtype=np.int64)]
        if sort not in self.columns:
            return rows
        values = self.columns[sort]
        values = (values[:, task_index] if values.ndim == 2 else values)[rows]
        values = np.abs(values) if sort in self.by_size else values
        keyed = np.where(np.isfinite(values), -values if descending else values, np.inf)
        return rows[np.argsort(keyed, kind="stable")]

    def _matching(self, query: str) -> np.ndarray:
        everything = np.arange(self.n)
        query = (query or "").strip()
        if not query:
            return everything
        region = parse_coordinates(query)
        if region is not None and self._starts is not None:
            chrom, start, end = region
            hit = (self._chroms == chrom) & (self._starts < end) & (self._starts + self.length > start)
            return everything[hit]
        lowered = query.lower()
        return everything[[lowered in name.lower() for name in self.names]]

    _chroms: np.ndarray | None = None
    _starts: np.ndarray | None = None

    def _set_coordinates(self, placed: list[tuple[str, int, str]] | None):
        """``chrom:start-end`` per record from ``(chrom, start, strand)``, or from names that are coordinates."""
        if placed is None:
            parsed = [parse_coordinates(name) for name in self.names]
            if parsed and all(p is not None for p in parsed):
                placed = [(c, s, "+") for c, s, _ in parsed]
        if placed is None:
            self.coords = [""] * self.n
            return
        self._chroms = np.asarray([c for c, _, _ in placed], dtype=object)
        self._starts = np.asarray([s for _, s, _ in placed], dtype=np.int64)
        self.coords = [f"{c}:{s}-{s + self.length}" + ("(-)" if strand == "-" else "") for c, s, strand in placed]
        self.placed = placed

    placed: list[tuple[str, int, str]] | None = None

    def close(self):
        pass


class ScoreSource(Source):
    """A score file (``seqlift score``, ``seqlift merge``): one row per sequence."""

    kind = "scores"

    def __init__(self, path: Path):
        super().__init__(path)
        self.file = ScoreFile(path)  # checks the file whole before anything is shown
        self.attrs, self.tasks, self.length = self.file.attrs, self.file.tasks, self.file.length
        self.names = np.asarray(self.file.names, dtype=object)
        # the table's columns are read whole: checked whole, so a NaN is one line here, not a broken page or answer
        self.columns = {"prediction": _per_task(self.file.checked("prediction", self.file.read("prediction"))),
                        "total": np.full((self.n, len(self.tasks)), np.nan),
                        "delta": _per_task(self.file.checked("delta", self.file.read("delta")))}
        self._set_coordinates(self.file.regions())
        self._summing, self._summing_error = None, None
        if not self._totals_from_summary():
            self._summing = threading.Thread(target=self._sum_totals, daemon=True)
            self._summing.start()

    def wait_totals(self):
        if self._summing is not None:
            self._summing.join()
        if self._summing_error is not None:  # a part of the file that cannot be read, found in the background
            raise self._summing_error

    def _totals_from_summary(self) -> bool:
        """The totals from the TSV summary beside the file (same names and tasks), read in a moment."""
        summary = summary_path(self.path)
        if not is_summary(summary):
            return False
        try:
            table = pd.read_csv(summary, sep="\t", usecols=["name", "task", "total_contribution"],
                                dtype={"name": str})
        except (ValueError, pd.errors.ParserError, OSError):
            return False
        totals = np.full((self.n, len(self.tasks)), np.nan)
        for t, task in enumerate(self.tasks):
            rows = table[table["task"] == task]
            if len(rows) != self.n or not np.array_equal(rows["name"].to_numpy(dtype=object), self.names):
                return False
            totals[:, t] = rows["total_contribution"].to_numpy(np.float64)
        self.columns["total"] = totals
        self.totals_done = self.n
        return True

    def _sum_totals(self):
        """Sum each sequence's contributions, a block at a time, in the background (the table shows meanwhile)."""
        for start in range(0, self.n, TOTALS_BLOCK):
            with self.lock:
                try:
                    block = self.file.read("contrib", slice(start, start + TOTALS_BLOCK))
                except SeqliftError as exc:
                    self._summing_error = exc
                    return
            sums = block.reshape(len(block), -1, self.length * 4).sum(-1) if block.ndim == 4 else \
                block.reshape(len(block), -1).sum(-1)[:, None]
            self.columns["total"][start:start + len(block)] = sums
            self.totals_done = start + len(block)

    def record(self, i: int, task_index: int) -> dict:
        if not 0 <= i < self.n:
            raise SeqliftError(f"no sequence {i}")
        with self.lock:
            one_hot = self.file.rows("one_hot", [i])[0]
            contrib = self.file.read("contrib", i)
            hypothetical = self.file.read("hypothetical", i)
        if contrib.ndim == 3:
            contrib, hypothetical = contrib[task_index], hypothetical[task_index]
        self.file.checked("contrib", contrib[None], i)
        self.file.checked("hypothetical", hypothetical[None], i)
        return {"i": i, "name": self.names[i], "coords": self.coords[i], **self._place(i),
                "sequence": "".join("ACGTN"[c] for c in one_hot_to_codes(one_hot)),
                "contrib": _b64(contrib), "hypothetical": _b64(hypothetical),
                "prediction": float(self.columns["prediction"][i, task_index]),
                "delta": float(self.columns["delta"][i, task_index])}

    def _place(self, i: int) -> dict:
        if self.placed is None:
            return {"chrom": None, "start": None, "strand": "+"}
        chrom, start, strand = self.placed[i]
        return {"chrom": chrom, "start": int(start), "strand": strand}

    def close(self):
        self.file.close()


class VariantSource(Source):
    """A variant file: per variant its ref and alt windows (the variant's first base at ``L // 2``), both
    alleles' scores and predictions; the table's effect is ``alt − ref``."""

    kind = "variants"
    by_size = ("effect",)

    def __init__(self, path: Path):
        super().__init__(path)
        self.file = file = VariantFile(path)  # checks the file whole before anything is shown
        try:
            self.attrs, self.tasks, self.length = file.attrs, file.tasks, file.length
            self.names = np.asarray(file.names, dtype=object)
            self.chrom, self.pos, self.ref, self.alt = file.chrom, file.pos, file.ref, file.alt
            ref, alt = file.column("ref_prediction"), file.column("alt_prediction")
            self.columns = {"ref_prediction": ref, "alt_prediction": alt, "effect": alt - ref}
            for key in ("p_value", "q_value"):
                if key in file:
                    self.columns[key] = file.column(key)
        except BaseException:
            file.close()
            raise
        start = self.pos - 1 - self.length // 2  # 0-based window start: the variant's first base at L // 2
        self._set_coordinates([(c, int(s), "+") for c, s in zip(self.chrom, start)])
        self.coords = [f"{c}:{p}" for c, p in zip(self.chrom, self.pos)]
        self.totals_done = self.n  # no column to compute

    def wait_totals(self):
        pass

    def record(self, i: int, task_index: int) -> dict:
        if not 0 <= i < self.n:
            raise SeqliftError(f"no variant {i}")
        task = self.tasks[task_index]
        alleles = {}
        with self.lock:
            for side in ("ref", "alt"):
                contrib, hypothetical = (self.file.rows(f"{side}_{key}", [i], task)[0]
                                         for key in ("contrib", "hypothetical"))
                codes = one_hot_to_codes(self.file.rows(f"{side}_one_hot", [i])[0])
                alleles[side] = {"sequence": "".join("ACGTN"[c] for c in codes), "contrib": _b64(contrib),
                                 "hypothetical": _b64(hypothetical),
                                 "prediction": float(self.columns[f"{side}_prediction"][i, task_index])}
        row = self.table(task_index, np.array([i]))[0]
        return {"i": i, "name": self.names[i], "coords": self.coords[i], "chrom": self.chrom[i],
                "start": int(self.pos[i] - 1 - self.length // 2), "strand": "+", "pos": int(self.pos[i]),
                "ref_allele": self.ref[i], "alt_allele": self.alt[i], "variant_index": self.length // 2,
                "effect": row["effect"], "p_value": row.get("p_value"), "q_value": row.get("q_value"), **alleles}

    def close(self):
        self.file.close()


def _b64(values: np.ndarray) -> str:
    """``(L, 4)`` scores as base64 of little-endian float32 (the file's values exactly; the page decodes them
    into a Float32Array)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def open_source(path) -> Source:
    """The viewer's source for ``path``: a variant file or a score file (any other file: one-line error)."""
    path = Path(path)
    if not path.is_file():
        raise SeqliftError(f"{path}: file not found")
    kind = file_kind(path)
    if kind is None:
        raise SeqliftError(f"{path}: not an HDF5 score or variant file")
    return VariantSource(path) if kind == VARIANTS else ScoreSource(path)
