"""Variant effects: both alleles' windows scored through ``seqlift score``'s pipeline, written as a variant file.

``prepare_variants`` checks everything (through ``pipeline.prepare``, with the variants as its source);
``variant_results`` yields scored chunks; ``run_variants`` writes them to ``OUT.h5`` and ``OUT.tsv``;
``variant_effects`` is the Python API. Ref window k and alt window k are row k of a ref input and of an alt
input, references seeded by ``(seed, k)`` for both: their contributions are what ``seqlift score`` writes for
FASTA files of those windows.

The variant file (``seqlift view`` reads it; datasets N first, a task axis only for several tasks):

- ``ids``, ``chrom``, ``pos`` (1-based), ``ref``, ``alt`` · ``ref_one_hot``, ``alt_one_hot`` (N, L, 4)
- ``ref_contrib``, ``alt_contrib``, ``ref_hypothetical``, ``alt_hypothetical`` (N, [T,] L, 4)
- ``ref_prediction``, ``alt_prediction``, ``delta`` (= alt − ref, the effect) (N, [T])
- ``ref_convergence_delta``, ``alt_convergence_delta``, ``ref_allele_contrib``, ``alt_allele_contrib``,
  ``max_contrib_change`` (N, [T]); ``js_distance`` (N) for an output with positions (a profile head)
- with ``--null K``: ``null_effects`` (N, K, [T]), ``p_value``, ``q_value`` (N, [T])
- attributes: those of a score file (``pipeline.attributes``, a shard's included), plus ``genome``, ``null`` and ``variant_index``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pandas as pd

from . import pipeline
from . import scale as scale_mod
from . import sequences as seqs
from . import targets as targets_mod
from .errors import SeqliftError
from .outputs import Outputs
from .scorefile import COMPLETED, is_summary, reopen_in_progress, sha256, summary_path
from .scoring import Scores, explained_targets, score_chunk
from .variants import VariantSource, null_windows

# Bases on either side of the variant searched for the largest contribution change (the TSV's max_contrib_change).
CHANGE_FLANK = 10
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
            return "seqlift_version" in handle.attrs and "ref_contrib" in handle
    except OSError:
        return False


@dataclass(frozen=True)
class VariantPlan:
    """A checked ``seqlift variants`` run: ``score``'s plan over the variants, and the null shuffles per variant."""

    plan: pipeline.ScorePlan
    null: int = 0

    @property
    def source(self) -> VariantSource:
        return self.plan.source


@dataclass(frozen=True)
class VariantChunk:
    """One scored chunk: ``ref`` and ``alt`` ``Scores`` (task axis after N) of its windows ``(n, L, 4)``;
    ``null_effects`` ``(n, K, T)`` with --null; ``js_distance`` ``(n,)`` for an output with positions."""

    variants: tuple
    ref_one_hot: np.ndarray
    alt_one_hot: np.ndarray
    ref: Scores
    alt: Scores
    null_effects: np.ndarray | None = None
    js_distance: np.ndarray | None = None

    @property
    def effect(self) -> np.ndarray:
        """``alt − ref`` prediction of the explained target, ``(n, T)``."""
        return self.alt.prediction - self.ref.prediction


# ----------------------------------------------------------------------------- prepare
@dataclass(frozen=True)
class VariantOutputs:
    """What ``seqlift variants`` writes: the variant file ``out`` and its TSV beside it (``OUT.tsv``)."""

    out: Path | str

    @classmethod
    def parse(cls, out) -> VariantOutputs:
        return cls(out)  # as given: Outputs.check_file says what is wrong with it

    @property
    def summary(self) -> Path:
        return summary_path(self.out)

    def inputs(self) -> list[str]:
        return []

    def check(self, outputs: Outputs, tasks=(0,)):
        """OUT.h5 and OUT.tsv: replaced only when seqlift wrote them."""
        outputs.check_file(self.out, "--out", is_variant_file)
        outputs.check_file(self.summary, "--out", is_summary)


