"""`seqlift score` end to end (seqlift.pipeline, run through the CLI): files written, their layout, the plan, errors."""

import dataclasses
from pathlib import Path

import h5py
import keras
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from keras import layers

from seqlift import SeqliftError, pipeline
from seqlift.cli.main import cli
from seqlift.methods import DEEPLIFT, METHODS, RULES
from seqlift.references import ReferenceSpec

from helpers import profile_and_counts

LENGTH = 40


def run(args):
    result = CliRunner().invoke(cli, [str(a) for a in args] + ["--quiet"])
    return result


def test_score_writes_the_documented_layout(files, tmp_path):
    out = tmp_path / "s.h5"
    result = run(["score", files / "model.h5", files / "in.fa", "--out", out, "--modisco", tmp_path / "m", "--n-refs", 4])
    assert result.exit_code == 0, result.output
    with h5py.File(out) as f:
        assert f["contrib"].shape == f["hypothetical"].shape == f["one_hot"].shape == (9, LENGTH, 4)
        assert f["delta"].shape == f["prediction"].shape == f["reference_prediction"].shape == (9,)
        assert [n.decode() for n in f["names"][:3]] == ["s0", "s1", "s2"]
        for key in ["seqlift_version", "model_sha256", "tasks", "method", "rule", "reference", "n_refs", "seed",
                    "normalization", "backend"]:
            assert key in f.attrs
        assert f.attrs["n_refs"] == 4 and f.attrs["method"] == "deeplift"
        contrib, one_hot, hyp = f["contrib"][()], f["one_hot"][()], f["hypothetical"][()]
        # Projected scores live on the observed base only; summation to delta holds for them.
        assert np.all(contrib[one_hot == 0] == 0)
        np.testing.assert_allclose(contrib, hyp * one_hot)
        total = contrib.reshape(9, -1).sum(1)
        diff = f["prediction"][()] - f["reference_prediction"][()]
        ok = one_hot.sum((1, 2)) == LENGTH  # sequences without N
        np.testing.assert_allclose(total[ok], diff[ok], atol=1e-4)
    summary = pd.read_csv(tmp_path / "s.tsv", sep="\t")
    assert list(summary.columns) == ["name", "task", "target", "prediction", "reference_prediction", "total_contribution",
                                     "convergence_delta", "max_position", "max_contribution"]
    assert len(summary) == 9
    ohe, hyp_npz = np.load(tmp_path / "m_ohe.npz")["arr_0"], np.load(tmp_path / "m_hyp.npz")["arr_0"]
    assert ohe.shape == hyp_npz.shape == (9, 4, LENGTH)  # modisco-lite reads (N, 4, L) and transposes
    np.testing.assert_array_equal(ohe.transpose(0, 2, 1), one_hot)
    np.testing.assert_allclose(hyp_npz.transpose(0, 2, 1), hyp)


def test_several_tasks_get_a_task_axis(files, tmp_path):
    out = tmp_path / "t.h5"
    assert run(["score", files / "model.h5", files / "in.fa", "--out", out, "--task", "all", "--n-refs", 2]).exit_code == 0
    with h5py.File(out) as f:
        assert f["contrib"].shape == (9, 2, LENGTH, 4)
        assert f["delta"].shape == (9, 2)
        assert list(f.attrs["tasks"]) == [0, 1]
    assert len(pd.read_csv(tmp_path / "t.tsv", sep="\t")) == 18


def test_same_seed_same_scores_bit_for_bit(files, tmp_path):
    for name in ["a.h5", "b.h5"]:
        assert run(["score", files / "model.h5", files / "in.fa", "--out", tmp_path / name, "--n-refs", 3,
                    "--seed", 7]).exit_code == 0
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        assert np.array_equal(a["contrib"][()], b["contrib"][()])
        assert np.array_equal(a["hypothetical"][()], b["hypothetical"][()])


@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.slow) if name == "integrated-gradients" else m
                                    for name, m in METHODS.items()], ids=list(METHODS))  # IG: 5-6 s
