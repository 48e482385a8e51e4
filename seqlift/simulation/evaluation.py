"""The TAL1/GATA1 benchmark of attribution methods (Shrikumar et al. 2017, appendices F-I): ``seqlift benchmark``.

On the test split of a ``seqlift simulate`` data set, every method scores every task, and each is
judged three ways (``metrics``): how well its per-position scores find the embedded motifs a task
depends on (auROC/auPRC against the ground truth), the paper's false negatives (strong motif matches in
both-motif sequences whose summed task-0 score is ≤ 0), and Sensitivity-n (Ancona et al. 2018, §4);
with ``motifs``, also which simulated motifs TF-MoDISco-lite recovers from its scores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SeqliftError
from ..methods import DEEPLIFT, GENOMICS, RESCALE, RULES, get_method
from ..methods import METHODS as REGISTRY
from ..outputs import Outputs
from ..references import check_seed, composition
from ..references import ReferenceSpec
from ..scoring import explainer_for_sequences, score_one_hot
from ..sequences import one_hot_encode
from .data import motif_database, read
from .metrics import (STRONG_LOG_ODDS, auprc, auroc, false_negative_fraction, match_table, motif_mask, output_drops,
                      sensitivity_n, sensitivity_n_masks)

TASK_INDICES = [0, 1, 2]  # model outputs: 0 = both motifs, 1 = GATA1, 2 = TAL1
TASK_MOTIFS = {0: ("GATA1", "TAL1"), 1: ("GATA1",), 2: ("TAL1",)}
CLASS_COLOURS = {"both": "red", "gata1_only": "blue", "tal1_only": "green", "neither": "black"}
MARKERS = "os^vD<>PXph*"


@dataclass(frozen=True)
class Method:
    """One row group of the benchmark: an attribution method with its rule and reference.

    rc_average: average each sequence's scores with its reverse complement's (``--rc-average``).
    """

    label: str
    method: str
    rule: str = RESCALE
    reference: str = "shuffle"
    rc_average: bool = False


# DeepLIFT with each rule against shuffles (and both strands once), then against the ACGT frequency; then
# every other registered method (those comparing with references against the frequency).
METHODS = [
    *(Method(f"{DEEPLIFT.name}-{rule.replace('-', '')}-shuffle", DEEPLIFT.name, rule, "shuffle") for rule in RULES),
    Method(f"{DEEPLIFT.name}-{GENOMICS}-shuffle-rc-average", DEEPLIFT.name, GENOMICS, "shuffle", rc_average=True),
    *(Method(f"{DEEPLIFT.name}-{rule.replace('-', '')}-frequency", DEEPLIFT.name, rule, "frequency") for rule in RULES),
    *(Method(m.name, m.name, reference="frequency" if m.uses_references else "shuffle")
      for m in REGISTRY.values() if m is not DEEPLIFT),
]


@dataclass
class Split:
    """The test split of a simulation: ``one_hot`` ``(N, L, 4)``, the classes, the embedded motifs
    (ground truth) and the simulation's background composition ``(4,)``."""

    names: list[str]
    one_hot: np.ndarray
    classes: list[str]
    motifs: pd.DataFrame
    background: np.ndarray


@dataclass
class MethodScores:
    """One method's scores: per task ``(N, L)`` summed over bases, convergence deltas ``(N,)`` and seconds;
    task 0's hypothetical scores ``(N, L, 4)`` (for TF-MoDISco-lite)."""

    per_task: list
    deltas: list
    seconds: list
    hypothetical_task0: np.ndarray


@dataclass
class Judgement:
    """What the benchmark says about one method: table rows (one per task), task 0's motif matches with
    their summed scores, Sensitivity-n curves per task, and TF-MoDISco-lite's recovery (or None)."""

    label: str
    rows: list
    matches: pd.DataFrame
    curves: dict
    recovery: dict | None = None


