"""Variant effects: both alleles' windows scored through ``seqlift score``'s pipeline, written as a variant file.

``prepare_variants`` checks everything (through ``pipeline.prepare``, with the variants as its source);
``variant_results`` yields scored chunks; ``run_variants`` writes them to ``OUT.h5`` and ``OUT.tsv``;
``variant_effects`` is the Python API. Ref window k and alt window k are row k of a ref input and of an alt
input, references seeded by ``(seed, k)`` for both: their contributions are what ``seqlift score`` writes for
FASTA files of those windows.

The variant file's layout, writer and reader are ``variantfile``'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import pipeline
from . import scale as scale_mod
from . import sequences as seqs
from . import targets as targets_mod
from .errors import SeqliftError
from .outputs import Outputs
from .rowfile import is_summary, sha256, summary_path
from .scoring import ChunkSettings, Scores, explained_targets, score_chunk
from .variantfile import VariantWriter, is_variant_file, q_values, squeeze_task, variant_table
from .variants import VariantSource, null_windows

# Bases on either side of the variant searched for the largest contribution change (the TSV's max_contrib_change).
CHANGE_FLANK = 10
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

    @property
    def n(self) -> int:
        return len(self.variants)

    def tracked(self) -> list:
        """``(names, Scores)`` of both windows, whose convergence deltas the run reports (``pipeline.DeltaTracker``)."""
        names = [v.id for v in self.variants]
        return [([f"{n} (ref)" for n in names], self.ref), ([f"{n} (alt)" for n in names], self.alt)]

    def file_rows(self, centre: int, task_axis: bool) -> dict:
        """The chunk's rows of the variant file's datasets (``variantfile``): ``chunk_values``, the variants, both
        windows and their scores; the task axis kept only with ``task_axis``."""
        values = chunk_values(self, centre)
        squeeze = (lambda a: a) if task_axis else (lambda a: a[..., 0])
        rows = {key: (value if key == "js_distance" else squeeze(value)) for key, value in values.items()}
        rows.update(variant_columns(self.variants), ref_one_hot=self.ref_one_hot, alt_one_hot=self.alt_one_hot)
        for side, scores in (("ref", self.ref), ("alt", self.alt)):
            rows[f"{side}_contrib"] = squeeze_task(scores.contributions, task_axis)
            rows[f"{side}_hypothetical"] = squeeze_task(scores.hypothetical, task_axis)
        return rows


def variant_columns(variants) -> dict:
    """``ids``, ``chrom``, ``pos``, ``ref`` and ``alt`` of ``variants`` as the variant file holds them."""
    return {"ids": np.asarray([v.id for v in variants], object), "chrom": np.asarray([v.chrom for v in variants], object),
            "pos": np.asarray([v.pos for v in variants], np.int64), "ref": np.asarray([v.ref for v in variants], object),
            "alt": np.asarray([v.alt for v in variants], object)}


# ----------------------------------------------------------------------------- prepare
@dataclass(frozen=True)
class VariantOutputs:
    """What ``seqlift variants`` writes: the variant file ``out`` and its TSV beside it (``OUT.tsv``)."""

    out: Path | str

    @classmethod
    def keywords(cls) -> list[str]:
        return ["out"]

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
    """``((ids, ref, alt, variants), args of score_variant_chunk)`` of each chunk of ``rows``: both alleles' windows,
    their references (``make_refs``: when this process scores; Ray workers make their own) and the null windows.
    What the prefetch thread prepares."""
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
            yield (ids, ref, alt, chunk), (ids, ref, alt, start, (ref_refs, alt_refs), nulls,
                                           pipeline.extra_chunk(plan, start, len(ids)),
                                           pipeline.extra_chunk(plan, start, len(ids), plan.extra_rc))
        start += len(ids)


def target_predictions(explainer, settings: ChunkSettings, one_hot: np.ndarray) -> np.ndarray:
    """The explained targets' values on ``one_hot`` ``(n, L, 4)``, ``(n, T)``: the model's forward pass only
    (both strands averaged with --rc-average), as ``Scores.prediction`` holds them for scored windows."""
    explained = explained_targets(explainer, settings.tasks, settings.target, settings.rc_average)
    from keras import ops

    step = explainer.cached_step(("variant_targets", tuple(explained)), lambda: explainer.compile(
        lambda v: ops.stack([explainer.target_on(v, t) for t in explained], axis=1)))
    batch = explainer.default_pairs()
    values = explainer.apply(step, one_hot, batch)
    if settings.rc_average:
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


def score_variant_chunk(explainer, settings: ChunkSettings, ids, ref, alt, start: int, refs=(None, None), nulls=None,
                        extra=None, extra_rc=None):
    """``(ref Scores, alt Scores, null effects (n, K, T) or None, JS distance (n,) or None)`` of one chunk of
    variants whose first is input row ``start``: both windows scored with references seeded by ``(seed, row)``
    (``refs``: made already, or None to make them here), and the forward passes of the null windows
    (``nulls``: ref and alt windows, ``(n·K, L, 4)`` each). Run here and on a Ray worker (``pipeline.scored``)."""
    ref_scores, alt_scores = (score_chunk(explainer, settings, one_hot, start, ids, made, extra, extra_rc)
                              for one_hot, made in zip((ref, alt), refs))
    null_effects = None
    if nulls is not None:
        null_effects = (target_predictions(explainer, settings, nulls[1])
                        - target_predictions(explainer, settings, nulls[0]))
        null_effects = null_effects.reshape(len(ids), len(nulls[0]) // len(ids), len(settings.tasks))
    return ref_scores, alt_scores, null_effects, js_distance(explainer, ref, alt)


def variant_results(vplan: VariantPlan, rows: range | None = None):
    """``VariantChunk`` of each chunk of ``rows`` (default: the plan's), in input order (``pipeline.scored``),
    checked for NaN."""
    plan = vplan.plan
    rows = plan.rows if rows is None else rows
    prepared = _prepared(vplan, rows, make_refs=not plan.request.scale.ray)
    for (ids, ref, alt, chunk), (ref_scores, alt_scores, null_effects, js) in pipeline.scored(plan, prepared,
                                                                                          score_variant_chunk):
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


def variant_attributes(vplan: VariantPlan) -> dict:
    """The variant file's attributes: a score file's (``pipeline.attributes``) plus the genome and the null."""
    plan = vplan.plan
    attrs = pipeline.attributes(plan)
    genome = plan.request.genome
    attrs.update(genome=str(Path(genome).resolve()), genome_sha256=sha256(genome), null=int(vplan.null),
                 variant_index=plan.source.length // 2, n_skipped=int(plan.source.n_skipped))
    return attrs


def run_variants(vplan: VariantPlan, progress: Callable[[int], None] = lambda n: None,
                 resumed: Callable[[int], None] | None = None) -> pipeline.Result:
    """Score every variant of the plan's rows into ``OUT.h5`` and ``OUT.tsv`` (``pipeline.run_loop`` with a
    ``VariantWriter``); a failure leaves nothing. progress and resumed: as for ``pipeline.run``."""
    plan = vplan.plan
    request = plan.request

    def open_writer():
        return VariantWriter(plan.outputs, request.out, request.summary, plan.source.length, plan.tasks,
                             variant_attributes(vplan), vplan.null,
                             profile=targets_mod.is_positional(plan.explainer.graph.output_shape),
                             resume=pipeline.resume_keys(plan), resuming=request.scale.resume, chunk=plan.chunk)

    return pipeline.run_loop(plan, open_writer, lambda rows: variant_results(vplan, rows), progress, resumed,
                             windows=2)


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
        values.update(variant_columns(chunk.variants), ref_one_hot=chunk.ref_one_hot, alt_one_hot=chunk.alt_one_hot,
                      ref_contrib=chunk.ref.contributions, alt_contrib=chunk.alt.contributions,
                      ref_hypothetical=chunk.ref.hypothetical, alt_hypothetical=chunk.alt.hypothetical)
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
