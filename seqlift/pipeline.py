"""The ``seqlift score`` job as a library call: inputs → references → engine → score files, in chunks.

A ``ScoreRequest`` is one spec per concept, each parsed and checked in its own module: the model
(``frontends.spec.ModelSpec``), the method and target (``methods.MethodSpec``), the references
(``references.ReferenceSpec``), the outputs (``destinations.ScoreOutputs``, or ``effects.VariantOutputs``) and
the scale (``scale.ScaleSpec``); ``build_request`` makes one from the options by name, as the CLI and the Python
API give them. ``prepare(request, choose_tasks)`` checks what the specs cannot check alone, every output and
input, and loads the model before any work, and returns a frozen ``ScorePlan``; ``run(plan)`` scores it.
Memory is set by the chunk size, not by the number of sequences: records are read, encoded, scored and
appended to the output chunk by chunk.
"""

from __future__ import annotations

import inspect
import queue
import threading
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Callable

import numpy as np

from . import __version__, backend
from . import references as refs_mod
from . import scale as scale_mod
from . import sequences as seqs
from . import targets as targets_mod
from .destinations import ScoreOutputs
from .engine import Explainer
from .errors import SeqliftError
from .frontends.spec import ModelSpec
from .methods import MAX_TASKS, Method, MethodSpec
from .outputs import Outputs
from .references import ReferenceSpec
from .scale import PREFETCH_DEPTH, ScaleSpec
from .rowfile import sha256
from .scorefile import ScoreWriter
from .scoring import (ChunkSettings, ScoredChunk, Scores, explained_targets, explainer_for_sequences,
                      score_chunk)


@dataclass(frozen=True)
class ScoreRequest:
    """What a run was asked: the sequences (``input``: FASTA, or BED on ``genome``; ``skip_invalid``: BED
    windows off their chromosome skipped) and one checked spec per concept. outputs: None writes nothing (the
    Python API)."""

    model: ModelSpec
    input: str
    outputs: ScoreOutputs | None = None
    method: MethodSpec = MethodSpec()
    references: ReferenceSpec = ReferenceSpec()
    scale: ScaleSpec = ScaleSpec()
    genome: str | None = None
    skip_invalid: bool = False

    @property
    def out(self) -> Path | None:
        return None if self.outputs is None else self.outputs.out

    @property
    def summary(self) -> Path | None:
        return None if self.outputs is None else self.outputs.summary

    def input_paths(self) -> list[str]:
        """Every file a run reads: no output may be one of them."""
        outputs = self.outputs.inputs() if self.outputs is not None else []
        return [p for p in (*self.model.files(), self.input, self.genome, self.references.path, *outputs) if p]


def build_request(model, input, genome=None, skip_invalid=False, outputs=ScoreOutputs, **options) -> ScoreRequest:
    """A ``ScoreRequest`` from options by name, each handed to the spec whose ``parse`` takes it (a keyword of
    ``ModelSpec.parse``, ``MethodSpec.parse``, ``ReferenceSpec.parse``, ``ScaleSpec.parse`` or ``outputs.parse``),
    then checked together (``check_options``). outputs: the class of the run's outputs; without ``out`` the run
    writes nothing (the Python API)."""
    options = dict(options)

    def names(parse, skip=()) -> list[str]:
        if parse == outputs.parse:
            return outputs.keywords()  # an output format's keyword is registered, not in the signature
        return [name for name in inspect.signature(parse).parameters if name not in skip]

    def take(parse, skip=()):
        return {name: options.pop(name) for name in names(parse, skip) if name in options}

    model_spec = ModelSpec.parse(model, **take(ModelSpec.parse, ("model",)))
    method = MethodSpec.parse(**take(MethodSpec.parse))
    references = ReferenceSpec.parse(**take(ReferenceSpec.parse, ("method",)), method=method.method)
    scale = ScaleSpec.parse(**take(ScaleSpec.parse))
    destinations = take(outputs.parse)
    if options:
        known = [name for parse in (ModelSpec.parse, MethodSpec.parse, ReferenceSpec.parse, ScaleSpec.parse,
                                    outputs.parse) for name in names(parse)]
        raise TypeError(unknown_options(options, known))
    if destinations.get("out") is None:
        given = [name for name, value in destinations.items() if value]
        if given:
            raise SeqliftError(f"{given[0]} needs an output file (out)")
        destination = None
    else:
        destination = outputs.parse(**destinations)
    request = ScoreRequest(model_spec, str(input), destination, method, references, scale,
                           None if genome is None else str(genome), bool(skip_invalid))
    check_options(request)
    return request


