"""The TAL1/GATA1 simulation (seqlift.simulation): statistics, ground truth, metrics, what general modules import."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from seqlift.cli.main import cli
from seqlift import simulation as sim_mod
from seqlift.simulation import metrics


@pytest.fixture(scope="module")
def sim():
    return sim_mod.simulate(n_seqs=2000, length=200, seed=1)


def test_class_balance_and_splits(sim):
    counts = sim.labels["class"].value_counts()
    assert set(counts) == {500}
    splits = sim.labels["split"].value_counts()
    assert (splits["train"], splits["valid"], splits["test"]) == (1600, 200, 200)
    both = sim.labels["class"] == "both"
    assert (sim.labels["task0_both"] == both).all()
    assert (sim.labels["task1_gata1"] == sim.labels["class"].isin(["both", "gata1_only"])).all()
    assert (sim.labels["task2_tal1"] == sim.labels["class"].isin(["both", "tal1_only"])).all()


def test_motif_counts_follow_the_truncated_poisson(sim):
    per = sim.motifs.groupby(["name", "motif"]).size().unstack(fill_value=0)
    classes = sim.labels.set_index("name")["class"]
    per = per.reindex(classes.index, fill_value=0)
    assert per.to_numpy().max() <= 3
    for cls, motif, mean in [("gata1_only", "GATA1", 2), ("tal1_only", "TAL1", 2), ("both", "GATA1", 1), ("both", "TAL1", 1)]:
        counts = per.loc[classes == cls, motif]
        assert counts.min() >= 1
        # Poisson(mean) conditioned on [1, 3]
        from math import exp, factorial

        p = np.array([exp(-mean) * mean**k / factorial(k) for k in (1, 2, 3)])
        expected = (p / p.sum()) @ np.array([1, 2, 3])
        assert counts.mean() == pytest.approx(expected, abs=0.1)
    assert (per.loc[classes == "neither"].to_numpy() == 0).all()
    assert (per.loc[classes == "gata1_only", "TAL1"] == 0).all()


def test_instances_never_overlap_and_match_the_sequence(sim):
    seqs = dict(zip(sim.names, sim.sequences))
    pwms = {m: sim_mod.load_motif(m) for m in sim_mod.MOTIF_FILES}
    scores = {m: sim_mod.log_odds(p, sim_mod.PAPER_BACKGROUND) for m, p in pwms.items()}
    for name, group in sim.motifs.groupby("name"):
        spans = sorted(zip(group.start, group.end))
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    for row in sim.motifs.head(300).itertuples():
        instance = seqs[row.name][row.start:row.end]
        codes = ["ACGT".index(c) for c in instance]
        assert row.end - row.start == len(pwms[row.motif]) and row.strand == "+"
        assert row.log_odds == pytest.approx(scores[row.motif][np.arange(len(codes)), codes].sum(), abs=1e-6)


def test_background_composition_outside_motifs(sim):
    mask = {n: np.ones(200, bool) for n in sim.names}
    for row in sim.motifs.itertuples():
        mask[row.name][row.start:row.end] = False
    letters = "".join("".join(c for c, keep in zip(s, mask[n]) if keep) for n, s in zip(sim.names, sim.sequences))
    freq = np.array([letters.count(c) for c in "ACGT"]) / len(letters)
    np.testing.assert_allclose(freq, [0.3, 0.2, 0.2, 0.3], atol=0.005)


def test_best_possible_log_odds_match_the_paper():
    for motif, best in [("GATA1", 11.00), ("TAL1", 15.29)]:
        lo = sim_mod.log_odds(sim_mod.load_motif(motif), sim_mod.PAPER_BACKGROUND)
        assert lo.max(1).sum() == pytest.approx(best, abs=0.01)


def test_same_seed_same_files(tmp_path):
    runner = CliRunner()
    for d in ["a", "b"]:
        assert runner.invoke(cli, ["simulate", str(tmp_path / d), "--n-seqs", "40", "--seed", "3", "--quiet"]).exit_code == 0
    for f in ["sequences.fa", "labels.tsv", "motifs.tsv", "simulation_motifs.meme"]:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    again = sim_mod.read(tmp_path / "a")
    assert len(again.names) == 40


def test_auroc_and_auprc_on_hand_made_cases():
    labels = np.array([0, 0, 1, 1])
    assert metrics.auroc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.auroc(labels, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert metrics.auroc(labels, [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert metrics.auroc([0, 1, 0, 1], [0.1, 0.4, 0.5, 0.8]) == 0.75  # 3 of 4 pairs ordered
    assert metrics.auprc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
    # ranks: 1(+), 0(-), 1(+) → precision at positives 1 and 2/3 → mean 5/6
    assert metrics.auprc([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx(5 / 6)


def test_shipped_model_and_test_split_are_consistent():
    import pandas as pd

    d = sim_mod.data_dir()
    labels = pd.read_csv(d / "test_labels.tsv", sep="\t")
    assert (labels["split"] == "test").all() and len(labels) == 800
    metrics = pd.read_csv(d / "metrics.tsv", sep="\t")
    assert (metrics["auroc"] > 0.98).all()
    assert (d / "model.h5").exists() and (d / "test.fa").exists()


def test_metrics_equal_their_rank_definitions():
    """sklearn's auROC is the Mann-Whitney U with mid-ranks; its average precision the mean precision at
    each positive's rank (no ties here, where the two tie rules would differ)."""
    rng = np.random.default_rng(3)
    for n, share in [(50, 0.5), (2000, 0.05)]:
        labels = rng.random(n) < share
        scores = rng.normal(size=n) + labels
        ranks = np.argsort(np.argsort(scores)) + 1
        u = (ranks[labels].sum() - labels.sum() * (labels.sum() + 1) / 2) / (labels.sum() * (~labels).sum())
        assert metrics.auroc(labels, scores) == pytest.approx(u, abs=1e-12)
        hits = labels[np.argsort(-scores)]
        precision_at_hits = (np.cumsum(hits) / np.arange(1, n + 1))[hits]
        assert metrics.auprc(labels, scores) == pytest.approx(precision_at_hits.mean(), abs=1e-12)
    assert np.isnan(metrics.auroc([1, 1], [0.1, 0.2])) and np.isnan(metrics.auprc([0, 0], [0.1, 0.2]))


