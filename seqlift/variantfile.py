"""The variant file ``seqlift variants`` writes (``VariantWriter``) and ``seqlift view``, ``logo --variant`` and
``hits`` read (``VariantFile``), with its TSV (``variant_table``). Datasets N first, a task axis only for several tasks:

- ``ids``, ``chrom``, ``pos`` (1-based), ``ref``, ``alt`` · ``ref_one_hot``, ``alt_one_hot`` (N, L, 4)
- ``ref_contrib``, ``alt_contrib``, ``ref_hypothetical``, ``alt_hypothetical`` (N, [T,] L, 4)
- ``ref_prediction``, ``alt_prediction``, ``delta`` (= alt − ref, the effect) (N, [T])
- ``ref_convergence_delta``, ``alt_convergence_delta``, ``ref_allele_contrib``, ``alt_allele_contrib``,
  ``max_contrib_change`` (N, [T]); ``js_distance`` (N) for an output with positions (a profile head)
- with ``--null K``: ``null_effects`` (N, K, [T]), ``p_value``, ``q_value`` (N, [T])
- attributes: those of a score file (``pipeline.attributes``, a shard's included), plus ``genome``, ``null`` and
  ``variant_index``.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd

from .errors import SeqliftError
from .outputs import Outputs
from .rowfile import COMPLETED, TEXT, Column, RowFile, RowWriter, chunk_rows, decoded, is_summary, summary_path

# The dataset that makes a file a variant file (``files.file_kind``).
MARKER = "ref_contrib"
# The datasets every variant file has (others depend on the run: _PER_VARIANT, js_distance, the null's).
VARIANT_DATASETS = ("ids", "chrom", "pos", "ref", "alt", "ref_one_hot", "alt_one_hot", "ref_contrib", "alt_contrib",
                    "ref_hypothetical", "alt_hypothetical", "ref_prediction", "alt_prediction")
# Datasets with a task axis after the rows (with several tasks).
_PER_TASK = ("ref_contrib", "alt_contrib", "ref_hypothetical", "alt_hypothetical", "ref_prediction",
             "alt_prediction", "delta", "p_value", "q_value")
# Datasets with a window's positions (N, [T,] L, 4), and the null's (N, K, [T]): not in the TSV.
_PER_BASE = ("ref_one_hot", "alt_one_hot", "ref_contrib", "alt_contrib", "ref_hypothetical", "alt_hypothetical",
             "null_effects")
# Per-variant datasets of shape (N, [T]) besides the predictions, in the order the TSV shows them.
_PER_VARIANT = ("ref_allele_contrib", "alt_allele_contrib", "max_contrib_change", "ref_convergence_delta",
                "alt_convergence_delta")


def is_variant_file(path) -> bool:
    """Whether ``path`` is a variant file seqlift wrote (a new run may replace it)."""
    try:
        with h5py.File(path, "r") as handle:
            return "seqlift_version" in handle.attrs and MARKER in handle
    except OSError:
        return False


def q_values(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values over the variants, per task: ``(N, T)`` → ``(N, T)``."""
    from scipy.stats import false_discovery_control

    return np.stack([false_discovery_control(p_values[:, t], method="bh") for t in range(p_values.shape[1])], axis=1)


