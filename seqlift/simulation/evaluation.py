"""The TAL1/GATA1 benchmark of attribution methods (Shrikumar et al. 2017, appendices F-I).

On the test split of a ``seqlift simulate`` data set, every method scores every task, and each is
judged three ways: how well its per-position scores find the embedded motifs a task depends on
(auROC/auPRC against the ground truth), the paper's false negatives (strong motif matches in
both-motif sequences whose summed task-0 score is ≤ 0), and Sensitivity-n (Ancona et al. 2018, §4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import data as sim_mod
from ..errors import SeqliftError
from ..outputs import Outputs
from ..references import check_seed, composition
from ..scoring import ReferenceSpec, explainer_for_sequences, score_one_hot
from ..sequences import one_hot_encode

TASK_MOTIFS = {0: ("GATA1", "TAL1"), 1: ("GATA1",), 2: ("TAL1",)}
STRONG_LOG_ODDS = 7.0
TOP_MATCHES = 5
SENSITIVITY_N = (1, 2, 5, 10, 20, 50, 100)
CLASS_COLOURS = {"both": "red", "gata1_only": "blue", "tal1_only": "green", "neither": "black"}


@dataclass(frozen=True)
class Method:
    """One row group of the benchmark: an attribution method with its rule and reference.

    rc_average: average each sequence's scores with its reverse complement's (``--rc-average``).
    """

    label: str
    method: str
    rule: str = "rescale"
    reference: str = "shuffle"
    rc_average: bool = False


METHODS = [
    Method("deeplift-rescale-shuffle", "deeplift", "rescale", "shuffle"),
    Method("deeplift-revealcancel-shuffle", "deeplift", "reveal_cancel", "shuffle"),
    Method("deeplift-genomics-shuffle", "deeplift", "genomics", "shuffle"),
    Method("deeplift-genomics-shuffle-rc-average", "deeplift", "genomics", "shuffle", rc_average=True),
    Method("deeplift-rescale-frequency", "deeplift", "rescale", "frequency"),
    Method("deeplift-revealcancel-frequency", "deeplift", "reveal_cancel", "frequency"),
    Method("deeplift-genomics-frequency", "deeplift", "genomics", "frequency"),
    Method("grad-x-input", "grad-x-input"),
    Method("saliency", "saliency"),
    Method("integrated-gradients", "integrated-gradients", reference="frequency"),
    Method("guided-backprop-x-input", "guided-backprop"),
    Method("ism", "ism"),
]


# ----------------------------------------------------------------------------- metrics
def motif_mask(names, motifs: pd.DataFrame, length: int, which) -> np.ndarray:
    """``(N, L)`` True inside an embedded instance of any motif in ``which``."""
    index = {n: i for i, n in enumerate(names)}
    mask = np.zeros((len(names), length), bool)
    for row in motifs[motifs["motif"].isin(which) & motifs["name"].isin(index)].itertuples():
        mask[index[row.name], row.start:row.end] = True
    return mask


def scan(one_hot: np.ndarray, log_odds: np.ndarray, top: int = TOP_MATCHES) -> list[list[tuple[int, float]]]:
    """Per sequence, the ``top`` best non-overlapping forward-strand matches ``(start, log-odds)``."""
    width = len(log_odds)
    windows = np.lib.stride_tricks.sliding_window_view(one_hot, (width, 4), axis=(1, 2))[:, :, 0]
    scores = np.einsum("nlwc,wc->nl", windows, log_odds)
    matches = []
    for row in scores:
        row = row.copy()
        chosen = []
        for _ in range(top):
            best = int(np.argmax(row))
            if not np.isfinite(row[best]):
                break
            chosen.append((best, float(row[best])))
            row[max(0, best - width + 1): best + width] = -np.inf
        matches.append(chosen)
    return matches


def match_table(names, classes, one_hot, per_position, background) -> pd.DataFrame:
    """Top matches of both motifs in every sequence, with the summed score of each match."""
    rows = []
    for motif in ("GATA1", "TAL1"):
        lo = sim_mod.log_odds(sim_mod.load_motif(motif), background)
        width = len(lo)
        for i, found in enumerate(scan(one_hot, lo)):
            for start, value in found:
                rows.append((names[i], classes[i], motif, start, value, float(per_position[i, start:start + width].sum())))
    return pd.DataFrame(rows, columns=["name", "class", "motif", "start", "log_odds", "score"])


def false_negative_fraction(matches: pd.DataFrame, motif: str) -> float:
    """Strong matches (log-odds ≥ 7) to ``motif`` in both-motif sequences whose task-0 score is ≤ 0."""
    strong = matches[(matches["motif"] == motif) & (matches["class"] == "both") & (matches["log_odds"] >= STRONG_LOG_ODDS)]
    if strong.empty:
        return float("nan")
    return float((strong["score"] <= 0).mean())


def sensitivity_n_masks(n_seqs: int, length: int, ns=SENSITIVITY_N, subsets=20, seed=0) -> dict[int, np.ndarray]:
    """Random position subsets ``(n_seqs, subsets, L)`` per n (the same for every method)."""
    rng = np.random.default_rng(seed)
    masks = {}
    for n in ns:
        if n > length:
            continue
        mask = np.zeros((n_seqs, subsets, length), bool)
        for i in range(n_seqs):
            for s in range(subsets):
                mask[i, s, rng.choice(length, n, replace=False)] = True
        masks[n] = mask
    return masks


def output_drops(explainer, one_hot, masks, baseline, tasks) -> dict[int, np.ndarray]:
    """``t(x) − t(x with the subset set to the baseline)`` per n: ``(n_seqs, subsets, T)``."""
    base = explainer.predict(one_hot)[:, tasks]
    drops = {}
    for n, mask in masks.items():
        n_seqs, subsets, length = mask.shape
        perturbed = np.repeat(one_hot[:, None], subsets, axis=1)
        perturbed[mask] = baseline
        values = explainer.predict(perturbed.reshape(-1, length, 4), batch_size=1024)[:, tasks]
        drops[n] = base[:, None] - values.reshape(n_seqs, subsets, -1)
    return drops


def sensitivity_n(per_position: np.ndarray, masks, drops, task_index: int) -> dict[int, float]:
    """Mean over sequences of the Pearson correlation between summed attributions and output drops."""
    out = {}
    for n, mask in masks.items():
        sums = (mask * per_position[:, None, :]).sum(-1)
        change = drops[n][..., task_index]
        sx = sums - sums.mean(1, keepdims=True)
        sy = change - change.mean(1, keepdims=True)
        denom = np.sqrt((sx**2).sum(1) * (sy**2).sum(1))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (sx * sy).sum(1) / denom
        out[n] = float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")
    return out


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
                                motifs_mod.read_motif_database(motifs_mod.simulation_database()))
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
    sim = sim_mod.read(simdir)
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
    length = one_hot.shape[1]
    classes = [labels.loc[n, "class"] for n in test]
    background = composition(np.stack([one_hot_encode(s) for s in sim.sequences[:2000]]))
    tasks = [0, 1, 2]
    chosen = [m for m in METHODS if methods is None or m.label in methods or m.method in methods]
    if not chosen:
        raise SeqliftError(f"no benchmark method matches {methods}; choose from {', '.join(m.label for m in METHODS)}")

    explainers = {}
    k = min(sensitivity_seqs, len(test))
    masks = sensitivity_n_masks(k, length, seed=seed)
    reference_explainer = explainer_for_sequences(model, "rescale", True)
    drops = output_drops(reference_explainer, one_hot[:k], masks, background, tasks)

    rows, all_matches, curves, recovery = [], {}, {}, []
    for m in chosen:
        progress(m.label)
        if m.rule not in explainers:
            explainers[m.rule] = explainer_for_sequences(model, m.rule, True)
        spec = ReferenceSpec(kind=m.reference, n_refs=n_refs, seed=seed, background=background)
        per_task, seconds = [], []
        if m.method == "ism":
            start = time.perf_counter()
            scores = score_one_hot(explainers[m.rule], one_hot, tasks, m.method, spec, rc_average=m.rc_average)
            seconds = [(time.perf_counter() - start) / len(tasks)] * len(tasks)
            per_task = [scores.contrib[:, t].sum(-1) for t in range(len(tasks))]
            deltas = [scores.delta[:, t] for t in range(len(tasks))]
            hyp_task0 = scores.hypothetical[:, 0]
        else:
            deltas = []
            for t in tasks:
                start = time.perf_counter()
                scores = score_one_hot(explainers[m.rule], one_hot, [t], m.method, spec, rc_average=m.rc_average)
                seconds.append(time.perf_counter() - start)
                per_task.append(scores.contrib[:, 0].sum(-1))
                deltas.append(scores.delta[:, 0])
                if t == 0:
                    hyp_task0 = scores.hypothetical[:, 0]
        if motifs:
            progress(f"{m.label}: TF-MoDISco-lite on task 0")
            recovery.append({"method": m.label, **motif_recovery(one_hot, hyp_task0, seed)})
        matches = match_table(test, classes, one_hot, per_task[0], background)
        all_matches[m.label] = matches
        for t in tasks:
            truth = motif_mask(test, sim.motifs, length, TASK_MOTIFS[t])
            sens = sensitivity_n(per_task[t][:k], masks, drops, t)
            curves[(m.label, t)] = sens
            rows.append({
                "method": m.label, "task": t,
                "auroc": sim_mod.auroc(truth.ravel(), per_task[t].ravel()),
                "auprc": sim_mod.auprc(truth.ravel(), per_task[t].ravel()),
                "fn_gata1": false_negative_fraction(matches, "GATA1") if t == 0 else float("nan"),
                "fn_tal1": false_negative_fraction(matches, "TAL1") if t == 0 else float("nan"),
                **{f"sens_n{n}": v for n, v in sens.items()},
                "max_delta": float(np.nanmax(deltas[t])) if np.isfinite(deltas[t]).any() else float("nan"),
                "s_per_1000": 1000 * seconds[t] / len(test),
            })
    table = pd.DataFrame(rows)
    recovered = pd.DataFrame(recovery) if recovery else None
    with outputs:
        _write_outputs(outputs.folder(outdir, force), table, all_matches, curves, len(test), simdir, model, recovered)
    return table


def _write_outputs(outdir, table, all_matches, curves, n_test, simdir, model, recovered=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table.to_csv(outdir / "benchmark.tsv", sep="\t", index=False, float_format="%.4g")
    labels = list(all_matches)
    for motif in ("GATA1", "TAL1"):
        cols = min(4, len(labels))
        rows_n = -(-len(labels) // cols)
        fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 2.8 * rows_n), squeeze=False)
        for ax, label in zip(axes.ravel(), labels):
            m = all_matches[label]
            m = m[m["motif"] == motif]
            for cls, colour in CLASS_COLOURS.items():
                part = m[m["class"] == cls]
                ax.scatter(part["log_odds"], part["score"], s=3, c=colour, alpha=0.5, label=cls)
            ax.axhline(0, color="grey", linewidth=0.5)
            ax.axvline(STRONG_LOG_ODDS, color="grey", linewidth=0.5, linestyle=":")
            ax.set_title(label, fontsize=8)
            ax.set_xlabel(f"{motif} match log-odds", fontsize=7)
            ax.set_ylabel("summed task-0 score", fontsize=7)
            ax.tick_params(labelsize=6)
        for ax in axes.ravel()[len(labels):]:
            ax.axis("off")
        axes[0, 0].legend(fontsize=6, markerscale=3)
        fig.tight_layout()
        fig.savefig(outdir / f"scatter_{motif}.png", dpi=120)
        plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for t, ax in enumerate(axes):
        for label in labels:
            curve = curves[(label, t)]
            ax.plot(list(curve), list(curve.values()), marker="o", markersize=3, label=label)
        ax.set_xscale("log")
        ax.set_title(f"Sensitivity-n, task {t}", fontsize=9)
        ax.set_xlabel("n (positions set to the background)", fontsize=8)
        ax.set_ylabel("Pearson correlation", fontsize=8)
    axes[-1].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    fig.savefig(outdir / "sensitivity_n.png", dpi=120)
    plt.close(fig)
    lines = [
        "# TAL1/GATA1 attribution benchmark", "",
        f"Simulation `{simdir}`, model `{model}`, {n_test} test sequences. Tasks: 0 = both motifs, 1 = GATA1, "
        "2 = TAL1. Written by `seqlift benchmark`.", "",
        "- **auroc / auprc**: per-position scores (summed over bases) against the positions of the embedded "
        "motifs each task depends on.",
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
    if recovered is not None:
        recovered.to_csv(outdir / "motif_recovery.tsv", sep="\t", index=False)
        lines += ["## Motif recovery (TF-MoDISco-lite on task-0 hypothetical scores, TOMTOM q < 0.05)", "",
                  "Seqlets counted in positive patterns whose best TOMTOM match is the motif.", "",
                  _markdown(recovered), ""]
    (outdir / "benchmark.md").write_text("\n".join(lines))


def _markdown(table: pd.DataFrame) -> str:
    def cell(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.3g}"
        return str(v)

    head = "| " + " | ".join(table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])