def prepare_variants(request: pipeline.ScoreRequest, choose_tasks: Callable[[int], list[int]],
                     null: int = 0) -> VariantPlan:
    """Check every option, output, variant and the model before any work: ``pipeline.prepare`` with the variants
    (``request.input``, on ``request.genome``) as its source. null: shuffled controls per variant (--null K)."""
    if request.outputs is not None and not isinstance(request.outputs, VariantOutputs):
        raise SeqliftError("seqlift variants writes a variant file: build the request with "
                           "outputs=effects.VariantOutputs")
    if null < 0:
        raise SeqliftError(f"--null {null}: must be 0 or more shuffled controls per variant")
    if null and request.model.extra:
        raise SeqliftError("--null with --extra inputs is not available yet: the shuffled controls are scored with "
                           "the other inputs at zeros; leave out --null or --extra")
    plan = pipeline.prepare(request, choose_tasks, open_source=VariantSource.open)
    if null:
        check_null_memory(null, plan.source.length, min(plan.chunk, plan.source.n_sequences), len(plan.tasks))
    return VariantPlan(plan, null)


def check_null_memory(null: int, length: int, chunk: int, n_tasks: int):
    """Refuse a --null whose shuffled windows (ref and alt, float32 one-hot, for the chunk scored and those the
    prefetch holds) would not fit in the host's available memory, before any work."""
    per_control = (1 + scale_mod.PREFETCH_DEPTH) * chunk * (length * 4 * 4 * 2 + 4 * n_tasks)
    available = scale_mod.available_memory()
    if available is not None and null * per_control > scale_mod.MEMORY_FRACTION * available:
        fits = int(scale_mod.MEMORY_FRACTION * available) // per_control
        raise SeqliftError(f"--null {null} needs about {null * per_control / 2**30:.1f} GiB for the shuffled controls "
                           f"of a chunk of {chunk} variants ({length} bp windows), but {available / 2**30:.1f} GiB "
                           f"is available: at most {fits} fit; lower --null"
                           + (" or --chunk-size" if chunk > 1 else ""))


# ----------------------------------------------------------------------------- score
def _prepared(vplan: VariantPlan, rows: range, make_refs: bool = True):
    """Each chunk of ``rows`` with both alleles' references and its null windows: what the prefetch thread makes
    (the references only when this process scores: Ray workers make their own)."""
    plan = vplan.plan
    references = plan.references
    uses_refs = make_refs and plan.method.uses_references
    start = 0
    for ids, ref, alt, chunk in plan.source.chunks(plan.chunk):
        if start >= rows.stop:
            return
        if start >= rows.start:
            ref_refs = references.make(ref, start, ids) if uses_refs else None
            alt_refs = references.make(alt, start, ids) if uses_refs else None  # row k seeded by (seed, k) too
            nulls = None
            if vplan.null:
                spans = plan.source.spans(chunk)
                pairs = [null_windows(s, v, plan.source.length, vplan.null, references.seed, start + i)
                         for i, (s, v) in enumerate(zip(spans, chunk))]
                nulls = (np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs]))
            yield start, ids, ref, alt, chunk, ref_refs, alt_refs, nulls
        start += len(ids)


def target_predictions(explainer, settings: dict, one_hot: np.ndarray) -> np.ndarray:
    """The explained targets' values on ``one_hot`` ``(n, L, 4)``, ``(n, T)``: the model's forward pass only
    (both strands averaged with --rc-average), as ``Scores.prediction`` holds them for scored windows.
    settings: as ``pipeline.score_settings`` makes them (tasks, target, rc_average)."""
    explained = explained_targets(explainer, settings["tasks"], settings["target"], settings["rc_average"])
    from keras import ops

    step = explainer.cached_step(("variant_targets", tuple(explained)), lambda: explainer.compile(
        lambda v: ops.stack([explainer.target_on(v, t) for t in explained], axis=1)))
    batch = explainer.default_pairs()
    values = explainer.apply(step, one_hot, batch)
    if settings["rc_average"]:
        values = 0.5 * (values + explainer.apply(step, seqs.reverse_complement(one_hot), batch))
    return values


def js_distance(explainer, ref: np.ndarray, alt: np.ndarray) -> np.ndarray | None:
    """Jensen–Shannon distance (base 2, in [0, 1]) between the ref and alt profiles (softmax over the flattened
    output of positions and strands), ``(n,)``; None for an output without positions."""
    if not targets_mod.is_positional(explainer.graph.output_shape):
        return None
    from scipy.spatial.distance import jensenshannon
    from scipy.special import softmax

    p = softmax(explainer.predict(ref).astype(np.float64), axis=1)
    q = softmax(explainer.predict(alt).astype(np.float64), axis=1)
    return jensenshannon(p, q, base=2, axis=1)