class VariantWriter:
    """Append scored chunks to a variant file (``rowfile.RowWriter``) and write its TSV at the end, in temporaries
    claimed from ``outputs`` (renamed when its block ends). attrs: the file's attributes; null: shuffled controls per
    variant (0: none); profile: the output has positions (``js_distance``); chunk: variants per appended chunk.
    resume, resuming: as ``RowWriter``'s.
    """

    def __init__(self, outputs: Outputs, out, summary, length: int, tasks, attrs: dict, null: int = 0,
                 profile: bool = False, resume: dict | None = None, resuming: bool = False, chunk: int = 64):
        self.length, self.tasks, self.null, self.profile = length, list(tasks), null, profile
        self.task_axis = len(self.tasks) > 1
        self._outputs, self._summary = outputs, summary
        self._rows = RowWriter(outputs, out, self.columns(chunk_rows(chunk)), attrs, is_variant_file, resume, resuming)

    @classmethod
    def for_shards(cls, outputs: Outputs, out, first: VariantFile, attrs: dict, block: int = 4096) -> VariantWriter:
        """The writer of a merge of ``first``'s shards (``rowfile.merge_shards``): the file and its TSV."""
        return cls(outputs, out, summary_path(out), first.length, first.tasks, attrs, int(attrs.get("null", 0)),
                   profile="js_distance" in first, chunk=block)

    def columns(self, rows: int) -> list[Column]:
        """The variant file's datasets (the module's docstring); ``rows`` per HDF5 chunk of the per-base ones."""
        length = self.length
        per_base = ((len(self.tasks),) if self.task_axis else ()) + (length, 4)
        per_variant = (len(self.tasks),) if self.task_axis else ()
        columns = [Column(key, dtype=TEXT) for key in ("ids", "chrom", "ref", "alt")] + [Column("pos", dtype="int64")]
        columns += [Column(key, (length, 4), rows=rows, compress=True) for key in ("ref_one_hot", "alt_one_hot")]
        columns += [Column(key, per_base, rows=rows, compress=True)
                    for key in ("ref_contrib", "alt_contrib", "ref_hypothetical", "alt_hypothetical")]
        small = ["ref_prediction", "alt_prediction", "delta", *_PER_VARIANT] + (["p_value"] if self.null else [])
        columns += [Column(key, per_variant, "float64" if key == "p_value" else "float32") for key in small]
        if self.null:
            shape = (self.null,) + per_variant
            per_row = 4 * int(np.prod(shape))  # HDF5 refuses a chunk of 4 GiB or more: keep one under 1 GiB
            columns.append(Column("null_effects", shape, rows=max(1, min(rows, 2**30 // per_row))))
        if self.profile:
            columns.append(Column("js_distance"))
        return columns

    @property
    def n(self) -> int:
        """Variants written (an interrupted run's included)."""
        return self._rows.n

    def completed(self):
        """Nothing to replay: the TSV is written from the file at the end (``close``)."""
        return iter(())

    def add(self, chunk):
        """Append a scored chunk of the run loop: its ``file_rows`` (``effects.VariantChunk``)."""
        self.append_rows(chunk.file_rows(self.length // 2, self.task_axis))

    def append_rows(self, rows: dict):
        """Write ``{dataset: rows}`` after the rows written so far (a chunk scored, or a shard's rows)."""
        self._rows.append(rows)

    append_file_rows = append_rows

    def close(self):
        """Add q-values (over every variant), write the TSV, close the file."""
        if self.n == 0:
            self.abort()
            raise SeqliftError("no variants were scored")
        h5 = self._rows.h5
        if self.null:
            p = h5["p_value"][()]
            q = q_values(p if self.task_axis else p[:, None])
            h5.create_dataset("q_value", data=q if self.task_axis else q[:, 0])
        self._rows.finish()
        if self._summary is not None:
            table = variant_table({key: h5[key][()] for key in h5 if key not in _PER_BASE}, self.tasks, self.task_axis)
            table.to_csv(self._outputs.file(self._summary, ours=is_summary), sep="\t", index=False,
                         float_format="%.6g")
        self._rows.close()

    def abort(self):
        self._rows.abort()


def squeeze_task(values: np.ndarray, task_axis: bool) -> np.ndarray:
    return values if task_axis else values[:, 0]


def _text(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def variant_table(values: dict, tasks, task_axis: bool = True) -> pd.DataFrame:
    """One row per variant and task (the TSV): name, task, chrom, pos, ref, alt, predictions, effect, the allele
    contributions, max_contrib_change, convergence deltas, and js_distance, p_value, q_value when present.
    values: the file's per-variant datasets (``(N, [T])``; ``task_axis``: whether T is there)."""
    expand = (lambda a: np.asarray(a)) if task_axis else (lambda a: np.asarray(a)[:, None])
    frames = []
    for t_index, task in enumerate(tasks):
        frame = {"name": _text(values["ids"]), "task": task, "chrom": _text(values["chrom"]),
                 "pos": np.asarray(values["pos"]), "ref": _text(values["ref"]), "alt": _text(values["alt"]),
                 "ref_prediction": expand(values["ref_prediction"])[:, t_index],
                 "alt_prediction": expand(values["alt_prediction"])[:, t_index],
                 "effect": expand(values["delta"])[:, t_index]}
        if "js_distance" in values:
            frame["js_distance"] = np.asarray(values["js_distance"])
        for key in _PER_VARIANT:
            frame[key] = expand(values[key])[:, t_index]
        for key in ("p_value", "q_value"):
            if key in values:
                frame[key] = expand(values[key])[:, t_index]
        frames.append(pd.DataFrame(frame))
    return pd.concat(frames).sort_index(kind="stable").reset_index(drop=True)




class VariantFile(RowFile):
    """A variant file opened for reading in pieces: ``ids`` (``names``), ``chrom``, ``pos``, ``ref``, ``alt`` (all),
    ``attrs``, ``task``, ``tasks``, ``n``, ``length``, ``variant_index`` (the variant's first base in both windows);
    ``rows(key, index)`` and ``chunks(key)`` give one task's rows of ``ref_contrib``, ``alt_one_hot``, ..."""

    KIND, ROW, PER_TASK, DERIVED = "variant file", "variant", _PER_TASK, ("q_value",)

    def __init__(self, path, task=None):
        self._open(path)
        try:
            h5 = self._h5
            if MARKER not in h5:
                raise SeqliftError(f"{path}: not a variant file (seqlift variants writes them; --variant and variant "
                                   "effects need one)")
            if COMPLETED in h5.attrs:
                raise SeqliftError(f"{path}: is the in-progress file of a run that has not finished; continue it with "
                                   "seqlift variants ... --resume, or remove it")
            missing = [key for key in VARIANT_DATASETS if key not in h5]
            if missing:
                raise SeqliftError(f"{path}: damaged variant file: no '{missing[0]}' dataset")
            self.attrs = dict(h5.attrs)
            self.tasks = self._tasks(task)
            n, self.length = h5["ref_one_hot"].shape[:2]
            axis = (len(self.tasks),) if len(self.tasks) > 1 else ()
            for key in VARIANT_DATASETS:
                shape = ((n,) if key in ("ids", "chrom", "pos", "ref", "alt") else
                         (n, self.length, 4) if key.endswith("one_hot") else
                         (n,) + axis if key.endswith("prediction") else (n,) + axis + (self.length, 4))
                if h5[key].shape != shape:
                    raise SeqliftError(f"{path}: damaged variant file: '{key}' has shape {h5[key].shape}, expected "
                                       f"{shape}")
            if n == 0:
                raise SeqliftError(f"{path}: the variant file holds no variants")
            self._task_index = self.tasks.index(self.task) if axis else None
            self.names = np.array(decoded(self.read("ids")))
            self.chrom, self.ref, self.alt = (decoded(self.read(key)) for key in ("chrom", "ref", "alt"))
            self.pos = self.read("pos").astype(np.int64)
        except BaseException:
            h5.close()
            raise
        self.n = n
        self.variant_index = int(self.attrs.get("variant_index", self.length // 2))

    def column(self, key) -> np.ndarray:
        """A per-variant dataset whole, every task: ``(N, T)`` float64 (``ref_prediction``, ``p_value``, ...)."""
        values = np.asarray(self.checked(key, self.read(key)), np.float64)
        return values[:, None] if values.ndim == 1 else values

    def find(self, variant: str) -> int:
        """The row of ``variant``: its ID, or ``chrom:pos:ref:alt`` (one-line errors when none or several match)."""
        full = [f"{c}:{p}:{r}:{a}" for c, p, r, a in zip(self.chrom, self.pos, self.ref, self.alt)]
        rows = [i for i, name in enumerate(self.names) if name == variant] or \
            [i for i, name in enumerate(full) if name == variant]
        if not rows:
            raise SeqliftError(f"--variant {variant}: no such variant in {self.path} (give its ID or "
                               "chrom:pos:ref:alt)")
        if len(rows) > 1:
            raise SeqliftError(f"--variant {variant}: {len(rows)} variants have this ID; give one as chrom:pos:ref:alt "
                               f"({', '.join(full[i] for i in rows[:3])})")
        return rows[0]