def test_every_method_writes_scores(files, tmp_path, method):
    out = tmp_path / "m.h5"
    refs = ["--n-refs", 2] if method.uses_references else []
    result = run(["score", files / "model.h5", files / "in.fa", "--out", out, "--method", method.name, *refs])
    assert result.exit_code == 0, result.output
    with h5py.File(out) as f:
        assert f.attrs["method"] == method.name
        assert (f.attrs["reference"], f.attrs["n_refs"]) == (("shuffle", 2) if method.uses_references else ("zeros", 1))
        assert np.isfinite(f["contrib"][()]).all() and np.abs(f["contrib"][()]).sum() > 0


def test_method_and_rule_choices_are_the_registry():
    options = {p.name: p for p in cli.commands["score"].params}
    assert list(options["method"].type.choices) == list(METHODS)
    assert list(options["rule"].type.choices) == list(RULES)
    assert options["method"].default == DEEPLIFT.name


@pytest.mark.parametrize("reference", ["frequency", "zeros"])
def test_frequency_and_zero_references(files, tmp_path, reference):
    out = tmp_path / "r.h5"
    assert run(["score", files / "model.h5", files / "in.fa", "--out", out, "--reference", reference]).exit_code == 0
    with h5py.File(out) as f:
        assert f.attrs["n_refs"] == 1


def test_reference_fasta_shared_and_per_input(files, tmp_path):
    rng = np.random.default_rng(1)
    shared = tmp_path / "refs.fa"
    shared.write_text("".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), LENGTH))}\n" for i in range(3)))
    assert run(["score", files / "model.h5", files / "in.fa", "--out", tmp_path / "x.h5", "--reference", shared]).exit_code == 0
    per = tmp_path / "per.fa"
    per.write_text("".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), LENGTH))}\n" for i in range(18)))
    result = run(["score", files / "model.h5", files / "in.fa", "--out", tmp_path / "y.h5", "--reference", per,
                  "--refs-per-input", 2])
    assert result.exit_code == 0, result.output
    bad = run(["score", files / "model.h5", files / "in.fa", "--out", tmp_path / "z.h5", "--reference", per,
               "--refs-per-input", 3])
    assert bad.exit_code == 1 and "18 reference records" in bad.stderr and not (tmp_path / "z.h5").exists()


def test_gzipped_bed_is_read(files, tmp_path):
    import gzip

    (tmp_path / "r.bed.gz").write_bytes(gzip.compress((files / "regions.bed").read_bytes()))
    result = run(["score", files / "model.h5", tmp_path / "r.bed.gz", "--genome", files / "genome.fa",
                  "--out", tmp_path / "g.h5", "--n-refs", 2])
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "g.h5") as f:
        assert len(f["names"]) == 3


def test_convergence_warning_only_for_methods_that_claim_completeness(files, tmp_path):
    grad = run(["score", files / "model.h5", files / "in.fa", "--out", tmp_path / "g.h5", "--method", "grad-x-input"])
    assert grad.exit_code == 0 and "convergence delta" not in grad.stderr
    asked = run(["score", files / "model.h5", files / "in.fa", "--out", tmp_path / "g2.h5", "--method", "grad-x-input",
                 "--delta-warn", "1e-12"])
    assert asked.exit_code == 1 and "--delta-warn applies to deeplift and integrated-gradients only" in asked.stderr
    ig = run(["score", files / "model.h5", files / "in.fa", "--out", tmp_path / "i.h5", "--method",
              "integrated-gradients", "--reference", "zeros", "--delta-warn", "1e-12"])
    assert ig.exit_code == 0 and "convergence delta above 1e-12" in ig.stderr and "worst: 's" in ig.stderr


def test_bgzip_fasta_is_read_and_plain_gzip_is_a_clear_error(files, tmp_path):
    import gzip

    from Bio import bgzf

    text = (files / "in.fa").read_bytes()
    with bgzf.BgzfWriter(str(tmp_path / "in.fa.gz"), "wb") as handle:
        handle.write(text)
    result = run(["score", files / "model.h5", tmp_path / "in.fa.gz", "--out", tmp_path / "b.h5", "--n-refs", 2])
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "b.h5") as f:
        assert len(f["names"]) == 9
    (tmp_path / "plain.fa.gz").write_bytes(gzip.compress(text))
    bad = run(["score", files / "model.h5", tmp_path / "plain.fa.gz", "--out", tmp_path / "p.h5"])
    assert bad.exit_code == 1 and "must be bgzip-compressed" in bad.stderr