# Keywords a user may reach for, and the one ``build_request`` takes.
_KEYWORD_HINTS = {"input": "model_input (the model's one-hot input; the sequences are the second argument)",
                  "no_normalize": "normalize=False", "delta_thresholds": "delta_warn", "ray_address": "ray",
                  "tasks": "choose_tasks of pipeline.prepare (tasks= of seqlift.variant_effects)"}


def unknown_options(names, known) -> str:
    """One line naming each keyword no spec takes, with the one meant where it can be told."""
    import difflib

    said = []
    for name in sorted(names):
        hint = _KEYWORD_HINTS.get(name) or next(iter(difflib.get_close_matches(name, known, n=1)), None)
        said.append(f"{name} (did you mean {hint}?)" if hint else name)
    return f"unknown option(s): {', '.join(said)}; the keywords are the command line's option names with underscores"


def check_options(request: ScoreRequest):
    """What no spec can check alone: options of one concept that need another's."""
    bigwig = getattr(request.outputs, "bigwig", None)
    if bigwig and not (request.outputs.chrom_sizes or request.genome):
        raise SeqliftError("--bigwig needs chromosome sizes: give --chrom-sizes FILE or --genome GENOME.fa")
    if request.model.extra_rc and not request.method.rc_average:
        raise SeqliftError("--extra-rc applies to --rc-average only")


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
        if not seqs.is_bed(path):
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
    extra_rc: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # --extra-rc flips
    batch_size: int | None = None  # sequences per compiled step: --batch-size, or what auto chose (batch_size)

    @property
    def rule(self) -> str:
        return self.request.method.rule_name

    @property
    def delta_thresholds(self) -> tuple:
        return self.request.method.thresholds

    def input_paths(self) -> list[str]:
        return self.request.input_paths()


@dataclass(frozen=True)
class Result:
    """What a run wrote: ``n`` sequences into ``out`` and ``summary``, and its convergence deltas."""

    out: Path
    summary: Path
    n: int
    worst: tuple | None = None  # (relative delta, name, task) of the worst sequence
    n_over: dict = field(default_factory=dict)
    windows: int = 1  # sequences scored per row (a variant's ref and alt: 2)

    def worst_delta(self, threshold: float) -> str | None:
        """A one-line warning when convergence deltas exceed ``threshold`` (relative), else None."""
        if self.worst is None:
            return None
        count = self.n_over.get(threshold, 0)
        if count == 0:
            return None
        rel, name, task = self.worst
        return (f"{count} of {self.n * self.windows} sequence(s) have a convergence delta above {threshold:g} (relative); "
                f"worst: '{name}' (task {task}), {rel:.3g}")


