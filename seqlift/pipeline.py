"""The ``seqlift score`` job as a library call: inputs → references → engine → score files, in chunks.

``prepare(request, choose_tasks)`` checks every option, output and input and loads the model before
any work, and returns a frozen ``ScorePlan``; ``run(plan)`` scores it. Memory is set by the chunk
size, not by the number of sequences: records are read, encoded, scored and appended to the output
chunk by chunk.
"""

from __future__ import annotations

import os
import queue
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Callable

import numpy as np

from . import __version__, backend
from . import frontends
from . import references as refs_mod
from . import sequences as seqs
from .engine import Explainer
from .errors import SeqliftError
from .methods import DEEPLIFT, METHODS, RESCALE, Method, get_method
from .outputs import Outputs
from .plots import LOGO_FORMATS, is_logo
from .scorefile import ScoreWriter, is_modisco_input, is_score_file, is_summary, modisco_paths, sha256
from .scoring import ReferenceSpec, Scores, explained_targets, explainer_for_sequences, score_one_hot

# Positions (sequence × reference × bp) per chunk: ~4M keeps a chunk's references near 64 MB.
POSITIONS_PER_CHUNK = 1 << 22
# Chunks the prefetch thread prepares ahead of the one being scored.
PREFETCH_DEPTH = 2
# Relative convergence delta above which a run warns (--delta-warn).
DELTA_WARN = 1e-3


@dataclass(frozen=True)
class ScoreRequest:
    """What ``seqlift score`` was asked: one field per option, None where it was not given (its default
    applies). An option given that does nothing with the chosen method or reference is an error."""

    model: str
    input: str
    out: Path
    genome: str | None = None
    method: str = DEEPLIFT.name
    rule: str | None = None  # default 'rescale'
    reference: str | None = None  # 'shuffle' (default), 'frequency', 'zeros' or PATH.fa (ReferenceSpec.parse)
    n_refs: int | None = None  # default 20
    refs_per_input: int | None = None
    seed: int | None = None  # default 0
    background: str | None = None
    normalize: bool = True
    batch_size: int | None = None
    modisco: str | None = None
    device: str | None = None
    delta_thresholds: tuple | None = None  # default (DELTA_WARN,)
    output: str | None = None
    logo: str | None = None
    bigwig: str | None = None
    chrom_sizes: str | None = None
    skip_invalid: bool = False
    weights: str | None = None  # for an ARCH.json model
    custom_objects: str | None = None  # Python file of custom layer classes
    layout: str | None = None  # the model's layout of its one-hot input, 'NCL' or 'NLC'  [default: found]
    allow_pickle: bool = False  # read a whole pickled torch model (runs code from the file)
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

    def references(self) -> ReferenceSpec:
        """``--reference`` and its options, parsed and checked against the method (no file is read yet)."""
        return ReferenceSpec.parse(self.reference, self.n_refs, self.seed, self.background, self.refs_per_input,
                                   method=self.method)


def input_paths(request: ScoreRequest, references: ReferenceSpec) -> list[str]:
    """Every file a run reads (``references``: ``request.references()``): no output may be one of them."""
    extra = [item.partition("=")[2] for item in request.extra]
    return [p for p in (*frontends.model_files(request.model, request.weights, request.custom_objects), request.input,
                        request.genome, references.path, request.chrom_sizes, *extra) if p]


