"""seqlift hits: Fi-NeMo's hits of known CWMs planted in hand-built score files, their coordinates on the genome
(plus and minus windows), the tables, and every misuse as one line."""

import json
from types import SimpleNamespace

import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from seqlift.cli.main import cli
from seqlift.outputs import Outputs
from seqlift.scorefile import ScoreWriter
from seqlift.scoring import Scores

pytest.importorskip("finemo", reason="seqlift hits needs Fi-NeMo: pip install 'seqlift[hits]'")

LENGTH, WIDTH = 80, 8
# Two motifs, every position informative (their whole width is the core): the CWM's value at its consensus base.
# Each is written on the strand seqlift shows it (its consensus sorts before its reverse complement's), and that is
# the strand hits are reported on, whichever way modisco-lite stored it.
CONSENSUS = {"pos_pattern_0": "AGCTTATC", "pos_pattern_1": "AACAGGTG"}
STRENGTH = np.array([1.0, 1.4, 1.8, 2.0, 2.0, 1.8, 1.4, 1.0])
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def cwm(consensus: str) -> np.ndarray:
    """``(W, 4)``: the consensus base's contribution at each position, a little against the others."""
    matrix = np.full((len(consensus), 4), -0.05)
    for i, base in enumerate(consensus):
        matrix[i, "ACGT".index(base)] = STRENGTH[i % len(STRENGTH)]
    return matrix


def write_modisco(path, consensus=CONSENSUS, stored_reversed=("pos_pattern_0",), flank=0):
    """A modisco-lite results file holding these patterns (their CWMs and, as PPMs, their consensus), those in
    ``stored_reversed`` on the other strand, as modisco-lite may align them; ``flank`` uninformative positions
    each side (TF-MoDISco's patterns carry 10 or more), which trimming leaves out of the core."""
    with h5py.File(path, "w") as h5:
        for name, letters in consensus.items():
            group = h5.create_group(f"pos_patterns/{name.removeprefix('pos_')}")
            matrix, ppm = cwm(letters), np.eye(4)[["ACGT".index(b) for b in letters]] * 0.9 + 0.025
            matrix = np.pad(matrix, ((flank, flank), (0, 0)), constant_values=0.001)
            ppm = np.pad(ppm, ((flank, flank), (0, 0)), constant_values=0.25)
            flip = (lambda m: m[::-1, ::-1]) if name in stored_reversed else (lambda m: m)  # noqa: E731
            group["contrib_scores"], group["sequence"] = flip(matrix), flip(ppm)
    return path


# Planted instances: (sequence, motif, start, strand); sequence 2 holds two overlapping instances.
PLANTED = [(0, "pos_pattern_0", 10, "+"), (0, "pos_pattern_1", 50, "-"), (1, "pos_pattern_1", 30, "+"),
           (2, "pos_pattern_0", 20, "+"), (2, "pos_pattern_1", 25, "+"), (3, "pos_pattern_0", 60, "-")]


