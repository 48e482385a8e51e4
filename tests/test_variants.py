"""seqlift variants: reading VCF/TSV, the windows base for base, and the scores on a genome with a planted GATA1 site.

The VCFs are written by pysam (the VCF library seqlift reads them with); the model is the shipped simulation model
(200 bp, task 1 = GATA1).
"""

import dataclasses
import gzip
from pathlib import Path

import h5py
import numpy as np
import pysam
import pytest
from click.testing import CliRunner

from seqlift import SeqliftError
from seqlift import sequences as seqs
from seqlift.cli.main import cli
from seqlift.variants import Variant, VariantSource, null_windows, read_variants, variant_windows

from helpers import profile_and_counts

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "data" / "simulations" / "model.h5"
L = 200
GATA1_CORE = "GATAAG"  # the planted site's core: GCA[GATAAG]G, its consensus


def write_vcf(path, records, contigs=(("chr1", 1000), ("chr2", 300))):
    """A VCF written by pysam: records are (chrom, pos, id or None, ref, alts)."""
    header = pysam.VariantHeader()
    for name, length in contigs:
        header.contigs.add(name, length=length)
    mode = "wz" if str(path).endswith(".gz") else "w"
    with pysam.VariantFile(str(path), mode, header=header) as vcf:
        for chrom, pos, vid, ref, alts in records:
            record = vcf.new_record(contig=chrom, start=pos - 1, alleles=(ref, *alts), id=vid)
            vcf.write(record)
    return path


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    """chr1 (1000 bp, GATA1's consensus GCAGATAAGG planted at 0-based 500) and chr2 (300 bp)."""
    d = tmp_path_factory.mktemp("variants")
    rng = np.random.default_rng(1)
    chrom = list("".join(rng.choice(list("ACGT"), 1000, p=[.3, .2, .2, .3])))
    chrom[500:510] = "GCAGATAAGG"
    chr1, chr2 = "".join(chrom), "".join(rng.choice(list("ACGT"), 300))
    (d / "genome.fa").write_text(f">chr1\n{chr1}\n>chr2\n{chr2}\n")
    return d / "genome.fa", {"chr1": chr1, "chr2": chr2}


def test_vcf_multi_allelic_symbolic_and_missing_ids(tmp_path):
    records = [("chr1", 10, "rs1", "A", ("G", "T")), ("chr1", 20, None, "C", ("<DEL>",)), ("chr2", 5, None, "GT", ("G", "*"))]
    plain = write_vcf(tmp_path / "v.vcf", records)
    (tmp_path / "gzip.vcf.gz").write_bytes(gzip.compress(plain.read_bytes()))  # gzip, not bgzip: pysam failed on seek
    for path in (plain, write_vcf(tmp_path / "v.vcf.gz", records), tmp_path / "gzip.vcf.gz"):  # plain, bgzip, gzip
        with pytest.warns(UserWarning, match="skipped 2 symbolic"):
            variants = read_variants(path)
        assert variants == [Variant("chr1", 10, "A", "G", "rs1"), Variant("chr1", 10, "A", "T", "rs1"),
                            Variant("chr2", 5, "GT", "G", "chr2:5:GT:G")]