def test_fasta_in_a_read_only_folder_is_indexed_elsewhere(files, tmp_path, monkeypatch):
    from seqlift import sequences

    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "in.fa").write_bytes((files / "in.fa").read_bytes())
    # the folder counts as read-only (tests run as root, who may write anywhere)
    monkeypatch.setattr(sequences.os, "access", lambda path, mode: Path(path) != folder)
    result = run(["score", files / "model.h5", folder / "in.fa", "--out", tmp_path / "ro.h5", "--n-refs", 2])
    assert result.exit_code == 0, result.output
    assert not (folder / "in.fa.fai").exists()


def test_bed_windows_are_centred_and_named_by_coordinates_or_their_name_column(files, tmp_path):
    out = tmp_path / "bed.h5"
    result = run(["score", files / "model.h5", files / "regions.bed", "--genome", files / "genome.fa", "--out", out,
                  "--n-refs", 2])
    assert result.exit_code == 0, result.output
    with h5py.File(out) as f:
        names = [n.decode() for n in f["names"][()]]
        # chr1:50-70 → centre 60; narrowPeak summit 100+30 → 130 (named 'p' by column 4); chr2:10-90 → centre 50
        assert names == ["chr1:40-80", "p", "chr2:30-70"]
        assert [c.decode() for c in f["chrom"][()]] == ["chr1", "chr1", "chr2"]
        assert f["start"][()].tolist() == [40, 110, 30]
        genome = (files / "genome.fa").read_text().split("\n")[1]
        from seqlift.sequences import decode

        assert decode(f["one_hot"][0]) == genome[40:80]