def plant(planted, n, seed=0):
    """``(one_hot, contrib)`` ``(n, LENGTH, 4)``: random sequences whose projected contributions are the
    ``planted`` instances' CWM values at their bases, with faint noise elsewhere."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (n, LENGTH))
    contrib_at = rng.normal(0, 0.01, (n, LENGTH))
    for i, motif, start, strand in planted:
        letters = CONSENSUS[motif] if strand == "+" else CONSENSUS[motif][::-1].translate(COMPLEMENT)
        strength = STRENGTH if strand == "+" else STRENGTH[::-1]
        for k, base in enumerate(letters):
            codes[i, start + k] = "ACGT".index(base)
            contrib_at[i, start + k] = strength[k]
    one_hot = np.eye(4, dtype=np.float32)[codes]
    return one_hot, (one_hot * contrib_at[..., None]).astype(np.float32)


def planted_scores(path, regions=None, n=5, seed=0):
    """A score file of ``n`` sequences holding the PLANTED instances (sequence 4 holds none)."""
    one_hot, contrib = plant(PLANTED, n, seed)
    contrib = contrib[:, None]
    zeros = np.zeros((n, 1), np.float32)
    with Outputs() as outputs:
        writer = ScoreWriter(outputs, path, LENGTH, [0], {"tasks": np.array([0]), "method": "deeplift"},
                             regions=regions is not None)
        writer.append([f"seq{i}" for i in range(n)], one_hot, Scores(contrib, contrib * 2, zeros, zeros, zeros),
                      regions)
        writer.close()
    return path


@pytest.fixture(scope="module")
def called(tmp_path_factory):
    d = tmp_path_factory.mktemp("hits")
    regions = [SimpleNamespace(chrom="chr1", start=1000 + 100 * i, strand="-" if i % 2 else "+") for i in range(5)]
    scores = planted_scores(d / "scores.h5", regions)
    motifs = write_modisco(d / "modisco_results.h5")
    result = invoke("hits", scores, "--motifs", motifs, "--out", d / "out", "--quiet")
    assert result.exit_code == 0, result.output
    return d, regions


def test_every_planted_instance_is_found_on_its_strand_and_nothing_else(called):
    d, _ = called
    hits = pd.read_csv(d / "out" / "hits.tsv", sep="\t")
    found = sorted(zip(hits["index"], hits["motif"], hits["seq_start"], hits["seq_strand"]))
    assert found == sorted(PLANTED)
    assert (hits["seq_end"] - hits["seq_start"] == WIDTH).all()
    assert (hits["correlation"] > 0.8).all() and (hits["coefficient"] > 0).all()  # 0.87 where two overlap
    importance = hits.set_index(["index", "seq_start"])["importance"]
    assert importance[(1, 30)] == pytest.approx(STRENGTH.sum(), rel=0.02)  # Σ|contribution| over the core


def test_instances_at_either_end_of_a_sequence_are_found_though_the_pattern_has_flanks(tmp_path):
    # Fi-NeMo places a pattern only where its whole width fits: with 10 bp flanks, a core within 10 bp of an end was
    # never called (recall of the shipped example's planted instances 0.757) until the sequences were padded
    at_ends = [(0, "pos_pattern_0", 0, "+"), (0, "pos_pattern_1", LENGTH - WIDTH, "-"), (1, "pos_pattern_1", 3, "+")]
    one_hot, contrib = plant(at_ends, 2)
    zeros = np.zeros((2, 1), np.float32)
    with Outputs() as outputs:
        writer = ScoreWriter(outputs, tmp_path / "s.h5", LENGTH, [0], {"tasks": np.array([0])})
        writer.append(["e0", "e1"], one_hot, Scores(contrib[:, None], contrib[:, None], zeros, zeros, zeros))
        writer.close()
    result = invoke("hits", tmp_path / "s.h5", "--motifs", write_modisco(tmp_path / "m.h5", flank=10), "--out",
                    tmp_path / "out")
    assert result.exit_code == 0, result.output
    hits = pd.read_csv(tmp_path / "out" / "hits.tsv", sep="\t")
    assert sorted(zip(hits["index"], hits["motif"], hits["seq_start"], hits["seq_strand"])) == sorted(at_ends)


def test_bed_coordinates_are_base_exact_on_plus_and_minus_windows(called):
    d, regions = called
    bed = pd.read_csv(d / "out" / "hits.bed", sep="\t", header=None,
                      names=["chrom", "start", "end", "motif", "score", "strand"])
    expected = []
    for i, motif, start, strand in PLANTED:
        offset = regions[i].start
        if regions[i].strand == "-":  # scored on the reverse complement: mirrored, strand flipped
            expected.append(("chr1", offset + LENGTH - (start + WIDTH), offset + LENGTH - start, motif,
                             "+" if strand == "-" else "-"))
        else:
            expected.append(("chr1", offset + start, offset + start + WIDTH, motif, strand))
    assert sorted(zip(bed["chrom"], bed["start"], bed["end"], bed["motif"], bed["strand"])) == sorted(expected)
    assert list(bed["start"]) == sorted(bed["start"])  # sorted, as IGV and tabix want
    assert bed["score"].between(0, 1000).all()


def test_summary_cooccurrence_and_spacing(called):
    d, _ = called
    summary = pd.read_csv(d / "out" / "motif_summary.tsv", sep="\t").set_index("motif")
    assert summary.loc["pos_pattern_0", "instances"] == 3 and summary.loc["pos_pattern_1", "instances"] == 3
    assert summary.loc["pos_pattern_0", "sequences"] == 3
    assert summary.loc["pos_pattern_1", "fraction_of_sequences"] == pytest.approx(3 / 5)
    together = pd.read_csv(d / "out" / "cooccurrence.tsv", sep="\t", index_col=0)
    assert together.loc["pos_pattern_0", "pos_pattern_1"] == 2  # sequences 0 and 2
    spacing = pd.read_csv(d / "out" / "spacing.tsv", sep="\t")
    pair = spacing[(spacing["motif_a"] == "pos_pattern_0") & (spacing["motif_b"] == "pos_pattern_1")]
    assert sorted(zip(pair["distance"], pair["count"])) == [(5, 1), (40, 1)]
    for png in ("cooccurrence.png", "spacing_pos_pattern_0__pos_pattern_1.png"):
        assert (d / "out" / png).read_bytes()[:4] == b"\x89PNG"


def test_a_meme_file_and_names_without_coordinates(tmp_path):
    from memelite.io import write_meme

    scores = planted_scores(tmp_path / "s.h5")
    ppm = lambda letters: np.eye(4)[["ACGT".index(b) for b in letters]].T * 0.97 + 0.0075  # noqa: E731
    write_meme(str(tmp_path / "m.meme"), {"GATA": ppm(CONSENSUS["pos_pattern_0"]),
                                          "EBOX": ppm(CONSENSUS["pos_pattern_1"])})
    result = invoke("hits", scores, "--motifs", tmp_path / "m.meme", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "no genome coordinates: no hits.bed" in result.stderr and not (tmp_path / "out" / "hits.bed").exists()
    hits = pd.read_csv(tmp_path / "out" / "hits.tsv", sep="\t")
    names = {"pos_pattern_0": "GATA", "pos_pattern_1": "EBOX"}
    found = set(zip(hits["index"], hits["motif"], hits["seq_start"], hits["seq_strand"]))
    assert {(i, names[m], s, strand) for i, m, s, strand in PLANTED} <= found


def test_misuse_is_one_line_and_writes_nothing(called, tmp_path):
    d, _ = called
    scores = d / "scores.h5"
    other = planted_scores(tmp_path / "other.h5", n=6, seed=1)
    (tmp_path / "empty").mkdir()
    wide = write_modisco(tmp_path / "wide.h5", {"pos_pattern_0": "ACGT" * 30})
    folder = motifs_folder(tmp_path / "motifs", index=1, name="not_seq1", start=0)
    no_hypothetical = tmp_path / "nohyp.h5"
    no_hypothetical.write_bytes(other.read_bytes())
    with h5py.File(no_hypothetical, "a") as h5:
        del h5["hypothetical"]
    out = ("--out", tmp_path / "out")
    cases = [
        (["hits", scores, "--motifs", folder, *out], "which"),  # motifs of another score file
        (["hits", scores, "--motifs", tmp_path / "empty", *out], "no motifs.tsv"),
        (["hits", scores, "--motifs", wide, *out], "its motifs are 120 bp wide but the sequences of"),
        (["hits", no_hypothetical, "--motifs", d / "modisco_results.h5", *out], "no 'hypothetical' dataset"),
        (["hits", scores, "--motifs", tmp_path / "none.meme", *out], "not found"),
        (["hits", scores, "--motifs", scores, *out], "holds no patterns"),
        (["hits", scores, "--motifs", d / "modisco_results.h5", "--out", d], "holds this run's input"),
        (["hits", scores, "--motifs", d / "modisco_results.h5", *out, "--task", 3], "task 3 is not in the file"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 1 and message in result.stderr, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()


def test_on_a_variant_file_the_instances_each_variant_destroys_creates_or_keeps(tmp_path):
    # windows of 80 bp, the variant at index 40: variant a breaks a motif over it, b makes one, c keeps one over it
    # and leaves one away from it (not reported); the ref and alt windows are hand-built as seqlift variants writes
    ref_planted = [(0, "pos_pattern_0", 36, "+"), (2, "pos_pattern_1", 38, "-"), (2, "pos_pattern_0", 5, "+")]
    alt_planted = [(1, "pos_pattern_1", 35, "+"), (2, "pos_pattern_1", 38, "-"), (2, "pos_pattern_0", 5, "+")]
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as h5:
        strings = h5py.string_dtype()
        for key, values in (("ids", ["a", "b", "c"]), ("chrom", ["chr1"] * 3), ("ref", ["A", "C", "G"]),
                            ("alt", ["T", "G", "A"])):
            h5[key] = np.array(values, dtype=object).astype(strings)
        h5["pos"] = np.array([1001, 2001, 3001])
        for side, planted in (("ref", ref_planted), ("alt", alt_planted)):
            one_hot, contrib = plant(planted, 3, seed={"ref": 0, "alt": 1}[side])
            h5[f"{side}_one_hot"], h5[f"{side}_contrib"], h5[f"{side}_hypothetical"] = one_hot, contrib, contrib
            h5[f"{side}_prediction"] = contrib.sum((1, 2))
        h5.attrs["variant_index"] = 40
        h5.attrs["tasks"] = np.array([0])
    result = invoke("hits", path, "--motifs", write_modisco(tmp_path / "m.h5"), "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "1 destroyed, 1 created, 1 kept" in result.stderr
    table = pd.read_csv(tmp_path / "out" / "variant_hits.tsv", sep="\t")
    window = {"a": 1000 - 40, "b": 2000 - 40, "c": 3000 - 40}  # 0-based window starts: POS - 1 - 40
    got = sorted(zip(table["variant"], table["motif"], table["strand"], table["start"], table["change"]))
    assert got == [("a", "pos_pattern_0", "+", window["a"] + 36, "destroyed"),
                   ("b", "pos_pattern_1", "+", window["b"] + 35, "created"),
                   ("c", "pos_pattern_1", "-", window["c"] + 38, "kept")]
    kept = table[table["change"] == "kept"].iloc[0]
    assert kept["ref_coefficient"] > 0 and kept["alt_coefficient"] > 0
    assert np.isnan(table[table["change"] == "destroyed"]["alt_coefficient"]).all()
    summary = pd.read_csv(tmp_path / "out" / "variant_hits_summary.tsv", sep="\t", index_col=0)
    assert summary.loc["pos_pattern_0", "destroyed"] == 1 and summary.loc["pos_pattern_1", "created"] == 1


def test_awkward_motif_files_and_options_are_one_line_or_handled(tmp_path):
    """Found by a new-user trial: a name used twice (the last matrix stood for both), a flat matrix (a traceback),
    a name holding '/' or a space (a traceback writing its histogram; a BED split on the space), --lambda nan
    (every position called a hit) and a hits.tsv edited by hand (view took it)."""
    scores = planted_scores(tmp_path / "s.h5")
    ppm = lambda letters: np.eye(4)[["ACGT".index(b) for b in letters]] * 0.97 + 0.0075  # noqa: E731
    meme = lambda motifs: "MEME version 4\n\nALPHABET= ACGT\n\n" + "".join(  # noqa: E731
        f"MOTIF {name}\nletter-probability matrix: alength= 4 w= {len(m)}\n"
        + "".join(" ".join(f"{v:.4f}" for v in row) + "\n" for row in m) + "\n" for name, m in motifs)
    (tmp_path / "twice.meme").write_text(meme([("GATA", ppm("AGCTTATC")), ("GATA", ppm("AACAGGTG"))]))
    (tmp_path / "flat.meme").write_text(meme([("GATA", ppm("AGCTTATC")), ("FLAT", np.full((8, 4), 0.25))]))
    (tmp_path / "odd.meme").write_text(meme([("MA0035.5 GATA1/disc", ppm("AGCTTATC")), ("EBOX", ppm("AACAGGTG"))]))
    cases = [(["--motifs", tmp_path / "twice.meme"], "motif name 'GATA' is used by 2 motifs"),
             (["--motifs", tmp_path / "flat.meme"], "motif 'FLAT' carries no information"),
             (["--motifs", tmp_path / "odd.meme", "--lambda", "nan"], "--lambda nan: must be a number"),
             (["--motifs", tmp_path / "odd.meme", "--lambda", "inf"], "--lambda inf: must be a number")]
    for args, message in cases:
        result = invoke("hits", scores, *args, "--out", tmp_path / "no")
        assert result.exit_code == 1 and message in result.stderr, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "no").exists()
    result = invoke("hits", scores, "--motifs", tmp_path / "odd.meme", "--out", tmp_path / "odd", "--quiet")
    assert result.exit_code == 0, result.output
    assert any(p.name.startswith("spacing_MA0035.5_GATA1_disc") for p in (tmp_path / "odd").iterdir())
    hits = pd.read_csv(tmp_path / "odd" / "hits.tsv", sep="\t")
    assert "MA0035.5 GATA1/disc" in set(hits["motif"])  # the table keeps the name as the database gives it
    hits["seq_start"] = hits["seq_start"].astype(object)
    hits.loc[0, "seq_start"] = "abc"
    hits.to_csv(tmp_path / "odd" / "hits.tsv", sep="\t", index=False)
    view = invoke("view", scores, "--hits", tmp_path / "odd", "--out", tmp_path / "p.html")
    assert view.exit_code == 1 and "hits.tsv line 2: seq_start 'abc' is not a number" in view.stderr, view.output


def test_medians_are_exact_whatever_the_blocks(tmp_path):
    from seqlift.hits import Medians

    rng = np.random.default_rng(0)
    group = np.minimum(rng.integers(0, 6, 5000), 4)  # groups 5 and 6 hold nothing
    values = {"importance": rng.normal(0, 1, 5000).astype(np.float32),
              "coefficient": rng.integers(-3, 3, 5000).astype(np.float32)}  # ties, negatives and zeros
    values["importance"][group == 3] = 0.0
    medians = Medians(tmp_path / "values", 7, tuple(values))
    medians.BLOCK = 777  # passes that cut the file at other places than the blocks added
    for start in range(0, 5000, 1000):
        medians.add(group[start:start + 1000], {key: v[start:start + 1000] for key, v in values.items()})
    found = medians.medians()
    medians.close()
    for key, v in values.items():
        expected = [np.median(v[group == k].astype(np.float64)) if (group == k).any() else np.nan for k in range(7)]
        np.testing.assert_array_equal(found[key], expected)


def test_bed_runs_merge_into_one_sorted_bed_however_many(tmp_path):
    from seqlift.hits import BedRuns

    rng = np.random.default_rng(1)
    blocks = [pd.DataFrame({"chrom": rng.choice(["chr1", "chr2", "chr10"], 40), "start": rng.integers(0, 50, 40),
                            "motif": rng.choice(["A", "B C"], 40), "coefficient": rng.random(40),
                            "strand": rng.choice(["+", "-"], 40)}) for _ in range(9)]
    for block in blocks:
        block["end"] = block["start"] + 8
    runs = BedRuns(tmp_path)
    runs.FAN_IN = 3  # merged twice on the way
    for block in blocks:
        runs.add(block)
    runs.write(tmp_path / "hits.bed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hits.bed"]  # no run left
    bed = pd.read_csv(tmp_path / "hits.bed", sep="\t", header=None,
                      names=["chrom", "start", "end", "motif", "score", "strand"])
    every = pd.concat(blocks, ignore_index=True)
    every["motif"] = every["motif"].str.replace(" ", "_")
    every["score"] = np.rint(1000 * every["coefficient"] / every["coefficient"].max()).astype(np.int64)
    expected = every.sort_values(["chrom", "start", "end", "motif"], kind="stable")
    pd.testing.assert_frame_equal(bed, expected[bed.columns].reset_index(drop=True), check_dtype=False)


def test_memory_does_not_grow_with_the_number_of_hits(tmp_path, monkeypatch):
    # Every hit used to be kept until the end (the BED's rows, three values per hit for the medians): at 100,000
    # sequences that grows with the file. Fi-NeMo is replaced by a stand-in calling 600 hits per chunk of 25.
    import tracemalloc

    from seqlift import hits as hits_mod

    def fit(motifs, contrib, one_hot, lambdas, device=None):
        rng = np.random.default_rng(len(contrib))
        start = rng.integers(0, LENGTH - WIDTH, 600)
        return pd.DataFrame({"index": np.sort(rng.integers(0, len(contrib), 600)), "motif": rng.integers(0, 2, 600),
                             "seq_start": start, "seq_end": start + WIDTH, "seq_strand": rng.choice(["+", "-"], 600),
                             "coefficient": rng.random(600), "correlation": rng.random(600),
                             "importance": rng.random(600)}), 0

    monkeypatch.setattr(hits_mod, "fit_hits", fit)
    monkeypatch.setattr(hits_mod, "_write_spacing", lambda summary, folder: None)  # drawing is not measured here
    # what is bounded by a constant, not by the hits, set to the same small bound at both sizes: the files the BED
    # merge holds open and the records the medians count at a time
    monkeypatch.setattr(hits_mod.BedRuns, "FAN_IN", 4)
    monkeypatch.setattr(hits_mod.Medians, "BLOCK", 2000)
    motifs = write_modisco(tmp_path / "m.h5")
    peaks = {}
    for n in (100, 800):  # 4 and 32 chunks
        regions = [SimpleNamespace(chrom="chr1", start=100 * i, strand="+") for i in range(n)]
        scores = planted_scores(tmp_path / f"s{n}.h5", regions, n=n)
        tracemalloc.start()
        result = hits_mod.call_hits(scores, motifs, tmp_path / f"out{n}", chunk=25, device="cpu")
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert result["hits"] == 600 * n // 25
    assert peaks[800] < peaks[100] + 1_000_000, peaks  # 28 more chunks of 600 hits: not kept
    assert len(pd.read_csv(tmp_path / "out800" / "hits.bed", sep="\t", header=None)) == 600 * 32


def test_force_removes_what_an_earlier_run_wrote_that_this_one_does_not(called, tmp_path):
    # an earlier run on scores with coordinates left hits.bed and a spacing histogram; the new one (no coordinates,
    # one motif) writes neither: with --force they used to stay, beside tables of another run
    d, _ = called
    out = tmp_path / "out"
    assert invoke("hits", d / "scores.h5", "--motifs", d / "modisco_results.h5", "--out", out, "--quiet").exit_code == 0
    assert (out / "hits.bed").exists() and (out / "spacing_pos_pattern_0__pos_pattern_1.png").exists()
    (out / "notes.txt").write_text("mine")
    (out / "spacing_plan.png").write_bytes(b"mine")  # not a name seqlift hits writes
    write_modisco(tmp_path / "one.h5", {"pos_pattern_0": CONSENSUS["pos_pattern_0"]})
    result = invoke("hits", planted_scores(tmp_path / "s.h5"), "--motifs", tmp_path / "one.h5", "--out", out,
                    "--force", "--quiet")
    assert result.exit_code == 0, result.output
    left = sorted(p.name for p in out.iterdir())
    assert left == sorted(["hits.tsv", "hits_source.json", "motif_summary.tsv", "cooccurrence.tsv", "cooccurrence.png",
                           "spacing.tsv", "notes.txt", "spacing_plan.png"])


def test_view_refuses_the_hits_of_another_score_file_with_the_same_names(called, tmp_path):
    # same sequence names and length, other scores: the names could not tell them apart
    d, _ = called
    source = json.loads((d / "out" / "hits_source.json").read_text())
    assert source["scores"] == str((d / "scores.h5").resolve()) and len(source["scores_sha256"]) == 64
    other = planted_scores(tmp_path / "other.h5", seed=7)
    result = invoke("view", other, "--hits", d / "out", "--out", tmp_path / "p.html")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    made_from = (d / "scores.h5").resolve()
    assert f"--hits {d / 'out'}: was made from another score file ({made_from}: the sha256" in result.stderr
    assert "give the folder seqlift hits wrote for this file" in result.stderr and not (tmp_path / "p.html").exists()
    assert invoke("view", d / "scores.h5", "--hits", d / "out", "--out", tmp_path / "p.html").exit_code == 0


def test_meme_files_and_lambda_that_cannot_be_used_are_one_line_naming_the_option(tmp_path):
    """A MEME file Fi-NeMo cannot take: the message named neither --motifs nor the file's problem (a width-0 motif
    was numpy's 'index 0 is out of bounds'), and a negative probability was taken; --lambda 0 ran Fi-NeMo to its
    step limit on every sequence (its convergence test divides by lambda)."""
    scores = planted_scores(tmp_path / "s.h5")
    header = "MEME version 4\n\nALPHABET= ACGT\n\n"
    good = "MOTIF A\nletter-probability matrix: alength= 4 w= 2\n0.9 0.05 0.03 0.02\n0.1 0.7 0.1 0.1\n\n"
    (tmp_path / "zero.meme").write_text(header + "MOTIF Z\nletter-probability matrix: alength= 4 w= 0\n\n" + good)
    (tmp_path / "negative.meme").write_text(header + good.replace("0.9 0.05", "1.2 -0.2").replace("0.03 0.02", "0 0"))
    (tmp_path / "garbage.meme").write_text("MOTIF X\nletter-probability matrix: alength= 4 w= 2\n0.5 0.5\n")
    cases = [(["--motifs", tmp_path / "zero.meme"], f"--motifs {tmp_path / 'zero.meme'}: motif 'Z' has width 0"),
             (["--motifs", tmp_path / "negative.meme"],
              f"--motifs {tmp_path / 'negative.meme'}: motif 'A' has a probability below 0 (-0.2)"),
             (["--motifs", tmp_path / "garbage.meme"], f"--motifs {tmp_path / 'garbage.meme'}: not a MEME motif file"),
             (["--motifs", tmp_path / "zero.meme", "--lambda", "0"], "--lambda 0: must be a number above 0"),
             (["--motifs", tmp_path / "zero.meme", "--lambda", "-1"], "--lambda -1: must be a number above 0")]
    for args, message in cases:
        result = invoke("hits", scores, *args, "--out", tmp_path / "no")
        assert result.exit_code == 1 and message in result.stderr, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "no").exists()



def motifs_folder(folder, index: int, name: str, start: int):
    """A ``seqlift motifs`` folder with one pattern and one 8 bp seqlet of it: row ``index``, called ``name``, at
    ``start``."""
    folder.mkdir()
    write_modisco(folder / "modisco_results.h5")
    pd.DataFrame({"pattern": ["pos_pattern_0"], "n_seqlets": [1], "consensus": ["GATAAGCT"], "best_match": [""],
                  "q_value": [np.nan]}).to_csv(folder / "motifs.tsv", sep="\t", index=False)
    pd.DataFrame({"pattern": ["pos_pattern_0"], "index": [index], "name": [name], "start": [start],
                  "end": [start + 8], "strand": ["+"]}).to_csv(folder / "seqlets.tsv", sep="\t", index=False)
    return folder


def test_hits_refuse_a_motifs_folder_of_another_score_file_with_the_same_names(tmp_path, monkeypatch):
    from seqlift import motifs as motifs_mod

    scores, other = planted_scores(tmp_path / "s.h5"), planted_scores(tmp_path / "o.h5", seed=7)
    folder = motifs_folder(tmp_path / "motifs", index=0, name="seq0", start=10)
    motifs_mod.write_source(folder, motifs_mod.MOTIFS_SOURCE, other)  # as seqlift motifs records it
    result = invoke("hits", scores, "--motifs", folder, "--out", tmp_path / "out")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert f"--motifs {folder}: was made from another score file ({other.resolve()}" in result.stderr
    assert not (tmp_path / "out").exists()
    motifs_mod.write_source(folder, motifs_mod.MOTIFS_SOURCE, scores)
    assert invoke("hits", scores, "--motifs", folder, "--out", tmp_path / "out", "--quiet").exit_code == 0