def test_general_modules_never_import_the_simulation():
    """Only the CLI and seqlift.simulation itself know the simulation: the rest of seqlift imports none of it."""
    import ast
    from pathlib import Path

    import seqlift

    package = Path(seqlift.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any("simulation" in n for n in names), f"{path.name}:{node.lineno} imports the simulation"


def test_simulate_writes_its_motif_database_into_its_folder(tmp_path):
    from memelite.io import read_meme

    assert set(read_meme(str(sim_mod.motif_database()))) == {"GATA1_disc1", "TAL1_known1"}
    sim_mod.simulate_into(tmp_path / "sim", n_seqs=8)
    copy = tmp_path / "sim" / "simulation_motifs.meme"
    assert copy.read_bytes() == sim_mod.motif_database().read_bytes()
    assert sim_mod.is_simulation_file(copy)


@pytest.mark.slow  # 5-8 s: the default tier stays under five minutes
def test_general_commands_never_import_the_simulation(tmp_path, write_scores):
    """`seqlift logo --motifs` and `seqlift motifs` (TF-MoDISco-lite stubbed out: it found nothing) run to the end
    without importing seqlift.simulation: no simulation colour or database reaches a user's files."""
    contrib = np.random.default_rng(0).normal(size=(4, 40, 4)).astype(np.float32)
    scores = write_scores(tmp_path / "s.h5", [f"sim{i:05d}" for i in range(4)], contrib)
    (tmp_path / "table.tsv").write_text("name\tmotif\tstart\tend\nsim00000\tGATA1\t2\t8\n")
    script = """
import sys
import modiscolite
from click.testing import CliRunner
from seqlift.cli.main import cli
modiscolite.tfmodisco.TFMoDISco = lambda **kwargs: ([], [])
w = sys.argv[1]
for args in (["logo", w + "/s.h5", "--out", w + "/l.png", "--full", "--motifs", w + "/table.tsv"],
             ["motifs", w + "/s.h5", "--out", w + "/m", "--quiet"]):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
print("seqlift.simulation" in sys.modules)
"""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == ["False"], proc.stdout + proc.stderr
    assert (tmp_path / "l.png").exists() and (tmp_path / "m" / "motifs.tsv").exists()


def test_every_benchmark_method_gets_its_own_colour_and_marker():
    from seqlift.simulation import evaluation

    labels = [m.label for m in evaluation.METHODS]
    results = [evaluation.Judgement(label, [], None, {t: {1: 0.1 * i, 10: 0.05 * i} for t in evaluation.TASK_INDICES})
               for i, label in enumerate(labels)]
    fig = evaluation.sensitivity_figure(results)
    for ax in fig.axes:
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == labels
        assert len({line.get_color() for line in lines}) == len(labels) >= 12
        assert len({line.get_marker() for line in lines}) == len(labels)
