"""HDF5 files of rows, as seqlift writes and reads them: one resumable writer, one reader, one merge of shards.

A score file (``scorefile``) and a variant file (``variantfile``) are both a table of rows (a sequence, a variant)
in HDF5 datasets that grow along their first axis. ``RowWriter`` writes such a file from its ``Column`` layout:
into a temporary claimed from an ``outputs.Outputs`` and renamed at the end, or, resumable, into ``OUT.partial``,
each appended chunk flushed and counted (``COMPLETED``) so that ``--resume`` continues after the last one.
``RowFile`` reads one in checked pieces, and ``merge_shards`` joins the files of ``--shard K/N`` runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from .errors import SeqliftError
from .outputs import Outputs

# In an in-progress file (``OUT.partial``): how many rows are completed and flushed to disk.
COMPLETED = "resume_completed_sequences"
TEXT = h5py.string_dtype()


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_source(folder, name: str, scores_path, **more):
    """``folder/name``: which score file a folder's results are of, by path and sha256 (its identity whatever its
    sequences are called), with ``more`` (the motifs used, say)."""
    record = {"scores": str(Path(scores_path).resolve()), "scores_sha256": sha256(scores_path),
              **{key: str(value) for key, value in more.items()}}
    (Path(folder) / name).write_text(json.dumps(record, indent=1) + "\n")


def check_source(folder, name: str, scores_path, option: str, command: str):
    """Refuse, in one line, a folder whose ``name`` record (``write_source``) is of another score file than
    ``scores_path``. A folder without one (written before seqlift recorded it) is checked by the sequence names it
    holds only, as ``motifs.check_seqlets_belong`` does."""
    path = Path(folder) / name
    if not path.is_file():
        return
    try:
        recorded = json.loads(path.read_text())
        digest, made_from = str(recorded["scores_sha256"]), str(recorded.get("scores", "another file"))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise SeqliftError(f"{option} {folder}: unreadable {name}; rerun {command}") from None
    if digest != sha256(scores_path):
        raise SeqliftError(f"{option} {folder}: was made from another score file ({made_from}: the sha256 differs "
                           f"from {scores_path}'s); give the folder {command} wrote for this file, or run {command} "
                           "on it")


def is_summary(path) -> bool:
    """Whether ``path`` is a TSV summary seqlift wrote (its header is ours)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().startswith("name\ttask\t")
    except (OSError, UnicodeDecodeError):
        return False




def summary_path(out) -> Path:
    """The TSV beside a score or variant file: ``OUT.tsv`` for ``OUT.h5``, else ``OUT.tsv`` appended."""
    out = Path(out)
    return out.with_suffix(".tsv") if out.suffix == ".h5" else Path(f"{out}.tsv")


def chunk_rows(rows_per_chunk: int) -> int:
    """Rows per HDF5 chunk of a per-base dataset: the largest divisor of ``rows_per_chunk`` (the run's chunk) up to
    64, so a resumable file's compressed chunks never straddle two of the run's chunks: writing the next one never
    rewrites (and a kill never damages) a flushed one."""
    return max(d for d in range(1, 65) if rows_per_chunk % d == 0)


@dataclass(frozen=True)
class Column:
    """One dataset of a file of rows: ``shape`` per row, ``dtype``, ``rows`` per HDF5 chunk, gzip-compressed or not."""

    name: str
    shape: tuple = ()
    dtype: object = "float32"
    rows: int = 1024
    compress: bool = False


