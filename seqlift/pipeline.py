"""The ``seqlift score`` job as a library call: inputs → references → engine → score files, in chunks.

Memory is set by the chunk size, not by the number of sequences: records are read, encoded,
scored and appended to the output chunk by chunk.
"""

from __future__ import annotations

import os
import queue
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__, _backend
from . import models
from . import references as refs_mod
from . import sequences as seqs
from .errors import SeqliftError
from .methods import METHODS
from .outputs import Outputs
from .plots import LOGO_FORMATS
from .scorefile import ScoreWriter, is_modisco_input, is_score_file, is_summary, modisco_paths, sha256
from .scoring import ReferenceSpec, Scores, explained_targets, explainer_for_sequences, score_one_hot

# Methods whose scores should sum to t(x) − t(ref): their convergence deltas are checked.
COMPLETE_METHODS = ("deeplift", "integrated-gradients")
# Methods that compare the input with references (the others use gradients at the input alone).
REFERENCE_METHODS = ("deeplift", "integrated-gradients")
REFERENCE_KINDS = ("shuffle", "frequency", "zeros")
# Positions (sequence × reference × bp) per chunk: ~4M keeps a chunk's references near 64 MB.
POSITIONS_PER_CHUNK = 1 << 22
# Chunks the prefetch thread prepares ahead of the one being scored.
PREFETCH_DEPTH = 2


@dataclass
class Plan:
    n_sequences: int
    length: int
    tasks: list[int]


@dataclass
class Result:
    out: Path
    summary: Path
    n: int
    worst: tuple | None = None  # (relative delta, name, task) of the worst sequence
    n_over: dict = field(default_factory=dict)

    def worst_delta(self, threshold: float) -> str | None:
        """A one-line warning when convergence deltas exceed ``threshold`` (relative), else None."""
        if self.worst is None:
            return None
        count = self.n_over.get(threshold, 0)
        if count == 0:
            return None
        rel, name, task = self.worst
        return (f"{count} of {self.n} sequence(s) have a convergence delta above {threshold:g} (relative); "
                f"worst: '{name}' (task {task}), {rel:.3g}")