def test_score_draws_a_logo_and_writes_a_bigwig_in_the_same_command(files, tmp_path):
    import pyBigWig

    out = tmp_path / "bed.h5"
    result = run(["score", files / "model.h5", files / "regions.bed", "--genome", files / "genome.fa", "--out", out,
                  "--n-refs", 2, "--logo", tmp_path / "logo.png", "--bigwig", tmp_path / "t.bw"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "logo.png").read_bytes()[:4] == b"\x89PNG"
    bw = pyBigWig.open(str(tmp_path / "t.bw"))
    with h5py.File(out) as f:
        expected = f["contrib"][0].sum(-1)  # chr1:40-80
    np.testing.assert_allclose(bw.values("chr1", 40, 80), expected, rtol=1e-6, atol=1e-7)


def _bad_inputs(files, tmp):
    (tmp / "empty.fa").write_text("")
    (tmp / "nohdr.fa").write_text("ACGT\n")
    (tmp / "badchar.fa").write_text(">x\n" + "ACGT" * 9 + "ACXT\n")
    (tmp / "short.fa").write_text(">shorty\nACGT\n")
    (tmp / "notmodel.h5").write_text("nope")
    (tmp / "far.bed").write_text("chr2\t80\t99\n")
    inp = keras.Input((LENGTH, 4))
    keras.Model(inp, layers.Dense(1)(layers.LSTM(2)(inp))).save(tmp / "lstm.keras")
    m, fa = files / "model.h5", files / "in.fa"
    return [
        (["score", tmp / "missing.h5", fa], "missing.h5: model file not found"),
        (["score", tmp / "notmodel.h5", fa], "notmodel.h5: cannot be read as a Keras model"),
        (["score", tmp / "lstm.keras", fa], "LSTM) is not supported"),
        (["score", m, tmp / "empty.fa"], "empty.fa: FASTA file is empty"),
        (["score", m, tmp / "nohdr.fa"], "nohdr.fa: not a FASTA file"),
        (["score", m, tmp / "badchar.fa"], "record 'x': invalid character 'X' at position 39"),
        (["score", m, tmp / "short.fa"], "record 'shorty' has length 4 but the model takes 40 bp"),
        (["score", m, files / "regions.bed"], "BED input needs --genome"),
        (["score", m, tmp / "far.bed", "--genome", files / "genome.fa"], "falls outside chr2"),
        (["score", m, fa, "--task", "2"], "--task 2 is out of range: the model has 2 outputs"),
        (["score", m, fa, "--reference", "frequency", "--background", "0.5,0.5,0.5"], "needs 4 values"),
        (["score", m, fa, "--reference", "frequency", "--background", "0.5,0.5,0.5,0.5"], "sums to 2"),
        (["score", m, fa, "--reference", tmp / "short.fa"], "record 'shorty' has length 4"),
    ]


def test_bad_input_is_one_line_exit_1_and_no_output(files, tmp_path):
    for args, message in _bad_inputs(files, tmp_path):
        out = tmp_path / "never.h5"
        result = run(args + ["--out", out])
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, (message, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output
        assert not out.exists() and not list(tmp_path.glob(".never*")) and not (tmp_path / "never.tsv").exists()


def test_interrupted_run_keeps_only_its_completed_chunks(files, tmp_path):
    """Ctrl-C after a chunk is on disk keeps OUT.partial for --resume; nothing else (TSV, TF-MoDISco files)."""
    out = tmp_path / "cut.h5"
    request = pipeline.build_request(str(files / "model.h5"), str(files / "in.fa"), out=out, n_refs=2,
                                     modisco=str(tmp_path / "mod"))
    plan = pipeline.prepare(request, lambda n: [0])

    def interrupt(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipeline.run(plan, interrupt)
    assert [p.name for p in tmp_path.iterdir()] == ["cut.h5.partial"]
    # --resume: the completed rows are reported as resumed, not as scored (a resumed run's rate counted them)
    scored, resumed = [], []
    again = dataclasses.replace(request, scale=dataclasses.replace(request.scale, resume=True))
    assert pipeline.run(pipeline.prepare(again, lambda n: [0]), scored.append, resumed.append).n == 9
    assert (sum(resumed), sum(scored)) == (9, 0)


def test_plan_is_frozen_and_running_it_twice_gives_the_same_file(files, tmp_path):
    out = tmp_path / "twice.h5"
    request = pipeline.build_request(str(files / "model.h5"), str(files / "in.fa"), out=out, n_refs=3, seed=5,
                                     chunk_size=4)
    plan = pipeline.prepare(request, lambda n: [0, 1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.tasks = (0,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.n_refs = 4
    with pytest.raises(TypeError):
        plan.extra["x"] = np.zeros(1)
    assert (plan.rows, plan.chunk, plan.tasks, plan.references.per_input) == (range(9), 4, (0, 1), 3)
    runs = []
    for _ in range(2):
        assert pipeline.run(plan).n == 9
        with h5py.File(out) as f:
            runs.append({key: f[key][()] for key in ("contrib", "hypothetical", "delta", "prediction")})
    for key, value in runs[0].items():
        assert np.array_equal(value, runs[1][key]), key


def test_reference_spec_parses_the_option_once_and_counts_references_in_one_place(files, tmp_path):
    refs = tmp_path / "refs.fa"
    rng = np.random.default_rng(3)
    refs.write_text("".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), LENGTH))}\n" for i in range(18)))
    spec = ReferenceSpec.parse(str(refs), refs_per_input=2)
    assert (spec.kind, spec.path, spec.given) == ("given", str(refs), None)  # read once the input is known
    loaded = spec.for_input(LENGTH, 9, composition=lambda: pytest.fail("not a frequency reference"))
    assert loaded.given.shape == (9, 2, LENGTH, 4) and loaded.per_input == 2 and loaded.name == str(refs)
    assert ReferenceSpec.parse(n_refs=7).per_input == 7
    frequency = ReferenceSpec.parse("frequency").for_input(LENGTH, 9, composition=lambda: np.full(4, 0.25))
    assert frequency.per_input == 1 and np.array_equal(frequency.background, np.full(4, 0.25))
    assert ReferenceSpec.parse(method="ism") == ReferenceSpec("zeros")
    with pytest.raises(SeqliftError, match="--seed applies to --reference shuffle only"):
        ReferenceSpec.parse("zeros", seed=1)
    with pytest.raises(SeqliftError, match="--n-refs does nothing with --method saliency"):
        ReferenceSpec.parse(n_refs=3, method="saliency")


def test_multi_output_model_needs_and_takes_output(files, tmp_path):
    inp = keras.Input((LENGTH, 4))
    h = layers.Conv1D(4, 5, padding="same", activation="relu")(inp)
    profile = layers.Flatten(name="profile")(layers.Conv1D(1, 3, padding="same")(h))
    counts = layers.Dense(1, name="counts")(layers.GlobalAveragePooling1D()(h))
    keras.Model(inp, [profile, counts]).save(tmp_path / "two.keras")
    bad = run(["score", tmp_path / "two.keras", files / "in.fa", "--out", tmp_path / "x.h5"])
    assert bad.exit_code == 1 and "choose one with output= (--output)" in bad.stderr
    good = run(["score", tmp_path / "two.keras", files / "in.fa", "--out", tmp_path / "c.h5", "--output", "counts",
                "--n-refs", 2])
    assert good.exit_code == 0, good.output
    with h5py.File(tmp_path / "c.h5") as f:
        assert f.attrs["output"] == "counts" and f["contrib"].shape == (9, LENGTH, 4)


def test_batch_size_auto_on_a_gpu_fits_the_devices_free_memory(files, monkeypatch):
    """On a GPU the step's activations go to the device: auto fits them in its free memory, the references
    in the host's; a given --batch-size past the device's memory is refused naming the GPU."""
    from seqlift import backend, scale
    from seqlift.scoring import explainer_for_sequences

    explainer = explainer_for_sequences(str(files / "model.h5"))
    per_sequence = 20 * explainer.bytes_per_pair()
    monkeypatch.setattr(backend, "gpu_available", lambda: True)
    monkeypatch.setattr(scale, "available_memory", lambda: 2**40)
    monkeypatch.setattr(backend, "gpu_free_memory", lambda: 10 * per_sequence)
    assert scale.batch_size(explainer, 40, 20, None, 10**6, 64) == int(scale.MEMORY_FRACTION * 10)
    monkeypatch.setattr(backend, "gpu_free_memory", lambda: 2**40)
    assert scale.batch_size(explainer, 40, 20, None, 10**6, 64) == 4096 // 20  # the GPU's default pairs
    monkeypatch.setattr(backend, "gpu_free_memory", lambda: per_sequence // 2)
    assert scale.batch_size(explainer, 40, 20, None, 10**6, 64) == 1  # at least one sequence: never refused
    with pytest.raises(SeqliftError, match="--batch-size 4 needs about .* GiB on the GPU but"):
        scale.batch_size(explainer, 40, 20, 4, 10**6, 64)
    monkeypatch.setattr(backend, "gpu_free_memory", lambda: None)  # a driver that cannot say: the default
    assert scale.batch_size(explainer, 40, 20, None, 10**6, 64) == 4096 // 20


def test_several_heads_in_one_run_write_what_one_run_per_head_writes(files, tmp_path):
    """--output profile --target profile --output counts --target sum: one pass, one file per head, each
    identical (every dataset, every attribute) to the file a run for that head alone writes."""
    model = profile_and_counts(tmp_path / "heads.keras", LENGTH)
    common = ["score", model, files / "in.fa", "--n-refs", 3, "--seed", 5, "--quiet"]
    both = run(common + ["--output", "profile", "--target", "profile", "--output", "counts", "--target", "sum",
                         "--out", tmp_path / "both.h5", "--modisco", tmp_path / "m", "--logo", tmp_path / "l.png"])
    assert both.exit_code == 0, both.output
    assert (tmp_path / "l.profile.png").stat().st_size > 0 and (tmp_path / "l.counts.png").stat().st_size > 0
    for head, target in (("profile", "profile"), ("counts", "sum")):
        alone = run(common + ["--output", head, "--target", target, "--out", tmp_path / f"{head}.h5"])
        assert alone.exit_code == 0, alone.output
        with h5py.File(tmp_path / f"both.{head}.h5") as f, h5py.File(tmp_path / f"{head}.h5") as g:
            assert sorted(f) == sorted(g) and f.attrs["output"] == head and f.attrs["target"] == target
            for key in g:
                np.testing.assert_array_equal(f[key][()], g[key][()], err_msg=key)
            assert {k: str(v) for k, v in f.attrs.items()} == {k: str(v) for k, v in g.attrs.items()}
        assert (tmp_path / f"both.{head}.tsv").read_text() == (tmp_path / f"{head}.tsv").read_text()
        assert (tmp_path / f"m.{head}_hyp.npz").exists() and (tmp_path / f"m.{head}_ohe.npz").exists()
    # one output explained twice: the target names the files too
    twice = run(common + ["--output", "profile", "--target", "profile", "--target", "sum", "--out", tmp_path / "t.h5"])
    assert twice.exit_code == 0, twice.output
    assert (tmp_path / "t.profile.profile.h5").exists() and (tmp_path / "t.profile.sum.h5").exists()
