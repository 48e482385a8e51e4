"""Scores out: the HDF5 score file, its TSV summary and TF-MoDISco-lite inputs, written in chunks.

Everything is written into temporaries claimed from an ``outputs.Outputs`` and renamed at the end, so
an interrupted run leaves nothing at the destination. The HDF5 layout (one task: no task axis):

- ``names`` (N) · ``one_hot`` (N, L, 4)
- ``contrib`` (N, [T,] L, 4) projected onto the observed base · ``hypothetical`` (N, [T,] L, 4)
- ``delta`` (N, [T]) · ``prediction`` (N, [T]) · ``reference_prediction`` (N, [T])
- attributes: seqlift version, backend, model path and sha256, tasks, method, rule, reference,
  n_refs, seed, normalization, target (logit, sum, profile or profile-fixed-weights), rc_average (both strands averaged).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import h5py
import numpy as np
import pandas as pd

from .errors import SeqliftError
from .outputs import Outputs
from .rowfile import COMPLETED, TEXT, Column, RowFile, RowWriter, chunk_rows, decoded, is_summary, summary_path

if TYPE_CHECKING:  # scoring loads Keras; reading and writing score files does not need it
    from .scoring import Scores

# Datasets and the ``Scores`` fields they hold: the names are the file format's (``contrib`` predates the
# field's name, and score files keep it so that every file seqlift wrote stays readable).
_PER_BASE = {"contrib": "contributions", "hypothetical": "hypothetical"}
_PER_SEQUENCE = {"delta": "delta", "prediction": "prediction", "reference_prediction": "reference_prediction"}
_FIELDS = {**_PER_BASE, **_PER_SEQUENCE}
# The dataset that makes a file a score file (``files.file_kind``).
MARKER = "contrib"


def is_score_file(path) -> bool:
    """Whether ``path`` is an HDF5 file seqlift wrote (a new run may replace it)."""
    try:
        with h5py.File(path, "r") as handle:
            return "seqlift_version" in handle.attrs
    except OSError:
        return False


def is_modisco_input(path) -> bool:
    """Whether ``path`` is an ``.npz`` of one array ``arr_0``, as ``--modisco`` writes."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist() == ["arr_0.npy"]
    except (OSError, zipfile.BadZipFile):
        return False


def modisco_paths(prefix, tasks) -> list[Path]:
    """TF-MoDISco-lite input files for ``prefix``: the one-hot, then one hypothetical file per task."""
    prefix = str(prefix)
    if len(tasks) > 1:
        return [Path(f"{prefix}_ohe.npz")] + [Path(f"{prefix}_task{t}_hyp.npz") for t in tasks]
    return [Path(f"{prefix}_ohe.npz"), Path(f"{prefix}_hyp.npz")]