@dataclass
class ScoreJob:
    """One ``seqlift score`` run. Options left at None take their defaults; an option given that does
    nothing with the chosen method or reference is an error (``check_options``)."""

    model: str
    input: str
    out: Path
    genome: str | None = None
    method: str = "deeplift"
    rule: str | None = None  # default 'rescale'
    reference: str | None = None  # default 'shuffle'
    n_refs: int | None = None  # default 20
    refs_per_input: int | None = None
    seed: int | None = None  # default 0
    background: str | None = None
    normalize: bool = True
    batch_size: int | None = None
    modisco: str | None = None
    device: str | None = None
    delta_thresholds: tuple | None = None  # default (1e-3,)
    output: str | None = None
    logo: str | None = None
    bigwig: str | None = None
    chrom_sizes: str | None = None
    skip_invalid: bool = False
    weights: str | None = None  # for an ARCH.json model
    custom_objects: str | None = None  # Python file of custom layer classes
    model_input: str | None = None  # the one-hot input of a multi-input model (name or index)
    extra: tuple = ()  # "NAME=FILE.npy" values for the other inputs, held fixed
    target: str = "logit"
    rc_average: bool = False
    resume: bool = False  # continue OUT.partial, an interrupted run's in-progress file
    chunk_size: int | None = None  # sequences per chunk, the unit of resume  [default: ~4M positions]
    shard: str | None = None  # "K/N": score only the K-th of N contiguous parts of the input (1-based)
    ray: str | None = None  # score on a Ray cluster: "local", "auto" or an address
    workers: int | None = None  # Ray workers  [default: one per GPU, else one]

    @property
    def summary(self) -> Path:
        out = Path(self.out)
        return out.with_suffix(".tsv") if out.suffix == ".h5" else Path(f"{out}.tsv")

    def input_paths(self) -> list[str]:
        """Every file this run reads: no output may be one of them."""
        reference = self.reference if self.reference not in (None, *REFERENCE_KINDS) else None
        extra = [item.partition("=")[2] for item in self.extra]
        return [p for p in (*models.model_files(self.model, self.weights, self.custom_objects), self.input,
                            self.genome, reference, self.chrom_sizes, *extra) if p]

    def prepare(self, choose_tasks: Callable[[int], list[int]]) -> Plan:
        """Check every option, output and input, and load the model, before any work starts."""
        self.check_options()
        self.outputs = Outputs(self.input_paths())
        self._check_outputs()
        if self.device == "gpu" and not _backend.gpu_available():
            raise SeqliftError("--device gpu: the Keras backend sees no GPU")
        self.explainer = explainer_for_sequences(self.model, self.rule, self.normalize, self.device, self.output,
                                                 input=self.model_input, weights=self.weights,
                                                 custom_objects=self.custom_objects)
        self.length = int(self.explainer.graph.input_shape[0])
        self.tasks = choose_tasks(self.explainer.n_outputs)
        self._check_outputs(self.tasks)
        explained_targets(self.explainer, self.tasks, self.target)  # --task with --target sum/profile is an error
        self._open_input()
        self.extra_values = self._read_extra()
        if self.bigwig:
            self._check_track_coordinates()
        self.spec = self._reference_spec()
        self._check_memory()
        self.rows = shard_rows(self.shard, self.n_sequences, self.chunk())
        return Plan(len(self.rows), self.length, self.tasks)

    def check_options(self):
        """Fill defaults; refuse values out of range and options that do nothing with this method/reference."""
        method = self.method
        if method not in METHODS:
            raise SeqliftError(f"--method {method}: unknown; choose one of {', '.join(METHODS)}")
        if self.rule is not None and method != "deeplift":
            raise SeqliftError(f"--rule applies to --method deeplift only, not {method}")
        if self.reference is not None and method not in REFERENCE_METHODS:
            raise SeqliftError(f"--reference does nothing with --method {method}, which uses no reference")
        if self.delta_thresholds is not None and method not in COMPLETE_METHODS:
            raise SeqliftError(f"--delta-warn applies to {' and '.join(COMPLETE_METHODS)} only, not {method}")
        self.rule = self.rule or "rescale"
        self.reference = self.reference or "shuffle"
        self.delta_thresholds = self.delta_thresholds or (1e-3,)
        kind = self.reference if self.reference in REFERENCE_KINDS else "fasta"
        uses = {"--n-refs": (self.n_refs, "shuffle"), "--seed": (self.seed, "shuffle"),
                "--background": (self.background, "frequency"), "--refs-per-input": (self.refs_per_input, "fasta")}
        for option, (value, needs) in uses.items():
            if value is not None and method not in REFERENCE_METHODS:
                raise SeqliftError(f"{option} does nothing with --method {method}, which uses no reference")
            if value is not None and kind != needs:
                raise SeqliftError(f"{option} applies to --reference {'PATH.fa' if needs == 'fasta' else needs} only, "
                                   f"not --reference {self.reference}")
        self.n_refs = 20 if self.n_refs is None else self.n_refs
        self.seed = refs_mod.check_seed(0 if self.seed is None else self.seed)
        if self.background is not None:
            refs_mod.parse_background(self.background)
        if self.bigwig and not (self.chrom_sizes or self.genome):
            raise SeqliftError("--bigwig needs chromosome sizes: give --chrom-sizes FILE or --genome GENOME.fa")
        if self.rc_average and self.extra:
            raise SeqliftError("--rc-average cannot reverse-complement the inputs held fixed (--extra); "
                               "score without one of them")
        if self.chrom_sizes and not self.bigwig:
            raise SeqliftError("--chrom-sizes applies to --bigwig only")
        if self.logo and Path(self.logo).suffix.lower() not in LOGO_FORMATS:
            raise SeqliftError(f"--logo {self.logo}: must end in {', '.join(LOGO_FORMATS)}")

    def _check_outputs(self, tasks=(0,)):
        """Every destination, before any work (again once the tasks are known: they name modisco's files)."""
        # A file already at a destination is replaced only when seqlift wrote it (a rerun); any other is refused.
        paths = [(self.out, "--out", is_score_file), (self.summary, "--out", is_summary), (self.logo, "--logo", None),
                 (self.bigwig, "--bigwig", None)]
        if self.modisco:
            paths += [(p, "--modisco", is_modisco_input) for p in modisco_paths(self.modisco, tasks)]
        seen = {}
        for path, option, ours in paths:
            if path is None:
                continue
            path = self.outputs.check_file(path, option, ours)
            if path.resolve() in seen:
                raise SeqliftError(f"{option} {path}: is also {seen[path.resolve()]}'s file; give different names")
            seen[path.resolve()] = option

    def _check_track_coordinates(self):
        """--bigwig: the chromosome sizes read, and every record placed on them, before scoring starts."""
        from .tracks import genome_windows, read_chrom_sizes

        sizes = read_chrom_sizes(self.chrom_sizes, self.genome)
        if self.regions is not None:
            coordinates = [(r.chrom, r.start, r.end) for r in self.regions]
            genome_windows([r.name for r in self.regions], sizes, coordinates)
        else:
            genome_windows(seqs.fasta_names(self.input), sizes)

    def _check_memory(self):
        """Refuse, with the estimate, a run whose references and steps would not fit in memory."""
        n_refs = self.spec.n_refs if self.spec.kind == "shuffle" else 1
        batch = min(self.batch_size, self.n_sequences) if self.batch_size else None  # a step never exceeds the input
        needed = estimate_memory(self.explainer, self.length, n_refs, batch, self.chunk())
        available = available_memory()
        if available is not None and needed > available:
            raise SeqliftError(f"--n-refs {n_refs} with --batch-size {self.batch_size or 'auto'} needs about "
                               f"{needed / 2**30:.1f} GiB but {available / 2**30:.1f} GiB is available; "
                               "lower --n-refs or --batch-size")

    def _open_input(self):
        path = Path(self.input)
        if not path.exists():
            raise SeqliftError(f"{path}: input file not found")
        name = path.name.lower().removesuffix(".gz")
        self.regions = None
        if name.endswith((".bed", ".narrowpeak")):
            if not self.genome:
                raise SeqliftError(f"{path}: BED input needs --genome GENOME.fa")
            sizes = seqs.fasta_lengths(self.genome)
            self.regions, skipped = seqs.read_bed_windows(path, sizes, self.length, skip_invalid=self.skip_invalid)
            if skipped:
                warnings.warn(f"{path}: skipped {skipped} region(s) whose window falls off its chromosome "
                              "(--skip-invalid)", stacklevel=2)
            self.n_sequences = len(self.regions)
            self._records = lambda: seqs.read_regions(self.genome, self.regions)
        else:
            if self.skip_invalid:
                raise SeqliftError("--skip-invalid applies to BED input only")
            self.n_sequences = seqs.count_fasta(path)
            self._records = lambda: seqs.read_fasta(path)

    def _read_extra(self) -> dict:
        """``{input name: array}`` from ``--extra NAME=FILE.npy``, checked against the model's inputs."""
        values = {}
        for item in self.extra:
            name, _, path = item.partition("=")
            if not name or not path:
                raise SeqliftError(f"--extra {item}: expected NAME=FILE.npy")
            if name in values:
                raise SeqliftError(f"--extra {item}: input '{name}' is given twice")
            if not Path(path).is_file():
                raise SeqliftError(f"--extra {item}: {path}: file not found")
            try:
                value = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise SeqliftError(f"--extra {item}: {path}: not a NumPy .npy array ({str(exc)[:120]})") from None
            try:
                self.explainer.check_extra({name: value}, self.n_sequences)
            except SeqliftError as exc:
                raise SeqliftError(f"--extra {item}: {exc}") from None
            values[name] = value
        return values

    def _extra_chunk(self, start: int, n: int) -> dict:
        """The held-fixed inputs' values for sequences ``start .. start + n``: per-sequence rows sliced."""
        shapes = dict(self.explainer.graph.fixed_inputs)
        return {name: v if v.shape == shapes[name] or len(v) == 1 else v[start:start + n]
                for name, v in self.extra_values.items()}

    def _reference_spec(self) -> ReferenceSpec:
        kind = self.reference
        if kind == "shuffle":
            return ReferenceSpec("shuffle", n_refs=self.n_refs, seed=self.seed)
        if kind == "zeros":
            return ReferenceSpec("zeros")
        if kind == "frequency":
            if self.background is not None:
                background = refs_mod.parse_background(self.background)
            else:  # the composition of the whole input, so chunking cannot change it
                counts = np.zeros(4)
                for names, one_hot, _ in self._chunks(1024):
                    counts += one_hot.reshape(-1, 4).sum(0)
                background = (counts / max(counts.sum(), 1)).astype(np.float32)
            return ReferenceSpec("frequency", background=background)
        return self._fasta_references(Path(kind))

    def _fasta_references(self, path: Path) -> ReferenceSpec:
        if not path.exists():
            raise SeqliftError(f"--reference {path}: not shuffle, frequency, zeros or an existing FASTA file")
        _, refs = seqs.encode_records(seqs.read_fasta(path), self.length, path)
        n, count = self.n_sequences, len(refs)
        if self.refs_per_input:
            if count != n * self.refs_per_input:
                raise SeqliftError(f"{path}: {count} reference records, but --refs-per-input {self.refs_per_input} "
                                   f"with {n} inputs needs {n * self.refs_per_input}")
            refs = refs.reshape(n, self.refs_per_input, self.length, 4)
        return ReferenceSpec("given", given=refs)

    def _chunks(self, size: int):
        """``(names, one_hot (n, L, 4), regions or None)`` for successive chunks of at most ``size`` records."""
        batch = []
        for start, record in enumerate(self._records(), start=1):
            batch.append(record)
            if len(batch) == size:
                yield self._encode(batch, start - len(batch))
                batch = []
        if batch:
            yield self._encode(batch, self.n_sequences - len(batch))

    def _encode(self, records, first: int):
        names, one_hot = seqs.encode_records(records, self.length, self.input)
        regions = self.regions[first:first + len(records)] if self.regions is not None else None
        return names, one_hot, regions

    def _prepared(self, chunk: int, rows: range, make_refs: bool = True):
        """Chunks with their references made: what the prefetch thread computes while the engine scores.
        ``rows``: the input rows to score (whole chunks); the others are read but not prepared."""
        start = 0
        for names, one_hot, regions in self._chunks(chunk):
            if start >= rows.stop:
                return
            if start >= rows.start:
                refs = self.spec.make(one_hot, start, names) if make_refs and self.method in REFERENCE_METHODS else None
                yield names, one_hot, regions, refs
            start += len(names)

    def chunk(self) -> int:
        """Sequences per chunk: fixed by the settings, so a resumed or split run has the same boundaries."""
        n_refs = self.n_refs if self.reference == "shuffle" else 1
        default = max(1, POSITIONS_PER_CHUNK // (self.length * n_refs))
        return self.chunk_size or (default // 64 * 64 or default)  # whole HDF5 chunks of 64 rows (scorefile)

    def resume_keys(self) -> dict:
        """What an in-progress file must share with this run to be continued, beyond ``attributes``."""
        return {"chunk_size": self.chunk(), "batch_size": self.batch_size or 0, "n_sequences": self.n_sequences,
                "shard": self.shard or "", "genome": str(Path(self.genome).resolve()) if self.genome else ""}

    def _scored(self, chunk: int, rows: range):
        """``(names, one_hot (n, L, 4), regions, Scores)`` of each chunk of ``rows``, in input order: scored
        in this process while a thread prepares the next chunks, or by Ray workers (``ray``)."""
        start = rows.start
        with Prefetch(self._prepared(chunk, rows, make_refs=not self.ray)) as prepared:
            if self.ray:
                from .cluster import ray_scored

                chunks = ((names, one_hot, regions, first, self._extra_chunk(first, len(names)))
                          for first, (names, one_hot, regions, _) in _starts(prepared, start))
                yield from ray_scored(self.worker_settings(), chunks, self.ray, self.workers)
                return
            for names, one_hot, regions, refs in prepared:
                yield names, one_hot, regions, score_one_hot(
                    self.explainer, one_hot, self.tasks, self.method, self.spec, start_index=start, names=names,
                    batch_size=self.batch_size, refs=refs, extra=self._extra_chunk(start, len(names)),
                    target=self.target, rc_average=self.rc_average)
                start += len(names)

    def worker_settings(self) -> dict:
        """What a Ray worker needs to build the explainer once and score chunks as this process would."""
        explainer = dict(model=self.model, rule=self.rule, normalize=self.normalize, device=self.device,
                         output=self.output, input=self.model_input, weights=self.weights,
                         custom_objects=self.custom_objects)
        return {"explainer": explainer, "tasks": self.tasks, "method": self.method, "spec": self.spec,
                "batch_size": self.batch_size, "target": self.target, "rc_average": self.rc_average}

    def attributes(self) -> dict:
        n_refs = {"shuffle": self.n_refs, "frequency": 1, "zeros": 1}.get(self.reference)
        if n_refs is None:
            given = self.spec.given
            n_refs = given.shape[1] if given.ndim == 4 else given.shape[0]
        return {
            "seqlift_version": __version__,
            "backend": _backend.NAME,
            "model": models.describe(self.model),
            "model_sha256": sha256(models.model_files(self.model)[0]),
            "weights": str(Path(self.weights).resolve()) if self.weights else "",
            "weights_sha256": sha256(self.weights) if self.weights else "",
            "custom_objects": str(Path(self.custom_objects).resolve()) if self.custom_objects else "",
            "model_input": self.explainer.graph.input_name,
            "extra_inputs": self._describe_extra(),
            "input": str(Path(self.input).resolve()),
            "input_sha256": sha256(self.input),
            "tasks": np.asarray(self.tasks, dtype=np.int64),
            "method": self.method,
            "rule": self.rule,
            "reference": self.reference,
            "n_refs": n_refs,
            "seed": self.seed,
            "normalization": ",".join(self.explainer.normalized) if self.explainer.normalized else "none",
            "final_activation": self.explainer.graph.final_activation or "none",
            "output": str(self.output) if self.output is not None else "",
            "target": self.target,
            "rc_average": bool(self.rc_average),
            "background": self.spec.background if self.spec.background is not None else np.zeros(0, np.float32),
        }

    def _describe_extra(self) -> str:
        """``name=FILE.npy`` or ``name=zeros`` for each input held fixed, ``;``-separated."""
        given = dict(item.partition("=")[::2] for item in self.extra)
        return "; ".join(f"{name}={Path(given[name]).resolve() if name in given else 'zeros'}"
                         for name, _ in self.explainer.graph.fixed_inputs)

    def run(self, progress: Callable[[int], None] = lambda n: None) -> Result:
        """Score everything into ``OUT.partial``, flushed chunk by chunk and renamed at the end. A failure
        removes it unless ``resume``; a killed run leaves it, and ``resume`` continues it."""
        chunk = self.chunk()
        tracker = DeltaTracker(self.delta_thresholds, self.method in COMPLETE_METHODS)
        with self.outputs:
            attrs = {**self.attributes(), **shard_attributes(self.shard, self.rows, self.n_sequences)}
            writer = ScoreWriter(self.outputs, self.out, self.length, self.tasks, attrs,
                                 summary=self.summary, modisco=self.modisco, n_expected=len(self.rows),
                                 regions=self.regions is not None, resume=self.resume_keys(), resuming=self.resume)
            try:
                for names, _, scores in writer.completed():
                    tracker.add(scores, names, self.tasks)
                    progress(len(names))
                for names, one_hot, regions, scores in self._scored(chunk, range(self.rows.start + writer.n,
                                                                                 self.rows.stop)):
                    check_finite(scores, names, self.tasks)
                    writer.append(names, one_hot, scores, regions)
                    tracker.add(scores, names, self.tasks)
                    progress(len(names))
                writer.close()
            except BaseException:
                writer.abort()
                raise
        return Result(out=Path(self.out), summary=self.summary, n=writer.n, worst=tracker.worst, n_over=tracker.n_over)


def shard_rows(shard: str | None, n: int, chunk: int) -> range:
    """The input rows of shard ``"K/N"`` (1-based): the K-th of N contiguous runs of whole chunks, so a
    shard's chunks, and so its scores, are those of the run that scores everything."""
    if shard is None:
        return range(n)
    k, _, total = shard.partition("/")
    if not (k.isdigit() and total.isdigit() and 1 <= int(k) <= int(total)):
        raise SeqliftError(f"--shard {shard}: expected K/N with 1 <= K <= N, e.g. 3/10")
    k, total = int(k), int(total)
    n_chunks = -(-n // chunk)
    if total > n_chunks:
        raise SeqliftError(f"--shard {shard}: the input has {n_chunks} chunk(s) of {chunk} sequences, fewer than "
                           f"{total} shards; use fewer shards or a smaller --chunk-size")
    first, stop = (k - 1) * n_chunks // total, k * n_chunks // total
    return range(first * chunk, min(stop * chunk, n))


def shard_attributes(shard: str | None, rows: range, n: int) -> dict:
    """The attributes ``seqlift merge`` checks and removes: which part of how many input rows."""
    if shard is None:
        return {}
    return {"shard": shard, "shard_first": rows.start, "shard_input_sequences": n}


def _starts(chunks, start: int):
    """``(first row, chunk)`` for successive chunks whose first row is ``start``."""
    for item in chunks:
        yield start, item
        start += len(item[0])


class Prefetch:
    """Run a generator in a thread, ``depth`` items ahead of its consumer (reading, encoding and
    shuffling overlap scoring: the engine and the compiled shuffle both release the GIL).

    Its exceptions are raised in the consumer; leaving the ``with`` block stops the thread.
    """

    _DONE = object()

    def __init__(self, items, depth: int = PREFETCH_DEPTH):
        self._items, self._queue = items, queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="seqlift-prefetch", daemon=True)

    def _produce(self):
        try:
            for item in self._items:
                if not self._put((item, None)):
                    return
            self._put((self._DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put((self._DONE, exc))

    def _put(self, entry) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __enter__(self):
        self._thread.start()
        return self

    def __iter__(self):
        while True:
            item, exc = self._queue.get()
            if exc is not None:
                raise exc
            if item is self._DONE:
                return
            yield item

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)
        return False


class DeltaTracker:
    """The worst relative convergence delta of a run, and how many sequences exceed each threshold."""

    def __init__(self, thresholds, enabled: bool):
        self.enabled = enabled
        self.worst = None
        self.n_over = {t: 0 for t in thresholds}

    def add(self, scores: Scores, names, tasks):
        if not self.enabled:
            return
        scale = np.maximum(1.0, np.maximum(np.abs(scores.prediction), np.abs(scores.reference_prediction)))
        relative = scores.delta / scale
        for t in self.n_over:
            self.n_over[t] += int((relative > t).any(axis=1).sum())
        i, j = np.unravel_index(np.argmax(relative), relative.shape)
        if self.worst is None or relative[i, j] > self.worst[0]:
            self.worst = (float(relative[i, j]), names[i], tasks[j])


def check_finite(scores: Scores, names, tasks):
    """NaN or infinity in a score or prediction is an error naming the first sequence, never a file of NaNs."""
    for key in ("prediction", "reference_prediction", "contrib", "hypothetical"):
        values = getattr(scores, key)
        bad = ~np.isfinite(values.reshape(len(names), len(tasks), -1)).all(-1)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise SeqliftError(f"record '{names[i]}' (task {tasks[j]}): the {key.replace('_', ' ')} is NaN or infinite; "
                               "check the model's weights and the references (--background)")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def estimate_memory(explainer, length: int, n_refs: int, batch_size: int | None, chunk: int) -> int:
    """Bytes for the chunks of references in flight (the one scored and those ``Prefetch`` holds ready) plus one
    compiled step's activations (an upper estimate). chunk: sequences per chunk (``ScoreJob.chunk``)."""
    in_flight = 1 + PREFETCH_DEPTH
    references = in_flight * chunk * n_refs * length * 4 * 4 * 2  # float32 one-hot and the shuffles' copy
    pairs = (batch_size or max(1, explainer.default_pairs() // n_refs)) * n_refs
    return references + pairs * explainer.bytes_per_pair()
