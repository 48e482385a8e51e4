"""Scores out: the HDF5 score file, its TSV summary and TF-MoDISco-lite inputs, written in chunks.

Everything is written into temporaries claimed from an ``outputs.Outputs`` and renamed at the end, so
an interrupted run leaves nothing at the destination. The HDF5 layout (one task: no task axis):

- ``names`` (N) · ``one_hot`` (N, L, 4)
- ``contrib`` (N, [T,] L, 4) projected onto the observed base · ``hypothetical`` (N, [T,] L, 4)
- ``delta`` (N, [T]) · ``prediction`` (N, [T]) · ``reference_prediction`` (N, [T])
- attributes: seqlift version, backend, model path and sha256, tasks, method, rule, reference,
  n_refs, seed, normalization, target (logit, sum or profile), rc_average (both strands averaged).
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np
import pandas as pd

from .errors import SeqliftError
from .outputs import Outputs

if TYPE_CHECKING:  # scoring loads Keras; reading and writing score files does not need it
    from .scoring import Scores

_PER_BASE = ("contrib", "hypothetical")
_PER_SEQUENCE = ("delta", "prediction", "reference_prediction")


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_score_file(path) -> bool:
    """Whether ``path`` is an HDF5 file seqlift wrote (a new run may replace it)."""
    try:
        with h5py.File(path, "r") as handle:
            return "seqlift_version" in handle.attrs
    except OSError:
        return False


def is_summary(path) -> bool:
    """Whether ``path`` is a TSV summary seqlift wrote (its header is ours)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().startswith("name\ttask\t")
    except (OSError, UnicodeDecodeError):
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
    """Append chunks of scores into temporaries claimed from ``outputs`` (renamed when its block ends).

    out: the HDF5 path. summary: the TSV path (or None). modisco: a prefix for TF-MoDISco-lite's
    ``PREFIX_ohe.npz`` and ``PREFIX_hyp.npz`` (``PREFIX_task{t}_hyp.npz`` for several tasks).
    regions: write ``chrom``, ``start`` and ``strand`` datasets (BED input) beside the names.
    """

    def __init__(self, outputs: Outputs, out, length: int, tasks: list[int], attrs: dict, summary=None,
                 modisco=None, n_expected: int | None = None, regions=False):
        self.length, self.tasks = length, list(tasks)
        self.task_axis = len(self.tasks) > 1
        self.target = str(attrs.get("target", "logit"))
        self.n = 0
        self._outputs = outputs
        self._h5_path = outputs.file(out)
        self._h5 = h5py.File(self._h5_path, "w")
        chunk_rows = 64
        shape = (length, 4)
        per_base = ((len(self.tasks),) if self.task_axis else ()) + shape
        per_seq = (len(self.tasks),) if self.task_axis else ()
        strings = ("names", "chrom", "strand") if regions else ("names",)
        for key in strings:
            self._h5.create_dataset(key, (0,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(1024,))
        if regions:
            self._h5.create_dataset("start", (0,), maxshape=(None,), dtype="int64", chunks=(1024,))
        self._h5.create_dataset("one_hot", (0,) + shape, maxshape=(None,) + shape, dtype="float32",
                                chunks=(chunk_rows,) + shape, compression="gzip", compression_opts=1)
        for key in _PER_BASE:
            self._h5.create_dataset(key, (0,) + per_base, maxshape=(None,) + per_base, dtype="float32",
                                    chunks=(chunk_rows,) + per_base, compression="gzip", compression_opts=1)
        for key in _PER_SEQUENCE:
            self._h5.create_dataset(key, (0,) + per_seq, maxshape=(None,) + per_seq, dtype="float32",
                                    chunks=(1024,) + per_seq)
        for key, value in attrs.items():
            self._h5.attrs[key] = value
        self._tsv = open(outputs.file(summary), "w") if summary else None
        self._tsv_header = True
        self._modisco = []
        if modisco:
            if n_expected is None:
                raise ValueError("n_expected is needed to stream TF-MoDISco inputs")
            self._modisco = [_NpzStream(outputs.file(p, "--modisco"), (n_expected, 4, length))
                             for p in modisco_paths(modisco, self.tasks)]

    def append(self, names: list[str], one_hot: np.ndarray, scores: Scores, regions=None):
        """Append a chunk; ``regions``: its ``Region``s (chrom, start, strand) when the file has them."""
        start, stop = self.n, self.n + len(names)
        squeeze = (lambda a: a) if self.task_axis else (lambda a: a[:, 0])
        values = {"names": np.asarray(names, dtype=object), "one_hot": one_hot}
        if regions is not None:
            values.update(chrom=np.asarray([r.chrom for r in regions], dtype=object),
                          start=np.asarray([r.start for r in regions], dtype=np.int64),
                          strand=np.asarray([r.strand for r in regions], dtype=object))
        for key in _PER_BASE + _PER_SEQUENCE:
            values[key] = squeeze(getattr(scores, key))
        self._outputs.ensure_room(self._h5_path, sum(np.asarray(v).nbytes for v in values.values())
                                  + 64 * len(names))  # names: object arrays count pointers only
        for key, value in values.items():
            dataset = self._h5[key]
            dataset.resize(stop, axis=0)
            dataset[start:stop] = value
        if self._tsv:
            self._write_summary(names, scores)
        if self._modisco:
            self._modisco[0].write(one_hot.transpose(0, 2, 1))
            for t, stream in enumerate(self._modisco[1:]):
                stream.write(scores.hypothetical[:, t].transpose(0, 2, 1))
        self.n = stop

    def _write_summary(self, names, scores: Scores):
        per_position = scores.contrib.sum(-1)  # (N, T, L)
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
        self._h5.attrs["n_sequences"] = self.n
        self._h5.close()
        if self._tsv:
            self._tsv.close()
        for stream in self._modisco:
            stream.close(self.n)

    def abort(self):
        """Close every handle after a failure (the ``Outputs`` that owns the files removes them)."""
        for handle in [self._h5, self._tsv]:
            try:
                if handle:
                    handle.close()
            except Exception:  # noqa: BLE001 - already closed or broken: removing it is what matters
                pass
        for stream in self._modisco:
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


class ScoreFile:
    """A score file opened for reading in pieces (a file of millions of sequences never loads whole).

    ``names`` (all, as str), ``attrs``, ``task``, ``n``, ``length``; ``rows(key, index)`` and ``chunks(key)`` give
    one task's rows of ``contrib``, ``hypothetical``, ``one_hot``, ``delta``, ... as numpy arrays.
    """

    def __init__(self, path, task=None):
        path = Path(path)
        if not path.exists():
            raise SeqliftError(f"{path}: score file not found")
        try:
            self._h5 = h5py.File(path, "r")
        except OSError:
            raise SeqliftError(f"{path}: not an HDF5 score file") from None
        if "contrib" not in self._h5:
            self._h5.close()
            raise SeqliftError(f"{path}: not a seqlift score file (no 'contrib' dataset)")
        self.attrs = dict(self._h5.attrs)
        tasks = [int(t) for t in np.atleast_1d(self.attrs.get("tasks", [0]))]
        if task is not None and task not in tasks:
            self._h5.close()
            raise SeqliftError(f"{path}: task {task} is not in the file (tasks: {tasks})")
        self.task = tasks[0] if task is None else task
        self._task_index = tasks.index(self.task) if self._h5["contrib"].ndim == 4 else None
        self.names = np.array([n.decode() if isinstance(n, bytes) else n for n in self._h5["names"][()]])
        self.n = len(self.names)
        self.length = self._h5["one_hot"].shape[1]

    def regions(self):
        """``(chrom, start, strand)`` per record for BED input (records scored on their strand), else None."""
        if "chrom" not in self._h5:
            return None
        decode = lambda values: [v.decode() if isinstance(v, bytes) else v for v in values]  # noqa: E731
        return list(zip(decode(self._h5["chrom"][()]), self._h5["start"][()].tolist(), decode(self._h5["strand"][()])))

    def _select(self, key, values):
        if self._task_index is not None and key in _PER_BASE + _PER_SEQUENCE:
            return values[:, self._task_index]
        return values

    def rows(self, key, index) -> np.ndarray:
        """Rows ``index`` (any order) of dataset ``key`` for this task."""
        unique, position = np.unique(np.asarray(index, dtype=np.int64), return_inverse=True)
        return self._select(key, self._h5[key][unique])[position]  # h5py reads increasing indices

    def chunks(self, key, size=4096):
        """``(start, rows)`` for successive chunks of dataset ``key`` for this task."""
        for start in range(0, self.n, size):
            yield start, self._select(key, self._h5[key][start:start + size])

    def close(self):
        self._h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_scores(path, task=None) -> dict:
    """A whole score file as numpy arrays (small files); ``task`` picks one task of the file's tasks."""
    with ScoreFile(path, task) as f:
        data = {key: f.rows(key, np.arange(f.n)) for key in ("one_hot",) + _PER_BASE + _PER_SEQUENCE}
        data.update(names=f.names, attrs=f.attrs, task=f.task)
    return data