# ----------------------------------------------------------------------------- prepare
def prepare(request: ScoreRequest, choose_tasks: Callable[[int], list[int]], model=None, several=False,
            open_source: Callable = SequenceSource.open) -> ScorePlan:
    """Check every option, output and input, and load the model, before any work starts.

    choose_tasks: ``n_outputs -> tasks`` (the CLI's ``--task``, checked against the model).
    model: the model object already loaded from ``request.model`` (``prepare_heads``), or None to load it.
    several: one of several heads (``prepare_heads`` checks that --force applies to one of them).
    open_source: ``(input, length, genome, skip_invalid) -> source`` of the rows to score: FASTA or BED
    (``SequenceSource.open``), or variants (``variants.VariantSource.open``).
    """
    check_options(request)
    method = request.method.chosen
    outputs = Outputs(request.input_paths())
    if request.outputs is not None:
        request.outputs.check(outputs)
    request.scale.check()
    settings = explainer_settings(request)
    if model is not None:
        settings.update(model=model, weights=None)  # loaded once, with its weights, for every head
    explainer = explainer_for_sequences(**settings)
    length = int(explainer.graph.input_shape[0])
    request.model.check_length(length)
    tasks = tuple(choose_tasks(explainer.n_outputs))
    _check_task_count(request.method, explainer, tasks, several)
    if request.outputs is not None:
        request.outputs.check(outputs, tasks)
    explained_targets(explainer, tasks, request.method.target, request.method.rc_average)  # targets that mean nothing
    source = open_source(request.input, length, request.genome, request.skip_invalid)
    extra = request.model.read_extra(explainer, source.n_sequences)
    extra_rc = request.model.read_extra_rc(explainer, source.n_sequences, extra, request.method.rc_average)
    if getattr(request.outputs, "bigwig", None):
        _check_track_coordinates(request, source)
    references = request.references.for_input(length, source.n_sequences, source.composition)
    chunk = scale_mod.chunk_size(request.scale.chunk_size, length, references.per_input)
    batch = scale_mod.batch_size(explainer, length, references.per_input, request.scale.batch_size,
                                 source.n_sequences, chunk, getattr(source, "windows_per_row", 1))
    rows = request.scale.rows(source.n_sequences, chunk)
    return ScorePlan(request, method, explainer, source, references, tasks, rows, chunk, MappingProxyType(extra),
                     outputs, MappingProxyType(extra_rc), batch)


def pair_heads(outputs, targets) -> list[tuple[str | None, str]]:
    """``(output, target)`` pairs from repeated ``--output`` and ``--target`` options, paired in order. One
    output or none takes every target given (one pair each); several outputs need one target each."""
    outputs, targets = list(outputs) or [None], list(targets) or ["logit"]
    if len(outputs) == 1:
        return [(outputs[0], target) for target in targets]
    if len(targets) != len(outputs):
        raise SeqliftError(f"--output is given {len(outputs)} times and --target {len(targets)}: give one --target "
                           "per --output, in the same order (e.g. --output profile --target profile --output counts "
                           "--target sum)")
    return list(zip(outputs, targets))


def head_labels(heads) -> list[str]:
    """What names each ``(output, target)`` pair's files: the output (``output{i}`` for an index, ``output`` for
    a model's only one), with the target where the same output is explained twice."""
    names = ["output" if o is None else f"output{o}" if str(o).isdigit() else str(o) for o, _ in heads]
    labels = [f"{n}.{t}" if names.count(n) > 1 else n for n, (_, t) in zip(names, heads)]
    for label in labels:
        if not label or any(c in label for c in "/\\\0") or label.startswith("."):
            raise SeqliftError(f"--output {label!r}: cannot name a file after it; give the output by index")
    return labels


def head_paths(out, heads) -> list[Path]:
    """One score file per ``(output, target)`` of ``heads``: ``OUT.h5`` → ``OUT.LABEL.h5`` (``head_labels``)."""
    out = Path(out)
    stem = out.name[:-3] if out.name.endswith(".h5") else out.name
    return [out.with_name(f"{stem}.{label}.h5") for label in head_labels(heads)]