class ScoreWriter:
    """Append chunks of scores to a score file (``rowfile.RowWriter``), its TSV summary and TF-MoDISco-lite inputs,
    in temporaries claimed from ``outputs`` (renamed when its block ends).

    out: the HDF5 path. summary: the TSV path (or None). streams: more files written chunk by chunk as the
    scores come (``ModiscoInputs``; each has ``write(names, one_hot, scores)``, ``close(n)`` and ``discard()``).
    regions: write ``chrom``, ``start`` and ``strand`` datasets (BED input) beside the names.
    resume, resuming: as ``RowWriter``'s (``completed`` replays an interrupted run's rows).
    """

    def __init__(self, outputs: Outputs, out, length: int, tasks: list[int], attrs: dict, summary=None,
                 streams=(), regions=False, resume: dict | None = None,
                 resuming: bool = False):
        self.length, self.tasks = length, list(tasks)
        self.task_axis = len(self.tasks) > 1
        self.target = str(attrs.get("target", "logit"))
        rows = chunk_rows((resume or {}).get("chunk_size", 64))
        self._rows = RowWriter(outputs, out, self.columns(length, len(self.tasks), regions, rows), attrs,
                               is_score_file, resume, resuming)
        self._tsv = open(outputs.file(summary, ours=is_summary), "w") if summary else None
        self._tsv_header = True
        self._streams = list(streams)

    @classmethod
    def for_shards(cls, outputs: Outputs, out, first: ScoreFile, attrs: dict) -> ScoreWriter:
        """The writer of a merge of ``first``'s shards (``rowfile.merge_shards``): the file and its summary."""
        return cls(outputs, out, first.length, first.tasks, attrs, summary=summary_path(out), regions="chrom" in first)

    @staticmethod
    def columns(length: int, n_tasks: int, regions: bool, rows: int) -> list[Column]:
        """The score file's datasets (the module's docstring); ``rows`` per HDF5 chunk of the per-base ones."""
        per_base = ((n_tasks,) if n_tasks > 1 else ()) + (length, 4)
        per_seq = (n_tasks,) if n_tasks > 1 else ()
        strings = ("names", "chrom", "strand") if regions else ("names",)
        return ([Column(key, dtype=TEXT) for key in strings] + ([Column("start", dtype="int64")] if regions else [])
                + [Column("one_hot", (length, 4), rows=rows, compress=True)]
                + [Column(key, per_base, rows=rows, compress=True) for key in _PER_BASE]
                + [Column(key, per_seq) for key in _PER_SEQUENCE])

    @property
    def n(self) -> int:
        """Rows written (an interrupted run's included)."""
        return self._rows.n

    @property
    def _h5(self):
        return self._rows.h5

    def completed(self, block: int = 4096):
        """``ScoredChunk``s of the rows an interrupted run completed, in blocks; their summary and TF-MoDISco rows
        are written again on the way (those streams are not resumable)."""
        from .scoring import ScoredChunk, Scores

        expand = (lambda a: a) if self.task_axis else (lambda a: a[:, None])
        for start in range(0, self.n, block):
            rows = slice(start, min(start + block, self.n))
            names = decoded(self._h5["names"][rows])
            one_hot = self._h5["one_hot"][rows]
            scores = Scores(**{name: expand(self._h5[key][rows]) for key, name in _FIELDS.items()})
            self._write_streams(names, one_hot, scores)
            yield ScoredChunk(names, one_hot, scores)

    def add(self, chunk):
        """Append a scored chunk of the run loop (``names``, ``one_hot``, ``scores``, ``regions``)."""
        self.append(chunk.names, chunk.one_hot, chunk.scores, chunk.regions)

    def append(self, names: list[str], one_hot: np.ndarray, scores: Scores, regions=None):
        """Append a chunk; ``regions``: its ``Region``s (chrom, start, strand) when the file has them."""
        squeeze = (lambda a: a) if self.task_axis else (lambda a: a[:, 0])
        values = {"names": np.asarray(names, dtype=object), "one_hot": one_hot}
        if regions is not None:
            values.update(chrom=np.asarray([r.chrom for r in regions], dtype=object),
                          start=np.asarray([r.start for r in regions], dtype=np.int64),
                          strand=np.asarray([r.strand for r in regions], dtype=object))
        for key, name in _FIELDS.items():
            values[key] = squeeze(getattr(scores, name))
        self._rows.append(values)
        self._write_streams(names, one_hot, scores)

    def append_file_rows(self, values: dict):
        """Append rows read from another score file (``{dataset: rows}``, its layout) and their summary."""
        expand = (lambda a: a) if self.task_axis else (lambda a: a[:, None])
        self._rows.append(values)
        self._write_streams(decoded(values["names"]), values["one_hot"],
                            SimpleNamespace(**{name: expand(values[key]) for key, name in _FIELDS.items()}))

    def _write_streams(self, names, one_hot, scores: Scores):
        if self._tsv:
            self._write_summary(names, scores)
        for stream in self._streams:
            stream.write(names, one_hot, scores)

    def _write_summary(self, names, scores: Scores):
        per_position = scores.contributions.sum(-1)  # (N, T, L)
        strongest = np.abs(per_position).argmax(-1)
        rows = []
        for t_index, task in enumerate(self.tasks):
            idx = strongest[:, t_index]
            rows.append(pd.DataFrame({
                "name": names,
                "task": task,
                "target": self.target,
                "prediction": scores.prediction[:, t_index],
                "reference_prediction": scores.reference_prediction[:, t_index],
                "total_contribution": per_position[:, t_index].sum(-1),
                "convergence_delta": scores.delta[:, t_index],
                "max_position": idx,
                "max_contribution": per_position[np.arange(len(names)), t_index, idx],
            }))
        frame = pd.concat(rows).sort_index(kind="stable")
        frame.to_csv(self._tsv, sep="\t", index=False, header=self._tsv_header, float_format="%.6g")
        self._tsv_header = False

    def close(self):
        if self.n == 0:
            self.abort()
            raise SeqliftError("no sequences were scored")
        self._rows.finish()
        self._rows.close()
        if self._tsv:
            self._tsv.close()
        for stream in self._streams:
            stream.close(self.n)

    def abort(self):
        """Close every handle after a failure (the ``Outputs`` that owns the files removes them)."""
        self._rows.abort()
        try:
            if self._tsv:
                self._tsv.close()
        except Exception:  # noqa: BLE001 - already closed or broken: removing it is what matters
            pass
        for stream in self._streams:
            stream.discard()