def load_test_split(simdir: Path, model: Path, n_test=None) -> Split:
    """The (first ``n_test``) test sequences of the simulation in ``simdir``, once ``model`` is known to exist."""
    sim = read(simdir)
    if not model.exists():
        raise SeqliftError(f"{model}: no model; run `seqlift simulate {simdir} --train` or pass --model")
    labels = sim.labels.set_index("name")
    test = [n for n in sim.names if labels.loc[n, "split"] == "test"]
    if n_test:
        test = test[:n_test]
    if not test:
        raise SeqliftError(f"{simdir}: the labels have no test split")
    by_name = dict(zip(sim.names, sim.sequences))
    one_hot = np.stack([one_hot_encode(by_name[n], n) for n in test])
    background = composition(np.stack([one_hot_encode(s) for s in sim.sequences[:2000]]))
    return Split(test, one_hot, [labels.loc[n, "class"] for n in test], sim.motifs, background)


def score_method(explainer, m: Method, one_hot, spec: ReferenceSpec) -> MethodScores:
    """Every task's scores of ``one_hot`` ``(N, L, 4)`` with method ``m``, timed per task."""
    if get_method(m.method).multi_target:  # one pass (of mutations, for ISM) serves every task
        start = time.perf_counter()
        scores = score_one_hot(explainer, one_hot, TASK_INDICES, m.method, spec, rc_average=m.rc_average)
        seconds = [(time.perf_counter() - start) / len(TASK_INDICES)] * len(TASK_INDICES)
        return MethodScores([scores.contributions[:, t].sum(-1) for t in range(len(TASK_INDICES))],
                            [scores.delta[:, t] for t in range(len(TASK_INDICES))], seconds, scores.hypothetical[:, 0])
    per_task, deltas, seconds = [], [], []
    for t in TASK_INDICES:
        start = time.perf_counter()
        scores = score_one_hot(explainer, one_hot, [t], m.method, spec, rc_average=m.rc_average)
        seconds.append(time.perf_counter() - start)
        per_task.append(scores.contributions[:, 0].sum(-1))
        deltas.append(scores.delta[:, 0])
        if t == 0:
            hypothetical_task0 = scores.hypothetical[:, 0]
    return MethodScores(per_task, deltas, seconds, hypothetical_task0)


def judge(m: Method, scores: MethodScores, split: Split, masks, drops) -> Judgement:
    """The benchmark's table rows for method ``m``: auROC/auPRC per task, false negatives (task 0),
    Sensitivity-n on the sequences of ``masks``, largest delta and time."""
    length = split.one_hot.shape[1]
    k = next(iter(masks.values())).shape[0] if masks else 0
    matches = match_table(split.names, split.classes, split.one_hot, scores.per_task[0], split.background)
    rows, curves = [], {}
    for t in TASK_INDICES:
        truth = motif_mask(split.names, split.motifs, length, TASK_MOTIFS[t])
        curves[t] = sensitivity_n(scores.per_task[t][:k], masks, drops, t)
        delta = scores.deltas[t]
        rows.append({
            "method": m.label, "task": t,
            "auroc": auroc(truth.ravel(), scores.per_task[t].ravel()),
            "auprc": auprc(truth.ravel(), scores.per_task[t].ravel()),
            "fn_gata1": false_negative_fraction(matches, "GATA1") if t == 0 else float("nan"),
            "fn_tal1": false_negative_fraction(matches, "TAL1") if t == 0 else float("nan"),
            **{f"sens_n{n}": v for n, v in curves[t].items()},
            "max_delta": float(np.nanmax(delta)) if np.isfinite(delta).any() else float("nan"),
            "s_per_1000": 1000 * scores.seconds[t] / len(split.names),
        })
    return Judgement(m.label, rows, matches, curves)


# ----------------------------------------------------------------------------- the run
def motif_recovery(one_hot, hypothetical, seed=0) -> dict:
    """Which simulated motifs TF-MoDISco-lite recovers from task-0 hypothetical scores (TOMTOM q < 0.05)."""
    from .. import motifs as motifs_mod

    try:
        pos, neg, window, offset = motifs_mod.run_modisco(one_hot, hypothetical, seed=seed)
    except SeqliftError as exc:  # e.g. saliency: scores of one sign
        return {"gata1_recovered": False, "gata1_seqlets": 0, "tal1_recovered": False, "tal1_seqlets": 0,
                "n_patterns": 0, "note": str(exc).split(";")[0]}
    patterns = motifs_mod.match(motifs_mod.to_patterns(pos, neg, offset),
                                motifs_mod.read_motif_database(motif_database()))
    found = {"GATA1_disc1": 0, "TAL1_known1": 0}
    for p in patterns:
        if p.sign == "pos" and p.matches and p.matches[0][2] < motifs_mod.MATCH_Q and p.matches[0][0] in found:
            found[p.matches[0][0]] += len(p.seqlets)
    return {"gata1_recovered": found["GATA1_disc1"] > 0, "gata1_seqlets": found["GATA1_disc1"],
            "tal1_recovered": found["TAL1_known1"] > 0, "tal1_seqlets": found["TAL1_known1"],
            "n_patterns": len(patterns), "note": ""}


