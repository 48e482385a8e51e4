"""The ``seqlift score`` job as a library call: inputs → references → engine → score files, in chunks.

``prepare(request, choose_tasks)`` checks every option, output and input and loads the model before
any work, and returns a frozen ``ScorePlan``; ``run(plan)`` scores it. Memory is set by the chunk
size, not by the number of sequences: records are read, encoded, scored and appended to the output
chunk by chunk.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Callable

import numpy as np

from . import __version__, backend
from . import frontends
from . import references as refs_mod
from . import sequences as seqs
from . import targets as targets_mod
from .engine import Explainer
from .errors import SeqliftError
from .methods import DEEPLIFT, METHODS, RESCALE, Method, get_method
from .outputs import Outputs
from .plots import LOGO_FORMATS, is_logo
from .scorefile import (ScoreWriter, is_modisco_input, is_score_file, is_summary, modisco_paths, sha256,
                        summary_path)
from .scoring import (EXTRA_FLIPS, ReferenceSpec, Scores, explained_targets, explainer_for_sequences, flip_extra,
                      score_one_hot)

# Positions (sequence × reference × bp) per chunk: ~4M keeps a chunk's references near 64 MB.
POSITIONS_PER_CHUNK = 1 << 22
# Chunks the prefetch thread prepares ahead of the one being scored.
PREFETCH_DEPTH = 2
# Relative convergence delta above which a run warns (--delta-warn).
DELTA_WARN = 1e-3
# Share of the free memory --batch-size auto fills: the estimate is an upper bound, the rest is headroom.
MEMORY_FRACTION = 0.8
# Tasks one run explains without --force: each is a full pass and a full (N, L, 4) slice of the score file.
MAX_TASKS = 64


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
    length: int | None = None  # the window length for a torch model  [default: the first FASTA record's]
    allow_pickle: bool = False  # read a whole pickled torch model (runs code from the file)
    model_input: str | None = None  # the one-hot input of a multi-input model (name or index)
    extra: tuple = ()  # "NAME=FILE.npy" values for the other inputs, held fixed
    extra_rc: tuple = ()  # "NAME=reverse|swap|both|FILE.npy": how an --extra input flips under --rc-average
    target: str = "logit"
    rc_average: bool = False
    resume: bool = False  # continue OUT.partial, an interrupted run's in-progress file
    chunk_size: int | None = None  # sequences per chunk, the unit of resume  [default: ~4M positions]
    shard: str | None = None  # "K/N": score only the K-th of N contiguous parts of the input (1-based)
    ray: str | None = None  # score on a Ray cluster: "local", "auto" or an address
    workers: int | None = None  # Ray workers  [default: one per GPU, else one]
    force: bool = False  # explain more than MAX_TASKS tasks

    @property
    def summary(self) -> Path:
        return summary_path(self.out)

    def references(self) -> ReferenceSpec:
        """``--reference`` and its options, parsed and checked against the method (no file is read yet)."""
        return ReferenceSpec.parse(self.reference, self.n_refs, self.seed, self.background, self.refs_per_input,
                                   method=self.method)


def input_paths(request: ScoreRequest, references: ReferenceSpec) -> list[str]:
    """Every file a run reads (``references``: ``request.references()``): no output may be one of them."""
    extra = [item.partition("=")[2] for item in request.extra]
    extra += [p for p in (item.partition("=")[2] for item in request.extra_rc) if p not in EXTRA_FLIPS]
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
    extra_rc: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # --extra-rc flips
    batch_size: int | None = None  # sequences per compiled step: --batch-size, or what auto chose (batch_size)

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
def prepare(request: ScoreRequest, choose_tasks: Callable[[int], list[int]], model=None, several=False,
            open_source: Callable = SequenceSource.open, check_outputs: Callable | None = None) -> ScorePlan:
    """Check every option, output and input, and load the model, before any work starts.

    choose_tasks: ``n_outputs -> tasks`` (the CLI's ``--task``, checked against the model).
    model: the ``keras.Model`` already loaded from ``request.model`` (``prepare_heads``), or None to load it.
    several: one of several heads (``prepare_heads`` checks that --force applies to one of them).
    open_source: ``(input, length, genome, skip_invalid) -> source`` of the rows to score: FASTA or BED
    (``SequenceSource.open``), or variants (``variants.VariantSource.open``).
    check_outputs: ``(request, outputs, tasks)`` checking the destinations (default: score's files); a
    request whose ``out`` is None writes nothing (the Python API) and checks none.
    """
    method = get_method(request.method)
    check_options(request, method)
    references = request.references()
    outputs = Outputs(input_paths(request, references))
    check_outputs = check_outputs or _check_outputs
    if request.out is not None:
        check_outputs(request, outputs)
    if request.ray:
        from .cluster import check_address

        check_address(request.ray)
    if request.device == "gpu" and not backend.gpu_available():
        raise SeqliftError("--device gpu: the Keras backend sees no GPU")
    settings = explainer_settings(request)
    if model is not None:
        settings.update(model=model, weights=None)  # loaded once, with its weights, for every head
    explainer = explainer_for_sequences(**settings)
    length = int(explainer.graph.input_shape[0])
    if request.length is not None and request.length != length:
        raise SeqliftError(f"--length {request.length}: the model takes {length} bp; leave --length out (it is for "
                           "torch models, whose length the module does not fix)")
    tasks = tuple(choose_tasks(explainer.n_outputs))
    _check_task_count(request, explainer, tasks, several)
    if request.out is not None:
        check_outputs(request, outputs, tasks)
    explained_targets(explainer, tasks, request.target, request.rc_average)  # targets that cannot mean anything
    source = open_source(request.input, length, request.genome, request.skip_invalid)
    extra = _read_extra(request, explainer, source.n_sequences)
    extra_rc = _read_extra_rc(request, explainer, source.n_sequences, extra)
    if request.bigwig:
        _check_track_coordinates(request, source)
    references = references.for_input(length, source.n_sequences, source.composition)
    chunk = chunk_size(request.chunk_size, length, references.per_input)
    batch = batch_size(explainer, length, references.per_input, request.batch_size, source.n_sequences, chunk,
                       getattr(source, "windows_per_row", 1))
    rows = shard_rows(request.shard, source.n_sequences, chunk)
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
    if request.ray:
        raise SeqliftError("--ray works with one --output/--target pair; score several heads without it")
    paths, labels = head_paths(request.out, heads), head_labels(heads)
    plans, model = [], None
    for (output, target), path, label in zip(heads, paths, labels):
        per_head = {"modisco": f"{request.modisco}.{label}" if request.modisco else None}
        for option in ("logo", "bigwig"):  # x.png -> x.LABEL.png
            given = getattr(request, option)
            per_head[option] = str(Path(given).with_name(f"{Path(given).stem}.{label}{Path(given).suffix}")) \
                if given else None
        plan = prepare(replace(request, output=output, target=target, out=path, **per_head),
                       lambda n, target=target: choose_tasks(target, n), model, several=True)
        model = plan.explainer.model
        plans.append(plan)
    if request.force and all(len(plan.tasks) <= MAX_TASKS for plan in plans):
        raise SeqliftError(f"--force applies to more than {MAX_TASKS} tasks only; no head explains that many")
    first = plans[0]
    for plan in plans[1:]:  # one model, one input: the same chunks, rows and references
        assert (plan.chunk, plan.rows, plan.source.length) == (first.chunk, first.rows, first.source.length)
    return plans


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
    if request.extra_rc and not request.rc_average:
        raise SeqliftError("--extra-rc applies to --rc-average only")
    if request.chrom_sizes and not request.bigwig:
        raise SeqliftError("--chrom-sizes applies to --bigwig only")
    if request.workers is not None and not request.ray:
        raise SeqliftError("--workers applies to --ray only (Ray workers); without --ray one process scores")
    for threshold in request.delta_thresholds or ():
        if not (math.isfinite(threshold) and threshold > 0):
            raise SeqliftError(f"--delta-warn {threshold}: must be a positive number (relative delta, e.g. 1e-3)")
    if request.logo and Path(request.logo).suffix.lower() not in LOGO_FORMATS:
        raise SeqliftError(f"--logo {request.logo}: must end in {', '.join(LOGO_FORMATS)}")


def _check_task_count(request: ScoreRequest, explainer: Explainer, tasks, several=False):
    """More than ``MAX_TASKS`` tasks (``--task all`` on a profile head: every position and strand) needs --force."""
    if request.force and len(tasks) <= MAX_TASKS and not several:
        raise SeqliftError(f"--force applies to more than {MAX_TASKS} tasks only; this run explains {len(tasks)}")
    if len(tasks) <= MAX_TASKS or request.force:
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
    settings = dict(model=request.model, rule=request.rule or RESCALE, normalize=request.normalize,
                    device=request.device, output=request.output, input=request.model_input, weights=request.weights,
                    custom_objects=request.custom_objects, layout=request.layout, allow_pickle=request.allow_pickle)
    front_end = frontends.for_file(request.model) if not frontends.split_function(request.model) else None
    if front_end is None or front_end.name != "keras":
        settings.update(_capture_shapes(request))
    return settings


def _capture_shapes(request: ScoreRequest) -> dict:
    """What capturing a torch model needs to know that its files do not say: the sequences' length (``--length``,
    else the first FASTA record's) and the per-sample shapes of the ``--extra`` arrays (``(N, *S)`` or ``(1, *S)``)."""
    shapes = {}
    for item in request.extra:
        name, _, path = item.partition("=")
        try:
            value = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            continue  # _read_extra says what is wrong with it
        shapes[name] = tuple(value.shape[1:])
    length = request.length
    is_bed = Path(request.input).name.lower().removesuffix(".gz").endswith((".bed", ".narrowpeak"))
    if length is None and not is_bed and Path(request.input).is_file():
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


def batch_size(explainer: Explainer, length: int, n_refs: int, given: int | None, n_sequences: int,
               chunk: int, windows: int = 1) -> int:
    """Sequences per compiled step. ``given`` (--batch-size) is checked against the memory estimate and
    refused, with it, when it would not fit; auto (None) takes the default pairs per step
    (``Explainer.default_pairs``) or, where they would not fit, as many whole sequences as fit in
    ``MEMORY_FRACTION`` of the free memory (a GPU's for the step, the host's for the references), and
    at least one: it is refused only when one sequence's references would not fit (``--n-refs``)."""
    on_gpu = explainer.device != "cpu" and backend.gpu_available()
    host = available_memory()
    device = backend.gpu_free_memory() if on_gpu else None
    # a chunk never exceeds the input; ``windows``: sequences scored per input row (a variant's ref and alt: 2)
    references = windows * references_memory(length, n_refs, min(chunk, n_sequences))
    per_sequence = n_refs * explainer.bytes_per_pair()
    if host is not None and references + (0 if on_gpu else per_sequence) > host:
        raise SeqliftError(f"--n-refs {n_refs} needs about {(references + per_sequence) / 2**30:.1f} GiB even at one "
                           f"sequence per step, but {host / 2**30:.1f} GiB is available; lower --n-refs"
                           + (" or --chunk-size" if chunk > 1 else ""))
    if given:
        batch = min(given, n_sequences)  # a step never exceeds the input
        for where, free, needed in (("", host, references + (0 if on_gpu else batch * per_sequence)),
                                    (" on the GPU", device, batch * per_sequence if on_gpu else 0)):
            if free is not None and needed > free:
                raise SeqliftError(f"--n-refs {n_refs} with --batch-size {given} needs about {needed / 2**30:.1f} "
                                   f"GiB{where} but {free / 2**30:.1f} GiB is available; lower --batch-size, or "
                                   "leave it out to choose what fits")
        return batch
    batch = max(1, explainer.default_pairs() // n_refs)
    free = device if on_gpu else (None if host is None else host - references)
    if free is not None:
        batch = min(batch, max(1, int(MEMORY_FRACTION * free) // per_sequence))
    return min(batch, n_sequences)


def _read_extra(request: ScoreRequest, explainer: Explainer, n_sequences: int, option="--extra",
                items=None) -> dict:
    """``{input name: array}`` from ``--extra NAME=FILE.npy``, checked against the model's inputs."""
    values = {}
    for item in request.extra if items is None else items:
        name, _, path = item.partition("=")
        if not name or not path:
            raise SeqliftError(f"{option} {item}: expected NAME=FILE.npy")
        if name in values:
            raise SeqliftError(f"{option} {item}: input '{name}' is given twice")
        if not Path(path).is_file():
            raise SeqliftError(f"{option} {item}: {path}: file not found")
        try:
            value = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise SeqliftError(f"{option} {item}: {path}: not a NumPy .npy array ({str(exc)[:120]})") from None
        try:
            explainer.check_extra({name: value}, n_sequences)
        except SeqliftError as exc:
            raise SeqliftError(f"{option} {item}: {exc}") from None
        values[name] = value
    return values


def _read_extra_rc(request: ScoreRequest, explainer: Explainer, n_sequences: int, extra: dict) -> dict:
    """``{input name: flip name or array}`` from ``--extra-rc NAME=reverse|swap|both|FILE.npy``, checked
    (``scoring.flip_extra``) before any work."""
    flips, files = {}, []
    for item in request.extra_rc:
        name, _, flip = item.partition("=")
        if not name or not flip:
            raise SeqliftError(f"--extra-rc {item}: expected NAME=reverse, NAME=swap, NAME=both or NAME=FILE.npy")
        if name in flips or name in [f.partition("=")[0] for f in files]:
            raise SeqliftError(f"--extra-rc {item}: input '{name}' is given twice")
        if flip in EXTRA_FLIPS:
            flips[name] = flip
        elif flip.endswith(".npy") or Path(flip).exists():
            files.append(item)
        else:
            raise SeqliftError(f"--extra-rc {item}: '{flip}' is not reverse, swap, both or an existing .npy file")
    flips.update(_read_extra(request, explainer, n_sequences, "--extra-rc", files))
    if request.rc_average:  # checks every flip (views of the memory-mapped files: nothing is read)
        flip_extra(explainer, extra, flips)
    return flips


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


def run_heads(plans: list[ScorePlan], progress: Callable[[int], None] = lambda n: None) -> list[Result]:
    """Score several heads of one model (``prepare_heads``) in one pass over the input: each chunk is read,
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
                attrs = {**attributes(plan), **shard_attributes(plan.request.shard, plan.rows, plan.source.n_sequences)}
                writers.append(ScoreWriter(first.outputs, plan.request.out, plan.source.length, list(plan.tasks), attrs,
                                           summary=plan.request.summary, modisco=plan.request.modisco,
                                           n_expected=len(plan.rows), regions=plan.source.regions is not None,
                                           resume=resume_keys(plan), resuming=plan.request.resume))
            for writer, tracker, plan in zip(writers, trackers, plans):
                for names, _, scores in writer.completed():
                    tracker.add(scores, names, plan.tasks)
            done = min(writer.n for writer in writers)  # every head has these rows; some may have one chunk more
            progress(done)
            start = first.rows.start + done
            with Prefetch(_prepared(first, range(start, first.rows.stop))) as prepared:
                for names, one_hot, regions, refs in prepared:
                    for plan, writer, tracker in zip(plans, writers, trackers):
                        if first.rows.start + writer.n >= start + len(names):
                            continue  # flushed by this head before the interruption
                        scores = _score_chunk(plan, names, one_hot, refs, start)
                        check_finite(scores, names, plan.tasks)
                        writer.append(names, one_hot, scores, regions)
                        tracker.add(scores, names, plan.tasks)
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


def _score_chunk(plan: ScorePlan, names, one_hot, refs, start: int) -> Scores:
    """One chunk's scores for ``plan``, whose first sequence is input row ``start``."""
    request = plan.request
    return score_one_hot(plan.explainer, one_hot, plan.tasks, plan.method, plan.references, start_index=start,
                         names=names, batch_size=plan.batch_size, refs=refs, extra=_extra_chunk(plan, start, len(names)),
                         target=request.target, rc_average=request.rc_average,
                         extra_rc=_extra_chunk(plan, start, len(names), plan.extra_rc))


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


def _extra_chunk(plan: ScorePlan, start: int, n: int, values=None) -> dict:
    """The held-fixed inputs' values for sequences ``start .. start + n``: per-sequence rows sliced.
    values: ``plan.extra`` (default) or ``plan.extra_rc``, whose flip names pass unchanged."""
    shapes = dict(plan.explainer.graph.fixed_inputs)
    return {name: v if isinstance(v, str) or v.shape == shapes[name] or len(v) == 1 else v[start:start + n]
            for name, v in (plan.extra if values is None else values).items()}


def _scored(plan: ScorePlan, rows: range):
    """``(names, one_hot (n, L, 4), regions, Scores)`` of each chunk of ``rows``, in input order: scored
    in this process while a thread prepares the next chunks, or by Ray workers (``--ray``)."""
    request, start = plan.request, rows.start
    with Prefetch(_prepared(plan, rows, make_refs=not request.ray)) as prepared:
        if request.ray:
            from .cluster import ray_scored

            chunks = ((names, one_hot, regions, first, _extra_chunk(plan, first, len(names)),
                       _extra_chunk(plan, first, len(names), plan.extra_rc))
                      for first, (names, one_hot, regions, _) in _starts(prepared, start))
            yield from ray_scored(worker_settings(plan), chunks, request.ray, request.workers)
            return
        for names, one_hot, regions, refs in prepared:
            yield names, one_hot, regions, _score_chunk(plan, names, one_hot, refs, start)
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
        "extra_rc": _describe_extra_rc(request),
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


def _describe_extra_rc(request: ScoreRequest) -> str:
    """``name=flip`` or ``name=FILE.npy`` (resolved) for each ``--extra-rc``, ``;``-separated."""
    described = []
    for item in request.extra_rc:
        name, _, flip = item.partition("=")
        described.append(f"{name}={flip if flip in EXTRA_FLIPS else Path(flip).resolve()}")
    return "; ".join(described)


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


def references_memory(length: int, n_refs: int, chunk: int) -> int:
    """Bytes for the chunks of references in flight: the one scored and those ``Prefetch`` holds ready.
    chunk: sequences per chunk (``chunk_size``)."""
    return (1 + PREFETCH_DEPTH) * chunk * n_refs * length * 4 * 4 * 2  # float32 one-hot and the shuffles' copy


def estimate_memory(explainer, length: int, n_refs: int, batch_size: int | None, chunk: int) -> int:
    """Bytes for the references in flight (``references_memory``) plus one compiled step's activations
    (``Explainer.bytes_per_pair``, an upper estimate: benchmarks/memory_estimate.py measures it)."""
    pairs = (batch_size or max(1, explainer.default_pairs() // n_refs)) * n_refs
    return references_memory(length, n_refs, chunk) + pairs * explainer.bytes_per_pair()