class ModiscoInputs:
    """TF-MoDISco-lite's inputs, streamed as the scores come: ``PREFIX_ohe.npz`` and ``PREFIX_hyp.npz``
    (``PREFIX_task{t}_hyp.npz`` for several tasks), each ``(n_expected, 4, length)``, claimed from ``outputs``."""

    def __init__(self, outputs: Outputs, prefix, tasks, n_expected: int, length: int):
        self._files = [_NpzStream(outputs.file(p, "--modisco", is_modisco_input), (n_expected, 4, length))
                       for p in modisco_paths(prefix, tasks)]

    def write(self, names, one_hot: np.ndarray, scores: Scores):
        self._files[0].write(one_hot.transpose(0, 2, 1))
        for t, stream in enumerate(self._files[1:]):
            stream.write(scores.hypothetical[:, t].transpose(0, 2, 1))

    def close(self, n: int):
        for stream in self._files:
            stream.close(n)

    def discard(self):
        for stream in self._files:
            stream.discard()


class _NpzStream:
    """An ``.npz`` holding one array ``arr_0`` (float32), written row block by row block."""

    def __init__(self, path: Path, shape: tuple):
        self.path, self.shape = path, shape
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        self._member = self._zip.open("arr_0.npy", "w", force_zip64=True)
        header = {"descr": "<f4", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self._member, header)
        self.rows = 0

    def write(self, block: np.ndarray):
        self._member.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        self.rows += len(block)

    def close(self, n: int):
        if n != self.shape[0]:
            raise RuntimeError(f"{self.path}: wrote {n} rows, announced {self.shape[0]}")
        self._member.close()
        self._zip.close()

    def discard(self):
        try:
            self._member.close()
            self._zip.close()
        except Exception:  # noqa: BLE001
            pass


# What a dataset holds where it is not numbers.
_KINDS = {"names": "text", "chrom": "text", "strand": "text", "start": "integers"}


def _holds(dataset, kind: str) -> bool:
    """Whether an HDF5 dataset's type is ``kind``: "text", "integers" or "numbers"."""
    if kind == "text":
        return h5py.check_string_dtype(dataset.dtype) is not None
    return dataset.dtype.kind in ("iu" if kind == "integers" else "iuf")


class ScoreFile(RowFile):
    """A score file opened for reading in pieces (a file of millions of sequences never loads whole).

    ``names`` (all, as str), ``attrs``, ``task``, ``n``, ``length``; ``rows(key, index)`` and ``chunks(key)`` give
    one task's rows of ``contrib``, ``hypothetical``, ``one_hot``, ``delta``, ... as numpy arrays.
    """

    KIND, ROW, PER_TASK = "score file", "sequence", tuple(_FIELDS)

    def __init__(self, path, task=None):
        self._open(path)
        try:
            self._check()
            self.attrs = dict(self._h5.attrs)
            tasks = self._tasks(task)
            self._task_index = tasks.index(self.task) if self._h5["contrib"].ndim == 4 else None
            self.names = np.array(decoded(self.read("names")))
        except BaseException:
            self._h5.close()
            raise
        self.n = len(self.names)
        self.length = self._h5["one_hot"].shape[1]

    def _check(self):
        """Refuse, in one line naming the file, what no reader can use: a foreign or in-progress file, missing
        datasets, shapes or row counts that disagree, no sequences. (NaN is found as rows are read.)"""
        h5, path = self._h5, self.path
        if MARKER not in h5:
            raise SeqliftError(f"{path}: not a seqlift score file (no 'contrib' dataset)")
        if COMPLETED in h5.attrs:
            raise SeqliftError(f"{path}: is the in-progress file of a run that has not finished; continue it with "
                               "seqlift score ... --resume, or remove it")
        missing = [key for key in ("names", "one_hot", *_FIELDS) if key not in h5]
        missing += [key for key in ("chrom", "start", "strand") if "chrom" in h5 and key not in h5]
        if missing:
            raise SeqliftError(f"{path}: damaged score file: no '{missing[0]}' dataset"
                               + (f" (nor {', '.join(missing[1:])})" if missing[1:] else ""))
        for key in ("names", "one_hot", *_FIELDS, "chrom", "start", "strand"):
            kind = _KINDS.get(key, "numbers")
            if key in h5 and not _holds(h5[key], kind):
                raise SeqliftError(f"{path}: damaged score file: '{key}' holds {h5[key].dtype} values, not {kind}")
        self.tasks = tasks = self._tasks(None)
        n = h5["names"].shape[0] if h5["names"].ndim == 1 else None
        one_hot = h5["one_hot"].shape
        if n is None or len(one_hot) != 3 or one_hot[2] != 4:
            raise SeqliftError(f"{path}: damaged score file: 'one_hot' has shape {one_hot} and 'names' "
                               f"{h5['names'].shape}, expected (N, L, 4) and (N,)")
        axis = (len(tasks),) if len(tasks) > 1 else ()
        expected = {"one_hot": (n,) + one_hot[1:], **{key: (n,) + axis + one_hot[1:] for key in _PER_BASE},
                    **{key: (n,) + axis for key in _PER_SEQUENCE},
                    **{key: (n,) for key in ("chrom", "start", "strand") if key in h5}}
        for key, shape in expected.items():
            if h5[key].shape != shape:
                raise SeqliftError(f"{path}: damaged score file: '{key}' has shape {h5[key].shape}, expected {shape} "
                                   f"({n} sequences of {one_hot[1]} bp, {len(tasks)} task(s))")
        recorded = h5.attrs.get("n_sequences")
        if recorded is not None and int(recorded) != n:
            raise SeqliftError(f"{path}: damaged score file: it holds {n} sequences but was written with "
                               f"{int(recorded)} (rows were cut or added)")
        if n == 0:
            raise SeqliftError(f"{path}: the score file holds no sequences")

    def regions(self):
        """``(chrom, start, strand)`` per record for BED input (records scored on their strand), else None. A start
        below 0 or a strand other than + or - (what the writer writes) is refused, naming the sequence."""
        if "chrom" not in self._h5:
            return None
        chrom, start, strand = decoded(self.read("chrom")), self.read("start").tolist(), decoded(self.read("strand"))
        for key, values, bad, what in (("start", start, lambda s: s < 0, "is below 0"),
                                       ("strand", strand, lambda s: s not in ("+", "-"), "is not + or -")):
            row = next((i for i, value in enumerate(values) if bad(value)), None)
            if row is not None:
                raise SeqliftError(f"{self.path}: damaged score file: '{key}' of sequence '{self.names[row]}' "
                                   f"(row {row}) {what} ({values[row]!r})")
        return list(zip(chrom, start, strand))

