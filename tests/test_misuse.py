"""Mistakes a tired user makes, and faults: one line on stderr, non-zero exit, no temporaries, inputs untouched.

Every CLI misuse case of issue 10 lives here (in-process through click's runner where possible,
in a subprocess for signals, file-size limits and full disks). Readers fed random bytes are at the end.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqlift.cli.main import cli
from seqlift import SeqliftError
from seqlift.outputs import Outputs

REPO = Path(__file__).resolve().parents[1]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def digest(folder: Path) -> dict:
    """Every file under ``folder`` (hidden ones too) with its sha256: what must not change. A FASTA's
    ``.fai`` index is left out: indexing a valid FASTA beside it is expected, as samtools does."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".fai"}


def assert_refused(result, message, folder=None, before=None):
    assert result.exit_code != 0, result.output
    assert message in result.stderr, (message, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output
    if folder is not None:
        assert digest(folder) == before, "a file changed, appeared or vanished"


@pytest.fixture
def work(files, tmp_path):
    """A private copy of the shared model and inputs, plus a score file made from them."""
    for name in ("model.h5", "in.fa", "genome.fa", "regions.bed"):
        shutil.copy(files / name, tmp_path / name)
    shared = files / "scores.h5"
    if not shared.exists():
        result = invoke("score", files / "model.h5", files / "regions.bed", "--genome", files / "genome.fa", "--out",
                        shared, "--n-refs", 2, "--quiet")
        assert result.exit_code == 0, result.output
    shutil.copy(shared, tmp_path / "scores.h5")
    (tmp_path / "sizes.txt").write_text("chr1\t200\nchr2\t100\n")
    return tmp_path


# ---------------------------------------------------------------------------------------------- data loss
def output_onto_input_cases(w):
    (w / "link.fa").symlink_to(w / "in.fa")
    os.link(w / "model.h5", w / "hard.h5")
    (w / "refs.fa").write_bytes((w / "in.fa").read_bytes())
    m, fa = w / "model.h5", w / "in.fa"
    return [
        (["score", m, fa, "--out", fa], "is one of this run's inputs"),
        (["score", m, fa, "--out", m], "is one of this run's inputs"),
        (["score", m, fa, "--out", w / "link.fa"], "is one of this run's inputs (" + str(fa)),
        (["score", m, fa, "--out", w / "hard.h5"], "is one of this run's inputs"),
        (["score", m, w / "regions.bed", "--genome", w / "genome.fa", "--out", w / "genome.fa"], "inputs"),
        (["score", m, fa, "--reference", w / "refs.fa", "--out", w / "refs.fa"], "is one of this run's inputs"),
        (["score", m, fa, "--out", w / "x_ohe.npz", "--modisco", w / "x"], "is also --out's file"),
        (["score", m, fa, "--out", w / "in.tsv.h5", "--logo", w / "in.png", "--bigwig", w / "sizes.txt",
          "--chrom-sizes", w / "sizes.txt"], "is one of this run's inputs"),
        (["score", m, fa, "--out", w / "s.h5", "--logo", w / "s.tsv"], "must end in .png"),
        (["score", m, fa, "--out", w / "a.h5", "--modisco", w / "a"], None),  # a control that works
        (["score", m, fa, "--out", w / "a.h5", "--modisco", w / "a"], None),  # a rerun replaces seqlift's own files
        (["bigwig", w / "scores.h5", "--out", w / "scores.h5", "--chrom-sizes", w / "sizes.txt"], "inputs"),
        (["bigwig", w / "scores.h5", "--out", w / "sizes.txt", "--chrom-sizes", w / "sizes.txt"], "inputs"),
        (["logo", w / "scores.h5", "--out", w / "in.fa.png", "--motifs", w / "in.fa.png"], "inputs"),
        (["motifs", w / "scores.h5", "--out", w], "holds this run's input"),
        (["motifs", w / "scores.h5", "--out", w / ".."], "; give a new folder name"),
        (["motifs", w / "scores.h5", "--out", "."], "is the working folder or one above it"),
        (["motifs", w / "scores.h5", "--out", ".."], "is the working folder or one above it"),
        (["motifs", w / "scores.h5", "--out", w / "scores.h5"], "is a file"),
    ]


def run_cases(work, cases):
    """Each ``(args, message)``: refused with ``message`` and nothing in ``work`` changed, or (None) a control
    that must succeed."""
    for args, message in cases:
        before = digest(work)
        result = invoke(*args)
        if message is None:
            assert result.exit_code == 0, result.output
            continue
        assert_refused(result, message, work, before)


def test_no_output_overwrites_an_input_or_deletes_a_folder(work, monkeypatch, tmp_path_factory):
    (work / "in.fa.png").write_bytes(b"not a motifs file")
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    run_cases(work, output_onto_input_cases(work))


def test_a_users_file_at_any_destination_is_refused_and_seqlifts_own_is_replaced(work):
    """Every file output (score, merge, logo, bigwig, and score's --logo/--bigwig) refuses a file seqlift did not
    write; a rerun replaces seqlift's own file (a logo carries a mark; a bigWig cannot, so it needs --force)."""
    m, fa, sizes, bed = work / "model.h5", work / "in.fa", work / "sizes.txt", work / "regions.bed"
    genome = ("--genome", work / "genome.fa")
    shards = [work / f"part{k}.h5" for k in (1, 2)]
    for k, shard in enumerate(shards, start=1):
        result = invoke("score", m, fa, "--out", shard, "--n-refs", 2, "--chunk-size", 5, "--shard", f"{k}/2", "--quiet")
        assert result.exit_code == 0, result.output
    for name in ("notes.txt", "mine.png", "track.bw", "notes.tsv"):
        (work / name).write_text("the user's own file\n")
    before = digest(work)
    cases = [
        (["merge", work / "notes.txt", *shards], "--out"),
        (["merge", work / "notes.h5", *shards], "notes.tsv"),  # the merged summary's place holds a user's file
        (["logo", work / "scores.h5", "--out", work / "mine.png"], "mine.png: exists and was not written by seqlift"),
        (["bigwig", work / "scores.h5", "--out", work / "track.bw", "--chrom-sizes", sizes], "add --force"),
        (["score", m, fa, "--out", work / "s.h5", "--logo", work / "mine.png", "--n-refs", 2], "--logo"),
        (["score", m, bed, *genome, "--out", work / "s.h5", "--bigwig", work / "track.bw", "--n-refs", 2], "--bigwig"),
    ]
    for args, message in cases:
        assert_refused(invoke(*args), message, work, before)
    for _ in range(2):  # seqlift's own files are replaced by a rerun
        assert invoke("logo", work / "scores.h5", "--out", work / "own.svg").exit_code == 0
        assert invoke("merge", work / "merged.h5", *shards).exit_code == 0
    result = invoke("bigwig", work / "scores.h5", "--out", work / "track.bw", "--chrom-sizes", sizes, "--force")
    assert result.exit_code == 0, result.output


def test_motifs_into_a_non_empty_folder_needs_force_and_keeps_the_users_files(work):
    folder = work / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    before = digest(work)
    assert_refused(invoke("motifs", work / "scores.h5", "--out", folder), "add --force", work, before)


def test_a_forced_folder_output_replaces_only_its_own_files(tmp_path):
    folder = tmp_path / "out"
    (folder / "logos").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    (folder / "motifs.tsv").write_text("old")
    with Outputs([tmp_path / "scores.h5"]) as outputs:
        tmp = outputs.folder(folder, force=True)
        (tmp / "motifs.tsv").write_text("new")
        (tmp / "logos").mkdir()
        (tmp / "logos" / "p0.png").write_text("png")
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "motifs.tsv").read_text() == "new" and (folder / "logos" / "p0.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_failed_folder_output_leaves_the_folder_as_it_was(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "motifs.tsv").write_text("old")
    with pytest.raises(RuntimeError):
        with Outputs() as outputs:
            tmp = outputs.folder(folder, force=True)
            (tmp / "motifs.tsv").write_text("new")
            raise RuntimeError("modisco failed")
    assert (folder / "motifs.tsv").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out"]


# ---------------------------------------------------------------------------------------------- options
def bad_option_cases(w):
    m, fa = w / "model.h5", w / "in.fa"
    return [
        (["score", m, fa, "--seed", "-1"], "--seed: seed -1 is out of range"),
        (["score", m, fa, "--seed", "99999999999999999999999"], "out of range: give an integer from 0 to 4294967295"),
        (["score", m, fa, "--n-refs", "10000000"], "even at one sequence per step, but"),
        (["score", m, fa, "--reference", "frequency", "--background", "nan,0.25,0.25,0.25"], "not a finite number"),
        (["score", m, fa, "--reference", "frequency", "--background", "inf,0,0,0"], "not a finite number"),
        (["score", m, fa, "--reference", "frequency", "--background", "-0.5,0.5,0.5,0.5"], "negative"),
        (["score", m, fa, "--background", "0.25,0.25,0.25,0.25"], "--background applies to --reference frequency"),
        (["score", m, fa, "--reference", "zeros", "--n-refs", "3"], "--n-refs applies to --reference shuffle only"),
        (["score", m, fa, "--reference", "zeros", "--seed", "3"], "--seed applies to --reference shuffle only"),
        (["score", m, fa, "--refs-per-input", "2"], "--refs-per-input applies to --reference PATH.fa only"),
        (["score", m, fa, "--method", "ism", "--rule", "genomics"], "--rule applies to --method deeplift only"),
        (["score", m, fa, "--method", "saliency", "--reference", "zeros"], "uses no reference"),
        (["score", m, fa, "--method", "grad-x-input", "--n-refs", "4"], "uses no reference"),
        (["score", m, fa, "--method", "saliency", "--delta-warn", "0.1"], "--delta-warn applies to"),
        (["score", m, fa, "--logo", w / "x.jpg"], "--logo"),
        (["score", m, fa, "--bigwig", w / "x.bw"], "--bigwig needs chromosome sizes"),
        (["score", m, fa, "--chrom-sizes", w / "sizes.txt"], "--chrom-sizes applies to --bigwig only"),
        (["score", m, fa, "--bigwig", w / "t.bw", "--chrom-sizes", w / "sizes.txt"], "record 's0': name is not genome"),
        (["score", m, w / "regions.bed", "--genome", w / "genome.fa", "--bigwig", w / "t.bw", "--chrom-sizes",
          w / "in.fa"], "in.fa:1: expected 'chrom<TAB>size'"),
        (["score", m, fa, "--skip-invalid"], "--skip-invalid applies to BED input only"),
        (["score", m, fa, "--out", w / "missing" / "x.h5"], "does not exist; create it first"),
        (["score", m, fa, "--modisco", w / "missing" / "m"], "does not exist; create it first"),
        (["score", m, fa, "--out", w], "is a directory"),
        (["score", m, fa, "--out", ""], "--out: the path is empty"),
        (["score", m, fa, "--out", w / "mine.h5"], "--out " + str(w / "mine.tsv") + ": exists and was not written"),
        (["score", m, fa, "--out", w / "sizes.h5"], "exists and was not written by seqlift"),
        (["score", m, fa, "--out", w / "n.h5", "--modisco", w / "mine"], "exists and was not written by seqlift"),
        (["score", m, fa, "--target", "profile"], "target 'profile' needs a profile head's logits"),
        (["score", m, fa, "--method", "magic"], "Invalid value for '--method'"),
        (["score", m, fa, "--n-refs", "0"], "Invalid value for '--n-refs'"),
        (["logo", w / "scores.h5", "--out", w / "missing" / "l.png"], "does not exist; create it first"),
        (["bigwig", w / "scores.h5", "--out", w / "missing" / "t.bw", "--chrom-sizes", w / "sizes.txt"], "create it"),
        (["motifs", w / "scores.h5", "--out", w / "missing" / "m"], "does not exist; create it first"),
        (["motifs", w / "scores.h5", "--out", w / "m", "--seed", "-3"], "seed -3 is out of range"),
        (["motifs", w / "scores.h5", "--out", w / "m", "--motif-db", w / "in.fa"], "no motifs in the MEME file"),
        (["motifs", w / "scores.h5", "--out", w / "m", "--window", "500"],  # modisco-lite ran for minutes
         "--window 500: longer than the score file's sequences (40 bp)"),
        (["motifs", w / "scores.h5", "--out", w / "m", "--seqlet-window", "30", "--seqlet-flank", "10"],
         "--seqlet-window and --seqlet-flank: a seqlet of 30 bp and two flanks of 10 bp (50 bp) does not fit in the "
         "40 bp searched (the sequences are 40 bp)"),
        (["motifs", w / "scores.h5", "--out", w / "m", "--window", "20", "--seqlet-flank", "1"],
         "--seqlet-flank: a seqlet of 20 bp and two flanks of 1 bp (22 bp) does not fit in the 20 bp searched (the "
         "sequences are 40 bp, --window 20)"),
        (["simulate", w / "sim", "--seed", "-1"], "seed -1 is out of range"),
        (["simulate", w / "sim", "--background", "nan,0.25,0.25,0.25"], "not a finite number"),
        (["simulate", w / "missing" / "sim"], "does not exist; create it first"),
        (["simulate", w], "folder exists and is not empty"),
    ]


def test_every_option_is_checked_before_any_work(work):
    (work / "mine.tsv").write_text("my own table\n")  # beside --out mine.h5: not seqlift's, never replaced
    (work / "sizes.h5").write_text("not an HDF5 score file")
    (work / "mine_ohe.npz").write_bytes(b"PK not mine")
    for args, message in bad_option_cases(work):
        before = digest(work)
        assert_refused(invoke(*args), message, work, before)


# ---------------------------------------------------------------------------------------------- targets that mean nothing
@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    """A BPNet-like model (profile head (40, 2), counts head (1,)), softmax models of 1 and 3 classes, and a
    model with a stranded control track (40, 2) and a per-position scalar track (40,) besides the sequence."""
    import keras
    from keras import layers

    d = tmp_path_factory.mktemp("heads")
    inp = keras.Input((40, 4))
    h = layers.Conv1D(6, 5, padding="same", activation="relu")(inp)
    keras.Model(inp, [layers.Conv1D(2, 5, padding="same", name="profile")(h),
                      layers.Dense(1, name="counts")(layers.GlobalAveragePooling1D()(h))]).save(d / "heads.keras")
    for n in (1, 3):
        keras.Model(inp, layers.Dense(n, activation="softmax")(layers.GlobalMaxPooling1D()(h))).save(d / f"softmax{n}.keras")
    seq, control, track = keras.Input((40, 4), name="seq"), keras.Input((40, 2), name="control"), keras.Input((40,), name="track")
    both = layers.Concatenate()([seq, control, layers.Reshape((40, 1))(track)])
    keras.Model([seq, control, track], layers.Dense(1)(layers.GlobalAveragePooling1D()(
        layers.Conv1D(4, 3, activation="relu")(both)))).save(d / "control.keras")
    np.save(d / "ctl.npy", np.ones((9, 40, 2), np.float32))
    np.save(d / "track.npy", np.ones((40,), np.float32))
    np.save(d / "short.npy", np.ones((9, 30, 2), np.float32))
    return d


def target_cases(w, d):
    fa, heads, control = w / "in.fa", d / "heads.keras", d / "control.keras"
    ctl, track = f"control={d / 'ctl.npy'}", f"track={d / 'track.npy'}"
    return [
        (["score", heads, fa, "--output", "counts", "--target", "profile"],
         "target 'profile' on an output of one value (a counts head) is always 0 (its softmax weight is 1); "
         "explain a counts head with --target sum"),
        (["score", heads, fa, "--output", "profile", "--task", "all"],
         "--task: 80 tasks (an output of shape (40, 2)) would each take a full pass"),
        (["score", heads, fa, "--output", "profile", "--task", "all"], "--target profile explains the whole profile"),
        (["score", heads, fa, "--output", "profile", "--task", "3", "--force"], "--force applies to more than 64 tasks"),
        (["score", heads, fa, "--output", "profile", "--task", "3", "--rc-average"],
         "--rc-average with --target logit on an output of shape (40, 2)"),
        (["score", d / "softmax1.keras", fa], "softmax over one value, which is always 1"),
        (["score", d / "softmax1.keras", fa, "--target", "sum"], "softmax over one value, which is always 1"),
        (["score", d / "softmax3.keras", fa, "--target", "sum"], "target 'sum' of a softmax output's logits means nothing"),
        (["score", d / "softmax3.keras", fa, "--target", "profile", "--method", "ism"],
         "target 'profile' needs a profile head's logits"),
        (["score", control, fa, "--extra", ctl, "--rc-average"],
         "--rc-average with input 'control' held fixed (--extra): say how it flips"),
        (["score", control, fa, "--extra", ctl, "--extra-rc", "control=reverse"], "--extra-rc applies to --rc-average only"),
        (["score", control, fa, "--extra", ctl, "--rc-average", "--extra-rc", "control=sideways"],
         "'sideways' is not reverse, swap, both or an existing .npy file"),
        (["score", control, fa, "--extra", ctl, "--rc-average", "--extra-rc", "control"], "expected NAME=reverse"),
        (["score", control, fa, "--extra", ctl, "--rc-average", "--extra-rc", "control=reverse", "--extra-rc",
          "control=swap"], "input 'control' is given twice"),
        (["score", control, fa, "--rc-average", "--extra-rc", "control=reverse"],
         "--extra-rc control: input 'control' is not given with --extra"),
        (["score", control, fa, "--extra", ctl, "--extra", track, "--rc-average", "--extra-rc", "control=reverse",
          "--extra-rc", "track=swap"], "input 'track' has shape (40,), with no strand axis to flip"),
        (["score", control, fa, "--extra", ctl, "--rc-average", "--extra-rc", f"control={d / 'missing.npy'}"],
         "missing.npy: file not found"),
        (["score", control, fa, "--extra", ctl, "--rc-average", "--extra-rc", f"control={d / 'short.npy'}"],
         "--extra-rc control=" + str(d / "short.npy") + ": extra input 'control': shape (9, 30, 2)"),
        (["score", control, fa, "--extra", ctl, "--rc-average", "--extra-rc", f"nothing={d / 'ctl.npy'}"],
         "the model has no such input"),
        # several heads in one run
        (["score", heads, fa, "--output", "profile", "--output", "counts", "--target", "profile"],
         "--output is given 2 times and --target 1: give one --target per --output"),
        (["score", heads, fa, "--output", "profile", "--target", "sum", "--output", "profile", "--target", "sum"],
         "the same --output and --target pair is given twice"),
        (["score", heads, fa, "--output", "profile", "--target", "profile", "--output", "counts", "--target", "sum",
          "--ray", "local"], "--ray works with one --output/--target pair"),
        (["score", heads, fa, "--output", "profile", "--target", "profile", "--output", "counts", "--target", "sum",
          "--logo", w / "in.png"], "--logo " + str(w / "in.profile.png") + ": exists and was not written"),
        (["score", heads, fa, "--output", "profile", "--target", "profile", "--output", "counts", "--target", "sum",
          "--task", "3"], "--task applies to --target logit; every --target given explains a whole output"),
        (["score", heads, fa, "--output", "profile", "--target", "logit", "--output", "counts", "--target", "sum",
          "--task", "all"], "--task: 80 tasks"),
        (["score", heads, fa, "--output", "profile", "--target", "logit", "--output", "counts", "--target", "sum",
          "--force"], "--force applies to more than 64 tasks only; no head explains that many"),
        (["score", heads, fa, "--output", "a/b", "--target", "sum", "--output", "counts", "--target", "sum"],
         "--output 'a/b': cannot name a file after it"),
        (["score", heads, fa, "--output", "nope", "--target", "sum", "--output", "counts", "--target", "sum"], "nope"),
    ]


def test_a_target_that_cannot_mean_anything_is_refused_naming_the_one_that_fits(work, heads):
    (work / "in.profile.png").write_text("my own picture")  # where the profile head's --logo would go
    for args, message in target_cases(work, heads):
        before = digest(work)
        assert_refused(invoke(*args, "--out", work / "t.h5"), message, work, before)


@pytest.mark.slow
def test_every_target_output_method_combination_gives_scores_or_one_error(heads):
    """Each method × target × output × strands either scores (finite, not all zero, predictions that vary)
    or is a SeqliftError before any work: never a file of zeros."""
    import keras

    import seqlift
    from seqlift.methods import METHODS

    x = np.eye(4, dtype=np.float32)[np.random.default_rng(0).integers(0, 4, (3, 40))]
    models = [(heads / "heads.keras", "profile"), (heads / "heads.keras", "counts"), (heads / "softmax1.keras", None),
              (heads / "softmax3.keras", None), (REPO / "data" / "simulations" / "model.h5", None)]
    refused = 0
    for path, output in models:
        model = keras.models.load_model(path, compile=False)
        if model.input_shape[1] != 40:
            x = np.eye(4, dtype=np.float32)[np.random.default_rng(0).integers(0, 4, (3, model.input_shape[1]))]
        for method in METHODS:
            refs = dict(n_refs=2) if METHODS[method].uses_references else dict(reference="zeros")
            for target in ("logit", "sum", "profile"):
                for rc in (False, True):
                    try:
                        s = seqlift.score(model, x, method=method, target=target, rc_average=rc, output=output, **refs)
                    except SeqliftError:
                        refused += 1
                        continue
                    case = (path.name, output, method, target, rc)
                    assert np.isfinite(s.contributions).all() and np.abs(s.contributions).max() > 0, case
                    assert np.ptp(s.prediction) > 0, case
    # per method: rc-averaged logits of the profile (1), profile on counts (2), all of softmax1 (6), sum and
    # profile on softmax3 (4), profile on the simulation's sigmoid tasks (2); both strands where counted twice
    assert refused == 6 * (1 + 2 + 6 + 4 + 2)


def test_batch_size_auto_fits_what_is_free_and_a_given_one_that_does_not_fit_is_refused(work, monkeypatch):
    from seqlift import pipeline, scale

    # 16 references of the 40 bp model need ~0.2 MB a sequence (bytes_per_pair); say 1 MB is free
    monkeypatch.setattr(scale, "available_memory", lambda: scale.references_memory(40, 16, 9) + 2**20)
    args = [work / "model.h5", work / "in.fa", "--n-refs", 16, "--quiet"]
    before = digest(work)
    assert_refused(invoke("score", *args, "--batch-size", 9, "--out", work / "b.h5"),
                   "--n-refs 16 with --batch-size 9 needs about", work, before)
    assert "lower --batch-size, or leave it out to choose what fits" in invoke(
        "score", *args, "--batch-size", 9, "--out", work / "b.h5").stderr
    request = pipeline.build_request(str(work / "model.h5"), str(work / "in.fa"), out=work / "a.h5", n_refs=16)
    plan = pipeline.prepare(request, lambda n: [0])
    per_sequence = 16 * plan.explainer.bytes_per_pair()
    assert plan.batch_size == int(scale.MEMORY_FRACTION * 2**20) // per_sequence < 9
    result = invoke("score", *args, "--out", work / "a.h5")
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(scale, "available_memory", lambda: 2**40)
    assert pipeline.prepare(request, lambda n: [0]).batch_size == 9  # the default (256 pairs), cut to the input


def test_export_in_chrombpnets_layout_and_its_misuse(work, write_scores):
    contrib = np.random.default_rng(0).normal(size=(3, 2, 30, 4)).astype(np.float32)
    two = write_scores(work / "two.h5", ["a", "b", "c"], contrib, tasks=(0, 1))
    result = invoke("export", two, "--out", work / "c.h5", "--task", 1)
    assert result.exit_code == 0, result.output
    with h5py.File(two) as f, h5py.File(work / "c.h5") as c:
        assert sorted(c) == ["names", "projected_shap", "raw", "shap"] and c.attrs["task"] == 1
        for group, key in (("raw", "one_hot"), ("shap", "hypothetical"), ("projected_shap", "contrib")):
            values = f[key][()] if key == "one_hot" else f[key][:, 1]  # (N, L, 4), task 1 of tasks (0, 1)
            np.testing.assert_array_equal(c[group]["seq"][()], values.transpose(0, 2, 1))
        assert list(c["names"].asstr()[()]) == ["a", "b", "c"]
    scores = work / "scores.h5"
    assert invoke("export", scores, "--out", work / "c.h5").exit_code == 0  # its own file is replaced
    (work / "mine.h5").write_text("my own file")
    cases = [
        (["export", scores, "--out", scores], "is one of this run's inputs"),
        (["export", scores, "--out", work / "mine.h5"], "exists and was not written by seqlift"),
        (["export", scores, "--out", work / "c2.h5", "--task", 5], "task 5 is not in the file (tasks: [0])"),
        (["export", work / "in.fa", "--out", work / "c2.h5"], "not an HDF5 score file"),
        (["export", work / "nothing.h5", "--out", work / "c2.h5"], "score file not found"),
        (["export", scores, "--out", work / "missing" / "c.h5"], "does not exist; create it first"),
    ]
    for args, message in cases:
        before = digest(work)
        assert_refused(invoke(*args), message, work, before)


def test_a_read_only_folder_is_one_line(work, monkeypatch):
    from seqlift import outputs

    folder = work / "ro"
    folder.mkdir()
    # tests run as root, who may write anywhere: the folder counts as read-only
    monkeypatch.setattr(outputs.os, "access", lambda path, mode: Path(path) != folder)
    before = digest(work)
    assert_refused(invoke("score", work / "model.h5", work / "in.fa", "--out", folder / "x.h5"), "is not writable",
                   work, before)


def test_nan_scores_are_an_error_naming_the_sequence(work):
    import keras

    model = keras.models.load_model(work / "model.h5", compile=False)
    weights = model.layers[1].get_weights()
    weights[0][0, 0, 0] = np.nan
    model.layers[1].set_weights(weights)
    model.save(work / "nan.h5")
    before = digest(work)
    result = invoke("score", work / "nan.h5", work / "in.fa", "--out", work / "n.h5", "--n-refs", 2, "--quiet")
    assert_refused(result, "record 's0' (task 0): the prediction is NaN or infinite", work, before)


def test_a_file_that_is_not_fasta_leaves_no_index(work):
    (work / "table.fa").write_text(">x\nACGT\nAC\nACGT\n")  # uneven line lengths: pyfaidx refuses it
    result = invoke("score", work / "model.h5", work / "table.fa", "--out", work / "t.h5", "--quiet")
    assert result.exit_code == 1 and not (work / "table.fa.fai").exists()


def test_numba_caches_in_the_users_cache_folder():
    assert "seqlift" in os.environ["NUMBA_CACHE_DIR"] and not os.environ["NUMBA_CACHE_DIR"].startswith(str(REPO))


# ---------------------------------------------------------------------------------------------- BED as genomics users expect
def test_bed_names_strands_and_skip_invalid(work):
    (work / "s.bed").write_text("chr1\t50\t70\tfwd\t0\t+\nchr1\t50\t70\trev\t0\t-\nchr2\t90\t100\toff\t0\t+\n")
    before = digest(work)
    bad = invoke("score", work / "model.h5", work / "s.bed", "--genome", work / "genome.fa", "--out", work / "b.h5")
    assert_refused(bad, "s.bed:3: the 40 bp window chr2:75-115 falls outside chr2", work, before)
    good = invoke("score", work / "model.h5", work / "s.bed", "--genome", work / "genome.fa", "--out", work / "b.h5",
                  "--skip-invalid", "--n-refs", 2, "--seed", 1, "--bigwig", work / "b.bw", "--chrom-sizes",
                  work / "sizes.txt")
    assert good.exit_code == 0, good.output
    assert "skipped 1 region(s)" in good.stderr
    from seqlift.sequences import decode, reverse_complement

    genome = (work / "genome.fa").read_text().split("\n")[1]
    with h5py.File(work / "b.h5") as f:
        assert [n.decode() for n in f["names"][()]] == ["fwd", "rev"]
        assert [s.decode() for s in f["strand"][()]] == ["+", "-"]
        assert decode(f["one_hot"][0]) == genome[40:80]
        assert decode(f["one_hot"][1]) == reverse_complement(genome[40:80])
        per_base = f["contrib"][()].sum(-1)
    import pyBigWig

    bw = pyBigWig.open(str(work / "b.bw"))
    # both records cover chr1:40-80: the minus-strand one is flipped back before averaging
    np.testing.assert_allclose(bw.values("chr1", 40, 80), (per_base[0] + per_base[1][::-1]) / 2, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------------------------- signals and limits
def seqlift_process(args, cwd, tmpdir=None, **kw):
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **({"TMPDIR": str(tmpdir)} if tmpdir else {}))
    return subprocess.Popen([sys.executable, "-c", "from seqlift.cli.main import main; main()", *map(str, args)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture
def big_input(work):
    """Enough sequences that a run takes a few seconds after the model has loaded."""
    records = (work / "in.fa").read_text()
    (work / "big.fa").write_text("".join(records.replace(">s", f">r{k}_") for k in range(150)))
    return work / "big.fa"


@pytest.mark.parametrize("signum", [pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
                                    pytest.param(signal.SIGHUP, marks=pytest.mark.slow), signal.SIGINT])
def test_a_signal_removes_temporaries_and_exits_128_plus_signal(work, big_input, signum, tmp_path):
    """Ours beside the outputs, and the libraries' in the temporary folder (TensorFlow's generated modules)."""
    before = digest(work)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    proc = seqlift_process(["score", work / "model.h5", big_input, "--out", work / "sig.h5", "--n-refs", 50,
                            "--batch-size", 1, "--modisco", work / "sig"], work, tmpdir=tmpdir)
    deadline = time.time() + 120
    while not (work / "sig.h5.partial").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)  # wait until the run is writing (its in-progress file OUT.partial)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert err.strip().splitlines() == [f"seqlift: interrupted ({signal.Signals(signum).name}); no output was written"]
    after = digest(work)
    assert {k: v for k, v in after.items() if k != "big.fa"} == {k: v for k, v in before.items() if k != "big.fa"}
    assert not list(tmpdir.iterdir())


def test_a_failed_run_leaves_no_library_temporaries(tmp_path):
    """A failed run ends with os._exit, which skips the exit handlers that remove libraries' temporary files one by
    one (TensorFlow's generated modules): the run's own folder in the temporary folder goes instead."""
    code = ("import atexit, os, sys, tempfile\n"
            "from seqlift.cli import main as m\n"
            "@m.cli.command()\n"
            "def leaves():\n"
            "    path = tempfile.NamedTemporaryFile(prefix='library-', delete=False).name\n"
            "    atexit.register(os.remove, path)  # as TensorFlow does: never run after os._exit\n"
            "    sys.exit(3)\n"
            "sys.argv = ['seqlift', 'leaves']\n"
            "m.main()\n")
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert not list(tmp_path.iterdir())


def test_a_killed_runs_temporary_folder_is_removed_by_the_next_run_and_a_live_ones_kept(tmp_path):
    """SIGKILL runs no handler, so a run's folder in the temporary folder stays; the next run removes it once it can
    take the folder's lock. A folder whose lock another process holds (a live run, whatever its process id or PID
    namespace) is kept, and so is one with no lock file (not seqlift's to judge)."""
    import fcntl

    code = ("import sys, time\nfrom seqlift.cli import main as m\n@m.cli.command()\ndef hang():\n"
            "    print('ready', flush=True)\n    time.sleep(600)\nsys.argv = ['seqlift', 'hang']\nm.main()\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path))
    killed = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert killed.stdout.readline().strip() == "ready"
        assert len(list(tmp_path.glob("seqlift-run-*"))) == 1
    finally:
        killed.kill()
        killed.communicate(timeout=60)
    (tmp_path / "seqlift-run-unlocked").mkdir()
    live = tmp_path / "seqlift-run-live"
    live.mkdir()
    lock = os.open(live / ".seqlift-run-lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        proc = subprocess.run([sys.executable, "-c", "from seqlift.cli.main import main; main()", "--version"], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["seqlift-run-live", "seqlift-run-unlocked"]
    finally:
        os.close(lock)


def test_ctrl_c_while_the_model_loads(work, tmp_path):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    proc = seqlift_process(["score", work / "model.h5", work / "in.fa", "--out", work / "c.h5"], work, tmpdir=tmpdir)
    deadline = time.time() + 60
    while not list(tmpdir.iterdir()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)  # main() has made the run's temporary folder: its signal handlers are in place
    time.sleep(0.2)  # importing Keras and loading the model (seconds)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["seqlift: interrupted (SIGINT); no output was written"]
    assert not list(work.glob("*c.h5*")) and not list(work.glob(".c.*")) and not list(tmpdir.iterdir())


def test_a_keras_backend_that_is_not_installed_is_one_line(work):
    import importlib.util

    missing = next((b for b in ("jax", "torch") if importlib.util.find_spec(b) is None), None)
    if missing is None:
        pytest.skip("jax and torch are both installed")
    proc = seqlift_process(["score", work / "model.h5", work / "in.fa", "--out", work / "b.h5", "--backend", missing],
                           work)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert err.strip().splitlines() == [f"seqlift: error: cannot load the Keras backend '{missing}' (No module named "
                                        f"'{missing}'); install it (pip install {missing}) or choose another with "
                                        "--backend or KERAS_BACKEND"]
    assert not list(work.glob("*b.h5*")) and not list(work.glob(".b.*"))


@pytest.mark.parametrize("command", [pytest.param("score", marks=pytest.mark.slow), "simulate", "bigwig"])
def test_a_file_size_limit_is_one_line(work, big_input, command):
    args = {"score": ["score", work / "model.h5", big_input, "--out", work / "f.h5", "--n-refs", 2],
            "simulate": ["simulate", work / "sim", "--n-seqs", 20000],
            "bigwig": ["bigwig", work / "scores.h5", "--out", work / "f.bw", "--chrom-sizes", work / "sizes.txt"]}
    before = digest(work)
    limit = 1 if command == "bigwig" else 64  # kB: the 2-record bigWig is smaller than 64 kB
    script = f"ulimit -f {limit}; exec \"$@\""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(["bash", "-c", script, "sh", sys.executable, "-c", "from seqlift.cli.main import main; main()",
                           *map(str, args[command])], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and ("file-size limit" in lines[0]), proc.stderr
    assert digest(work) == before


# TensorFlow's C++ log lines, which benchmark (not score) prints even with TF_CPP_MIN_LOG_LEVEL=3: not seqlift's.
TENSORFLOW_LOG = ("WARNING: All log messages before absl::InitializeLog()", "I0000 ", "W0000 ", "E0000 ")


def fill(mount: Path, left: int):
    """Fill the file system at ``mount`` until at most ``left`` bytes are free (a file ``filler``)."""
    with open(mount / "filler", "ab") as handle:
        try:
            while shutil.disk_usage(mount).free > left:
                handle.write(b"\0" * 4096)
                handle.flush()
        except OSError:  # full
            pass


@pytest.mark.slow  # about 90 s: every writing command, twice, in a process of its own
def test_a_full_disk_is_one_line(work, shards, tmp_path_factory):
    """Every command that writes, on a disk with no room (the lock file's process id cannot be written: a 0-byte
    lock was left and the error said 'output') and with a few kB (HDF5 crashed on a failed flush, modisco-lite's MEME
    writer dropped the errno): one line naming the destination, and nothing left there, lock files included."""
    import keras

    mount = tmp_path_factory.mktemp("full")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    assert invoke("simulate", work / "sim", "--n-seqs", 40, "--length", 80, "--quiet").exit_code == 0
    inputs = keras.Input((80, 4))  # benchmark's model: the simulation's length and three tasks
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(4, 5)(inputs)))
                ).save(work / "sim_model.h5")
    chr1 = "".join(line.strip() for line in (work / "genome.fa").read_text().split(">chr2")[0].splitlines()[1:])
    (work / "good.tsv").write_text(f"chr1\t100\t{chr1[99]}\tG\tok\n")
    m, scores = work / "model.h5", work / "scores.h5"
    (work / "one.meme").write_text("MEME version 4\n\nALPHABET= ACGT\n\nMOTIF GATA\nletter-probability matrix: "
                                   "alength= 4 w= 4\n0.97 0.01 0.01 0.01\n0.01 0.01 0.01 0.97\n0.97 0.01 0.01 "
                                   "0.01\n0.01 0.01 0.01 0.97\n")
    runs = {"simulate": ["simulate", mount / "sim", "--n-seqs", 20000],  # 4 MB of FASTA, written by Python
            "score": ["score", m, work / "in.fa", "--out", mount / "s.h5", "--n-refs", 2, "--batch-size", 1],
            "variants": ["variants", m, work / "good.tsv", "--genome", work / "genome.fa", "--out", mount / "v.h5",
                         "--n-refs", 2],
            "benchmark": ["benchmark", work / "sim", "--out", mount / "b", "--model", work / "sim_model.h5", "--quiet",
                          "--method", "saliency", "--n-test", 10, "--sensitivity-seqs", 5],
            "motifs": ["motifs", scores, "--out", mount / "m"],
            "logo": ["logo", scores, "--out", mount / "l.png"],
            "bigwig": ["bigwig", scores, "--out", mount / "t.bw", "--chrom-sizes", work / "sizes.txt"],
            "export": ["export", scores, "--out", mount / "e.h5"],
            "merge": ["merge", mount / "merged.h5", *shards],
            "view": ["view", scores, "--out", mount / "v.html"],
            "hits": ["hits", scores, "--motifs", work / "one.meme", "--out", mount / "h", "--device", "cpu", "--quiet"]}
    try:
        for left in (0, 12_000):
            fill(mount, left)
            for name, args in runs.items():
                proc = seqlift_process(args, work)
                _, err = proc.communicate(timeout=300)
                destination = args[1] if name in ("simulate", "merge") else args[args.index("--out") + 1]
                lines = [line for line in err.strip().splitlines() if not line.startswith(TENSORFLOW_LOG)]
                assert proc.returncode == 1, (name, left, err)
                assert len(lines) == 1 and f"{destination}: cannot write: the disk is full" in lines[0], (name, left, err)
                assert [p.name for p in mount.iterdir()] == ["filler"], (name, left)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# ---------------------------------------------------------------------------------------------- readers fed random bytes
def reader_cases(path: Path):
    from seqlift import sequences, tracks
    from seqlift.motifs import read_motif_database

    return {
        "fasta": lambda: [sequences.encode_records([r], len(r.sequence) or 1, path) for r in sequences.read_fasta(path)],
        "bed": lambda: sequences.read_bed_windows(path, {"chr1": 1000}, 10),
        "chrom sizes": lambda: tracks.read_chrom_sizes(path),
        "meme": lambda: read_motif_database(path),
    }


TEXTY = st.text(alphabet=st.sampled_from(list("ACGTNacgtn>\t\n #+-.0123456789chrMEOTIFltrsw=:XY\r")), max_size=300)


@pytest.mark.parametrize("reader", ["fasta", "bed", "chrom sizes", "meme"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=300), TEXTY.map(str.encode)))
def test_readers_turn_any_bytes_into_a_seqlift_error(tmp_path, reader, content):
    path = tmp_path / f"input.{reader.replace(' ', '')}"
    path.write_bytes(content)
    Path(f"{path}.fai").unlink(missing_ok=True)
    try:
        reader_cases(path)[reader]()
    except SeqliftError as exc:
        assert "\n" not in str(exc).strip()


def test_commands_that_run_no_model_never_import_keras(work):
    """logo, bigwig, motifs' checks, --help and --version start in a fraction of TensorFlow's import time."""
    script = """
import sys
from click.testing import CliRunner
from seqlift.cli.main import cli
w = sys.argv[1]
for args in (["--version"], ["score", "--help"], ["logo", w + "/scores.h5", "--out", w + "/l.png"],
             ["bigwig", w + "/scores.h5", "--out", w + "/t.bw", "--chrom-sizes", w + "/sizes.txt"],
             ["motifs", w + "/scores.h5", "--out", w], ["export", w + "/scores.h5", "--out", w + "/c.h5"]):
    CliRunner().invoke(cli, args)
print(sorted(m for m in ("keras", "tensorflow", "torch", "jax") if m in sys.modules))
"""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", script, str(work)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout + proc.stderr
    assert (work / "l.png").exists() and (work / "t.bw").exists() and (work / "c.h5").exists()


# ---------------------------------------------------------------------------------------------- a lab's first week (issue 18)
def first_week_option_cases(w):
    m, fa = w / "model.h5", w / "in.fa"
    return [
        (["score", m, fa, "--workers", "2"], "--workers applies to --ray only"),
        (["score", m, fa, "--delta-warn", "nan"], "--delta-warn nan: must be a positive number"),
        (["score", m, fa, "--delta-warn", "0"], "--delta-warn 0.0: must be a positive number"),
        (["score", m, fa, "--out", f"{w / 'newdir'}/"], "is a folder name; give a file name"),
        (["score", m, fa, "--ray", "127.0.0.1:1"], "--ray 127.0.0.1:1: no Ray head answers there"),
        (["score", m, fa, "--ray", "nowhere"], "expected local, auto or HOST:PORT"),
        (["score", m, w / "pipe"], "pipe: not a regular file (a pipe, device or folder)"),
        (["simulate", w / "sim", "--background", "1,0,0,0"], "every base needs a frequency above 0"),
        (["logo", w / "scores.h5", "--out", w / "l.png", "--top", "800"], "one image holds at most 100 logos"),
        (["logo", w / "scores.h5", "--out", w / "l.png", "--full", "--top", "3"], None),  # a control that works
    ]


def test_options_that_were_silently_accepted_are_refused(work):
    os.mkfifo(work / "pipe")
    run_cases(work, first_week_option_cases(work))


def damaged_copy(source: Path, folder: Path, name: str, change) -> Path:
    """``folder/NAME.h5``: a copy of the score file ``source`` changed by ``change(h5)`` (h5py, read-write)."""
    path = folder / f"{name}.h5"
    shutil.copy(source, path)
    with h5py.File(path, "r+") as h5:
        change(h5)
    return path


def damaged(source: Path, folder: Path) -> dict:
    """Copies of a score file, each damaged one way, with the words its one-line refusal must hold."""
    def copy(name, change):
        return damaged_copy(source, folder, name, change)

    def nan(h5):
        contrib = h5["contrib"][()]
        contrib[1, 3, 0] = np.nan
        h5["contrib"][...] = contrib

    def cut(h5):
        for key in h5:
            h5[key].resize(h5[key].shape[0] - 1, axis=0)

    def empty(h5):
        for key in h5:
            h5[key].resize(0, axis=0)
        h5.attrs["n_sequences"] = 0

    def numbered(h5):
        n = len(h5["names"])
        del h5["names"]
        h5["names"] = np.arange(n)

    def reshaped(h5):
        del h5["hypothetical"]
        h5.create_dataset("hypothetical", data=np.zeros((3, 7, 4), np.float32))

    with h5py.File(source) as h5:
        n, length, regions = len(h5["names"]), h5["one_hot"].shape[1], "start" in h5
    cases = {
        copy("nonames", lambda h5: h5.__delitem__("names")): "damaged score file: no 'names' dataset",
        copy("noonehot", lambda h5: h5.__delitem__("one_hot")): "damaged score file: no 'one_hot' dataset",
        copy("nohyp", lambda h5: h5.__delitem__("hypothetical")): "damaged score file: no 'hypothetical' dataset",
        copy("shape", reshaped): f"damaged score file: 'hypothetical' has shape (3, 7, 4), expected ({n}, {length}, 4)",
        copy("cut", cut): f"it holds {n - 1} sequences but was written with {n} (rows were cut or added)",
        copy("empty", empty): "the score file holds no sequences",
        copy("nan", nan): "damaged score file: 'contrib' of sequence",
        copy("partial", lambda h5: h5.attrs.__setitem__("resume_completed_sequences", 1)):
            "is the in-progress file of a run that has not finished",
        copy("halves", lambda h5: h5["one_hot"].__setitem__(Ellipsis, 0.5)):
            "damaged score file: 'one_hot' of sequence",  # then: "is not one-hot"
        copy("numbered", numbered): "damaged score file: 'names' holds int64 values, not text",
        flipped(copy("flipped", lambda h5: None), "contrib"):
            "damaged score file: 'contrib' rows 0-",  # then: "cannot be read (filter returned failure during read)"
    }
    if regions:
        cases[copy("nostart", lambda h5: h5.__delitem__("start"))] = "damaged score file: no 'start' dataset"
    return cases


def flipped(path: Path, key: str) -> Path:
    """``path`` with bytes flipped inside the first stored chunk of dataset ``key`` (a compressed one: HDF5 fails
    to read it back, as after a bad copy or a failing disk)."""
    with h5py.File(path) as h5:
        chunk = h5[key].id.get_chunk_info(0)
    with open(path, "r+b") as handle:
        handle.seek(chunk.byte_offset + chunk.size // 2)
        data = handle.read(16)
        handle.seek(chunk.byte_offset + chunk.size // 2)
        handle.write(bytes(b ^ 0xFF for b in data))
    return path


def test_every_reader_refuses_a_damaged_score_file_in_one_line(work):
    (work / "motifs_table.tsv").write_text("name\tmotif\tstart\tend\n")
    cases = damaged(work / "scores.h5", work)
    before = digest(work)
    for path, message in cases.items():
        for args in (["logo", path, "--out", work / "l.png"],
                     ["bigwig", path, "--out", work / "t.bw", "--chrom-sizes", work / "sizes.txt"],
                     ["motifs", path, "--out", work / "m"], ["export", path, "--out", work / "e.h5"],
                     ["view", path, "--out", work / "v.html"]):
            if "'one_hot' of sequence" in message and args[0] == "bigwig":
                continue  # bigwig reads contributions only (one_hot too would add its decompression to genome-scale runs)
            assert_refused(invoke(*args), message, work, before)


def test_logo_refuses_motif_tables_it_cannot_read(work):
    (work / "empty.tsv").write_text("")
    (work / "binary.tsv").write_bytes(bytes(range(256)) * 4)
    (work / "letters.tsv").write_text("name\tmotif\tstart\tend\ns0\tGATA\tten\t20\n")
    (work / "backwards.tsv").write_text("name\tmotif\tstart\tend\ns0\tGATA\t20\t10\n")
    (work / "colour.tsv").write_text("name\tmotif\tstart\tend\tcolour\ns0\tGATA\t1\t5\tgold\n"
                                     "s0\tTAL1\t6\t9\tgoldish\n")
    (work / "two_colours.tsv").write_text("name\tmotif\tstart\tend\tcolour\ns0\tGATA\t1\t5\tgold\n"
                                          "s0\tTAL1\t6\t9\t\ns1\tGATA\t1\t5\tred\n")
    before = digest(work)
    for name, message in (("empty", "the motifs file is empty"), ("binary", "not a motifs table"),
                          ("letters", "column 'start' must hold whole numbers"),
                          ("backwards", "backwards.tsv: line 2: start must be >= 0 and below end"),
                          ("colour", "colour.tsv: line 3: colour 'goldish' is not a matplotlib colour"),
                          ("two_colours", "two_colours.tsv: line 4: motif 'GATA' is coloured 'red' here but 'gold' "
                                          "on line 2")):
        result = invoke("logo", work / "scores.h5", "--out", work / "l.png", "--motifs", work / f"{name}.tsv")
        assert_refused(result, message, work, before)


@pytest.fixture
def shards(work):
    paths = [work / f"part{k}.h5" for k in (1, 2)]
    for k, shard in enumerate(paths, start=1):
        result = invoke("score", work / "model.h5", work / "in.fa", "--out", shard, "--n-refs", 2, "--chunk-size", 5,
                        "--shard", f"{k}/2", "--quiet")
        assert result.exit_code == 0, result.output
    plain = invoke("score", work / "model.h5", work / "in.fa", "--out", work / "plain.h5", "--n-refs", 2,
                   "--chunk-size", 5, "--quiet")
    assert plain.exit_code == 0, plain.output
    return paths


def test_merge_checks_each_shard_against_its_own_record(work, shards):
    part1, part2 = shards
    cases = damaged(part2, work)
    before = digest(work)
    for path, message in cases.items():
        assert_refused(invoke("merge", work / "merged.h5", part1, path), message, work, before)


def test_a_remerge_writes_its_summary_from_the_scores(work, shards):
    """The merged TSV is computed from the merged scores: a shard's TSV missing (or stale) changes nothing."""
    (work / "part2.tsv").unlink()
    for _ in range(2):
        result = invoke("merge", work / "merged.h5", *shards)
        assert result.exit_code == 0, result.output
        assert (work / "merged.tsv").read_text() == (work / "plain.tsv").read_text()


@pytest.mark.slow  # the lock itself is tested in-process in the default tier (test_the_final_rename_...)
def test_a_second_run_on_one_output_is_refused_naming_the_live_process(work, big_input):
    out = work / "o.h5"
    first = seqlift_process(["score", work / "model.h5", big_input, "--out", out, "--n-refs", 20, "--batch-size", 2],
                            work)
    deadline = time.time() + 120
    while not (work / "o.h5.partial").exists() and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)
    second = invoke("score", work / "model.h5", big_input, "--out", out, "--n-refs", 20)
    assert second.exit_code == 1
    assert f"--out {out}: another seqlift run (process {first.pid}) is writing it" in second.stderr, second.stderr
    assert "interrupted" not in second.stderr
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    with h5py.File(out) as h5:
        assert len(h5["names"]) == 1350 and not [k for k in h5.attrs if k.startswith("resume_")]
    assert not list(work.glob(".o.h5*")) and not list(work.glob("o.h5.partial"))


def test_the_final_rename_moves_only_the_runs_own_file(tmp_path):
    with pytest.raises(SeqliftError, match="was replaced by another process while this run wrote it"):
        with Outputs() as outputs:
            tmp = outputs.file(tmp_path / "o.tsv")
            tmp.unlink()
            tmp.write_text("another process's file")
    assert not (tmp_path / "o.tsv").exists() and tmp.read_text() == "another process's file"  # neither ours nor gone
    tmp.unlink()
    with Outputs() as first:
        first.file(tmp_path / "x.tsv")
        with pytest.raises(SeqliftError, match=rf"another seqlift run \(process {os.getpid()}\) is writing it"):
            Outputs().check_file(tmp_path / "x.tsv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.tsv"]  # no lock file left


def test_bed12_is_centred_on_the_region_and_a_summit_must_be_inside_its_peak(work):
    from seqlift import sequences

    bed12 = "chr1\t100\t180\tgene\t0\t+\t100\t180\t0\t2\t10,10\t0,70\n"
    (work / "genes.bed").write_text(bed12)
    (regions,), _ = sequences.read_bed_windows(work / "genes.bed", {"chr1": 200}, 40)
    assert (regions.start, regions.end) == (120, 160)  # the middle, not column 10 (blockCount 2) as a summit
    (work / "peaks.narrowPeak").write_text("chr1\t100\t180\tp\t0\t.\t1\t1\t1\t95\n")
    before = digest(work)
    result = invoke("score", work / "model.h5", work / "peaks.narrowPeak", "--genome", work / "genome.fa")
    assert_refused(result, "peaks.narrowPeak:1: the summit (column 10) must be -1 or an offset inside the 80 bp peak",
                   work, before)


@pytest.mark.parametrize("where", ["import", "call"])
def test_a_model_file_that_calls_sys_exit_is_an_error(work, where):
    body = {"import": "import sys\nsys.exit(0)\ndef make():\n    pass\n",
            "call": "import sys\ndef make():\n    sys.exit(0)\n"}[where]
    (work / "build.py").write_text(body)
    before = digest(work)
    result = invoke("score", f"{work / 'build.py'}:make", work / "in.fa", "--out", work / "b.h5")
    assert_refused(result, "sys.exit(0)", work, before)


def test_a_damaged_fasta_index_is_named_and_a_read_only_folder_leaves_no_temporaries(work, monkeypatch, tmp_path):
    import tempfile

    from seqlift import sequences

    (work / "in.fa.fai").write_text("s0\t999\t4\t40\t41\nnonsense\n")
    before = digest(work)
    assert_refused(invoke("score", work / "model.h5", work / "in.fa", "--out", work / "x.h5"),
                   "in.fa.fai: this FASTA index does not match", work, before)
    assert (work / "in.fa.fai").read_text().endswith("nonsense\n")  # the user's file is left as it was
    (work / "in.fa.fai").unlink()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sequences.os, "access", lambda path, mode: Path(path) != work)  # root may write anywhere
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # this test's own: other runs' stay out of it
    for _ in range(2):
        assert sequences.count_fasta(work / "in.fa") == 9
    assert not list((tmp_path / "tmp").glob("seqlift-fai-*"))
    assert not (work / "in.fa.fai").exists() and len(list((tmp_path / "cache").rglob("in.fa.fai"))) == 1


def test_simulate_force_replaces_only_its_own_files(work):
    from seqlift import simulation

    sim = work / "simdir"
    database = sim / "simulation_motifs.meme"
    assert invoke("simulate", sim, "--n-seqs", 40, "--length", 80, "--quiet").exit_code == 0
    first = database.stat().st_ino
    assert invoke("simulate", sim, "--n-seqs", 40, "--length", 80, "--seed", 1, "--force", "--quiet").exit_code == 0
    assert database.stat().st_ino != first and database.read_bytes() == simulation.motif_database().read_bytes()
    (sim / "labels.tsv").write_text("my own labels\n")
    before = digest(work)
    result = invoke("simulate", sim, "--n-seqs", 40, "--length", 80, "--force", "--quiet")
    assert_refused(result, "labels.tsv exists and was not written by seqlift simulate", work, before)
    (sim / "labels.tsv").unlink()  # a MEME file of the user's own under that name (one motif fewer) is not seqlift's
    text = database.read_text()
    database.write_text(text[:text.index("MOTIF TAL1_known1")])
    before = digest(work)
    result = invoke("simulate", sim, "--n-seqs", 40, "--length", 80, "--force", "--quiet")
    assert_refused(result, "simulation_motifs.meme exists and was not written by seqlift simulate", work, before)


def test_benchmark_refuses_a_damaged_simulation_folder(work):
    sim = work / "simdir"
    assert invoke("simulate", sim, "--n-seqs", 40, "--length", 80, "--quiet").exit_code == 0
    good = {name: (sim / name).read_bytes() for name in ("sequences.fa", "labels.tsv")}
    cases = [
        ("sequences.fa", good["sequences.fa"][: len(good["sequences.fa"]) // 2], "the folder is incomplete"),
        ("sequences.fa", good["sequences.fa"][: len(good["sequences.fa"]) // 2 - 3] + b"\n",
         "is damaged or truncated"),
        ("labels.tsv", b"class\tsplit\n" + b"x\ttest\n", "not a seqlift simulate table (no column name"),
        ("labels.tsv", b"", "not a seqlift simulate table (EmptyDataError)"),
    ]
    for name, content, message in cases:
        (sim / name).write_bytes(content)
        Path(f"{sim / name}.fai").unlink(missing_ok=True)
        before = digest(work)
        assert_refused(invoke("benchmark", sim, "--out", work / "b", "--model", work / "model.h5"), message, work,
                       before)
        (sim / name).write_bytes(good[name])
        Path(f"{sim / name}.fai").unlink(missing_ok=True)
    before = digest(work)
    assert_refused(invoke("benchmark", sim, "--out", work / "b", "--model", work / "model.h5"),
                   "the model takes 40 bp and has 2 output(s), but the simulation's sequences are 80 bp", work, before)


def test_the_package_maps_only_cli_and_data_from_a_checkout():
    script = ("import importlib, seqlift, seqlift.cli.main, seqlift.data\n"
              "for name in ('seqlift.tests', 'seqlift.benchmarks', 'seqlift.docs'):\n"
              "    try:\n        importlib.import_module(name)\n        print('imported', name)\n"
              "    except ImportError:\n        pass\nprint('ok')\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, cwd="/")
    assert proc.stdout.split() == ["ok"], proc.stdout + proc.stderr


def test_the_simulation_modules_import_no_circle():
    import ast

    folder = REPO / "seqlift" / "simulation"
    imports = {}
    for path in folder.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module} if node.module else {a.name for a in node.names}
        imports[path.stem] = found & {p.stem for p in folder.glob("*.py")}

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in imports[start])

    assert not [m for m in imports if m != "__init__" and reaches(m, m)], imports


@pytest.mark.slow
def test_simulate_train_quiet_prints_nothing_and_a_forced_rerun_replaces_its_own_files(work):
    """No TensorFlow C++ log lines and no epoch lines with --quiet (a subprocess: they are written on fd 2)."""
    for extra in ([], ["--force", "--seed", "1"]):
        proc = seqlift_process(["simulate", work / "simq", "--train", "--n-seqs", 200, "--length", 150, "--quiet",
                                *extra], work)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and out == "" and err == "", err
    from seqlift.simulation import is_simulation_file

    assert sorted(p.name for p in (work / "simq").iterdir() if is_simulation_file(p)) == sorted(
        ["labels.tsv", "metrics.tsv", "model.h5", "motifs.tsv", "sequences.fa", "simulation_motifs.meme", "test.fa",
         "test_labels.tsv", "test_motifs.tsv"])


# ---------------------------------------------------------------------------------------------- seqlift variants
def test_variants_misuse(work):
    """seqlift variants: every bad variant, option and destination is one line naming it; nothing is written."""
    (work / "v.h5.partial").write_bytes(b"")  # an interrupted run's: refused without --resume, kept
    m, genome = work / "model.h5", work / "genome.fa"
    chr1 = "".join(line.strip() for line in genome.read_text().split(">chr2")[0].splitlines()[1:])
    ref = chr1[99]
    wrong = "A" if ref != "A" else "C"
    (work / "good.tsv").write_text(f"chr1\t100\t{ref}\tG\tok\n")
    (work / "mismatch.tsv").write_text(f"chr1\t100\t{ref}\tG\tok\nchr1\t120\t{'A' if chr1[119] != 'A' else 'C'}\tG\trs7\n")
    (work / "unknown.tsv").write_text("chrZ\t100\tA\tG\n")
    (work / "edge.tsv").write_text(f"chr1\t5\t{chr1[4]}\tG\tnear_start\n")
    (work / "symbolic.tsv").write_text("chr1\t100\tA\t<DEL>\n")
    (work / "bad.tsv").write_text("chr1\tten\tA\tG\n")
    (work / "user.h5").write_bytes(b"a user's file")
    out = ("--out", work / "v.h5")
    cases = [
        (["variants", m, work / "mismatch.tsv", "--genome", genome, *out],
         f"variant rs7 (chr1:120): REF {'A' if chr1[119] != 'A' else 'C'} does not match the genome's"),
        (["variants", m, work / "unknown.tsv", "--genome", genome, *out],
         "variant chrZ:100:A:G (chrZ:100): chromosome 'chrZ' is not in the genome"),
        (["variants", m, work / "edge.tsv", "--genome", genome, *out], "variant near_start (chr1:5): its 40 bp windows"),
        (["variants", m, work / "symbolic.tsv", "--genome", genome, *out], "no variants with sequence alleles"),
        (["variants", m, work / "bad.tsv", "--genome", genome, *out], "bad.tsv:1: pos 'ten' is not a 1-based position"),
        (["variants", m, work / "nothere.vcf", "--genome", genome, *out], "variant file not found"),
        (["variants", m, work / "good.tsv", "--genome", genome, "--out", work / "user.h5"],
         "exists and was not written by seqlift"),
        (["variants", m, work / "good.tsv", "--genome", genome, "--out", work / "good.tsv"], "is one of this run's inputs"),
        (["variants", m, work / "good.tsv", "--genome", genome, *out, "--ray", "127.0.0.1:1"], "no Ray head answers there"),
        (["variants", m, work / "good.tsv", "--genome", genome, *out, "--workers", "2"], "--workers applies to --ray only"),
        (["variants", m, work / "good.tsv", "--genome", genome, *out], "an interrupted run's"),
        (["variants", m, work / "good.tsv", "--genome", genome, *out, "--method", "saliency", "--n-refs", "3"],
         "--n-refs does nothing with --method saliency"),
        (["variants", m, work / "good.tsv", "--genome", genome, *out, "--output", "a", "--target", "logit",
          "--output", "b", "--target", "sum"], "one --output/--target pair per run"),
        (["variants", m, work / "good.tsv", *out], "Missing option '--genome'"),
        (["logo", work / "scores.h5", "--variant", "ok", "--out", work / "l.png"], "not a variant file"),
        (["variants", m, work / "mismatch.tsv", "--genome", genome, "--out", work / "x.h5", "--skip-invalid",
          "--n-refs", 2], None),
    ]
    run_cases(work, cases)
    (work / "v.h5.partial").unlink()
    result = invoke("variants", m, work / "mismatch.tsv", "--genome", genome, "--out", work / "w.h5", "--skip-invalid",
                    "--n-refs", 2, "--quiet")
    assert "skipped 1 variant(s) whose REF does not match the genome" in result.stderr
    with h5py.File(work / "w.h5") as h5:
        assert [i.decode() for i in h5["ids"][()]] == ["ok"]


# ---------------------------------------------------------------------------------------------- issue 25's misuse
def set_value(key, row, value):
    """A change for ``damaged_copy``: dataset ``key``'s row ``row`` set to ``value``."""
    def change(h5):
        values = h5[key][()]
        values[row] = value
        h5[key][...] = values
    return change


def test_bigwig_refuses_windows_off_the_genome_and_strands_it_does_not_know(work, tmp_path):
    """A negative start crashed libBigWig (SIGSEGV: lock, temporary and run folder left); a strand '?' was written as
    '+'; a chromosome longer than a bigWig holds was a traceback. Each is one line naming the file and sequence."""
    scores, sizes = work / "scores.h5", ("--chrom-sizes", work / "sizes.txt")
    negative = damaged_copy(scores, work, "negative", set_value("start", 0, -100))
    cases = [(damaged_copy(scores, work, "unknown", set_value("strand", 1, "?")), sizes,
              "unknown.h5: damaged score file: 'strand' of sequence 'p' (row 1) is not + or - ('?')"),
             (damaged_copy(scores, work, "far", set_value("start", 0, 10**6)), sizes, "ends past chr1 (length 200)"),
             (scores, ("--chrom-sizes", work / "huge.txt"), "chromosome 'chr1': its size 5000000000 is beyond what a "
                                                           "bigWig file can hold")]
    (work / "huge.txt").write_text("chr1\t5000000000\nchr2\t100\n")
    before = digest(work)
    for path, chrom_sizes, message in cases:
        assert_refused(invoke("bigwig", path, "--out", work / "t.bw", *chrom_sizes), message, work, before)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    proc = seqlift_process(["bigwig", negative, "--out", work / "t.bw", *sizes], work, tmpdir=tmpdir)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and err.strip().splitlines() == [
        f"seqlift: error: {negative}: damaged score file: 'start' of sequence 'chr1:40-80' (row 0) is below 0 (-100)"]
    assert digest(work) == before and not list(tmpdir.iterdir())