def prepare_heads(request: ScoreRequest, heads, choose_tasks: Callable[[str, int], list[int]]) -> list[ScorePlan]:
    """Plans for several ``(output, target)`` pairs of one model in one run (``run_heads``): chrombpnet's profile
    and counts, for instance. Each pair gets its own score file (``head_paths``) with its TSV, ``--modisco``
    files (``PREFIX.LABEL``), ``--logo`` and ``--bigwig`` (``NAME.LABEL.png``); the model is loaded once.
    choose_tasks: ``(target, n_outputs) -> tasks``."""
    heads = [(None if o is None else str(o), str(t)) for o, t in heads]
    if len(set(heads)) < len(heads):
        raise SeqliftError("the same --output and --target pair is given twice")
    if request.scale.ray:
        raise SeqliftError("--ray works with one --output/--target pair; score several heads without it")
    paths, labels = head_paths(request.out, heads), head_labels(heads)
    plans, model = [], None
    for (output, target), path, label in zip(heads, paths, labels):
        head = replace(request, model=replace(request.model, output=output),
                       method=replace(request.method, target=target), outputs=request.outputs.for_head(path, label))
        plan = prepare(head, lambda n, target=target: choose_tasks(target, n), model, several=True)
        model = plan.explainer.model
        plans.append(plan)
    if request.method.force and all(len(plan.tasks) <= MAX_TASKS for plan in plans):
        raise SeqliftError(f"--force applies to more than {MAX_TASKS} tasks only; no head explains that many")
    first = plans[0]
    for plan in plans[1:]:  # one model, one input: the same chunks, rows and references
        assert (plan.chunk, plan.rows, plan.source.length) == (first.chunk, first.rows, first.source.length)
    return plans


def _check_task_count(method: MethodSpec, explainer: Explainer, tasks, several=False):
    """More than ``MAX_TASKS`` tasks (``--task all`` on a profile head: every position and strand) needs --force."""
    if method.force and len(tasks) <= MAX_TASKS and not several:
        raise SeqliftError(f"--force applies to more than {MAX_TASKS} tasks only; this run explains {len(tasks)}")
    if len(tasks) <= MAX_TASKS or method.force:
        return
    shape = explainer.graph.output_shape
    if targets_mod.is_positional(shape):
        hint = ("for a profile head, --target profile explains the whole profile in one pass (chrombpnet, "
                "bpnet-lite), and --target sum its total")
    else:
        hint = "list the tasks you want (--task 0,3,7)"
    raise SeqliftError(f"--task: {len(tasks)} tasks (an output of shape {shape}) would each take a full pass and "
                       f"write {len(tasks)} score arrays per sequence; {hint}; or give --force to explain all of them")


def explainer_settings(request: ScoreRequest) -> dict:
    """What builds the run's explainer (``scoring.explainer_for_sequences``), here and on a Ray worker."""
    return request.model.settings(request.method.rule_name, request.scale.device, request.input)


def _check_track_coordinates(request: ScoreRequest, source: SequenceSource):
    """--bigwig: the chromosome sizes read, and every record placed on them, before scoring starts."""
    from .tracks import genome_windows, read_chrom_sizes

    sizes = read_chrom_sizes(request.outputs.chrom_sizes, request.genome)
    if source.regions is not None:
        coordinates = [(r.chrom, r.start, r.end) for r in source.regions]
        genome_windows([r.name for r in source.regions], sizes, coordinates)
    else:
        genome_windows(seqs.fasta_names(source.path), sizes)


# ----------------------------------------------------------------------------- run
def run_loop(plan: ScorePlan, open_writer: Callable, chunks: Callable, progress: Callable[[int], None] = lambda n: None,
             resumed: Callable[[int], None] | None = None, windows: int = 1) -> Result:
    """The one run loop of ``seqlift score`` and ``seqlift variants``: the writer ``open_writer()`` (a ``ScoreWriter``
    or ``VariantWriter``, its files owned by ``plan.outputs``) continues what an interrupted run completed, then
    takes each chunk of ``chunks(rows)`` (scored chunks, with ``n`` and ``tracked()``) for the rows left. A failure
    removes every file unless ``--resume``; a killed run leaves ``OUT.partial``, and ``--resume`` continues it.
    progress(n): n more rows scored; resumed(n): the n rows an interrupted run completed (default: ``progress``);
    windows: sequences scored per row (for the convergence-delta warning's count)."""
    tracker = DeltaTracker(plan.delta_thresholds, plan.method.complete)
    with plan.outputs:
        writer = open_writer()
        try:
            for done in writer.completed():
                tracker.add_chunk(done, plan.tasks)
            if writer.n:
                (resumed or progress)(writer.n)
            for chunk in chunks(range(plan.rows.start + writer.n, plan.rows.stop)):
                writer.add(chunk)
                tracker.add_chunk(chunk, plan.tasks)
                progress(chunk.n)
            writer.close()
        except BaseException:
            writer.abort()
            raise
    request = plan.request
    return Result(Path(request.out), request.summary, writer.n, tracker.worst, tracker.n_over, windows)