@dataclass(frozen=True)
class SequenceSource:
    """The sequences to score: the records of a FASTA file, or BED regions of a genome cut to ``length``."""

    path: str
    length: int
    n_sequences: int
    genome: str | None = None
    regions: tuple | None = None  # sequences.Region per row, for BED input

    @classmethod
    def open(cls, path, length: int, genome=None, skip_invalid=False) -> SequenceSource:
        """Count the records (FASTA) or place every region on the genome (BED); nothing is encoded yet."""
        path = Path(path)
        if not path.exists():
            raise SeqliftError(f"{path}: input file not found")
        if not path.name.lower().removesuffix(".gz").endswith((".bed", ".narrowpeak")):
            if skip_invalid:
                raise SeqliftError("--skip-invalid applies to BED input only")
            return cls(str(path), length, seqs.count_fasta(path))
        if not genome:
            raise SeqliftError(f"{path}: BED input needs --genome GENOME.fa")
        regions, skipped = seqs.read_bed_windows(path, seqs.fasta_lengths(genome), length, skip_invalid=skip_invalid)
        if skipped:
            warnings.warn(f"{path}: skipped {skipped} region(s) whose window falls off its chromosome "
                          "(--skip-invalid)", stacklevel=2)
        return cls(str(path), length, len(regions), genome, tuple(regions))

    def records(self):
        """The records in input order, each read when it is reached."""
        if self.regions is not None:
            return seqs.read_regions(self.genome, list(self.regions))
        return seqs.read_fasta(self.path)

    def chunks(self, size: int):
        """``(names, one_hot (n, L, 4), regions or None)`` for successive chunks of at most ``size`` records."""
        batch = []
        for start, record in enumerate(self.records(), start=1):
            batch.append(record)
            if len(batch) == size:
                yield self._encode(batch, start - len(batch))
                batch = []
        if batch:
            yield self._encode(batch, self.n_sequences - len(batch))

    def _encode(self, records, first: int):
        names, one_hot = seqs.encode_records(records, self.length, self.path)
        regions = self.regions[first:first + len(records)] if self.regions is not None else None
        return names, one_hot, regions

    def composition(self) -> np.ndarray:
        """ACGT composition of every sequence (so chunking cannot change a frequency reference)."""
        return refs_mod.composition(one_hot for _, one_hot, _ in self.chunks(1024))


@dataclass(frozen=True)
class ScorePlan:
    """A checked ``seqlift score`` run (``prepare``): what ``run`` needs, fixed before any work starts.

    rows: the input rows to score (all, or a shard's); chunk: sequences per chunk; extra: the held-fixed
    inputs' values by input name; outputs: owns every file the run writes.
    """

    request: ScoreRequest
    method: Method
    explainer: Explainer
    source: SequenceSource
    references: ReferenceSpec
    tasks: tuple[int, ...]
    rows: range
    chunk: int
    extra: MappingProxyType
    outputs: Outputs

    @property
    def rule(self) -> str:
        return self.request.rule or RESCALE

    @property
    def delta_thresholds(self) -> tuple:
        return self.request.delta_thresholds or (DELTA_WARN,)

    def input_paths(self) -> list[str]:
        return input_paths(self.request, self.references)


@dataclass(frozen=True)
class Result:
    """What a run wrote: ``n`` sequences into ``out`` and ``summary``, and its convergence deltas."""

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


# ----------------------------------------------------------------------------- prepare
def prepare(request: ScoreRequest, choose_tasks: Callable[[int], list[int]]) -> ScorePlan:
    """Check every option, output and input, and load the model, before any work starts.

    choose_tasks: ``n_outputs -> tasks`` (the CLI's ``--task``, checked against the model).
    """
    method = get_method(request.method)
    check_options(request, method)
    references = request.references()
    outputs = Outputs(input_paths(request, references))
    _check_outputs(request, outputs)
    if request.device == "gpu" and not backend.gpu_available():
        raise SeqliftError("--device gpu: the Keras backend sees no GPU")
    explainer = explainer_for_sequences(**explainer_settings(request))
    length = int(explainer.graph.input_shape[0])
    tasks = tuple(choose_tasks(explainer.n_outputs))
    _check_outputs(request, outputs, tasks)
    explained_targets(explainer, tasks, request.target)  # --task with --target sum/profile is an error
    source = SequenceSource.open(request.input, length, request.genome, request.skip_invalid)
    extra = _read_extra(request, explainer, source.n_sequences)
    if request.bigwig:
        _check_track_coordinates(request, source)
    references = references.for_input(length, source.n_sequences, source.composition)
    chunk = chunk_size(request.chunk_size, length, references.per_input)
    _check_memory(explainer, length, references.per_input, request.batch_size, source.n_sequences, chunk)
    rows = shard_rows(request.shard, source.n_sequences, chunk)
    return ScorePlan(request, method, explainer, source, references, tasks, rows, chunk, MappingProxyType(extra),
                     outputs)