def score_variant_chunk(explainer, settings: dict, ids, ref, alt, start: int, refs=(None, None), nulls=None,
                        extra=None, extra_rc=None):
    """``(ref Scores, alt Scores, null effects (n, K, T) or None, JS distance (n,) or None)`` of one chunk of
    variants whose first is input row ``start``: both windows scored with references seeded by ``(seed, row)``
    (``refs``: made already, or None to make them here), and the forward passes of the null windows
    (``nulls``: ref and alt windows, ``(n·K, L, 4)`` each). settings: as ``pipeline.score_settings`` makes them.
    Run here and on a Ray worker (``cluster.ChunkScorer.score_variants``)."""
    ref_scores, alt_scores = (score_chunk(explainer, settings, one_hot, start, ids, made, extra, extra_rc)
                              for one_hot, made in zip((ref, alt), refs))
    null_effects = None
    if nulls is not None:
        null_effects = (target_predictions(explainer, settings, nulls[1])
                        - target_predictions(explainer, settings, nulls[0]))
        null_effects = null_effects.reshape(len(ids), len(nulls[0]) // len(ids), len(settings["tasks"]))
    return ref_scores, alt_scores, null_effects, js_distance(explainer, ref, alt)


def variant_results(vplan: VariantPlan, rows: range | None = None):
    """``VariantChunk`` of each chunk of ``rows`` (default: the plan's), in input order: scored in this process
    while a thread prepares the next chunks, or by Ray workers (``--ray``)."""
    plan = vplan.plan
    rows = plan.rows if rows is None else rows
    ray = plan.request.scale.ray
    with pipeline.Prefetch(_prepared(vplan, rows, make_refs=not ray)) as prepared:
        if ray:
            from .cluster import ray_map

            jobs = (((ids, ref, alt, chunk), "score_variants",
                     (ids, ref, alt, start, nulls, pipeline.extra_chunk(plan, start, len(ids)),
                      pipeline.extra_chunk(plan, start, len(ids), plan.extra_rc)))
                    for start, ids, ref, alt, chunk, _, _, nulls in prepared)
            scored = ray_map(pipeline.worker_settings(plan), jobs, ray, plan.request.scale.workers)
        else:
            settings = pipeline.score_settings(plan, plan.batch_size)  # the batch chosen for this machine's memory
            scored = (((ids, ref, alt, chunk), score_variant_chunk(
                plan.explainer, settings, ids, ref, alt, start, (ref_refs, alt_refs), nulls,
                pipeline.extra_chunk(plan, start, len(ids)),
                pipeline.extra_chunk(plan, start, len(ids), plan.extra_rc)))
                for start, ids, ref, alt, chunk, ref_refs, alt_refs, nulls in prepared)
        for (ids, ref, alt, chunk), (ref_scores, alt_scores, null_effects, js) in scored:
            pipeline.check_finite(ref_scores, ids, plan.tasks)
            pipeline.check_finite(alt_scores, ids, plan.tasks)
            yield VariantChunk(tuple(chunk), ref, alt, ref_scores, alt_scores, null_effects, js)


def allele_contributions(contrib: np.ndarray, lengths, centre: int) -> np.ndarray:
    """Summed contribution of each variant's allele bases, ``(n, T)``: ``contrib`` ``(n, T, L, 4)``, the allele
    starting at ``centre`` with ``lengths[i]`` bases (cut at the window's end)."""
    per_position = contrib.sum(-1)  # (n, T, L)
    out = np.zeros(per_position.shape[:2], np.float32)
    for i, n in enumerate(lengths):
        out[i] = per_position[i, :, centre:centre + n].sum(-1)
    return out


def max_contrib_change(ref: np.ndarray, alt: np.ndarray, variants, centre: int, flank: int = CHANGE_FLANK) -> np.ndarray:
    """The signed ``alt − ref`` per-position contribution (summed over bases) of largest magnitude within ``flank``
    bp of the variant (window indices ``centre − flank`` to ``centre + max(len REF, len ALT) + flank``), ``(n, T)``."""
    diff = alt.sum(-1) - ref.sum(-1)  # (n, T, L)
    length = diff.shape[-1]
    out = np.zeros(diff.shape[:2], np.float32)
    for i, v in enumerate(variants):
        window = diff[i, :, max(0, centre - flank):min(length, centre + max(len(v.ref), len(v.alt)) + flank)]
        out[i] = window[np.arange(window.shape[0]), np.abs(window).argmax(-1)]
    return out


def chunk_values(chunk: VariantChunk, centre: int) -> dict:
    """Per-variant arrays of a chunk with a task axis ``(n, T)`` (and ``(n, K, T)``, ``(n,)``): what the file and
    the table hold besides the windows' per-base scores."""
    v = chunk.variants
    values = {
        "ref_prediction": chunk.ref.prediction, "alt_prediction": chunk.alt.prediction, "delta": chunk.effect,
        "ref_allele_contrib": allele_contributions(chunk.ref.contributions, [len(x.ref) for x in v], centre),
        "alt_allele_contrib": allele_contributions(chunk.alt.contributions, [len(x.alt) for x in v], centre),
        "max_contrib_change": max_contrib_change(chunk.ref.contributions, chunk.alt.contributions, v, centre),
        "ref_convergence_delta": chunk.ref.delta, "alt_convergence_delta": chunk.alt.delta,
    }
    if chunk.null_effects is not None:
        values["null_effects"] = chunk.null_effects
        values["p_value"] = empirical_p_values(chunk.effect, chunk.null_effects)
    if chunk.js_distance is not None:
        values["js_distance"] = chunk.js_distance
    return values


def empirical_p_values(effect: np.ndarray, null_effects: np.ndarray) -> np.ndarray:
    """``(1 + #{k: |null_k| ≥ |effect|}) / (K + 1)`` per variant and task (``effect`` ``(n, T)``, ``null_effects``
    ``(n, K, T)``): the add-one empirical p-value, never 0 (Davison & Hinkley 1997, §4.2)."""
    k = null_effects.shape[1]
    hits = (np.abs(null_effects) >= np.abs(effect)[:, None]).sum(1)
    return ((1 + hits) / (k + 1)).astype(np.float64)


def q_values(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values over the variants, per task: ``(N, T)`` → ``(N, T)``."""
    from scipy.stats import false_discovery_control

    return np.stack([false_discovery_control(p_values[:, t], method="bh") for t in range(p_values.shape[1])], axis=1)


# ----------------------------------------------------------------------------- write
class VariantWriter:
    """Append scored chunks to a variant file and write its TSV at the end, in temporaries claimed from ``outputs``
    (renamed when its block ends). attrs: the file's attributes; null: shuffled controls per variant (0: none).

    resume: settings that must match for a later ``--resume`` (``pipeline.resume_keys``): when given, the file is
    the stable in-progress ``OUT.partial``, every appended chunk is flushed and counted, and ``resuming`` continues
    an existing one (its completed rows are kept: ``n``), as ``scorefile.ScoreWriter`` does for score files.
    """

    def __init__(self, outputs: Outputs, out, summary, length: int, tasks, attrs: dict, null: int = 0,
                 profile: bool = False, resume: dict | None = None, resuming: bool = False, chunk: int = 64):
        self.length, self.tasks, self.null, self.profile = length, list(tasks), null, profile
        self.task_axis = len(self.tasks) > 1
        self.n = 0
        self._outputs = outputs
        self._summary = summary
        self._resume = resume
        self._rows = max(d for d in range(1, 65) if chunk % d == 0)  # HDF5 chunks never straddle two of ours
        if resume is None:
            self._path = outputs.file(out, ours=is_variant_file)
            self._h5 = self._create(self._path, attrs)
            return
        self._path, existed = outputs.partial(out, resuming, ours=is_variant_file)
        self._h5 = self._reopen(attrs, resume) if existed else None
        if self._h5 is None:  # set up beside it, so OUT.partial only ever exists complete on disk
            with outputs.replacing(self._path) as setup:
                self._h5 = self._create(setup, attrs)
                for key, value in resume.items():
                    self._h5.attrs[f"resume_{key}"] = value
                self._h5.attrs[COMPLETED] = 0
                self._h5.flush()

    def _create(self, path: Path, attrs: dict) -> h5py.File:
        self._outputs.ensure_room(self._path, 0)  # its header and empty datasets: HDF5 crashes on a failed write
        h5 = h5py.File(path, "w")
        length, rows = self.length, self._rows
        per_base = ((len(self.tasks),) if self.task_axis else ()) + (length, 4)
        per_variant = (len(self.tasks),) if self.task_axis else ()
        for key in ("ids", "chrom", "ref", "alt"):
            h5.create_dataset(key, (0,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(1024,))
        h5.create_dataset("pos", (0,), maxshape=(None,), dtype="int64", chunks=(1024,))
        for key in ("ref_one_hot", "alt_one_hot"):
            h5.create_dataset(key, (0, length, 4), maxshape=(None, length, 4), dtype="float32",
                              chunks=(rows, length, 4), compression="gzip", compression_opts=1)
        for key in ("ref_contrib", "alt_contrib", "ref_hypothetical", "alt_hypothetical"):
            h5.create_dataset(key, (0,) + per_base, maxshape=(None,) + per_base, dtype="float32",
                              chunks=(rows,) + per_base, compression="gzip", compression_opts=1)
        small = ["ref_prediction", "alt_prediction", "delta", *_PER_VARIANT] + (["p_value"] if self.null else [])
        for key in small:
            h5.create_dataset(key, (0,) + per_variant, maxshape=(None,) + per_variant,
                              dtype="float64" if key == "p_value" else "float32", chunks=(1024,) + per_variant)
        if self.null:
            shape = (self.null,) + per_variant
            per_row = 4 * int(np.prod(shape))  # HDF5 refuses a chunk of 4 GiB or more: keep one under 1 GiB
            h5.create_dataset("null_effects", (0,) + shape, maxshape=(None,) + shape, dtype="float32",
                              chunks=(max(1, min(rows, 2**30 // per_row)),) + shape)
        if self.profile:
            h5.create_dataset("js_distance", (0,), maxshape=(None,), dtype="float32", chunks=(1024,))
        for key, value in attrs.items():
            h5.attrs[key] = value
        return h5

    def _reopen(self, attrs: dict, resume: dict) -> h5py.File:
        """The interrupted run's ``OUT.partial``, cut back to its last completed chunk (``reopen_in_progress``)."""
        h5, self.n = reopen_in_progress(self._outputs, self._path, attrs, resume,
                                        lambda setup, old_attrs, old: self._create(setup, old_attrs))
        return h5

    def append(self, chunk: VariantChunk):
        values = chunk_values(chunk, self.length // 2)
        squeeze = (lambda a: a) if self.task_axis else (lambda a: a[..., 0])
        rows = {key: (value if key == "js_distance" else squeeze(value)) for key, value in values.items()}
        variants = chunk.variants
        rows.update(ids=np.asarray([v.id for v in variants], object), chrom=np.asarray([v.chrom for v in variants], object),
                    pos=np.asarray([v.pos for v in variants], np.int64), ref=np.asarray([v.ref for v in variants], object),
                    alt=np.asarray([v.alt for v in variants], object), ref_one_hot=chunk.ref_one_hot,
                    alt_one_hot=chunk.alt_one_hot)
        for side, scores in (("ref", chunk.ref), ("alt", chunk.alt)):
            rows[f"{side}_contrib"] = squeeze_task(scores.contributions, self.task_axis)
            rows[f"{side}_hypothetical"] = squeeze_task(scores.hypothetical, self.task_axis)
        self.append_rows(rows)

    def append_rows(self, rows: dict):
        """Write ``{dataset: rows}`` after the rows written so far (a chunk scored, or a shard's rows)."""
        start, stop = self.n, self.n + len(rows["ids"])
        self._outputs.ensure_room(self._path, sum(np.asarray(v).nbytes for v in rows.values()) + 64 * (stop - start))
        for key, value in rows.items():
            if key in ("q_value",):
                continue
            dataset = self._h5[key]
            dataset.resize(stop, axis=0)
            dataset[start:stop] = value
        self.n = stop
        if self._resume is not None:  # the chunk is on disk before it counts as completed
            self._h5.attrs[COMPLETED] = stop
            self._h5.flush()
            self._outputs.keep_if_interrupted(self._path)  # completed work: Ctrl-C keeps it for --resume

    def close(self):
        """Add q-values (over every variant), write the TSV, close the file."""
        if self.n == 0:
            self.abort()
            raise SeqliftError("no variants were scored")
        h5 = self._h5
        if self.null:
            p = h5["p_value"][()]
            q = q_values(p if self.task_axis else p[:, None])
            h5.create_dataset("q_value", data=q if self.task_axis else q[:, 0])
        h5.attrs["n_sequences"] = self.n
        for key in [k for k in h5.attrs if k == COMPLETED or k.startswith("resume_")]:
            del h5.attrs[key]
        if self._summary is not None:
            table = variant_table({key: h5[key][()] for key in h5 if key not in _PER_BASE}, self.tasks, self.task_axis)
            table.to_csv(self._outputs.file(self._summary, ours=is_summary), sep="\t", index=False,
                         float_format="%.6g")
        h5.close()

    def abort(self):
        try:
            self._h5.close()
        except Exception:  # noqa: BLE001 - already closed or broken: the Outputs removes it
            pass


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


def variant_attributes(vplan: VariantPlan) -> dict:
    """The variant file's attributes: a score file's (``pipeline.attributes``) plus the genome and the null."""
    plan = vplan.plan
    attrs = pipeline.attributes(plan)
    genome = plan.request.genome
    attrs.update(genome=str(Path(genome).resolve()), genome_sha256=sha256(genome), null=int(vplan.null),
                 variant_index=plan.source.length // 2, n_skipped=int(plan.source.n_skipped))
    return attrs


@dataclass(frozen=True)
class VariantResult:
    out: Path
    summary: Path
    n: int
    worst: tuple | None = None
    n_over: dict | None = None

    def worst_delta(self, threshold: float) -> str | None:
        return pipeline.Result(self.out, self.summary, 2 * self.n, self.worst, self.n_over or {}).worst_delta(threshold)


def run_variants(vplan: VariantPlan, progress: Callable[[int], None] = lambda n: None,
                 resumed: Callable[[int], None] | None = None) -> VariantResult:
    """Score every variant of the plan's rows into ``OUT.h5`` and ``OUT.tsv``; a failure leaves nothing.
    progress and resumed: as for ``pipeline.run``."""
    plan = vplan.plan
    request = plan.request
    tracker = pipeline.DeltaTracker(plan.delta_thresholds, plan.method.complete)
    with plan.outputs:
        writer = VariantWriter(plan.outputs, request.out, request.summary, plan.source.length, plan.tasks,
                               variant_attributes(vplan), vplan.null,
                               profile=targets_mod.is_positional(plan.explainer.graph.output_shape),
                               resume=pipeline.resume_keys(plan), resuming=request.scale.resume, chunk=plan.chunk)
        try:
            (resumed or progress)(writer.n)  # rows an interrupted run completed (--resume)
            for chunk in variant_results(vplan, range(plan.rows.start + writer.n, plan.rows.stop)):
                writer.append(chunk)
                names = [v.id for v in chunk.variants]
                tracker.add(chunk.ref, [f"{n} (ref)" for n in names], plan.tasks)
                tracker.add(chunk.alt, [f"{n} (alt)" for n in names], plan.tasks)
                progress(len(names))
            writer.close()
        except BaseException:
            writer.abort()
            raise
    return VariantResult(Path(request.out), request.summary, writer.n, tracker.worst, tracker.n_over)


# ----------------------------------------------------------------------------- merge
def merge_variant_shards(outputs: Outputs, out, shards, block: int = 4096) -> int:
    """Join the variant files of ``seqlift variants --shard K/N`` into ``out`` and its TSV, in input order, with
    q-values computed again over every variant (checks as ``scorefile.merge_shards``)."""
    from .scorefile import SHARD_ATTRS, _check_shards

    files = [_ShardFile(p) for p in shards]
    try:
        order = _check_shards(files, shards)
        first = files[order[0]]
        attrs = {k: v for k, v in first.attrs.items() if k not in SHARD_ATTRS}
        tasks = [int(t) for t in np.atleast_1d(attrs["tasks"])]
        writer = VariantWriter(outputs, out, summary_path(out), first.h5["ref_one_hot"].shape[1], tasks, attrs,
                               int(attrs.get("null", 0)), profile="js_distance" in first.h5, chunk=block)
        try:
            for i in order:
                h5 = files[i].h5
                for start in range(0, files[i].n, block):
                    writer.append_rows({key: h5[key][start:start + block] for key in h5 if key != "q_value"})
            writer.close()
        except BaseException:
            writer.abort()
            raise
    finally:
        for f in files:
            f.h5.close()
    return writer.n


class _ShardFile:
    """A variant file as ``scorefile._check_shards`` reads a shard: ``attrs`` and ``n``."""

    def __init__(self, path):
        if not is_variant_file(path):
            raise SeqliftError(f"{path}: not a variant file seqlift wrote")
        self.h5 = h5py.File(path, "r")
        self.attrs = dict(self.h5.attrs)
        self.n = len(self.h5["ids"])


# ----------------------------------------------------------------------------- Python API
def variant_effects(model, variants, genome, tasks=(0,), **options) -> tuple[pd.DataFrame, dict]:
    """Every variant's effect and both alleles' contribution scores, as ``seqlift variants`` computes them.

    model: a model file (as ``seqlift score`` takes it) or a loaded ``keras.Model``; variants: a VCF (plain, bgzip or
    gzip) or TSV ``chrom pos ref alt [id]``; genome: its FASTA. tasks: output indices. options: ``seqlift variants``'s options
    by the keywords ``pipeline.build_request`` hands to each spec (``method``, ``rule``, ``reference``, ``n_refs``,
    ``seed``, ``target``, ``output``, ``rc_average``, ``batch_size``, ``skip_invalid``, ...) and ``null``
    (shuffled controls per variant).
    Returns the table (one row per variant and task, as OUT.tsv) and the arrays by the variant file's dataset
    names, each with a task axis: ``ref_contrib`` ``(N, T, L, 4)``, ``ref_prediction`` ``(N, T)``, ...
    """
    for name in ("out", "resume"):
        if options.get(name):
            raise SeqliftError(f"variant_effects: {name} is for a variant file; this returns the table and the arrays "
                               "and writes nothing (seqlift variants ... --out OUT.h5 writes the file)")
    if "input" in options:
        raise TypeError(pipeline.unknown_options(["input"], []))
    null = int(options.pop("null", 0) or 0)
    model = str(model) if isinstance(model, (str, os.PathLike)) else model  # a path, or a loaded keras.Model
    request = pipeline.build_request(model, str(variants), genome=str(genome), outputs=VariantOutputs, **options)
    tasks = list(tasks)
    vplan = prepare_variants(request, lambda n: _checked_tasks(tasks, n), null)
    parts: dict[str, list] = {}
    for chunk in variant_results(vplan):
        values = chunk_values(chunk, vplan.source.length // 2)
        values.update(ref_one_hot=chunk.ref_one_hot, alt_one_hot=chunk.alt_one_hot,
                      ref_contrib=chunk.ref.contributions, alt_contrib=chunk.alt.contributions,
                      ref_hypothetical=chunk.ref.hypothetical, alt_hypothetical=chunk.alt.hypothetical,
                      ids=np.asarray([v.id for v in chunk.variants], object),
                      chrom=np.asarray([v.chrom for v in chunk.variants], object),
                      pos=np.asarray([v.pos for v in chunk.variants], np.int64),
                      ref=np.asarray([v.ref for v in chunk.variants], object),
                      alt=np.asarray([v.alt for v in chunk.variants], object))
        for key, value in values.items():
            parts.setdefault(key, []).append(value)
    arrays = {key: np.concatenate(value) for key, value in parts.items()}
    if "p_value" in arrays:
        arrays["q_value"] = q_values(arrays["p_value"])
    table = variant_table({k: v for k, v in arrays.items() if np.ndim(v) <= 2}, vplan.plan.tasks, task_axis=True)
    return table, arrays


def _checked_tasks(tasks, n_outputs: int) -> list[int]:
    for t in tasks:
        if not 0 <= int(t) < n_outputs:
            raise SeqliftError(f"task {t} is out of range: the model has {n_outputs} outputs (0..{n_outputs - 1})")
    return [int(t) for t in tasks]