def run(plan: ScorePlan, progress: Callable[[int], None] = lambda n: None,
        resumed: Callable[[int], None] | None = None) -> Result:
    """Score everything into the score file (``OUT.partial`` when resumable, renamed at the end), its summary and
    TF-MoDISco inputs: ``run_loop`` with a ``ScoreWriter`` and ``scored_chunks``."""
    return run_loop(plan, lambda: score_writer(plan, plan.outputs), lambda rows: scored_chunks(plan, rows),
                    progress, resumed)


def score_writer(plan: ScorePlan, outputs: Outputs) -> ScoreWriter:
    """The writer of ``plan``'s score file, summary and TF-MoDISco inputs, its files owned by ``outputs``."""
    request = plan.request
    return ScoreWriter(outputs, request.out, plan.source.length, list(plan.tasks), attributes(plan),
                       summary=request.summary, streams=request.outputs.streams(outputs, plan),
                       regions=plan.source.regions is not None, resume=resume_keys(plan),
                       resuming=request.scale.resume)


def run_heads(plans: list[ScorePlan], progress: Callable[[int], None] = lambda n: None,
              resumed: Callable[[int], None] | None = None) -> list[Result]:
    """Score several heads of one model (``prepare_heads``) in one pass over the input (progress and resumed as
    for ``run``): each chunk is read,
    encoded and given its references once, then scored for every head and appended to that head's file.
    A failure removes every head's files, unless ``--resume``: then each head's ``OUT.partial`` is kept and the
    next ``--resume`` continues from the chunk the heads have not all flushed (a head that had flushed it
    skips it)."""
    first = plans[0]
    trackers = [DeltaTracker(p.delta_thresholds, p.method.complete) for p in plans]
    writers = []
    with first.outputs:  # one owner for every head's files: they are all written, or none is
        try:
            for plan in plans:
                writers.append(score_writer(plan, first.outputs))
            for writer, tracker, plan in zip(writers, trackers, plans):
                for done in writer.completed():
                    tracker.add_chunk(done, plan.tasks)
            done = min(writer.n for writer in writers)  # every head has these rows; some may have one chunk more
            if done:
                (resumed or progress)(done)
            start = first.rows.start + done
            with Prefetch(_prepared(first, range(start, first.rows.stop))) as prepared:
                for (names, one_hot, regions), args in prepared:
                    for plan, writer, tracker in zip(plans, writers, trackers):
                        if first.rows.start + writer.n >= start + len(names):
                            continue  # flushed by this head before the interruption
                        scores = score_chunk(plan.explainer, chunk_settings(plan, plan.batch_size), *args)
                        check_finite(scores, names, plan.tasks)
                        chunk = ScoredChunk(names, one_hot, scores, regions)
                        writer.add(chunk)
                        tracker.add_chunk(chunk, plan.tasks)
                    start += len(names)
                    progress(len(names))
            for writer in writers:
                writer.close()
        except BaseException:
            for writer in writers:
                writer.abort()
            raise
    return [Result(out=Path(p.request.out), summary=p.request.summary, n=w.n, worst=t.worst, n_over=t.n_over)
            for p, w, t in zip(plans, writers, trackers)]


def _prepared(plan: ScorePlan, rows: range, make_refs: bool = True):
    """``((names, one_hot, regions), args of score_chunk)`` of each chunk of ``rows`` (whole chunks; the others are
    read but not prepared), its references made (``make_refs``: when this process scores; Ray workers make their
    own): what the prefetch thread prepares while the engine scores."""
    start = 0
    for names, one_hot, regions in plan.source.chunks(plan.chunk):
        if start >= rows.stop:
            return
        if start >= rows.start:
            make = make_refs and plan.method.uses_references
            refs = plan.references.make(one_hot, start, names) if make else None
            yield (names, one_hot, regions), (one_hot, start, names, refs, extra_chunk(plan, start, len(names)),
                                              extra_chunk(plan, start, len(names), plan.extra_rc))
        start += len(names)


