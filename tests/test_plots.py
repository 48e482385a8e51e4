"""Sequence logos (seqlift.plots): file types, windows, errors, colours, and no global matplotlib state."""

import numpy as np
import pytest
from click.testing import CliRunner
from seqlift.cli.main import cli

from seqlift import SeqliftError, plots


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
def test_logo_files_by_extension(tmp_path, suffix, magic, write_scores):
    rng = np.random.default_rng(0)
    scores = write_scores(tmp_path / "s.h5", ["chr2:1000-1030", "x"], rng.normal(size=(2, 30, 4)).astype(np.float32))
    motifs = tmp_path / "motifs.tsv"
    motifs.write_text("name\tmotif\tstart\tend\tstrand\tlog_odds\nx\tGATA1\t5\t15\t+\t9.1\n")
    result = CliRunner().invoke(cli, ["logo", str(scores), "--out", str(tmp_path / f"l{suffix}"), "--top", "2",
                                      "--around-max", "12", "--motifs", str(motifs)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"l{suffix}").read_bytes()[:5].startswith(magic)


def test_logo_errors(tmp_path, write_scores):
    scores = write_scores(tmp_path / "s.h5", ["a"], np.ones((1, 10, 4), np.float32))
    runner = CliRunner()
    bad = runner.invoke(cli, ["logo", str(scores), "--out", str(tmp_path / "l.gif")])
    assert bad.exit_code == 1 and "must end in .png, .svg or .pdf" in bad.stderr
    bad = runner.invoke(cli, ["logo", str(scores), "--out", str(tmp_path / "l.png"), "--start", "5", "--end", "50"])
    assert bad.exit_code == 1 and "outside the sequence" in bad.stderr
    bad = runner.invoke(cli, ["logo", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "l.png")])
    assert bad.exit_code == 1 and "score file not found" in bad.stderr
    assert not list(tmp_path.glob("l.*"))


def _png_size(path):
    import struct

    return struct.unpack(">II", path.read_bytes()[16:24])  # width, height from the IHDR chunk


def test_a_logo_shows_the_strongest_50_bp_unless_asked_for_more(tmp_path, write_scores):
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


@pytest.fixture
def shaded_colours(monkeypatch):
    """``shaded_colours(scores, table, name, out)``: the colour of each motif `seqlift logo --name NAME --full
    --motifs TABLE` shades, in drawing order."""
    from matplotlib.axes import Axes

    drawn, span = [], Axes.axvspan

    def spy(self, *args, **kwargs):
        drawn.append(kwargs["color"])
        return span(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "axvspan", spy)

    def draw(scores, table, name, out):
        drawn.clear()
        result = CliRunner().invoke(cli, ["logo", str(scores), "--out", str(out), "--name", name, "--full",
                                          "--motifs", str(table)])
        assert result.exit_code == 0, result.output
        return list(drawn)

    return draw


def test_motif_colours_follow_the_tables_sorted_names_in_every_image(shaded_colours, tmp_path, write_scores):
    """TAL1 alone in one image and GATA1 alone in another each keep their colour by sorted name (GATA1 first, TAL1
    second), not the colour of the first motif drawn; no simulation colour (GATA1 gold) reaches a user's table."""
    scores = write_scores(tmp_path / "s.h5", ["a", "b"], np.random.default_rng(0).normal(size=(2, 30, 4)).astype(np.float32))
    table = tmp_path / "motifs.tsv"
    table.write_text("name\tmotif\tstart\tend\na\tTAL1\t2\t8\nb\tGATA1\t4\t9\nb\tCTCF\t20\t26\n")
    first = shaded_colours(scores, table, "a", tmp_path / "a.png")
    second = shaded_colours(scores, table, "b", tmp_path / "b.png")
    palette = plots.HIGHLIGHT_COLOURS  # sorted: CTCF, GATA1, TAL1
    assert first == [palette[2]] and second == [palette[1], palette[0]]


def test_a_colour_column_is_honoured_and_empty_cells_keep_the_palette(shaded_colours, tmp_path, write_scores):
    scores = write_scores(tmp_path / "s.h5", ["a"], np.random.default_rng(0).normal(size=(1, 30, 4)).astype(np.float32))
    table = tmp_path / "motifs.tsv"
    table.write_text("name\tmotif\tstart\tend\tcolour\na\tGATA1\t2\t8\t\na\tTAL1\t10\t16\t#00ff00\n"
                     "a\tGATA1\t20\t26\tgold\n")
    assert shaded_colours(scores, table, "a", tmp_path / "a.svg") == ["gold", "#00ff00", "gold"]
    motifs = plots.read_motif_table(table)
    assert plots.motif_colours(motifs.drop(columns="colour")) == {"GATA1": plots.HIGHLIGHT_COLOURS[0],
                                                                  "TAL1": plots.HIGHLIGHT_COLOURS[1]}

def test_shades_are_drawn_behind_the_letters(tmp_path, write_scores):
    """Inside a shaded motif the letters keep their own colours (logomaker's classic: A green, C blue, G orange,
    T red): a shade drawn over them would blend every letter pixel."""
    import matplotlib.image

    rng = np.random.default_rng(1)
    scores = write_scores(tmp_path / "s.h5", ["a"], rng.uniform(0.5, 1.0, size=(1, 12, 4)).astype(np.float32))
    table = tmp_path / "motifs.tsv"
    table.write_text("name\tmotif\tstart\tend\na\tGATA1\t0\t12\n")  # the whole drawn window is shaded
    result = CliRunner().invoke(cli, ["logo", str(scores), "--out", str(tmp_path / "l.png"), "--full",
                                      "--motifs", str(table)])
    assert result.exit_code == 0, result.output
    pixels = (matplotlib.image.imread(tmp_path / "l.png")[..., :3] * 255).round().astype(int).reshape(-1, 3)
    colours = np.unique(pixels, axis=0)
    for letter in [(0, 128, 0), (0, 0, 255), (255, 166, 0), (255, 0, 0)]:
        assert (np.abs(colours - letter).max(1) <= 1).any(), letter


def test_a_color_column_is_read_as_colour(tmp_path):
    table = tmp_path / "motifs.tsv"
    table.write_text("name\tmotif\tstart\tend\tcolor\na\tGATA1\t2\t8\tgold\n")
    assert plots.motif_colours(plots.read_motif_table(table))["GATA1"] == "gold"
    table.write_text("name\tmotif\tstart\tend\tcolor\na\tGATA1\t2\t8\tgoldish\n")
    with pytest.raises(SeqliftError, match="line 2: colour 'goldish' is not a matplotlib colour"):
        plots.read_motif_table(table)
    table.write_text("name\tmotif\tstart\tend\tcolor\na\tGATA1\t2\t8\tnone\n")  # shades nothing
    with pytest.raises(SeqliftError, match="line 2: colour 'none' is not"):
        plots.read_motif_table(table)
    table.write_text("name\tmotif\tstart\tend\tcolor\tcolour\na\tGATA1\t2\t8\tgold\tgold\n")
    with pytest.raises(SeqliftError, match="both a colour and a color column"):
        plots.read_motif_table(table)
