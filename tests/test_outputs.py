"""Logos and bigWig tracks from score files, read back the way a user would."""

import os

import numpy as np
import pyBigWig
import pytest
from click.testing import CliRunner

from seqlift.cli.main import cli
from seqlift import SeqliftError, plots, tracks
from seqlift.outputs import Outputs
from seqlift.scorefile import ScoreWriter, read_scores
from seqlift.scoring import Scores


def write_scores(path, names, contrib, tasks=(0,)):
    n, length = contrib.shape[0], contrib.shape[-2]
    one_hot = np.eye(4, dtype=np.float32)[np.zeros((n, length), int)]
    per_task = contrib if contrib.ndim == 4 else contrib[:, None]
    zeros = np.zeros((n, len(tasks)), np.float32)
    with Outputs() as outputs:
        writer = ScoreWriter(outputs, path, length, list(tasks),
                             {"tasks": np.array(tasks), "method": "deeplift", "rule": "rescale"})
        writer.append(list(names), one_hot, Scores(per_task, per_task * 2, zeros, zeros, zeros))
        writer.close()
    return path


def test_bigwig_values_at_known_coordinates_and_overlaps_averaged(tmp_path):
    contrib = np.zeros((3, 10, 4), np.float32)
    contrib[0, :, 0] = np.arange(10)            # chr1:100-110 → 0..9
    contrib[1, :, 1] = 100.0                     # chr1:105-115 overlaps the first by 5 bp
    contrib[2, :, 2] = -1.0                      # chr2:0-10
    scores = write_scores(tmp_path / "s.h5", ["chr1:100-110", "chr1:105-115", "chr2:0-10"], contrib)
    (tmp_path / "sizes").write_text("chr1\t1000\nchr2\t50\n")
    out = tracks.write_bigwig_file(scores, tmp_path / "t.bw", chrom_sizes=tmp_path / "sizes")
    bw = pyBigWig.open(str(out))
    assert bw.chroms() == {"chr1": 1000, "chr2": 50}
    np.testing.assert_allclose(bw.values("chr1", 100, 105), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(bw.values("chr1", 105, 110), [(v + 100) / 2 for v in range(5, 10)])
    np.testing.assert_allclose(bw.values("chr1", 110, 115), [100] * 5)
    np.testing.assert_allclose(bw.values("chr2", 0, 10), [-1] * 10)
    assert np.isnan(bw.values("chr1", 99, 100)[0])  # nothing written outside the windows


def test_bigwig_streams_records_in_coordinate_order_whatever_the_file_order(tmp_path):
    names = ["chr2:5-9", "chr1:12-16", "chr1:0-4", "chr1:2-6", "chr1:14-18"]
    values = np.arange(20, dtype=np.float64).reshape(5, 4)
    read = []

    def read_values(ids):
        read.append(list(ids))
        return values[ids]

    out = tracks.write_bigwig(names, read_values, 4, {"chr1": 30, "chr2": 30}, tmp_path / "s.bw", block=1)
    assert read == [[2], [3], [1], [4], [0]]  # one record at a time, sorted by chromosome and start
    bw = pyBigWig.open(str(out))
    np.testing.assert_allclose(bw.values("chr1", 0, 6), [8, 9, (10 + 12) / 2, (11 + 13) / 2, 14, 15])
    np.testing.assert_allclose(bw.values("chr1", 12, 18), [4, 5, (6 + 16) / 2, (7 + 17) / 2, 18, 19])
    np.testing.assert_allclose(bw.values("chr2", 5, 9), [0, 1, 2, 3])


def test_bigwig_chain_of_overlapping_windows_is_written_in_pieces_with_exact_averages(tmp_path, monkeypatch):
    """Sliding windows chain over a whole chromosome: bases are written as they become final, so the buffer
    stays near the flush size plus one window, and every base is the mean of the windows covering it."""
    monkeypatch.setattr(tracks._Track, "FLUSH_BASES", 10)
    length, step, n = 8, 3, 60
    rng = np.random.default_rng(3)
    values = rng.normal(size=(n, length))
    names = [f"chr1:{i * step}-{i * step + length}" for i in range(n)]
    buffers = []
    add = tracks._Track.add

    def watched(self, chrom, start, row):
        add(self, chrom, start, row)
        buffers.append(len(self.total))

    monkeypatch.setattr(tracks._Track, "add", watched)
    out = tracks.write_bigwig(names, lambda ids: values[ids], length, {"chr1": 400}, tmp_path / "c.bw", block=7)
    total, count = np.zeros(400), np.zeros(400)
    for i in range(n):
        total[i * step:i * step + length] += values[i]
        count[i * step:i * step + length] += 1
    end = (n - 1) * step + length
    got = np.array(pyBigWig.open(str(out)).values("chr1", 0, end))
    np.testing.assert_allclose(got, total[:end] / count[:end], rtol=1e-6)  # float32 in the file
    assert max(buffers) <= 2 * (10 + step + length)


def test_bigwig_hypothetical_max_writes_the_strongest_base(tmp_path):
    contrib = np.zeros((1, 4, 4), np.float32)
    contrib[0, 0] = [1, -3, 2, 0]
    scores = write_scores(tmp_path / "s.h5", ["chrX:0-4"], contrib)
    (tmp_path / "sizes").write_text("chrX\t10\n")
    bw = pyBigWig.open(str(tracks.write_bigwig_file(scores, tmp_path / "h.bw", chrom_sizes=tmp_path / "sizes",
                                                    hypothetical_max=True)))
    assert bw.values("chrX", 0, 1) == [-6.0]  # hypothetical = 2 × contrib in this file; |−6| is largest


@pytest.mark.parametrize("name, message", [
    ("seq1", "record 'seq1': name is not genome coordinates"),
    ("chr1:995-1005", "record 'chr1:995-1005': ends past chr1"),
    ("chr9:0-10", "chromosome 'chr9' is not in the chromosome sizes"),
])
def test_bigwig_bad_names_are_errors_naming_the_record(tmp_path, name, message):
    scores = write_scores(tmp_path / "s.h5", [name], np.ones((1, 10, 4), np.float32))
    (tmp_path / "sizes").write_text("chr1\t1000\n")
    with pytest.raises(SeqliftError, match=message):
        tracks.write_bigwig_file(scores, tmp_path / "t.bw", chrom_sizes=tmp_path / "sizes")
    assert not (tmp_path / "t.bw").exists()


def test_strongest_window_and_top_sequences():
    values = np.array([0, 0, 1, 5, -4, 0, 0, 0], float)
    assert plots.strongest_window(values, 2) == (3, 5)
    assert plots.strongest_window(values, 20) == (0, 8)
    names, totals = np.array(["a", "b", "c"]), np.array([1.0, 3.0, 2.0])
    assert plots.choose_sequences(names, totals, None, 2) == [1, 2]
    assert plots.choose_sequences(names, totals, "c", None) == [2]
    with pytest.raises(SeqliftError, match="no sequence named 'z'"):
        plots.choose_sequences(names, totals, "z", None)


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_logo_files_by_extension(tmp_path, suffix, magic):
    rng = np.random.default_rng(0)
    scores = write_scores(tmp_path / "s.h5", ["chr2:1000-1030", "x"], rng.normal(size=(2, 30, 4)).astype(np.float32))
    motifs = tmp_path / "motifs.tsv"
    motifs.write_text("name\tmotif\tstart\tend\tstrand\tlog_odds\nx\tGATA1\t5\t15\t+\t9.1\n")
    result = CliRunner().invoke(cli, ["logo", str(scores), "--out", str(tmp_path / f"l{suffix}"), "--top", "2",
                                      "--around-max", "12", "--motifs", str(motifs)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"l{suffix}").read_bytes()[:5].startswith(magic)


def test_logo_errors(tmp_path):
    scores = write_scores(tmp_path / "s.h5", ["a"], np.ones((1, 10, 4), np.float32))
    runner = CliRunner()
    bad = runner.invoke(cli, ["logo", str(scores), "--out", str(tmp_path / "l.gif")])
    assert bad.exit_code == 1 and "must end in .png, .svg or .pdf" in bad.stderr
    bad = runner.invoke(cli, ["logo", str(scores), "--out", str(tmp_path / "l.png"), "--start", "5", "--end", "50"])
    assert bad.exit_code == 1 and "outside the sequence" in bad.stderr
    bad = runner.invoke(cli, ["logo", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "l.png")])
    assert bad.exit_code == 1 and "score file not found" in bad.stderr
    assert not list(tmp_path.glob("l.*"))


def test_read_scores_picks_a_task(tmp_path):
    contrib = np.stack([np.full((2, 6, 4), 1.0), np.full((2, 6, 4), 2.0)], axis=1).astype(np.float32)
    scores = write_scores(tmp_path / "s.h5", ["a", "b"], contrib, tasks=(0, 2))
    assert read_scores(scores, 2)["contrib"][0, 0, 0] == 2.0
    assert read_scores(scores)["contrib"][0, 0, 0] == 1.0
    with pytest.raises(SeqliftError, match="task 1 is not in the file"):
        read_scores(scores, 1)


def _png_size(path):
    import struct

    return struct.unpack(">II", path.read_bytes()[16:24])  # width, height from the IHDR chunk


def test_a_logo_shows_the_strongest_50_bp_unless_asked_for_more(tmp_path):
    contrib = np.zeros((1, 200, 4), np.float32)
    contrib[0, 120:130, 2] = 1.0  # the signal: 10 bp at 120
    scores = write_scores(tmp_path / "s.h5", ["x"], contrib)
    per_position = contrib.sum(-1)
    start, end = plots.logo_windows(per_position)[0]
    assert end - start == plots.DEFAULT_WINDOW == 50 and start <= 120 and 130 <= end
    assert plots.logo_windows(per_position, full=True) == [(0, 200)]
    assert plots.logo_windows(per_position, start=10) == [(10, 200)]
    runner = CliRunner()
    for args, out in [([], "default.png"), (["--full"], "full.png")]:
        result = runner.invoke(cli, ["logo", str(scores), "--out", str(tmp_path / out), *args])
        assert result.exit_code == 0, result.output
    # 150 dpi: 50 bp × 0.18 in = 9 in = 1,350 px; the whole 200 bp 5,400 px
    assert _png_size(tmp_path / "default.png")[0] == 1350 and _png_size(tmp_path / "full.png")[0] == 5400
    for args, message in [(["--full", "--start", "3"], "--full draws the whole sequence"),
                          (["--around-max", "20", "--end", "40"], "--around-max chooses its own window")]:
        result = runner.invoke(cli, ["logo", str(scores), "--out", str(tmp_path / "bad.png"), *args])
        assert result.exit_code == 1 and message in result.stderr
    assert not (tmp_path / "bad.png").exists()


def test_drawing_leaves_matplotlibs_backend_and_pyplot_alone(tmp_path, monkeypatch):
    """A notebook's backend and open figures are its own: no matplotlib.use, no pyplot figure."""
    import matplotlib
    import matplotlib.pyplot as plt

    from seqlift import motifs as motifs_mod

    def refuse(*args, **kwargs):
        raise AssertionError("matplotlib.use was called")

    monkeypatch.setattr(matplotlib, "use", refuse)
    before = plt.get_fignums()
    rng = np.random.default_rng(0)
    data = {"names": np.array(["a"]), "attrs": {}, "task": 0, "contrib": rng.normal(size=(1, 30, 4)),
            "hypothetical": rng.normal(size=(1, 30, 4))}
    plots.draw_logos(data, [0], tmp_path / "l.png")
    ppm = np.tile([0.7, 0.1, 0.1, 0.1], (6, 1))
    motifs_mod._logos([motifs_mod.Pattern("pos_pattern_0", "pos", ppm, ppm - 0.25, core=(0, 6))], tmp_path)
    assert plt.get_fignums() == before
    assert (tmp_path / "l.png").exists() and (tmp_path / "pos_pattern_0.pwm.png").exists()


def test_highlight_colours_are_the_callers_then_a_palette():
    colour_of = plots._colour_chooser({"GATA1": "gold"})
    assert colour_of("GATA1") == "gold"
    others = [colour_of(name) for name in ("TAL1", "CTCF", "TAL1")]
    assert others[0] == others[2] != others[1] and "gold" not in others
    assert set(others) <= set(plots.HIGHLIGHT_COLOURS)


def test_replacing_swaps_a_file_only_when_its_block_completes(tmp_path):
    """The one rebuild-then-rename of an owned file (a resumed OUT.partial): complete or untouched, no temporary left."""
    path = tmp_path / "out.h5.partial"
    path.write_text("old")
    outputs = Outputs()
    with pytest.raises(RuntimeError):
        with outputs.replacing(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed halfway")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.h5.partial"]
    with outputs.replacing(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".out.h5.partial.seqlift-tmp-")
        tmp.write_text("new")
        outputs.abort()  # a signal arriving inside the block removes its temporary too
        assert not tmp.exists()
        tmp.write_text("new")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.h5.partial"]


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_temporaries_are_removed_by_the_next_run_and_a_live_ones_kept(tmp_path):
    """SIGKILL leaves ``.NAME.seqlift-tmp-PID`` files no handler could remove: the next run writing NAME
    removes those of processes that no longer run, and leaves a running process's (and other files) alone."""
    dead, live = _dead_pid(), os.getppid()
    stale = [tmp_path / f".s.h5.seqlift-tmp-{dead}.h5", tmp_path / f".s.h5.partial.seqlift-tmp-{dead}"]
    kept = [tmp_path / f".s.h5.seqlift-tmp-{live}.h5", tmp_path / f".other.h5.seqlift-tmp-{dead}.h5",
            tmp_path / f".s.h5.seqlift-tmp-{dead}.notes.txt.bak"]
    for path in stale + kept:
        path.write_text("x")
    with Outputs() as outputs:
        partial, _ = outputs.partial(tmp_path / "s.h5", resume=False)
        with outputs.replacing(partial) as setup:
            setup.write_text("set up")
            assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept) and (tmp_path / "s.h5").read_text() == "set up"


def test_a_set_up_file_is_removed_when_the_run_fails_before_renaming_it(tmp_path):
    with pytest.raises(RuntimeError):
        with Outputs() as outputs, outputs.replacing(tmp_path / "s.h5.partial") as setup:
            setup.write_text("half set up")
            raise RuntimeError("interrupted")
    assert not list(tmp_path.iterdir())
