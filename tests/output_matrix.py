"""Every command's outputs on fixed inputs, kept to prove a refactor changed nothing (not collected by pytest).

    python tests/output_matrix.py run DIR [FROM] # run the matrix with this checkout's code; outputs under DIR
                                                 # (FROM: take the inputs an earlier run made, byte for byte)
    python tests/output_matrix.py compare A B    # every dataset, attribute and table of A equals B's

``run`` builds its inputs itself (the shipped simulation model and 48 of its sequences, a genome made of
them, a BED, a TSV of variants, a two-head Keras model and a small PyTorch module) and runs: ``score`` on
FASTA and BED, one head and two, ``--rc-average``, a torch model; ``variants --null``; shards + ``merge`` of
score and variant files; ``--resume`` after SIGKILL (score and variants); ``--ray local`` (when Ray is
installed); ``logo``, ``bigwig``, ``export`` and ``view --out``.

``compare`` reads HDF5 files as their datasets (dtype, shape, values, NaN equal to NaN) and every
attribute, and every other file as bytes; paths are compared with the run's folder and checkout named
generically (``placed``), since each run records where its inputs were.
"""

import os
import shutil
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIM = REPO / "data" / "simulations"
N_SEQUENCES = 48
FAST = ["--n-refs", "3", "--chunk-size", "8", "--quiet"]
TORCH_MODULE = '''
import torch


class Net(torch.nn.Module):
    """A conv - relu - pool - linear module over (N, 4, 200), its weights from seed 5."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.conv = torch.nn.Conv1d(4, 8, 9, padding=4)
        self.pool = torch.nn.MaxPool1d(4)
        self.dense = torch.nn.Linear(8 * 50, 2)

    def forward(self, x):
        return self.dense(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


def make():
    return Net()
'''


def seqlift(*args, check=True, popen=False):
    command = [sys.executable, "-c", "from seqlift.cli.main import main; main()", *map(str, args)]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    if popen:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"seqlift {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result


def make_inputs(d: Path) -> dict:
    """Inputs from the shipped example: 48 sequences, a genome of them with 50 bp between, a BED, variants."""
    records = SIM.joinpath("test.fa").read_text().split(">")[1:N_SEQUENCES + 1]
    seqs = [r.split("\n", 1)[1].replace("\n", "") for r in records]
    (d / "in.fa").write_text("".join(">" + r if r.endswith("\n") else ">" + r + "\n" for r in records))
    rng = np.random.default_rng(0)
    spacer = ["".join(rng.choice(list("ACGT"), 50)) for _ in seqs]
    chrom = "".join(s + g for s, g in zip(seqs, spacer))
    (d / "genome.fa").write_text(">chr1\n" + "\n".join(chrom[i:i + 60] for i in range(0, len(chrom), 60)) + "\n")
    (d / "sizes.txt").write_text(f"chr1\t{len(chrom)}\n")
    starts = [i * 250 for i in range(len(seqs))]
    (d / "peaks.bed").write_text("".join(f"chr1\t{s}\t{s + 200}\tp{i}\t0\t{'+-'[i % 2]}\n"
                                         for i, s in enumerate(starts[:20])))
    lines = ["chrom\tpos\tref\talt\tid"]
    for i, s in enumerate(starts[2:26]):
        pos = s + 100  # 1-based: the window's middle base
        ref = chrom[pos - 1]
        lines.append(f"chr1\t{pos}\t{ref}\t{'ACGT'[('ACGT'.index(ref) + 1 + i % 3) % 4]}\tv{i}")
    (d / "variants.tsv").write_text("\n".join(lines) + "\n")
    (d / "net.py").write_text(TORCH_MODULE)
    import keras  # noqa: PLC0415 - only ``run`` needs Keras
    from keras import layers  # noqa: PLC0415

    inp = keras.Input((200, 4))
    h = layers.Conv1D(6, 9, padding="same", activation="relu")(inp)
    model = keras.Model(inp, [layers.Conv1D(2, 5, padding="same", name="profile")(h),
                              layers.Dense(1, name="counts")(layers.GlobalAveragePooling1D()(h))])
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.3)
    model.save(d / "two.keras")
    return {"model": SIM / "model.h5", "fa": d / "in.fa", "genome": d / "genome.fa", "bed": d / "peaks.bed",
            "variants": d / "variants.tsv", "two": d / "two.keras", "net": f"{d / 'net.py'}:make"}


def killed_then_resumed(args: list, out: Path, after: int):
    """Start ``args``, SIGKILL it once its in-progress file holds ``after`` completed rows (or it ends), then run it
    again with ``--resume``."""
    from helpers import completed_rows  # tests/ is this script's folder

    proc = seqlift(*args, popen=True)
    partial, deadline = Path(str(out) + ".partial"), time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if partial.exists() and completed_rows(partial) >= after:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    print(f"  {out.name}: {'killed' if proc.returncode == -signal.SIGKILL else 'ended before the kill'}", flush=True)
    seqlift(*args, "--resume")


INPUTS = ("in.fa", "genome.fa", "sizes.txt", "peaks.bed", "variants.tsv", "net.py", "two.keras")