def check_options(request: ScoreRequest, method: Method):
    """Refuse options that do nothing with this method (those of ``--reference``: ``ReferenceSpec.parse``)
    and combinations that cannot work, before anything is read."""
    if request.rule is not None and method is not DEEPLIFT:
        raise SeqliftError(f"--rule applies to --method {DEEPLIFT.name} only, not {method.name}")
    if request.delta_thresholds is not None and not method.complete:
        complete = [m.name for m in METHODS.values() if m.complete]
        raise SeqliftError(f"--delta-warn applies to {' and '.join(complete)} only, not {method.name}")
    if request.bigwig and not (request.chrom_sizes or request.genome):
        raise SeqliftError("--bigwig needs chromosome sizes: give --chrom-sizes FILE or --genome GENOME.fa")
    if request.rc_average and request.extra:
        raise SeqliftError("--rc-average cannot reverse-complement the inputs held fixed (--extra); "
                           "score without one of them")
    if request.chrom_sizes and not request.bigwig:
        raise SeqliftError("--chrom-sizes applies to --bigwig only")
    if request.logo and Path(request.logo).suffix.lower() not in LOGO_FORMATS:
        raise SeqliftError(f"--logo {request.logo}: must end in {', '.join(LOGO_FORMATS)}")


def explainer_settings(request: ScoreRequest) -> dict:
    """What builds the run's explainer (``scoring.explainer_for_sequences``), here and on a Ray worker."""
    settings = dict(model=request.model, rule=request.rule or RESCALE, normalize=request.normalize,
                    device=request.device, output=request.output, input=request.model_input, weights=request.weights,
                    custom_objects=request.custom_objects, layout=request.layout, allow_pickle=request.allow_pickle)
    front_end = frontends.for_file(request.model) if not frontends.split_function(request.model) else None
    if front_end is None or front_end.name != "keras":
        settings.update(_capture_shapes(request))
    return settings


def _capture_shapes(request: ScoreRequest) -> dict:
    """What capturing a torch model needs to know that its files do not say: the sequences' length (the
    first FASTA record's) and the per-sample shapes of the ``--extra`` arrays (``(N, *S)`` or ``(1, *S)``)."""
    shapes = {}
    for item in request.extra:
        name, _, path = item.partition("=")
        try:
            value = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            continue  # _read_extra says what is wrong with it
        shapes[name] = tuple(value.shape[1:])
    length = None
    is_bed = Path(request.input).name.lower().removesuffix(".gz").endswith((".bed", ".narrowpeak"))
    if not is_bed and Path(request.input).is_file():
        try:
            length = len(next(iter(seqs.read_fasta(request.input))).sequence)
        except (SeqliftError, StopIteration):
            pass  # SequenceSource.open says what is wrong with it
    return {"input_length": length, "extra_shapes": shapes}


def _check_outputs(request: ScoreRequest, outputs: Outputs, tasks=(0,)):
    """Every destination, before any work (again once the tasks are known: they name modisco's files)."""
    # A file already at a destination is replaced only when seqlift wrote it (a rerun); any other is refused.
    paths = [(request.out, "--out", is_score_file), (request.summary, "--out", is_summary),
             (request.logo, "--logo", is_logo), (request.bigwig, "--bigwig", None)]
    if request.modisco:
        paths += [(p, "--modisco", is_modisco_input) for p in modisco_paths(request.modisco, tasks)]
    seen = {}
    for path, option, ours in paths:
        if path is None:
            continue
        path = outputs.check_file(path, option, ours)
        if path.resolve() in seen:
            raise SeqliftError(f"{option} {path}: is also {seen[path.resolve()]}'s file; give different names")
        seen[path.resolve()] = option


def _check_track_coordinates(request: ScoreRequest, source: SequenceSource):
    """--bigwig: the chromosome sizes read, and every record placed on them, before scoring starts."""
    from .tracks import genome_windows, read_chrom_sizes

    sizes = read_chrom_sizes(request.chrom_sizes, request.genome)
    if source.regions is not None:
        coordinates = [(r.chrom, r.start, r.end) for r in source.regions]
        genome_windows([r.name for r in source.regions], sizes, coordinates)
    else:
        genome_windows(seqs.fasta_names(source.path), sizes)