def read_scores(path, task=None) -> dict:
    """A whole score file as numpy arrays (small files); ``task`` picks one task of the file's tasks."""
    with ScoreFile(path, task) as f:
        data = {key: f.rows(key, np.arange(f.n)) for key in ("one_hot", *_FIELDS)}
        data.update(names=f.names, attrs=f.attrs, task=f.task)
    return data


# chrombpnet's contribution file (``interpret``): what ``modisco motifs -i`` and lab scripts read. Each group holds
# one dataset ``seq`` of shape (N, 4, L): ``raw`` the one-hot sequence, ``shap`` the hypothetical contributions,
# ``projected_shap`` those projected onto the observed base.
CHROMBPNET_GROUPS = {"raw": "one_hot", "shap": "hypothetical", "projected_shap": "contrib"}
EXPORT_LAYOUT = "seqlift_export_layout"


def is_chrombpnet_export(path) -> bool:
    """Whether ``path`` is a chrombpnet-layout file seqlift exported (a rerun may replace it)."""
    try:
        with h5py.File(path, "r") as handle:
            return handle.attrs.get(EXPORT_LAYOUT) == "chrombpnet"
    except OSError:
        return False


def export_chrombpnet(outputs: Outputs, scores_path, out, task=None, block: int = 4096) -> int:
    """Write one task of a score file in chrombpnet's layout: ``raw/seq``, ``shap/seq``, ``projected_shap/seq``,
    each ``(N, 4, L)`` (float32; chrombpnet stores the one-hot as int8 and scores as float16), with the score
    file's attributes, the task and ``names``. Returns the sequences written."""
    with ScoreFile(scores_path, task) as scores:
        if scores.n == 0:
            raise SeqliftError(f"{scores_path}: holds no sequences")
        tmp = outputs.file(out, ours=is_chrombpnet_export)
        outputs.ensure_room(tmp, scores.n * scores.length * 4 * 4 * 3)
        with h5py.File(tmp, "w") as h5:
            shape, rows = (scores.n, 4, scores.length), min(block, scores.n)
            for group, key in CHROMBPNET_GROUPS.items():
                dataset = h5.create_group(group).create_dataset("seq", shape, dtype="float32",
                                                                chunks=(min(64, rows), 4, scores.length),
                                                                compression="gzip", compression_opts=1)
                for start, values in scores.chunks(key, block):
                    dataset[start:start + len(values)] = np.asarray(values, np.float32).transpose(0, 2, 1)
            h5.create_dataset("names", data=scores.names.astype(object), dtype=h5py.string_dtype())
            for name, value in scores.attrs.items():
                if not name.startswith("resume_"):
                    h5.attrs[name] = value
            h5.attrs["task"] = scores.task
            h5.attrs[EXPORT_LAYOUT] = "chrombpnet"
        return scores.n
