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

import hashlib
import json
import re
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import h5py
import numpy as np
import pandas as pd

from .errors import SeqliftError
from .outputs import Outputs

if TYPE_CHECKING:  # scoring loads Keras; reading and writing score files does not need it
    from .scoring import Scores

# Datasets and the ``Scores`` fields they hold: the names are the file format's (``contrib`` predates the
# field's name, and score files keep it so that every file seqlift wrote stays readable).
_PER_BASE = {"contrib": "contributions", "hypothetical": "hypothetical"}
_PER_SEQUENCE = {"delta": "delta", "prediction": "prediction", "reference_prediction": "reference_prediction"}
_FIELDS = {**_PER_BASE, **_PER_SEQUENCE}
# In an in-progress file (``OUT.partial``): how many sequences are completed and flushed to disk.
COMPLETED = "resume_completed_sequences"


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


def reopen_in_progress(outputs: Outputs, path: Path, attrs: dict, resume: dict, create) -> tuple[h5py.File, int]:
    """An interrupted run's in-progress file (``OUT.partial``) and its count of completed rows: those rows are copied
    into a fresh file made by ``create(path, attrs, old_file)`` (a kill mid-write can leave HDF5's string heap
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
        h5 = create(setup, dict(old.attrs), old)
        for key in old:
            h5[key].resize(n, axis=0)
            for start in range(0, n, 4096):
                h5[key][start:start + 4096] = old[key][start:min(start + 4096, n)]
        h5.flush()
    return h5, n


def _writer_of(attributes: set) -> str:
    """Which command writes a file with these attribute names: a variant file records the variant's index."""
    return "seqlift variants" if "variant_index" in attributes else "seqlift score"


