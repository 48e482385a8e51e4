"""``seqlift simulate``: a simulation folder made in one step (and its trained model), and the files that
seqlift recognises as such a folder's own, so ``--force`` replaces nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import SeqliftError
from ..sequences import write_fasta
from .data import DATABASE_NAME, NAME_PREFIX, PAPER_BACKGROUND, TASKS, Simulation, motif_database, simulate, write


def _fasta(line: str) -> bool:
    return line.startswith(f">{NAME_PREFIX}") and line[1 + len(NAME_PREFIX):].strip().isdigit()


def _header(*columns):
    return lambda line: line.rstrip("\n").split("\t") == list(columns)


_LABELS = _header("name", "class", "split", *TASKS)
_MOTIFS = _header("name", "motif", "start", "end", "strand", "log_odds")
# The first line of each file ``simulate_into`` writes: how a rerun with --force knows the file is its own.
_HEADS = {"sequences.fa": _fasta, "test.fa": _fasta, "labels.tsv": _LABELS, "test_labels.tsv": _LABELS,
          "motifs.tsv": _MOTIFS, "test_motifs.tsv": _MOTIFS, "metrics.tsv": _header("task", "auroc", "auprc", "n_test")}


def is_simulation_file(path) -> bool:
    """Whether ``path`` (one of the names ``seqlift simulate`` writes) is a file it wrote."""
    path = Path(path)
    if path.name == "model.h5":
        return _is_simulation_model(path)
    if path.name == DATABASE_NAME:
        return _is_shipped_database(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return _HEADS[path.name](handle.readline())
    except (OSError, UnicodeDecodeError, KeyError):
        return False


def _is_simulation_model(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return '"name": "tal1_gata1"' in str(handle.attrs.get("model_config", ""))
    except OSError:
        return False


def _is_shipped_database(path: Path) -> bool:
    """A MEME file is too common a format to know by its first line: only an exact copy of the shipped one."""
    shipped = motif_database()
    try:
        return path.stat().st_size == shipped.stat().st_size and path.read_bytes() == shipped.read_bytes()
    except OSError:
        return False


def _refuse_foreign_files(outdir: Path, names):
    for name in names:
        path = outdir / name
        if path.exists() and not is_simulation_file(path):
            raise SeqliftError(f"--out {outdir}: {path} exists and was not written by seqlift simulate; move it, or "
                               "choose another folder (--force replaces only seqlift's own files)")


def simulate_into(outdir, n_seqs=8000, length=200, seed=0, background=PAPER_BACKGROUND, train_model=False,
                  force=False, progress=None):
    """``seqlift simulate``: the data set and its motif database (``DATABASE_NAME``, for ``seqlift motifs
    --motif-db``), and with ``train_model`` the trained model, its metrics and the test split, into ``outdir``,
    all at once: a failure or interruption leaves ``outdir`` as it was.

    progress: ``progress(epoch, epochs)`` after each training epoch. ``force``: write into an existing folder,
    replacing only files this command wrote there before (``is_simulation_file``); any other is refused.
    Returns the ``Simulation`` and the metrics table (None without training).
    """
    from ..outputs import Outputs
    from ..references import check_seed

    check_seed(seed)
    outputs = Outputs()
    outputs.check_folder(outdir, force)
    written = ["sequences.fa", "labels.tsv", "motifs.tsv", DATABASE_NAME]
    if train_model:
        written += ["model.h5", "metrics.tsv", "test.fa", "test_labels.tsv", "test_motifs.tsv"]
    _refuse_foreign_files(Path(outdir), written)
    sim = simulate(n_seqs=n_seqs, length=length, seed=seed, background=background)
    metrics = None
    with outputs:
        tmp = outputs.folder(outdir, force)
        write(sim, tmp)
        shutil.copyfile(motif_database(), tmp / DATABASE_NAME)
        if train_model:
            import logging

            from .model import train

            model, metrics = train(sim, seed=seed, progress=progress)
            logging.getLogger("absl").setLevel(logging.ERROR)  # the legacy-format notice: .h5 is asked for
            outputs.ensure_room(tmp, 8 * model.count_params())  # weights (and optimizer slots): HDF5 crashes on a
            model.save(tmp / "model.h5")  # failed write
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