class RowWriter:
    """Append rows to an HDF5 file laid out as ``columns``, in a temporary claimed from ``outputs`` (renamed when its
    block ends). ours: whether a file already at ``out`` is one seqlift wrote (a rerun may replace it).

    resume: settings that must match for a later ``--resume`` (stored as ``resume_*`` attributes): when given, the
    file is the stable in-progress ``OUT.partial``, every ``append`` is flushed and counted, and ``resuming``
    continues an existing one: its completed rows are kept (``n``).
    """

    def __init__(self, outputs: Outputs, out, columns: list[Column], attrs: dict, ours: Callable,
                 resume: dict | None = None, resuming: bool = False):
        self.n = 0
        self._outputs, self._columns, self._resume = outputs, list(columns), resume
        if resume is None:
            self.path = outputs.file(out, ours=ours)
            self.h5 = self._create(self.path, attrs)
            return
        self.path, existed = outputs.partial(out, resuming, ours=ours)
        if existed:
            self.h5, self.n = _reopen_in_progress(outputs, self.path, attrs, resume,
                                                 lambda setup, old_attrs: self._create(setup, old_attrs))
            return
        with outputs.replacing(self.path) as setup:  # set up beside it: OUT.partial only ever exists complete
            self.h5 = self._create(setup, attrs)
            for key, value in resume.items():
                self.h5.attrs[f"resume_{key}"] = value
            self.h5.attrs[COMPLETED] = 0
            self.h5.flush()

    def _create(self, path: Path, attrs: dict) -> h5py.File:
        """A new file with every column empty, growing along its first axis."""
        self._outputs.ensure_room(self.path, 0)  # its header and empty datasets: HDF5 crashes on a failed write
        h5 = h5py.File(path, "w")
        for c in self._columns:
            packed = {"compression": "gzip", "compression_opts": 1} if c.compress else {}
            h5.create_dataset(c.name, (0,) + c.shape, maxshape=(None,) + c.shape, dtype=c.dtype,
                              chunks=(c.rows,) + c.shape, **packed)
        for key, value in attrs.items():
            h5.attrs[key] = value
        return h5

    def append(self, values: dict):
        """Write ``{column: rows}`` after the rows written so far; resumable, they are on disk before they count."""
        start, stop = self.n, self.n + len(next(iter(values.values())))
        self._outputs.ensure_room(self.path, sum(np.asarray(v).nbytes for v in values.values())
                                  + 64 * (stop - start))  # text: object arrays count pointers only
        for key, value in values.items():
            dataset = self.h5[key]
            dataset.resize(stop, axis=0)
            dataset[start:stop] = value
        self.n = stop
        if self._resume is not None:
            self.h5.attrs[COMPLETED] = stop
            self.h5.flush()
            self._outputs.keep_if_interrupted(self.path)  # completed work: Ctrl-C keeps it for --resume

    def finish(self):
        """Record the row count and drop the in-progress attributes; the caller closes ``h5`` (``close``)."""
        self.h5.attrs["n_sequences"] = self.n
        for key in [k for k in self.h5.attrs if k == COMPLETED or k.startswith("resume_")]:
            del self.h5.attrs[key]

    def close(self):
        self.h5.close()

    def abort(self):
        """Close the file after a failure (the ``Outputs`` that owns it removes it)."""
        try:
            self.h5.close()
        except Exception:  # noqa: BLE001 - already closed or broken: removing it is what matters
            pass


def _reopen_in_progress(outputs: Outputs, path: Path, attrs: dict, resume: dict, create) -> tuple[h5py.File, int]:
    """An interrupted run's in-progress file (``OUT.partial``) and its count of completed rows: those rows are copied
    into a fresh file made by ``create(path, attrs)`` (a kill mid-write can leave HDF5's string heap
    unusable for writing, never the flushed rows), which replaces it. A file started with other settings, model or
    input (``attrs`` and ``resume_*``) is refused, naming what differs."""
    try:
        old = h5py.File(path, "r")
    except OSError:
        raise SeqliftError(f"{path}: the interrupted run's file is damaged; remove it to start again") from None
    with outputs.replacing(path) as setup, old:
        was, now = (_writer_of(set(keys)) for keys in (old.attrs, attrs))
        if was != now:
            raise SeqliftError(f"--resume: {path} was started by {was}, not {now}; remove it to start again, or give "
                               "another --out")
        expected = {**attrs, **{f"resume_{k}": v for k, v in resume.items()}}
        differ = [key for key, value in expected.items()
                  if key not in old.attrs or not np.array_equal(np.asarray(old.attrs[key]), np.asarray(value))]
        if differ:
            shown = ", ".join(f"{k.removeprefix('resume_')} (was {old.attrs.get(k, 'unset')!s:.60}, "
                              f"now {expected[k]!s:.60})" for k in differ)
            raise SeqliftError(f"--resume: {path} was started with different settings, model or input: "
                               f"{shown}; remove it to start again")
        n = int(old.attrs[COMPLETED])
        h5 = create(setup, dict(old.attrs))
        for key in old:
            h5[key].resize(n, axis=0)
            for start in range(0, n, 4096):
                h5[key][start:start + 4096] = old[key][start:min(start + 4096, n)]
        h5.flush()
    return h5, n


def _writer_of(attributes: set) -> str:
    """Which command writes a file with these attribute names: a variant file records the variant's index."""
    return "seqlift variants" if "variant_index" in attributes else "seqlift score"