class ScoreWriter:
    """Append chunks of scores into temporaries claimed from ``outputs`` (renamed when its block ends).

    out: the HDF5 path. summary: the TSV path (or None). modisco: a prefix for TF-MoDISco-lite's
    ``PREFIX_ohe.npz`` and ``PREFIX_hyp.npz`` (``PREFIX_task{t}_hyp.npz`` for several tasks).
    regions: write ``chrom``, ``start`` and ``strand`` datasets (BED input) beside the names.
    resume: settings that must match for a later ``--resume`` (stored as ``resume_*`` attributes): when
    given, the HDF5 file is the stable in-progress ``OUT.partial`` and every appended chunk is flushed and
    counted; ``resuming`` continues an existing one (``completed`` replays its rows).
    """

    def __init__(self, outputs: Outputs, out, length: int, tasks: list[int], attrs: dict, summary=None,
                 modisco=None, n_expected: int | None = None, regions=False, resume: dict | None = None,
                 resuming: bool = False):
        self.length, self.tasks = length, list(tasks)
        self.task_axis = len(self.tasks) > 1
        self.target = str(attrs.get("target", "logit"))
        self.n = 0
        self._outputs = outputs
        self._resume = resume
        if resume is None:
            self._h5_path = outputs.file(out, ours=is_score_file)
            self._h5 = self._create(self._h5_path, attrs, regions)
        else:
            self._h5_path, existed = outputs.partial(out, resuming, ours=is_score_file)
            self._h5 = self._reopen(self._h5_path, attrs, resume) if existed else None
            if self._h5 is None:  # set up beside it, so OUT.partial only ever exists complete on disk
                with outputs.replacing(self._h5_path) as setup:
                    self._h5 = self._create(setup, attrs, regions)
                    for key, value in resume.items():
                        self._h5.attrs[f"resume_{key}"] = value
                    self._h5.attrs[COMPLETED] = 0
                    self._h5.flush()
        self._tsv = open(outputs.file(summary, ours=is_summary), "w") if summary else None
        self._tsv_header = True
        self._modisco = []
        if modisco:
            if n_expected is None:
                raise ValueError("n_expected is needed to stream TF-MoDISco inputs")
            self._modisco = [_NpzStream(outputs.file(p, "--modisco", is_modisco_input), (n_expected, 4, length))
                             for p in modisco_paths(modisco, self.tasks)]

    def _create(self, path: Path, attrs: dict, regions: bool) -> h5py.File:
        """A new HDF5 file with every dataset empty, growing along its first axis."""
        self._outputs.ensure_room(self._h5_path, 0)  # its header and empty datasets: HDF5 crashes on a failed write
        h5 = h5py.File(path, "w")
        # A resumable file's compressed chunks never straddle two of its chunks, so writing the next
        # chunk never rewrites (and a kill never damages) a flushed one: rows per HDF5 chunk divide it.
        step = (self._resume or {}).get("chunk_size", 64)
        chunk_rows, shape = max(d for d in range(1, 65) if step % d == 0), (self.length, 4)
        per_base = ((len(self.tasks),) if self.task_axis else ()) + shape
        per_seq = (len(self.tasks),) if self.task_axis else ()
        strings = ("names", "chrom", "strand") if regions else ("names",)
        for key in strings:
            h5.create_dataset(key, (0,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(1024,))
        if regions:
            h5.create_dataset("start", (0,), maxshape=(None,), dtype="int64", chunks=(1024,))
        h5.create_dataset("one_hot", (0,) + shape, maxshape=(None,) + shape, dtype="float32",
                          chunks=(chunk_rows,) + shape, compression="gzip", compression_opts=1)
        for key in _PER_BASE:
            h5.create_dataset(key, (0,) + per_base, maxshape=(None,) + per_base, dtype="float32",
                              chunks=(chunk_rows,) + per_base, compression="gzip", compression_opts=1)
        for key in _PER_SEQUENCE:
            h5.create_dataset(key, (0,) + per_seq, maxshape=(None,) + per_seq, dtype="float32",
                              chunks=(1024,) + per_seq)
        for key, value in attrs.items():
            h5.attrs[key] = value
        return h5

    def _reopen(self, path: Path, attrs: dict, resume: dict) -> h5py.File | None:
        """An interrupted run's in-progress file, cut back to its last completed chunk (``reopen_in_progress``)."""
        h5, self.n = reopen_in_progress(self._outputs, path, attrs, resume,
                                        lambda setup, old_attrs, old: self._create(setup, old_attrs, "chrom" in old))
        return h5

    def completed(self, block: int = 4096):
        """``(names, one_hot, Scores)`` of the rows an interrupted run completed, in blocks; their summary
        and TF-MoDISco rows are written again on the way (those streams are not resumable)."""
        from .scoring import Scores

        expand = (lambda a: a) if self.task_axis else (lambda a: a[:, None])
        for start in range(0, self.n, block):
            rows = slice(start, min(start + block, self.n))
            names = _decoded(self._h5["names"][rows])
            one_hot = self._h5["one_hot"][rows]
            scores = Scores(**{name: expand(self._h5[key][rows]) for key, name in _FIELDS.items()})
            self._write_streams(names, one_hot, scores)
            yield names, one_hot, scores

    def append(self, names: list[str], one_hot: np.ndarray, scores: Scores, regions=None):
        """Append a chunk; ``regions``: its ``Region``s (chrom, start, strand) when the file has them."""
        stop = self.n + len(names)
        squeeze = (lambda a: a) if self.task_axis else (lambda a: a[:, 0])
        values = {"names": np.asarray(names, dtype=object), "one_hot": one_hot}
        if regions is not None:
            values.update(chrom=np.asarray([r.chrom for r in regions], dtype=object),
                          start=np.asarray([r.start for r in regions], dtype=np.int64),
                          strand=np.asarray([r.strand for r in regions], dtype=object))
        for key, name in _FIELDS.items():
            values[key] = squeeze(getattr(scores, name))
        self.append_rows(values)
        self._write_streams(names, one_hot, scores)
        self.n = stop
        if self._resume is not None:  # the chunk is on disk before it counts as completed
            self._h5.attrs[COMPLETED] = stop
            self._h5.flush()
            self._outputs.keep_if_interrupted(self._h5_path)  # completed work: Ctrl-C keeps it for --resume

    def append_rows(self, values: dict):
        """Write ``{dataset: rows}`` after the rows written so far (``self.n`` is not advanced)."""
        start, stop = self.n, self.n + len(values["names"])
        self._outputs.ensure_room(self._h5_path, sum(np.asarray(v).nbytes for v in values.values())
                                  + 64 * (stop - start))  # names: object arrays count pointers only
        for key, value in values.items():
            dataset = self._h5[key]
            dataset.resize(stop, axis=0)
            dataset[start:stop] = value

    def append_file_rows(self, values: dict):
        """Append rows read from another score file (``{dataset: rows}``, its layout) and their summary."""
        expand = (lambda a: a) if self.task_axis else (lambda a: a[:, None])
        names = _decoded(values["names"])
        self.append_rows(values)
        self._write_streams(names, values["one_hot"],
                            SimpleNamespace(**{name: expand(values[key]) for key, name in _FIELDS.items()}))
        self.n += len(names)

    def _write_streams(self, names, one_hot, scores: Scores):
        if self._tsv:
            self._write_summary(names, scores)
        if self._modisco:
            self._modisco[0].write(one_hot.transpose(0, 2, 1))
            for t, stream in enumerate(self._modisco[1:]):
                stream.write(scores.hypothetical[:, t].transpose(0, 2, 1))

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
        self._h5.attrs["n_sequences"] = self.n
        for key in [k for k in self._h5.attrs if k == COMPLETED or k.startswith("resume_")]:
            del self._h5.attrs[key]
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


# Attributes that tell shards apart: checked by merge_shards, absent from the merged file.
SHARD_ATTRS = ("shard", "shard_first", "shard_input_sequences", "n_sequences")


def summary_path(out) -> Path:
    """The TSV summary beside a score file: ``OUT.tsv`` for ``OUT.h5``, else ``OUT.tsv`` appended."""
    out = Path(out)
    return out.with_suffix(".tsv") if out.suffix == ".h5" else Path(f"{out}.tsv")


def merge_shards(outputs: Outputs, out, shards, block: int = 4096) -> int:
    """Join the score files of ``seqlift score --shard K/N`` into ``out`` and its TSV summary, in input order:
    the files the unsharded run writes (the summary is computed from the scores, as ``score`` does). Refused
    unless every shard is whole (its datasets, shapes and recorded row count, no NaN), they share every
    attribute (model sha256, input sha256, settings), and are 1/N .. N/N, each once, covering the input's rows
    without gap or overlap. Returns the sequences written."""
    files = [ScoreFile(p) for p in shards]
    try:
        order = _check_shards(files, shards)
        first = files[order[0]]
        attrs = {k: v for k, v in first.attrs.items() if k not in SHARD_ATTRS}
        writer = ScoreWriter(outputs, out, first.length, first.tasks, attrs, summary=summary_path(out),
                             regions="chrom" in first._h5)
        try:
            for i in order:
                shard = files[i]
                for start in range(0, shard.n, block):
                    rows = slice(start, start + block)
                    writer.append_file_rows({key: shard.checked(key, shard.read(key, rows), start) for key in shard._h5})
            writer.close()
        except BaseException:
            writer.abort()
            raise
    finally:
        for f in files:
            f.close()
    return writer.n


def _check_shards(files: list[ScoreFile], paths) -> list[int]:
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


def _decoded(values) -> list[str]:
    """Strings of an HDF5 text dataset's values (h5py gives bytes)."""
    return [v.decode() if isinstance(v, bytes) else v for v in values]


class _H5Rows:
    """What the readers of seqlift's files share: an HDF5 file read in pieces, each piece checked (``read``,
    ``checked``), one task's rows of the datasets with a task axis (``rows``, ``chunks``). A subclass opens and
    checks its kind of file and sets ``names`` (what errors call each row), ``n`` and ``_task_index``."""

    KIND = "file"  # "score file", "variant file": what errors call it
    ROW = "row"  # what a row is: "sequence", "variant"
    PER_TASK: tuple = ()  # datasets with a task axis after the rows

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

    def close(self):
        self._h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()




class ScoreFile(_H5Rows):
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
            self.names = np.array(_decoded(self.read("names")))
        except BaseException:
            self._h5.close()
            raise
        self.n = len(self.names)
        self.length = self._h5["one_hot"].shape[1]

    def _check(self):
        """Refuse, in one line naming the file, what no reader can use: a foreign or in-progress file, missing
        datasets, shapes or row counts that disagree, no sequences. (NaN is found as rows are read.)"""
        h5, path = self._h5, self.path
        if "contrib" not in h5:
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
        chrom, start, strand = _decoded(self.read("chrom")), self.read("start").tolist(), _decoded(self.read("strand"))
        for key, values, bad, what in (("start", start, lambda s: s < 0, "is below 0"),
                                       ("strand", strand, lambda s: s not in ("+", "-"), "is not + or -")):
            row = next((i for i, value in enumerate(values) if bad(value)), None)
            if row is not None:
                raise SeqliftError(f"{self.path}: damaged score file: '{key}' of sequence '{self.names[row]}' "
                                   f"(row {row}) {what} ({values[row]!r})")
        return list(zip(chrom, start, strand))

# A variant file (``seqlift variants``; ``effects.VariantWriter`` writes it): per variant its id and alleles, both
# windows' one-hot and scores (N, [T,] L, 4) and predictions (N, [T]).
VARIANT_DATASETS = ("ids", "chrom", "pos", "ref", "alt", "ref_one_hot", "alt_one_hot", "ref_contrib", "alt_contrib",
                    "ref_hypothetical", "alt_hypothetical", "ref_prediction", "alt_prediction")
_VARIANT_PER_TASK = ("ref_contrib", "alt_contrib", "ref_hypothetical", "alt_hypothetical", "ref_prediction",
                     "alt_prediction", "delta", "p_value", "q_value")
SCORES, VARIANTS = "scores", "variants"


def file_kind(path) -> str | None:
    """What seqlift file ``path`` is: ``SCORES`` (seqlift score or merge), ``VARIANTS`` (seqlift variants), or None
    (not HDF5, or neither). The one place that tells them apart."""
    try:
        with h5py.File(path, "r") as h5:
            return VARIANTS if "ref_contrib" in h5 else SCORES if "contrib" in h5 else None
    except OSError:
        return None


class VariantFile(_H5Rows):
    """A variant file opened for reading in pieces: ``ids`` (``names``), ``chrom``, ``pos``, ``ref``, ``alt`` (all),
    ``attrs``, ``task``, ``tasks``, ``n``, ``length``, ``variant_index`` (the variant's first base in both windows);
    ``rows(key, index)`` and ``chunks(key)`` give one task's rows of ``ref_contrib``, ``alt_one_hot``, ..."""

    KIND, ROW, PER_TASK = "variant file", "variant", _VARIANT_PER_TASK

    def __init__(self, path, task=None):
        self._open(path)
        try:
            h5 = self._h5
            if "ref_contrib" not in h5:
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
            self.names = np.array(_decoded(self.read("ids")))
            self.chrom, self.ref, self.alt = (_decoded(self.read(key)) for key in ("chrom", "ref", "alt"))
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