def test_a_cut_gzip_vcf_is_one_line(tmp_path):
    records = [("chr1", k % 999 + 1, f"rs{k * 7919 % 100003}", "A", ("G",)) for k in range(50_000)]
    data = gzip.compress(write_vcf(tmp_path / "v.vcf", records).read_bytes())
    (tmp_path / "cut.vcf.gz").write_bytes(data[:len(data) // 2])
    with pytest.raises(SeqliftError, match=r"cut.vcf.gz: malformed VCF \(truncated file\)$"):
        read_variants(tmp_path / "cut.vcf.gz")


def test_tsv_one_based_with_optional_id(tmp_path):
    path = tmp_path / "v.tsv"
    path.write_text("#chrom\tpos\tref\talt\tid\nchr1\t3\ta\tc,T\nchr2\t7\tAC\tA\tmy_del\n")
    assert read_variants(path) == [Variant("chr1", 3, "A", "C", "chr1:3:A:C"), Variant("chr1", 3, "A", "T", "chr1:3:A:T"),
                                   Variant("chr2", 7, "AC", "A", "my_del")]
    path.write_text("chr1\t3\tA\n")
    with pytest.raises(SeqliftError, match=r"v.tsv:1: expected tab-separated chrom, pos, ref, alt"):
        read_variants(path)


def test_windows_base_for_base(tmp_path):
    """L = 10: the ref window starts at POS − 1 − 5, the variant's first base at index 5; alt keeps the start."""
    chrom = "ACGTACGTAAccggttAACCGGTTAC"  # 26 bp, lower case in the middle
    (tmp_path / "g.fa").write_text(f">c\n{chrom}\n")
    fasta, sizes = seqs.open_genome(tmp_path / "g.fa"), {"c": len(chrom)}
    # SNV at POS 12 (0-based 11, 'c'): window 0-based 6..16, the genome's bases (case kept) in the ref window
    assert variant_windows(fasta, Variant("c", 12, "C", "T", "snv"), 10, sizes) == ("GTAAccggtt", "GTAAcTggtt")
    # deletion of 'g' after 'c' at POS 12 (REF CG, ALT C): alt reads 1 bp further right
    assert variant_windows(fasta, Variant("c", 12, "CG", "C", "del"), 10, sizes) == ("GTAAccggtt", "GTAAcCgttA")
    # insertion after POS 12 (REF C, ALT CAAA): cut on the right to L
    assert variant_windows(fasta, Variant("c", 12, "C", "CAAA", "ins"), 10, sizes) == ("GTAAccggtt", "GTAAcCAAAg")
    # MNV (REF CGG, ALT TTT)
    assert variant_windows(fasta, Variant("c", 12, "CGG", "TTT", "mnv"), 10, sizes)[1] == "GTAAcTTTtt"
    # a window reaching the chromosome's last base is on it; one base further is not
    end = Variant("c", 22, chrom[21].upper(), "A", "end")  # window 16..26: its last base is the chromosome's
    assert variant_windows(fasta, end, 10, sizes)[0] == chrom[16:26]
    with pytest.raises(SeqliftError, match="fall off c"):
        variant_windows(fasta, Variant("c", 23, chrom[22].upper(), "A", "past"), 10, sizes)


def test_invalid_variants_named_or_skipped(tmp_path, genome):
    fa, chroms = genome
    chr1 = chroms["chr1"]
    wrong = "A" if chr1[300] != "A" else "C"
    path = tmp_path / "v.tsv"
    lines = {"mismatch": f"chr1\t301\t{wrong}\tG\tbad_ref\n", "unknown": "chrX\t301\tA\tG\tnowhere\n",
             "off": f"chr1\t50\t{chr1[49]}\tG\tedge\n", "del_off": f"chr2\t200\t{chroms['chr2'][199:210]}\tA\tlong_del\n"}
    messages = {"mismatch": f"variant bad_ref (chr1:301): REF {wrong} does not match the genome's {chr1[300].upper()}",
                "unknown": "variant nowhere (chrX:301): chromosome 'chrX' is not in the genome",
                "off": "variant edge (chr1:50): its 200 bp windows chr1:0-",
                "del_off": "variant long_del (chr2:200): its 200 bp windows chr2:99-309 fall off chr2 (length 300)"}
    good = f"chr1\t301\t{chr1[300]}\tG\tgood\n"
    for case, line in lines.items():
        path.write_text(good + line)
        with pytest.raises(SeqliftError, match="--skip-invalid skips such variants") as error:
            VariantSource.open(path, L, fa)
        assert messages[case] in str(error.value)
    path.write_text(good + "".join(lines.values()))
    with pytest.warns(UserWarning, match="skipped 4 variant"):
        source = VariantSource.open(path, L, fa, skip_invalid=True)
    assert [v.id for v in source.variants] == ["good"] and source.n_skipped == 4


def test_null_windows_keep_dinucleotides_and_alleles():
    span = "ACGTTGCAAGGCTTACGATCGGATCCA" + "T"  # 28 bp: L = 26 plus a 2 bp deletion
    variant = Variant("c", 14, "GAT", "G", "d")
    ref, alt = null_windows(span, variant, 26, 5, seed=3, index=7)
    assert ref.shape == alt.shape == (5, 26, 4)
    for r, a in zip(ref, alt):
        r, a = seqs.decode(r), seqs.decode(a)
        assert r[13:16] == "GAT" and a[13] == "G"
        assert r[:13] == a[:13] and a[14:] == r[16:] + a[24:]  # alt = before + ALT + what followed REF
    again = null_windows(span, variant, 26, 5, seed=3, index=7)
    assert np.array_equal(again[0], ref)  # seeded by (seed, index)


# ----------------------------------------------------------------------------- scored on the simulation model
def test_a_null_that_cannot_fit_in_memory_is_refused_up_front(tmp_path, genome):
    # --null 1000000000 once ran 31 s, then failed in HDF5 ("chunk must be < 4gb") with a traceback
    fa, chroms = genome
    vcf = write_vcf(tmp_path / "v.vcf.gz", [("chr1", 504, "v1", chroms["chr1"][503], ("T",))])
    out = tmp_path / "out.h5"
    result = CliRunner().invoke(cli, ["variants", str(MODEL), str(vcf), "--genome", str(fa), "--out", str(out),
                                      "--null", "1000000000", "--n-refs", "2", "--quiet"])
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "--null 1000000000 needs about" in line and "lower --null" in line, line
    fits = int(line.split("at most ")[1].split()[0])
    assert 0 < fits < 1000000000
    assert [p.name for p in tmp_path.iterdir()] == ["v.vcf.gz"]  # nothing written, nothing left


@pytest.fixture(scope="module")
def scored(tmp_path_factory, genome):
    """Core-breaking SNVs in the planted GATA1 site, SNVs far from it, a deletion and a multi-allelic insertion
    (chunks of 4 variants: a shard run and the API take the same chunks, so their scores are bit-identical)."""
    fa, chroms = genome
    chr1 = chroms["chr1"]
    d = tmp_path_factory.mktemp("scored")
    swap = lambda b: "ACGT"[("ACGT".index(b) + 2) % 4]  # noqa: E731 - A<->G, C<->T
    records = [("chr1", p, f"core{p}", chr1[p - 1], (swap(chr1[p - 1]),)) for p in range(504, 510)]  # GATAAG
    records += [("chr1", p, f"far{p}", chr1[p - 1], (swap(chr1[p - 1]),)) for p in (150, 250, 800, 850)]
    records += [("chr1", 400, "del", chr1[399:402], (chr1[399],)), ("chr1", 410, None, chr1[409],
                                                                      (chr1[409] + "GGA", "T"))]
    vcf = write_vcf(d / "v.vcf.gz", records)
    out = d / "out.h5"
    result = CliRunner().invoke(cli, ["variants", str(MODEL), str(vcf), "--genome", str(fa), "--out", str(out),
                                      "--task", "1", "--n-refs", "4", "--null", "8", "--quiet", "--chunk-size", "4"])
    assert result.exit_code == 0, result.output
    return d, out, vcf, fa, chr1


def test_breaking_gata1_core_lowers_its_logit(scored):
    _, out, *_ = scored
    with h5py.File(out) as h5:
        ids = [i.decode() for i in h5["ids"][()]]
        effect = dict(zip(ids, h5["delta"][()]))
        assert np.allclose(h5["delta"][()], h5["alt_prediction"][()] - h5["ref_prediction"][()])
    core = np.array([effect[f"core{p}"] for p in range(504, 510)])
    far = np.array([effect[f"far{p}"] for p in (150, 250, 800, 850)])
    assert (core < 0).all()
    assert np.median(core) < -2 and np.abs(far).max() < 0.5, (core, far)


def test_predictions_equal_the_model_on_windows_built_here(scored):
    import keras

    from seqlift.engine import Explainer

    _, out, _, _, chr1 = scored
    with h5py.File(out) as h5:
        ids = [i.decode() for i in h5["ids"][()]]
        ref_pred, alt_pred = h5["ref_prediction"][()], h5["alt_prediction"][()]
        ref_oh, alt_oh = h5["ref_one_hot"][()], h5["alt_one_hot"][()]
    start = 400 - 1 - L // 2
    windows = {"del": (chr1[start:start + L], (chr1[start:400] + chr1[402:])[:L]),
               f"chr1:410:{chr1[409]}:{chr1[409]}GGA": (chr1[start + 10:start + 10 + L],
                                                          (chr1[start + 10:410] + "GGA" + chr1[410:])[:L]),
               f"chr1:410:{chr1[409]}:T": (chr1[start + 10:start + 10 + L], (chr1[start + 10:409] + "T" + chr1[410:])[:L])}
    model = keras.models.load_model(MODEL, compile=False)
    logits = Explainer(model).predict  # the logit before the sigmoid, as the variant file's predictions
    for name, (ref, alt) in windows.items():
        i = ids.index(name)
        assert seqs.decode(ref_oh[i]) == ref.upper() and seqs.decode(alt_oh[i]) == alt.upper()
        built = np.stack([seqs.one_hot_encode(ref), seqs.one_hot_encode(alt)])
        expected = logits(built)[:, 1]
        assert np.allclose([ref_pred[i], alt_pred[i]], expected, atol=1e-4), name
        probability = model.predict(built, verbose=0)[:, 1]  # the Keras model itself agrees
        assert np.allclose(1 / (1 + np.exp(-expected)), probability, atol=1e-5)


def test_contributions_equal_score_on_the_same_windows(scored, tmp_path):
    _, out, *_ = scored
    with h5py.File(out) as h5:
        ids = [i.decode() for i in h5["ids"][()]]
        arrays = {k: h5[k][()] for k in ("ref_one_hot", "alt_one_hot", "ref_contrib", "alt_contrib",
                                         "ref_hypothetical", "alt_hypothetical")}
    for side in ("ref", "alt"):
        fasta = tmp_path / f"{side}.fa"
        seqs.write_fasta(fasta, ids, [seqs.decode(x) for x in arrays[f"{side}_one_hot"]])
        result = CliRunner().invoke(cli, ["score", str(MODEL), str(fasta), "--out", str(tmp_path / f"{side}.h5"),
                                          "--task", "1", "--n-refs", "4", "--chunk-size", "4", "--quiet"])
        assert result.exit_code == 0, result.output
        with h5py.File(tmp_path / f"{side}.h5") as h5:
            assert np.array_equal(h5["contrib"][()], arrays[f"{side}_contrib"])
            assert np.array_equal(h5["hypothetical"][()], arrays[f"{side}_hypothetical"])


def test_table_null_and_viewer(scored):
    import pandas as pd

    from seqlift.view.data import open_source

    _, out, *_ = scored
    table = pd.read_csv(out.with_suffix(".tsv"), sep="\t")
    assert list(table.columns[:9]) == ["name", "task", "chrom", "pos", "ref", "alt", "ref_prediction",
                                       "alt_prediction", "effect"]
    assert np.allclose(table["effect"], table["alt_prediction"] - table["ref_prediction"], atol=1e-5)
    from scipy.stats import false_discovery_control

    assert ((table["p_value"] >= 1 / 9 - 1e-6) & (table["p_value"] <= 1)).all()
    assert np.allclose(table["q_value"], false_discovery_control(table["p_value"], method="bh"), atol=1e-5)
    core = table[table["name"].str.startswith("core")]
    assert (core["ref_allele_contrib"] > core["alt_allele_contrib"]).all()  # the core base mattered more in ref
    with h5py.File(out) as h5:
        assert h5["null_effects"].shape == (len(table), 8)
        assert h5.attrs["variant_index"] == L // 2 and h5.attrs["null"] == 8
    source = open_source(out)
    try:
        assert source.kind == "variants" and source.n == len(table)
        assert source.record(0, 0)["variant_index"] == L // 2
    finally:
        source.close()


def test_logo_of_a_variant(scored, tmp_path):
    _, out, *_ = scored
    result = CliRunner().invoke(cli, ["logo", str(out), "--variant", "core505", "--out", str(tmp_path / "v.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "v.png").stat().st_size > 1000
    result = CliRunner().invoke(cli, ["logo", str(out), "--variant", "nope", "--out", str(tmp_path / "w.png")])
    assert result.exit_code == 1 and "--variant nope: no such variant" in result.output


def test_shards_merge_into_the_whole_run(scored, tmp_path):
    _, out, vcf, fa, _ = scored
    common = [str(MODEL), str(vcf), "--genome", str(fa), "--task", "1", "--n-refs", "4", "--null", "8", "--quiet",
              "--chunk-size", "4"]
    for k in (1, 2):
        result = CliRunner().invoke(cli, ["variants", *common, "--shard", f"{k}/2", "--out", str(tmp_path / f"s{k}.h5")])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["merge", str(tmp_path / "m.h5"), str(tmp_path / "s2.h5"), str(tmp_path / "s1.h5")])
    assert result.exit_code == 0, result.output
    with h5py.File(out) as whole, h5py.File(tmp_path / "m.h5") as merged:
        for key in whole:
            assert np.array_equal(whole[key][()], merged[key][()]), key
    assert (tmp_path / "m.tsv").read_text() == out.with_suffix(".tsv").read_text()



@pytest.mark.slow
def test_ray_two_workers_equal_one_process(scored, tmp_path):
    """variants --ray local with 2 workers (each scoring chunks of 4 variants, their null windows included): the
    file and the table of one process, bit for bit."""
    pytest.importorskip("ray")
    import os
    import subprocess
    import sys

    _, out, vcf, fa, _ = scored
    ray_out = tmp_path / "ray.h5"
    args = ["variants", MODEL, vcf, "--genome", fa, "--task", "1", "--n-refs", "4", "--null", "8", "--quiet",
            "--chunk-size", "4", "--out", ray_out, "--ray", "local", "--workers", "2"]
    proc = subprocess.run([sys.executable, "-c", "from seqlift.cli.main import main; main()", *map(str, args)],
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with h5py.File(out) as one, h5py.File(ray_out) as ray:
        assert sorted(one) == sorted(ray)
        for key in one:
            assert np.array_equal(one[key][()], ray[key][()]), key
        assert sorted(one.attrs) == sorted(ray.attrs)
        for key, value in one.attrs.items():
            assert np.array_equal(np.asarray(value), np.asarray(ray.attrs[key])), key
    assert ray_out.with_suffix(".tsv").read_text() == out.with_suffix(".tsv").read_text()

def test_python_api(scored):
    import seqlift

    _, out, vcf, fa, _ = scored
    table, arrays = seqlift.variant_effects(MODEL, vcf, fa, tasks=[1], n_refs=4, null=8, chunk_size=4)
    with h5py.File(out) as h5:
        assert np.array_equal(arrays["alt_contrib"][:, 0], h5["alt_contrib"][()])
        assert np.array_equal(arrays["q_value"][:, 0], h5["q_value"][()])
    assert list(table["name"]) == [i.decode() for i in h5py.File(out)["ids"][()]]
    import keras

    loaded = keras.models.load_model(MODEL, compile=False)  # a notebook's model object gives the same
    again, arrays_again = seqlift.variant_effects(loaded, vcf, fa, tasks=[1], n_refs=4, null=8, chunk_size=4)
    assert np.array_equal(arrays_again["ref_contrib"], arrays["ref_contrib"]) and again.equals(table)


def test_resume_continues_an_interrupted_run(scored, tmp_path):
    """A run stopped after its first chunk keeps OUT.h5.partial; --resume finishes it into the whole run's file."""
    from seqlift import effects, pipeline

    _, out, vcf, fa, _ = scored
    request = pipeline.build_request(str(MODEL), str(vcf), genome=str(fa), outputs=effects.VariantOutputs,
                                     out=tmp_path / "r.h5", n_refs=4, chunk_size=4)
    calls = []

    def stop_after_first_chunk(n):
        calls.append(n)
        if len(calls) == 1:  # the first chunk (nothing was completed before)
            raise KeyboardInterrupt  # Ctrl-C after the first chunk is on disk

    plan = effects.prepare_variants(request, lambda n: [1], null=8)
    with pytest.raises(KeyboardInterrupt):
        effects.run_variants(plan, stop_after_first_chunk)
    partial = tmp_path / "r.h5.partial"
    assert partial.exists() and not (tmp_path / "r.h5").exists()
    with h5py.File(partial) as h5:
        assert h5.attrs["resume_completed_sequences"] == 4
    windows = tmp_path / "w.fa"
    windows.write_text(f">w\n{scored[4][:200]}\n")
    other = CliRunner().invoke(cli, ["score", str(MODEL), str(windows), "--out", str(tmp_path / "r.h5"), "--resume"])
    assert other.exit_code == 1 and "was started by seqlift variants, not seqlift score" in other.stderr, other.output
    assert partial.exists()
    done = []
    plan = effects.prepare_variants(dataclasses.replace(request, scale=dataclasses.replace(request.scale, resume=True)), lambda n: [1], null=8)
    effects.run_variants(plan, done.append)
    assert done[0] == 4 and sum(done) == 13 and not partial.exists()
    with h5py.File(out) as whole, h5py.File(tmp_path / "r.h5") as resumed:
        assert sorted(whole) == sorted(resumed)
        for key in whole:
            assert np.array_equal(whole[key][()], resumed[key][()]), key
        assert "resume_completed_sequences" not in resumed.attrs
    assert (tmp_path / "r.tsv").read_text() == out.with_suffix(".tsv").read_text()


def test_profile_head_js_distance_and_sum_target(files, tmp_path):
    """A profile head (--target profile): the TSV's Jensen-Shannon distance is the one between the softmax of the
    model's own ref and alt profile logits; the counts head's --target sum predictions are the model's sums."""
    import keras
    import pandas as pd
    from scipy.spatial.distance import jensenshannon
    from scipy.special import softmax

    model = keras.models.load_model(profile_and_counts(tmp_path / "two.keras", 40), compile=False)
    genome = files / "genome.fa"
    chr1 = "".join(genome.read_text().split(">chr2")[0].splitlines()[1:])
    (tmp_path / "v.tsv").write_text(f"chr1\t60\t{chr1[59]}\t{'GATC'['ACGT'.index(chr1[59])]}\tsnv\n"
                                    f"chr1\t100\t{chr1[99:102]}\t{chr1[99]}\tdel\n")
    for head, target in (("profile", "profile"), ("counts", "sum")):
        out = tmp_path / f"{head}.h5"
        result = CliRunner().invoke(cli, ["variants", str(tmp_path / "two.keras"), str(tmp_path / "v.tsv"), "--genome",
                                          str(genome), "--output", head, "--target", target, "--n-refs", "3",
                                          "--out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
        table = pd.read_csv(out.with_suffix(".tsv"), sep="\t")
        with h5py.File(out) as h5:
            ref, alt = h5["ref_one_hot"][()], h5["alt_one_hot"][()]
        on_ref, on_alt = model.predict(ref, verbose=0), model.predict(alt, verbose=0)  # [profile, counts] each
        if head == "profile":
            p = softmax(on_ref[0].reshape(2, -1).astype(np.float64), axis=1)
            q = softmax(on_alt[0].reshape(2, -1).astype(np.float64), axis=1)
            assert np.allclose(table["js_distance"], jensenshannon(p, q, base=2, axis=1), atol=1e-5)
            assert ((table["js_distance"] > 0) & (table["js_distance"] <= 1)).all()
        else:
            assert "js_distance" not in table
            assert np.allclose(table["ref_prediction"], on_ref[1][:, 0], atol=1e-4)
            assert np.allclose(table["alt_prediction"], on_alt[1][:, 0], atol=1e-4)


def test_several_tasks_have_a_task_axis(scored, tmp_path):
    """--task 1,2: per-base scores (N, 2, L, 4), predictions (N, 2), two TSV lines per variant; task 1's values are
    the one-task run's; the viewer and logo --variant read the file."""
    import pandas as pd

    from seqlift.view.data import open_source

    _, out, vcf, fa, _ = scored
    both = tmp_path / "both.h5"
    result = CliRunner().invoke(cli, ["variants", str(MODEL), str(vcf), "--genome", str(fa), "--out", str(both),
                                      "--task", "1,2", "--n-refs", "4", "--null", "8", "--quiet", "--chunk-size", "4"])
    assert result.exit_code == 0, result.output
    with h5py.File(out) as one, h5py.File(both) as two:
        n = len(one["ids"])
        assert two["alt_contrib"].shape == (n, 2, L, 4) and two["q_value"].shape == (n, 2)
        assert two["null_effects"].shape == (n, 8, 2)
        assert np.allclose(two["alt_contrib"][:, 0], one["alt_contrib"][()], atol=1e-5)
        assert np.allclose(two["delta"][:, 0], one["delta"][()], atol=1e-5)
    table = pd.read_csv(both.with_suffix(".tsv"), sep="\t")
    assert len(table) == 2 * n and list(table["task"][:2]) == [1, 2]
    source = open_source(both)
    try:
        assert source.tasks == [1, 2] and source.record(0, 1)["alt_allele"]
    finally:
        source.close()
    result = CliRunner().invoke(cli, ["logo", str(both), "--variant", "core505", "--task", "2", "--out",
                                      str(tmp_path / "t2.png")])
    assert result.exit_code == 0, result.output