def decoded(values) -> list[str]:
    """Strings of an HDF5 text dataset's values (h5py gives bytes)."""
    return [v.decode() if isinstance(v, bytes) else v for v in values]


class RowFile:
    """What the readers of seqlift's files share: an HDF5 file read in pieces, each piece checked (``read``,
    ``checked``), one task's rows of the datasets with a task axis (``rows``, ``chunks``). A subclass opens and
    checks its kind of file and sets ``names`` (what errors call each row), ``n`` and ``_task_index``."""

    KIND = "file"  # "score file", "variant file": what errors call it
    ROW = "row"  # what a row is: "sequence", "variant"
    PER_TASK: tuple = ()  # datasets with a task axis after the rows
    DERIVED: tuple = ()  # datasets computed over every row at the end: not copied by ``merge_shards``

    def _open(self, path) -> Path:
        path = Path(path)
        if not path.exists():
            raise SeqliftError(f"{path}: {self.KIND} not found")
        try:
            self._h5 = h5py.File(path, "r")
        except OSError:
            raise SeqliftError(f"{path}: not an HDF5 {self.KIND}") from None
        self.path = path
        return path

    def _tasks(self, task) -> list[int]:
        """The file's tasks (its ``tasks`` attribute), and ``self.task``: ``task``, or the first."""
        try:
            tasks = [int(t) for t in np.atleast_1d(self._h5.attrs.get("tasks", [0]))]
        except (TypeError, ValueError):
            raise SeqliftError(f"{self.path}: damaged {self.KIND}: its 'tasks' attribute is not a list of "
                               "outputs") from None
        if not tasks:
            raise SeqliftError(f"{self.path}: damaged {self.KIND}: its 'tasks' attribute is empty")
        if task is not None and task not in tasks:
            raise SeqliftError(f"{self.path}: task {task} is not in the file (tasks: {tasks})")
        self.task = tasks[0] if task is None else task
        return tasks

    def read(self, key, selection=()) -> np.ndarray:
        """``selection`` (h5py indexing: a slice, increasing indices) of dataset ``key`` as stored; a part HDF5
        cannot read back (a failed checksum or decompression: the file's bytes changed) is one line naming
        the file and dataset."""
        try:
            return self._h5[key][selection]
        except OSError as exc:  # HDF5's message wraps the reason: "Can't read data (filter returned failure ...)"
            found = re.search(r"\(([^()]+)\)\s*$", str(exc).strip().split("\n")[0])
            reason = found.group(1) if found else str(exc).strip()[:120] or type(exc).__name__
            rows = (f" rows {selection.start}-{min(selection.stop, len(self._h5[key])) - 1}"
                    if isinstance(selection, slice) and selection.start is not None else "")
            raise SeqliftError(f"{self.path}: damaged {self.KIND}: '{key}'{rows} cannot be read ({reason}): its "
                               "bytes changed after it was written; score again, or restore it") from None

    def checked(self, key, values: np.ndarray, first: int = 0, index=None) -> np.ndarray:
        """``values`` (rows of dataset ``key``; rows ``first``.. or ``index``), refused in one line naming the
        first row that holds NaN or infinity, or, for ``one_hot``, a position that is not one 1 and three 0s
        (or all 0 for N)."""
        problems = []
        if values.dtype.kind == "f":
            problems.append((~np.isfinite(values.reshape(len(values), -1)).all(1), "is NaN or infinite"))
        if key == "one_hot":
            one_hot = ((values == 0) | (values == 1)).all((-2, -1)) & (values.sum(-1) <= 1).all(-1)
            problems.append((~one_hot, "is not one-hot (each position one 1 and three 0s, or all 0 for N)"))
        for bad, what in problems:
            if bad.any():
                row = int(index[np.argmax(bad)]) if index is not None else first + int(np.argmax(bad))
                raise SeqliftError(f"{self.path}: damaged {self.KIND}: '{key}' of {self.ROW} '{self.names[row]}' "
                                   f"(row {row}) {what}")
        return values

    def _select(self, key, values, task=None):
        if self._task_index is not None and key in self.PER_TASK:
            return values[:, self._task_index if task is None else self.tasks.index(task)]
        return values

    def __contains__(self, key) -> bool:
        return key in self._h5

    def rows(self, key, index, task=None) -> np.ndarray:
        """Rows ``index`` (any order) of dataset ``key`` for this task (or ``task``, another of the file's)."""
        unique, position = np.unique(np.asarray(index, dtype=np.int64), return_inverse=True)
        if len(unique) and unique[-1] - unique[0] + 1 == len(unique):  # a run of rows: one slice, far faster
            values = self._select(key, self.read(key, slice(unique[0], unique[-1] + 1)), task)
        else:
            values = self._select(key, self.read(key, unique), task)  # h5py reads increasing indices
        return self.checked(key, values, index=unique)[position]

    def chunks(self, key, size=4096):
        """``(start, rows)`` for successive chunks of dataset ``key`` for this task."""
        for start in range(0, self.n, size):
            yield start, self.checked(key, self._select(key, self.read(key, slice(start, start + size))), start)

    def copied(self) -> list[str]:
        """The datasets a merge copies row by row (the others, ``DERIVED``, are computed again)."""
        return [key for key in self._h5 if key not in self.DERIVED]

    def close(self):
        self._h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# Attributes that tell shards apart: checked by merge_shards, absent from the merged file.