def extra_chunk(plan: ScorePlan, start: int, n: int, values=None) -> dict:
    """The held-fixed inputs' values for sequences ``start .. start + n``: per-sequence rows sliced.
    values: ``plan.extra`` (default) or ``plan.extra_rc``, whose flip names pass unchanged."""
    shapes = dict(plan.explainer.graph.fixed_inputs)
    return {name: v if isinstance(v, str) or v.shape == shapes[name] or len(v) == 1 else v[start:start + n]
            for name, v in (plan.extra if values is None else values).items()}


def scored(plan: ScorePlan, prepared, score: Callable):
    """``(kept, result)`` for each ``(kept, args)`` of ``prepared``, in input order: ``score(explainer, chunk
    settings, *args)``, run in this process while a thread prepares the next chunks, or by Ray workers (``--ray``;
    ``score`` is then sent to them by reference: a module-level function)."""
    scale = plan.request.scale
    with Prefetch(prepared) as items:
        if scale.ray:
            from .cluster import ray_map

            yield from ray_map(worker_settings(plan), ((kept, score, args) for kept, args in items), scale.ray,
                               scale.workers)
            return
        settings = chunk_settings(plan, plan.batch_size)  # the batch chosen for this machine's memory
        for kept, args in items:
            yield kept, score(plan.explainer, settings, *args)


def scored_chunks(plan: ScorePlan, rows: range):
    """``ScoredChunk`` of each chunk of ``rows``, in input order (``scored``), checked for NaN."""
    prepared = _prepared(plan, rows, make_refs=not plan.request.scale.ray)
    for (names, one_hot, regions), scores in scored(plan, prepared, score_chunk):
        check_finite(scores, names, plan.tasks)
        yield ScoredChunk(names, one_hot, scores, regions)


def worker_settings(plan: ScorePlan):
    """What a Ray worker needs to build the explainer once and score chunks as this process would."""
    from .cluster import WorkerSettings

    return WorkerSettings(MappingProxyType(explainer_settings(plan.request)),
                          chunk_settings(plan, plan.request.scale.batch_size))


def chunk_settings(plan: ScorePlan, batch_size: int | None) -> ChunkSettings:
    """How each chunk is scored (``scoring.score_chunk``): the tasks, method, references, target and strands."""
    method = plan.request.method
    return ChunkSettings(tuple(plan.tasks), plan.method.name, plan.references, batch_size, method.target,
                         method.rc_average)


def resume_keys(plan: ScorePlan) -> dict:
    """What an in-progress file must share with this run to be continued, beyond ``attributes``."""
    genome = plan.request.genome
    return {"chunk_size": plan.chunk, "n_sequences": plan.source.n_sequences, **plan.request.scale.resume_keys(),
            "genome": str(Path(genome).resolve()) if genome else ""}


def attributes(plan: ScorePlan) -> dict:
    """The score file's attributes: what was scored, with what, and how (scorefile's docstring lists them), and
    which part of the input a shard is (``scale.shard_attributes``)."""
    request = plan.request
    return {"seqlift_version": __version__, "backend": backend.NAME, **request.model.attributes(plan.explainer),
            "input": str(Path(request.input).resolve()), "input_sha256": sha256(request.input),
            "tasks": np.asarray(plan.tasks, dtype=np.int64), **request.method.attributes(),
            **plan.references.attributes(),
            **scale_mod.shard_attributes(request.scale.shard, plan.rows, plan.source.n_sequences)}


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

    def add_chunk(self, chunk, tasks):
        """Every ``(names, Scores)`` of a scored chunk (``chunk.tracked()``)."""
        for names, scores in chunk.tracked():
            self.add(scores, names, tasks)

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


