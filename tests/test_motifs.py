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
    result = CliRunner().invoke(cli, ["motifs", str(shipped_scores), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "motifs.tsv", sep="\t")
    found = set(table.loc[table["q_value"] < 0.05, "best_match"])
    assert {"GATA1_disc1", "TAL1_known1"} <= found
    for name in ["motifs.meme", "report.html", "modisco_results.h5", f"{table.pattern[0]}.cwm.png"]:
        assert (out / name).exists()
    assert "GATA1_disc1" in (out / "report.html").read_text()


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
    result = runner.invoke(cli, ["motifs", str(tmp_path / "n.h5"), "--out", str(tmp_path / "m")])
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
    motifs_mod._seqlet_bed([pattern], tmp_path, np.array(["chr1:100-120", "chr2:50-70"]))
    assert (tmp_path / "seqlets.bed").read_text().splitlines() == [
        "chr1\t102\t106\tpos_pattern_0\t0\t-", "chr2\t55\t59\tpos_pattern_0\t0\t+"]
    plain = tmp_path / "plain"
    plain.mkdir()
    motifs_mod._seqlet_bed([pattern], plain, np.array(["a", "b"]))
    assert not (plain / "seqlets.bed").exists()  # names are not coordinates: no BED


def test_motifs_meme_records_each_patterns_seqlet_count(tmp_path):
    gata, tal = sim_mod.load_motif("GATA1"), sim_mod.load_motif("TAL1")
    patterns = [motifs_mod.Pattern("pos_pattern_0", "pos", gata, gata - 0.25, seqlets=[(i, 0, 8, False) for i in range(7)],
                                   core=(0, len(gata))),
                motifs_mod.Pattern("pos_pattern_1", "pos", tal, tal - 0.25, seqlets=[(0, 0, 8, True)] * 300,
                                   core=(0, len(tal)))]
    motifs_mod.write_outputs(patterns, tmp_path, np.array(["s0"] + [f"s{i}" for i in range(1, 7)]), 0, None)
    headers = [line for line in (tmp_path / "motifs.meme").read_text().splitlines() if line.startswith("letter-")]
    assert [h.split("nsites= ")[1].split()[0] for h in headers] == ["7", "300"]
    report = (tmp_path / "report.html").read_text()  # self-contained: the logos travel inside it
    assert report.count("src='data:image/png;base64,iVBOR") == 4 and "src='pos_pattern" not in report