def _check_memory(explainer: Explainer, length: int, n_refs: int, batch_size, n_sequences: int, chunk: int):
    """Refuse, with the estimate, a run whose references and steps would not fit in memory."""
    batch = min(batch_size, n_sequences) if batch_size else None  # a step never exceeds the input
    needed = estimate_memory(explainer, length, n_refs, batch, chunk)
    available = available_memory()
    if available is not None and needed > available:
        raise SeqliftError(f"--n-refs {n_refs} with --batch-size {batch_size or 'auto'} needs about "
                           f"{needed / 2**30:.1f} GiB but {available / 2**30:.1f} GiB is available; "
                           "lower --n-refs or --batch-size")


def _read_extra(request: ScoreRequest, explainer: Explainer, n_sequences: int) -> dict:
    """``{input name: array}`` from ``--extra NAME=FILE.npy``, checked against the model's inputs."""
    values = {}
    for item in request.extra:
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
            explainer.check_extra({name: value}, n_sequences)
        except SeqliftError as exc:
            raise SeqliftError(f"--extra {item}: {exc}") from None
        values[name] = value
    return values


def chunk_size(given: int | None, length: int, n_refs: int) -> int:
    """Sequences per chunk: fixed by the settings, so a resumed or split run has the same boundaries."""
    default = max(1, POSITIONS_PER_CHUNK // (length * n_refs))
    return given or (default // 64 * 64 or default)  # whole HDF5 chunks of 64 rows (scorefile)


# ----------------------------------------------------------------------------- run
def run(plan: ScorePlan, progress: Callable[[int], None] = lambda n: None) -> Result:
    """Score everything into ``OUT.partial``, flushed chunk by chunk and renamed at the end. A failure
    removes it unless ``--resume``; a killed run leaves it, and ``--resume`` continues it."""
    request = plan.request
    tracker = DeltaTracker(plan.delta_thresholds, plan.method.complete)
    with plan.outputs:
        attrs = {**attributes(plan), **shard_attributes(request.shard, plan.rows, plan.source.n_sequences)}
        writer = ScoreWriter(plan.outputs, request.out, plan.source.length, list(plan.tasks), attrs,
                             summary=request.summary, modisco=request.modisco, n_expected=len(plan.rows),
                             regions=plan.source.regions is not None, resume=resume_keys(plan),
                             resuming=request.resume)
        try:
            for names, _, scores in writer.completed():
                tracker.add(scores, names, plan.tasks)
                progress(len(names))
            for names, one_hot, regions, scores in _scored(plan, range(plan.rows.start + writer.n, plan.rows.stop)):
                check_finite(scores, names, plan.tasks)
                writer.append(names, one_hot, scores, regions)
                tracker.add(scores, names, plan.tasks)
                progress(len(names))
            writer.close()
        except BaseException:
            writer.abort()
            raise
    return Result(out=Path(request.out), summary=request.summary, n=writer.n, worst=tracker.worst,
                  n_over=tracker.n_over)


def _prepared(plan: ScorePlan, rows: range, make_refs: bool = True):
    """Chunks with their references made: what the prefetch thread computes while the engine scores.
    ``rows``: the input rows to score (whole chunks); the others are read but not prepared."""
    start = 0
    for names, one_hot, regions in plan.source.chunks(plan.chunk):
        if start >= rows.stop:
            return
        if start >= rows.start:
            make = make_refs and plan.method.uses_references
            yield names, one_hot, regions, plan.references.make(one_hot, start, names) if make else None
        start += len(names)


def _extra_chunk(plan: ScorePlan, start: int, n: int) -> dict:
    """The held-fixed inputs' values for sequences ``start .. start + n``: per-sequence rows sliced."""
    shapes = dict(plan.explainer.graph.fixed_inputs)
    return {name: v if v.shape == shapes[name] or len(v) == 1 else v[start:start + n]
            for name, v in plan.extra.items()}


def _scored(plan: ScorePlan, rows: range):
    """``(names, one_hot (n, L, 4), regions, Scores)`` of each chunk of ``rows``, in input order: scored
    in this process while a thread prepares the next chunks, or by Ray workers (``--ray``)."""
    request, start = plan.request, rows.start
    with Prefetch(_prepared(plan, rows, make_refs=not request.ray)) as prepared:
        if request.ray:
            from .cluster import ray_scored

            chunks = ((names, one_hot, regions, first, _extra_chunk(plan, first, len(names)))
                      for first, (names, one_hot, regions, _) in _starts(prepared, start))
            yield from ray_scored(worker_settings(plan), chunks, request.ray, request.workers)
            return
        for names, one_hot, regions, refs in prepared:
            yield names, one_hot, regions, score_one_hot(
                plan.explainer, one_hot, plan.tasks, plan.method, plan.references, start_index=start, names=names,
                batch_size=request.batch_size, refs=refs, extra=_extra_chunk(plan, start, len(names)),
                target=request.target, rc_average=request.rc_average)
            start += len(names)


def worker_settings(plan: ScorePlan) -> dict:
    """What a Ray worker needs to build the explainer once and score chunks as this process would."""
    request = plan.request
    return {"explainer": explainer_settings(request), "tasks": list(plan.tasks), "method": plan.method.name,
            "spec": plan.references, "batch_size": request.batch_size, "target": request.target,
            "rc_average": request.rc_average}


def resume_keys(plan: ScorePlan) -> dict:
    """What an in-progress file must share with this run to be continued, beyond ``attributes``."""
    request = plan.request
    return {"chunk_size": plan.chunk, "batch_size": request.batch_size or 0, "n_sequences": plan.source.n_sequences,
            "shard": request.shard or "", "genome": str(Path(request.genome).resolve()) if request.genome else ""}


def attributes(plan: ScorePlan) -> dict:
    """The score file's attributes: what was scored, with what, and how (scorefile's docstring lists them)."""
    request, explainer, references = plan.request, plan.explainer, plan.references
    return {
        "seqlift_version": __version__,
        "backend": backend.NAME,
        "model": frontends.describe(request.model),
        "model_sha256": sha256(frontends.model_files(request.model)[0]),
        "weights": str(Path(request.weights).resolve()) if request.weights else "",
        "weights_sha256": sha256(request.weights) if request.weights else "",
        "custom_objects": str(Path(request.custom_objects).resolve()) if request.custom_objects else "",
        "model_input": explainer.graph.input_name,
        "extra_inputs": _describe_extra(request, explainer),
        "input": str(Path(request.input).resolve()),
        "input_sha256": sha256(request.input),
        "tasks": np.asarray(plan.tasks, dtype=np.int64),
        "method": plan.method.name,
        "rule": plan.rule,
        "reference": references.name,
        "n_refs": references.per_input,
        "seed": references.seed,
        "normalization": ",".join(explainer.normalized) if explainer.normalized else "none",
        "final_activation": explainer.graph.final_activation or "none",
        "output": str(request.output) if request.output is not None else "",
        "target": request.target,
        "rc_average": bool(request.rc_average),
        "background": references.background if references.background is not None else np.zeros(0, np.float32),
    }


def _describe_extra(request: ScoreRequest, explainer: Explainer) -> str:
    """``name=FILE.npy`` or ``name=zeros`` for each input held fixed, ``;``-separated."""
    given = dict(item.partition("=")[::2] for item in request.extra)
    return "; ".join(f"{name}={Path(given[name]).resolve() if name in given else 'zeros'}"
                     for name, _ in explainer.graph.fixed_inputs)


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
    for key in ("prediction", "reference_prediction", "contributions", "hypothetical"):
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
    compiled step's activations (an upper estimate). chunk: sequences per chunk (``chunk_size``)."""
    in_flight = 1 + PREFETCH_DEPTH
    references = in_flight * chunk * n_refs * length * 4 * 4 * 2  # float32 one-hot and the shuffles' copy
    pairs = (batch_size or max(1, explainer.default_pairs() // n_refs)) * n_refs
    return references + pairs * explainer.bytes_per_pair()