def run(d: Path, inputs_from: Path | None = None):
    d.mkdir(parents=True, exist_ok=True)
    i = make_inputs(d)
    if inputs_from is not None:  # a .keras file records when it was saved: the same model, other bytes
        for name in INPUTS:
            shutil.copyfile(inputs_from / name, d / name)
    runs = {
        "fasta": ["score", i["model"], i["fa"], "--task", "all", "--out", d / "fasta.h5", "--modisco", d / "mod", *FAST],
        "bed": ["score", i["model"], i["bed"], "--genome", i["genome"], "--out", d / "bed.h5", *FAST],
        "rc": ["score", i["model"], i["fa"], "--rc-average", "--rule", "genomics", "--out", d / "rc.h5", *FAST],
        "one_head": ["score", i["two"], i["fa"], "--output", "counts", "--target", "sum", "--out", d / "counts.h5",
                     *FAST],
        "two_heads": ["score", i["two"], i["fa"], "--output", "profile", "--target", "profile", "--output", "counts",
                      "--target", "sum", "--out", d / "heads.h5", *FAST],
        "torch": ["score", i["net"], i["fa"], "--task", "1", "--out", d / "torch.h5", *FAST],
        "variants": ["variants", i["model"], i["variants"], "--genome", i["genome"], "--null", "3",
                     "--out", d / "var.h5", *FAST],
    }
    for name, args in runs.items():
        print(name, flush=True)
        seqlift(*args)
    print("shards + merge", flush=True)
    for kind, args in (("score", runs["fasta"][:5] + FAST), ("variants", runs["variants"][:7] + FAST)):
        parts = [d / f"{kind}_shard{k}.h5" for k in (1, 2, 3)]
        for k, part in enumerate(parts, 1):
            seqlift(*args, "--out", part, "--shard", f"{k}/3")
        seqlift("merge", d / f"{kind}_merged.h5", *reversed(parts))
    print("resume after SIGKILL", flush=True)
    killed_then_resumed(["score", i["model"], i["fa"], "--task", "all", "--out", d / "resumed.h5", "--n-refs", "20",
                         "--chunk-size", "4", "--quiet"], d / "resumed.h5", after=12)
    killed_then_resumed(["variants", i["model"], i["variants"], "--genome", i["genome"], "--null", "10",
                         "--chunk-size", "2", "--n-refs", "3", "--out", d / "var_resumed.h5", "--quiet"],
                        d / "var_resumed.h5", after=4)
    try:
        import ray  # noqa: F401, PLC0415

        print("ray", flush=True)
        seqlift("score", i["model"], i["fa"], "--task", "all", "--out", d / "ray.h5", "--ray", "local",
                "--workers", "2", *FAST)
    except ImportError:
        print("ray: not installed, skipped", flush=True)
    print("logo, bigwig, export, view", flush=True)
    seqlift("logo", d / "fasta.h5", "--out", d / "logo.png", "--top", "2")
    seqlift("logo", d / "var.h5", "--variant", "v3", "--out", d / "var_logo.png")
    seqlift("bigwig", d / "bed.h5", "--chrom-sizes", d / "sizes.txt", "--out", d / "track.bw")
    seqlift("export", d / "fasta.h5", "--out", d / "export.h5")
    seqlift("view", d / "fasta.h5", "--out", d / "view.html", "--top", "10")
    seqlift("view", d / "var.h5", "--out", d / "var_view.html", "--top", "10")


def h5_contents(path: Path) -> dict:
    items = {}
    with h5py.File(path, "r") as h5:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                items[name] = (obj.dtype.str, obj.shape, obj[()])
            items.update({f"{name}@{k}": v for k, v in obj.attrs.items()})
        items.update({f"@{k}": v for k, v in h5.attrs.items()})
        h5.visititems(visit)
    return items


def placed(value, folder: Path):
    """A text value with the run's folder and the checkout it ran from (paths recorded in attributes) named
    generically: two runs in other folders or checkouts record the same."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return re.sub(r"\S*/data/simulations/", "<REPO>/data/simulations/", value.replace(str(folder), "<DIR>"))
    return value


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    return a.shape == b.shape and np.array_equal(a, b)


def page_data(path: Path) -> str:
    """The page without the absolute paths of the run's folder (they name the folder the matrix ran in)."""
    return path.read_text().replace(str(path.parent), "<DIR>")


def compare(a: Path, b: Path) -> int:
    names_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    names_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    problems = [f"only in {a}: {n}" for n in sorted(set(names_a) - set(names_b))]
    problems += [f"only in {b}: {n}" for n in sorted(set(names_b) - set(names_a))]
    checked = 0
    for name in sorted(set(names_a) & set(names_b)):
        pa, pb = a / name, b / name
        if name.suffix == ".keras" or name.name in ("net.py",):
            continue  # inputs
        checked += 1
        if name.suffix == ".h5":
            ca, cb = h5_contents(pa), h5_contents(pb)
            if ca.keys() != cb.keys():
                problems.append(f"{name}: keys differ: {sorted(set(ca) ^ set(cb))}")
            for key in sorted(set(ca) & set(cb)):
                va, vb = ca[key], cb[key]
                if isinstance(va, tuple):
                    if va[:2] != vb[:2] or not same(va[2], vb[2]):
                        problems.append(f"{name}:{key}: values differ")
                elif not same(placed(va, a), placed(vb, b)):
                    problems.append(f"{name}:{key}: {va!r} != {vb!r}")
        elif name.suffix == ".html":
            if page_data(pa).replace(str(a), "<DIR>") != page_data(pb).replace(str(b), "<DIR>"):
                problems.append(f"{name}: page differs")
        elif pa.read_bytes().replace(str(a).encode(), b"<DIR>") != pb.read_bytes().replace(str(b).encode(), b"<DIR>"):
            problems.append(f"{name}: bytes differ")
    for line in problems:
        print(line)
    print(f"{checked} files compared, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "run":
        run(Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve() if len(sys.argv) == 4 else None)
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve()))
    else:
        raise SystemExit(__doc__)
