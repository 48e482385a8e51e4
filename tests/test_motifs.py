"""seqlift motifs: TF-MoDISco-lite + TOMTOM recover the embedded motifs, and nothing where there are none."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from seqlift.cli.main import cli
from seqlift import motifs as motifs_mod
from seqlift import simulation as sim_mod
from seqlift.sequences import write_fasta
from seqlift.simulation.model import build_model


def test_meme_round_trip_and_tomtom_matches_a_motif_to_itself(tmp_path):
    from memelite.io import read_meme, write_meme

    gata, tal = sim_mod.load_motif("GATA1"), sim_mod.load_motif("TAL1")
    write_meme(str(tmp_path / "db.meme"), {"GATA1": gata.T, "TAL1": tal.T})
    back = read_meme(str(tmp_path / "db.meme"))
    np.testing.assert_allclose(back["GATA1"], gata.T, atol=1e-6)
    pattern = motifs_mod.Pattern("pos_pattern_0", "pos", gata, gata - 0.25, core=(0, len(gata)))
    motifs_mod.match([pattern], motifs_mod.read_motif_database(tmp_path / "db.meme"))
    assert pattern.matches[0][0] == "GATA1" and pattern.matches[0][2] < 0.05


def test_trim_core():
    cwm = np.zeros((10, 4))
    cwm[3:6, 0] = [0.5, 1.0, 0.4]
    cwm[8, 1] = 0.1
    assert motifs_mod.trim_core(cwm) == (3, 6)


def test_the_modisco_command_and_package_are_modisco_lites():
    """With every extra installed (CI installs them before this tier), `modisco` is still modisco-lite's: bpnet-lite's
    declared dependency, the old modisco 2.x, overwrote its files and its command (README: bpnet-lite --no-deps)."""
    from importlib import metadata

    commands = metadata.entry_points(group="console_scripts", name="modisco")
    assert commands and {c.dist.name for c in commands} == {"modisco-lite"}, [(c.dist.name, c.value) for c in commands]
    owners = {dist.metadata["Name"] for dist in metadata.distributions()
              if any(str(f).startswith(("modiscolite/", "modisco/")) for f in dist.files or ())}
    assert owners == {"modisco-lite"}, owners


@pytest.fixture(scope="module")
def shipped_scores(tmp_path_factory):
    d = tmp_path_factory.mktemp("motifs")
    data = sim_mod.data_dir()
    result = CliRunner().invoke(cli, ["score", str(data / "model.h5"), str(data / "test.fa"), "--out", str(d / "s.h5"),
                                      "--n-refs", "10", "--quiet"])
    assert result.exit_code == 0, result.output
    return d / "s.h5"


@pytest.mark.slow
def test_modisco_recovers_both_embedded_motifs(shipped_scores, tmp_path):
    out = tmp_path / "m"
    result = CliRunner().invoke(cli, ["motifs", str(shipped_scores), "--out", str(out), "--motif-db",
                                      str(sim_mod.motif_database())])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "motifs.tsv", sep="\t")
    found = set(table.loc[table["q_value"] < 0.05, "best_match"])
    assert {"GATA1_disc1", "TAL1_known1"} <= found
    for name in ["motifs.meme", "report.html", "modisco_results.h5", f"{table.pattern[0]}.cwm.png"]:
        assert (out / name).exists()
    assert "GATA1_disc1" in (out / "report.html").read_text()


@pytest.mark.slow
def test_modisco_lites_own_command_reads_the_chrombpnet_export(shipped_scores, tmp_path):
    """`modisco motifs -i` (modisco-lite's CLI, as chrombpnet users run it) on `seqlift export`'s file."""
    import shutil
    import subprocess

    import h5py

    modisco = shutil.which("modisco")
    assert modisco, "modisco-lite's command is not on PATH (pip install modisco-lite)"
    result = CliRunner().invoke(cli, ["export", str(shipped_scores), "--out", str(tmp_path / "c.h5")])
    assert result.exit_code == 0, result.output
    done = subprocess.run([modisco, "motifs", "-i", str(tmp_path / "c.h5"), "-n", "2000", "-w", "200",
                           "-o", str(tmp_path / "modisco.h5")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with h5py.File(tmp_path / "modisco.h5") as f:
        assert len(f["pos_patterns"]) >= 2  # GATA1 and TAL1 at least


@pytest.mark.slow
def test_a_model_that_learned_no_motif_recovers_none(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (600, 200))]
    model = build_model(200)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, rng.integers(0, 2, (600, 3)).astype("float32"), epochs=2, batch_size=64, verbose=0)
    model.save(tmp_path / "noise.h5")
    write_fasta(tmp_path / "noise.fa", [f"sim{i}" for i in range(300)],
                        ["".join("ACGT"[c] for c in row.argmax(1)) for row in x[:300]])
    runner = CliRunner()
    assert runner.invoke(cli, ["score", str(tmp_path / "noise.h5"), str(tmp_path / "noise.fa"), "--out",
                               str(tmp_path / "n.h5"), "--n-refs", "5", "--quiet"]).exit_code == 0
    result = runner.invoke(cli, ["motifs", str(tmp_path / "n.h5"), "--out", str(tmp_path / "m"), "--motif-db",
                                 str(sim_mod.motif_database())])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "m" / "motifs.tsv", sep="\t")
    assert not (table["q_value"] < 0.05).any(), table


def test_scores_of_one_sign_are_a_clear_error(tmp_path):
    one_hot = np.eye(4, dtype=np.float32)[np.zeros((3, 30), int)]
    with pytest.raises(motifs_mod.SeqliftError, match="needs scores of both signs"):
        motifs_mod.run_modisco(one_hot, np.abs(np.random.default_rng(0).normal(size=(3, 30, 4))))


def test_seqlets_bed_uses_genome_coordinates(tmp_path):
    pattern = motifs_mod.Pattern("pos_pattern_0", "pos", np.full((4, 4), 0.25), np.zeros((4, 4)),
                                 seqlets=[(1, 5, 9, False), (0, 2, 6, True)], core=(0, 4))
    placement = motifs_mod.genome_placement(np.array(["chr1:100-120", "chr2:50-70"]), 20)
    motifs_mod._seqlet_bed([pattern], tmp_path, placement, 20)
    assert (tmp_path / "seqlets.bed").read_text().splitlines() == [
        "chr1\t102\t106\tpos_pattern_0\t0\t-", "chr2\t55\t59\tpos_pattern_0\t0\t+"]
    assert motifs_mod.genome_placement(np.array(["a", "b"]), 20) is None  # names are not coordinates: no BED
    assert motifs_mod.genome_placement(np.array(["chr1\tx:100-120"]), 20) is None  # white space: not a chromosome


def test_seqlets_bed_maps_minus_strand_regions_back_onto_the_plus_strand(tmp_path):
    # A BED-scored file keeps each region's chrom, start and strand; a '-' region was scored reverse-complemented,
    # so its seqlet at [5, 9) of 20 bp lies at [20 - 9, 20 - 5) = [11, 15) on the plus strand, strand flipped.
    pattern = motifs_mod.Pattern("pos_pattern_0", "pos", np.full((4, 4), 0.25), np.zeros((4, 4)),
                                 seqlets=[(0, 5, 9, False)], core=(0, 4))
    motifs_mod._seqlet_bed([pattern], tmp_path, motifs_mod.genome_placement(["peak1"], 20, [("chr3", 1000, "-")]), 20)
    assert (tmp_path / "seqlets.bed").read_text().splitlines() == ["chr3\t1011\t1015\tpos_pattern_0\t0\t-"]


def test_names_whose_span_is_not_the_sequence_length_are_refused():
    with pytest.raises(motifs_mod.SeqliftError, match="spans 30 bp but the sequence has 20"):
        motifs_mod.genome_placement(np.array(["chr1:100-130"]), 20)


def test_motifs_meme_records_each_patterns_seqlet_count(tmp_path):
    gata, tal = sim_mod.load_motif("GATA1"), sim_mod.load_motif("TAL1")
    patterns = [motifs_mod.Pattern("pos_pattern_0", "pos", gata, gata - 0.25, seqlets=[(i, 0, 8, False) for i in range(7)],
                                   core=(0, len(gata))),
                motifs_mod.Pattern("pos_pattern_1", "pos", tal, tal - 0.25, seqlets=[(0, 0, 8, True)] * 300,
                                   core=(0, len(tal)))]
    motifs_mod.write_outputs(patterns, tmp_path, [f"s{i}" for i in range(7)], None, len(gata), 0, None)
    headers = [line for line in (tmp_path / "motifs.meme").read_text().splitlines() if line.startswith("letter-")]
    assert [h.split("nsites= ")[1].split()[0] for h in headers] == ["7", "300"]
    report = (tmp_path / "report.html").read_text()  # self-contained: the logos travel inside it
    assert report.count("src='data:image/png;base64,iVBOR") == 4 and "src='pos_pattern" not in report


def _modisco_pattern(ppm, cwm, seqlets):
    """What modisco-lite returns for a pattern: sequence (PPM), contrib_scores (CWM) and seqlets."""
    from types import SimpleNamespace

    return SimpleNamespace(sequence=ppm, contrib_scores=cwm, seqlets=[
        SimpleNamespace(example_idx=i, start=start, end=end, is_revcomp=rc) for i, start, end, rc in seqlets])


def test_a_pattern_reads_the_same_whichever_strand_modisco_aligned_it_on():
    from seqlift.sequences import reverse_complement

    gata = sim_mod.load_motif("GATA1")
    ppm = np.vstack([np.full((3, 4), 0.25), gata, np.full((3, 4), 0.25)])
    cwm = (ppm - 0.25) * 2
    forward = _modisco_pattern(ppm, cwm, [(0, 10, 26, False), (4, 2, 18, True)])
    reverse = _modisco_pattern(reverse_complement(ppm), reverse_complement(cwm), [(0, 10, 26, True), (4, 2, 18, False)])
    (a,), (b,) = motifs_mod.to_patterns([forward], [], 5), motifs_mod.to_patterns([reverse], [], 5)
    # the core reads CAGATAAGG on one strand and CCTTATCTG on the other: the first sorts first
    assert a.consensus == b.consensus == "CAGATAAGG" and a.reverse_complement().consensus == "CCTTATCTG"
    np.testing.assert_array_equal(a.ppm, b.ppm)
    np.testing.assert_array_equal(a.cwm, b.cwm)
    assert a.core == b.core and a.seqlets == b.seqlets
    assert {s[3] for s in a.seqlets if s[0] == 0} != {s[3] for s in a.seqlets if s[0] == 4}  # strands kept apart
    assert a.seqlets[0][1:3] == (15, 31)  # shifted by the window's offset


def test_motifs_meme_reads_back_and_each_call_writes_only_its_own_patterns(tmp_path):
    from memelite.io import read_meme

    gata = sim_mod.load_motif("GATA1")
    pattern = motifs_mod.Pattern("pos_pattern_0", "pos", gata, gata - 0.25, seqlets=[(0, 0, 10, False)] * 3,
                                 core=(1, 9))
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        motifs_mod.write_outputs([pattern], tmp_path / folder, ["s0"], None, 8, 0, None)
    text = (tmp_path / "b" / "motifs.meme").read_text()
    assert text.count("MOTIF ") == 1 and "nsites= 3" in text
    back = read_meme(str(tmp_path / "b" / "motifs.meme"))
    np.testing.assert_allclose(back["pos_pattern_0"], gata[1:9].T, atol=1e-6)
    (tmp_path / "none").mkdir()
    motifs_mod.write_outputs([], tmp_path / "none", ["s0"], None, 8, 0, None)
    assert read_meme(str(tmp_path / "none" / "motifs.meme")) == {}


def test_quiet_silences_tomtoms_small_database_warning_and_only_then(tmp_path, monkeypatch):
    import warnings

    gata = sim_mod.load_motif("GATA1")

    def discover(scores, outdir, motif_db=None, **kwargs):
        pattern = motifs_mod.Pattern("pos_pattern_0", "pos", gata, gata - 0.25, core=(0, len(gata)))
        motifs_mod.match([pattern], motifs_mod.read_motif_database(motif_db))  # two motifs: TOMTOM warns
        return pd.DataFrame([{"pattern": "pos_pattern_0", "n_seqlets": 0, "consensus": pattern.consensus,
                              "best_match": pattern.matches[0][0], "q_value": pattern.matches[0][2]}])

    monkeypatch.setattr(motifs_mod, "discover_motifs", discover)
    args = ["motifs", str(tmp_path / "s.h5"), "--out", str(tmp_path / "m"), "--motif-db", str(sim_mod.motif_database())]
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # shown however often this process has warned before
        loud = CliRunner().invoke(cli, args)
        quiet = CliRunner().invoke(cli, [*args, "--quiet"])
    assert loud.exit_code == 0 and quiet.exit_code == 0, loud.output + quiet.output
    assert "seqlift: warning: tomtom was given 2 target motifs" in loud.stderr and "GATA1_disc1" in loud.stderr
    assert quiet.stderr == ""


@pytest.fixture
def found_gata1(monkeypatch):
    """TF-MoDISco-lite stubbed to find one pattern, GATA1's matrix with 3 bp of flat flank each side, in
    sequences 0 and 1 (its results file is not written)."""
    import modiscolite

    gata = sim_mod.load_motif("GATA1")
    ppm = np.vstack([np.full((3, 4), 0.25), gata, np.full((3, 4), 0.25)])
    pattern = _modisco_pattern(ppm, (ppm - 0.25) * 2, [(0, 10, 26, False), (1, 20, 36, False)])
    monkeypatch.setattr(modiscolite.tfmodisco, "TFMoDISco", lambda **kwargs: ([pattern], []))
    monkeypatch.setattr(modiscolite.io, "save_hdf5", lambda path, *args: open(path, "wb").close())


def test_patterns_are_named_against_jaspar_out_of_the_box_or_a_meme_file_or_not_at_all(found_gata1, tmp_path,
                                                                                        write_scores):
    """Without --motif-db, JASPAR 2024 CORE (vertebrates, shipped by pyjaspar: no download) names the stubbed GATA1
    pattern; a MEME file names it from there; --motif-db none leaves it unnamed, and stderr says which."""
    from seqlift.cli.main import motifs as motifs_command

    contrib = np.random.default_rng(0).normal(size=(4, 60, 4)).astype(np.float32)
    scores = write_scores(tmp_path / "s.h5", [f"sim{i:05d}" for i in range(4)], contrib)
    jaspar = CliRunner().invoke(cli, ["motifs", str(scores), "--out", str(tmp_path / "jaspar")])
    assert jaspar.exit_code == 0, jaspar.output
    assert "naming patterns against JASPAR2024 CORE (vertebrates)" in jaspar.stderr
    table = pd.read_csv(tmp_path / "jaspar" / "motifs.tsv", sep="\t")
    assert table["best_match"][0].startswith("GATA") and table["q_value"][0] < 0.05, table.iloc[0].to_dict()
    assert "JASPAR2024 CORE (vertebrates, 879 motifs" in (tmp_path / "jaspar" / "report.html").read_text()
    bare = CliRunner().invoke(cli, ["motifs", str(scores), "--out", str(tmp_path / "bare"), "--motif-db", "none"])
    assert bare.exit_code == 0 and "--motif-db none: patterns are not named" in bare.stderr, bare.output
    table = pd.read_csv(tmp_path / "bare" / "motifs.tsv", sep="\t")
    assert list(table["pattern"]) == ["pos_pattern_0"] and table["best_match"].isna().all()
    assert table["q_value"].isna().all() and "no database" in (tmp_path / "bare" / "report.html").read_text()
    quiet = CliRunner().invoke(cli, ["motifs", str(scores), "--out", str(tmp_path / "quiet"), "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.output
    named = CliRunner().invoke(cli, ["motifs", str(scores), "--out", str(tmp_path / "named"), "--quiet",
                                     "--motif-db", str(sim_mod.motif_database())])
    assert named.exit_code == 0, named.output
    assert pd.read_csv(tmp_path / "named" / "motifs.tsv", sep="\t")["best_match"].tolist() == ["GATA1_disc1"]
    taxa = next(p for p in motifs_command.params if p.name == "jaspar_taxon").type.choices
    assert tuple(taxa) == motifs_mod.JASPAR_TAXA


def test_seqlet_window_and_flank_reach_modisco_lite(monkeypatch, tmp_path, write_scores):
    """Defaults 21/10 (modisco-lite's library); --seqlet-window 20 --seqlet-flank 5 are its command's -z/-f."""
    import modiscolite

    seen = []

    def fake(**kwargs):
        seen.append((kwargs["sliding_window_size"], kwargs["flank_size"]))
        return [], []

    monkeypatch.setattr(modiscolite.tfmodisco, "TFMoDISco", fake)
    contrib = np.random.default_rng(0).normal(size=(4, 60, 4)).astype(np.float32)
    scores = write_scores(tmp_path / "s.h5", ["a", "b", "c", "d"], contrib)
    for extra, out in (([], "m1"), (["--seqlet-window", "20", "--seqlet-flank", "5"], "m2")):
        result = CliRunner().invoke(cli, ["motifs", str(scores), "--out", str(tmp_path / out), "--quiet", *extra])
        assert result.exit_code == 0, result.output
    assert seen == [(21, 10), (20, 5)]


def test_a_jaspar_taxon_with_another_database_is_refused_before_any_work(tmp_path):
    # --motif-db none (or a MEME file) with --jaspar-taxon: the taxon was silently ignored
    for database in ("none", str(sim_mod.motif_database())):
        result = CliRunner().invoke(cli, ["motifs", str(tmp_path / "absent.h5"), "--out", str(tmp_path / "m"),
                                          "--motif-db", database, "--jaspar-taxon", "plants"])
        assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
        assert (f"--jaspar-taxon plants: chooses among JASPAR's motifs, but --motif-db is {database}; leave "
                "--jaspar-taxon out, or give --motif-db jaspar") in result.stderr
        assert not (tmp_path / "m").exists()