SHARD_ATTRS = ("shard", "shard_first", "shard_input_sequences", "n_sequences")


def check_shards(files: list[RowFile], paths) -> list[int]:
    """The shards' order (by K), after checking they are one sharded run, complete and none repeated."""
    if not files:
        raise SeqliftError("merge: give the shard files to join")
    reference, seen = files[0].attrs, {}
    for path, f in zip(paths, files):
        if "shard" not in f.attrs:
            raise SeqliftError(f"{path}: not a shard (written without --shard K/N)")
        differ = [k for k in set(reference) | set(f.attrs) if k not in SHARD_ATTRS
                  and not np.array_equal(np.asarray(reference.get(k, "unset")), np.asarray(f.attrs.get(k, "unset")))]
        if differ:
            raise SeqliftError(f"{path}: differs from {paths[0]} in {', '.join(sorted(differ))}: not shards of one run")
        k, total = (int(x) for x in str(f.attrs["shard"]).split("/"))
        if k in seen:
            raise SeqliftError(f"{path}: shard {k}/{total} is repeated (also {seen[k]})")
        seen[k] = path
    total = int(str(reference["shard"]).split("/")[1])
    missing = sorted(set(range(1, total + 1)) - set(seen))
    if missing or any(str(f.attrs["shard"]).split("/")[1] != str(total) for f in files):
        raise SeqliftError(f"merge: shard(s) {', '.join(f'{k}/{total}' for k in missing) or 'of other N'} missing; "
                           f"give all {total}")
    order = sorted(range(len(files)), key=lambda i: int(str(files[i].attrs["shard"]).split("/")[0]))
    row = 0  # each shard starts where the one before it ends, and the last ends at the input's end
    for i in order:
        if int(files[i].attrs.get("shard_first", -1)) != row:
            raise SeqliftError(f"{paths[i]}: shard {files[i].attrs['shard']} starts at input row "
                               f"{files[i].attrs.get('shard_first')}, but the shards before it end at row {row}")
        row += files[i].n
    if row != int(reference.get("shard_input_sequences", -1)):
        raise SeqliftError(f"merge: the shards hold {row} sequences but the input has "
                           f"{reference.get('shard_input_sequences')}")
    return order



def merge_shards(outputs: Outputs, out, shards, open_shard: Callable, make_writer: Callable, block: int = 4096) -> int:
    """Join the files of ``--shard K/N`` runs into ``out``, in input order: the file (and the TSV) the unsharded run
    writes. Refused unless every shard is whole (``open_shard`` checks its datasets, shapes and recorded row count,
    and each block read its values), they share every attribute (model, input, settings), and are 1/N .. N/N, each
    once, covering the input's rows without gap or overlap (``check_shards``).
    open_shard(path): a ``RowFile``; make_writer(outputs, out, first shard, attrs): a writer whose
    ``append_file_rows`` takes ``{dataset: rows}`` as the shard holds them, and ``close`` and ``abort``.
    Returns the rows written."""
    files = []
    try:
        for path in shards:
            files.append(open_shard(path))
        order = check_shards(files, shards)
        first = files[order[0]]
        attrs = {k: v for k, v in first.attrs.items() if k not in SHARD_ATTRS}
        writer = make_writer(outputs, out, first, attrs)
        try:
            for i in order:
                shard = files[i]
                for start in range(0, shard.n, block):
                    rows = slice(start, start + block)
                    writer.append_file_rows({key: shard.checked(key, shard.read(key, rows), start)
                                             for key in shard.copied()})
            writer.close()
        except BaseException:
            writer.abort()
            raise
    finally:
        for f in files:
            f.close()
    return writer.n