def run_benchmark(simdir, outdir, model=None, methods=None, n_test=None, n_refs=20, seed=0,
                  sensitivity_seqs=100, progress=lambda label: None, motifs=False, force=False) -> pd.DataFrame:
    """Score the test split with every method and write benchmark.tsv, plots and benchmark.md into
    ``outdir`` (a non-empty one only with ``force``, replacing only these files)."""
    simdir, outdir = Path(simdir), Path(outdir)
    model = Path(model) if model else simdir / "model.h5"
    outputs = Outputs([simdir, model])
    outputs.check_folder(outdir, force)
    check_seed(seed)
    split = load_test_split(simdir, model, n_test)
    chosen = [m for m in METHODS if methods is None or m.label in methods or m.method in methods]
    if not chosen:
        raise SeqliftError(f"no benchmark method matches {methods}; choose from {', '.join(m.label for m in METHODS)}")

    explainers, results = {RESCALE: explainer_for_sequences(model, RESCALE, True)}, []
    length = int(explainers[RESCALE].graph.input_shape[0])
    if length != split.one_hot.shape[1] or explainers[RESCALE].n_outputs < len(TASK_INDICES):
        raise SeqliftError(f"{model}: the model takes {length} bp and has {explainers[RESCALE].n_outputs} output(s), "
                           f"but the simulation's sequences are {split.one_hot.shape[1]} bp with "
                           f"{len(TASK_INDICES)} tasks; pass the model trained on {simdir} (--model)")
    k = min(sensitivity_seqs, len(split.names))
    masks = sensitivity_n_masks(k, split.one_hot.shape[1], seed=seed)
    drops = output_drops(explainers[RESCALE], split.one_hot[:k], masks, split.background, TASK_INDICES)
    with outputs:
        tmp = outputs.folder(outdir, force)  # before minutes of scoring: a full disk or a second run is refused now
        for m in chosen:
            progress(m.label)
            if m.rule not in explainers:
                explainers[m.rule] = explainer_for_sequences(model, m.rule, True)
            spec = ReferenceSpec(kind=m.reference, n_refs=n_refs, seed=seed, background=split.background)
            scores = score_method(explainers[m.rule], m, split.one_hot, spec)
            result = judge(m, scores, split, masks, drops)
            if motifs:
                progress(f"{m.label}: TF-MoDISco-lite on task 0")
                result.recovery = {"method": m.label, **motif_recovery(split.one_hot, scores.hypothetical_task0, seed)}
            results.append(result)
        table = pd.DataFrame([row for result in results for row in result.rows])
        write_report(tmp, table, results, len(split.names), simdir, model)
    return table


# ----------------------------------------------------------------------------- what it writes
def line_styles(n: int) -> list[dict]:
    """``n`` plot styles, each its own colour and marker: tab20's ten dark colours with solid lines, then
    its ten light ones dashed (tab10 alone gave the 11th and 12th methods the 1st and 2nd's colours)."""
    import matplotlib

    colours = matplotlib.colormaps["tab20"].colors
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return [{"color": colours[order[i % 20]], "linestyle": "-" if i % 20 < 10 else "--",
             "marker": MARKERS[i % len(MARKERS)]} for i in range(n)]


def scatter_figure(results: list[Judgement], motif: str):
    """Summed task-0 score of each top match of ``motif`` against its log-odds, one panel per method,
    coloured by the sequence's class (the paper's Fig. 5)."""
    from matplotlib.figure import Figure

    cols = min(4, len(results))
    rows_n = -(-len(results) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.8 * rows_n))
    axes = fig.subplots(rows_n, cols, squeeze=False)
    for ax, result in zip(axes.ravel(), results):
        found = result.matches[result.matches["motif"] == motif]
        for cls, colour in CLASS_COLOURS.items():
            part = found[found["class"] == cls]
            ax.scatter(part["log_odds"], part["score"], s=3, c=colour, alpha=0.5, label=cls)
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.axvline(STRONG_LOG_ODDS, color="grey", linewidth=0.5, linestyle=":")
        ax.set_title(result.label, fontsize=8)
        ax.set_xlabel(f"{motif} match log-odds", fontsize=7)
        ax.set_ylabel("summed task-0 score", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[len(results):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=6, markerscale=3)
    fig.tight_layout()
    return fig


def sensitivity_figure(results: list[Judgement]):
    """Sensitivity-n against n, one panel per task, one line per method (each its own colour and marker)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 3.6), layout="constrained")
    axes = fig.subplots(1, len(TASK_INDICES))
    for t, ax in zip(TASK_INDICES, axes):
        for result, style in zip(results, line_styles(len(results))):
            curve = result.curves[t]
            ax.plot(list(curve), list(curve.values()), markersize=3, label=result.label, **style)
        ax.set_xscale("log")
        ax.set_title(f"Sensitivity-n, task {t}", fontsize=9)
        ax.set_xlabel("n (positions set to the background)", fontsize=8)
        ax.set_ylabel("Pearson correlation", fontsize=8)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=6, loc="outside right upper")  # clear of the lines
    return fig


def write_report(outdir: Path, table: pd.DataFrame, results: list[Judgement], n_test, simdir, model):
    """benchmark.tsv, the scatter and Sensitivity-n plots, motif_recovery.tsv (with recovery) and
    benchmark.md into the (temporary) folder ``outdir``."""
    table.to_csv(outdir / "benchmark.tsv", sep="\t", index=False, float_format="%.4g")
    for motif in ("GATA1", "TAL1"):
        scatter_figure(results, motif).savefig(outdir / f"scatter_{motif}.png", dpi=120)
    sensitivity_figure(results).savefig(outdir / "sensitivity_n.png", dpi=120)
    lines = _markdown_report(table, n_test, simdir, model)
    recovery = [r.recovery for r in results if r.recovery is not None]
    if recovery:
        recovered = pd.DataFrame(recovery)
        recovered.to_csv(outdir / "motif_recovery.tsv", sep="\t", index=False)
        lines += ["## Motif recovery (TF-MoDISco-lite on task-0 hypothetical scores, TOMTOM q < 0.05)", "",
                  "Seqlets counted in positive patterns whose best TOMTOM match is the motif.", "",
                  _markdown(recovered), ""]
    (outdir / "benchmark.md").write_text("\n".join(lines))


def _markdown_report(table: pd.DataFrame, n_test, simdir, model) -> list[str]:
    return [
        "# TAL1/GATA1 attribution benchmark", "",
        f"Simulation `{simdir}`, model `{model}`, {n_test} test sequences. Tasks: 0 = both motifs, 1 = GATA1, "
        "2 = TAL1. Written by `seqlift benchmark`.", "",
        "- **auroc / auprc**: per-position scores (summed over bases) against the positions of the embedded "
        "motifs each task depends on; auprc is average precision (Σ (R_k − R_k−1) P_k over score thresholds, "
        "sklearn's average_precision_score), not the trapezoid area.",
        "- **fn_gata1 / fn_tal1** (task 0): fraction of strong matches (log-odds ≥ 7) among the top 5 per "
        "both-motif sequence whose summed score is ≤ 0 (the paper's false negatives).",
        "- **sens_nK**: Sensitivity-n, the mean per-sequence Pearson correlation between summed attributions "
        "and the output drop when K random positions are set to the background composition.",
        "- **max_delta**: largest convergence delta (methods with completeness); **s_per_1000**: seconds "
        "per 1,000 sequences for one task on this machine.", "",
        _markdown(table), "",
        "## Scores of motif matches against their log-odds (task 0; the paper's Fig. 5)", "",
        "![GATA1](scatter_GATA1.png)", "", "![TAL1](scatter_TAL1.png)", "",
        "## Sensitivity-n", "", "![Sensitivity-n](sensitivity_n.png)", "",
    ]


def _markdown(table: pd.DataFrame) -> str:
    def cell(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.3g}"
        return str(v)

    head = "| " + " | ".join(table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])
