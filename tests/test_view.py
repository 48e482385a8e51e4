"""seqlift/view/: the server's guards, and the page driven in a real headless browser (Debian's chromium)."""

import http.client
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from seqlift import SeqliftError
from seqlift import motifs as motifs_mod
from seqlift.cli.main import cli
from seqlift.view import serve, write_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def scored(files, tmp_path_factory):
    """Both tasks of the shared model on the BED regions (3 windows with coordinates), and a motifs folder."""
    d = tmp_path_factory.mktemp("view")
    result = invoke("score", files / "model.h5", files / "regions.bed", "--genome", files / "genome.fa", "--task",
                    "all", "--out", d / "scores.h5", "--n-refs", 3, "--quiet")
    assert result.exit_code == 0, result.output
    with h5py.File(d / "scores.h5") as h5:
        names = [n.decode() for n in h5["names"][()]]
        length = h5["one_hot"].shape[1]
        regions = list(zip([c.decode() for c in h5["chrom"][()]], h5["start"][()].tolist(),
                           [s.decode() for s in h5["strand"][()]]))
    ppm = np.full((6, 4), 0.25)
    patterns = [motifs_mod.Pattern("pos_pattern_0", "pos", ppm, ppm - 0.2, seqlets=[(0, 4, 10, False), (2, 20, 26, True)],
                                   core=(0, 6))]
    (d / "motifs").mkdir()
    motifs_mod.write_outputs(patterns, d / "motifs", names, motifs_mod.genome_placement(names, length, regions), length,
                             0, None)
    return d


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """A variant file: 4 variants, 2 tasks, 30 bp windows (the layout seqlift.view.data.VARIANT_DATASETS names)."""
    path = tmp_path_factory.mktemp("variants") / "variants.h5"
    rng = np.random.default_rng(1)
    n, t, length = 4, 2, 30
    codes = rng.integers(0, 4, (2, n, length))
    with h5py.File(path, "w") as h5:
        strings = h5py.string_dtype()
        h5["ids"] = np.array([f"rs{1000000 + i}" for i in range(n)], dtype=object).astype(strings)  # dbSNP-like
        h5["chrom"] = np.array(["chr1"] * n, dtype=object).astype(strings)
        h5["pos"] = np.array([101, 205, 309, 410])
        h5["ref"] = np.array(["A", "C", "GT", "T"], dtype=object).astype(strings)
        h5["alt"] = np.array(["G", "CAA", "G", "A"], dtype=object).astype(strings)
        for k, side in enumerate(("ref", "alt")):
            h5[f"{side}_one_hot"] = np.eye(4, dtype=np.float32)[codes[k]]
            h5[f"{side}_contrib"] = rng.normal(size=(n, t, length, 4)).astype(np.float32)
            h5[f"{side}_hypothetical"] = rng.normal(size=(n, t, length, 4)).astype(np.float32)
            h5[f"{side}_prediction"] = rng.normal(size=(n, t)).astype(np.float32)
        h5["p_value"] = rng.uniform(size=(n, t))
        h5["q_value"] = rng.uniform(size=(n, t))
        h5.attrs["tasks"] = np.array([0, 1])
    return path


@pytest.fixture(scope="module")
def server(scored):
    """A running ``seqlift view`` of the score file with its motifs: (url, stop)."""
    found, stop = {}, threading.Event()
    thread = threading.Thread(target=serve, args=(scored / "scores.h5", scored / "motifs"),
                              kwargs={"ready": lambda url: found.setdefault("url", url), "stop": stop}, daemon=True)
    thread.start()
    for _ in range(200):
        if "url" in found:
            break
        threading.Event().wait(0.05)
    yield found["url"]
    stop.set()
    thread.join(10)


def request(url: str, path: str) -> int:
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    connection.request("GET", path)  # sent as written: no client-side normalisation of ../
    status = connection.getresponse().status
    connection.close()
    return status


def test_every_request_needs_the_token_and_nothing_outside_is_served(server):
    token = urlparse(server).query
    assert server.startswith("http://127.0.0.1:")
    assert request(server, f"/?{token}") == 200
    assert request(server, f"/api/meta?{token}") == 200
    for path in ("/", "/api/meta", "/api/record?i=0", "/?token=wrong", "/../../etc/passwd"):
        assert request(server, path) == 403, path
    for path in ("/../../etc/passwd", "/motif/../motifs.tsv.png", "/motif/..%2Fmotifs.tsv.png", "/static/viewer.js",
                 "/api/other", "/scores.h5", "/motif/unknown.png"):
        assert request(server, f"{path}?{token}") == 404, path
    assert request(server, f"/motif/pos_pattern_0.png?{token}") == 200


# ---------------------------------------------------------------------------------------------- the page in a browser
@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium); .ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api", reason="the browser tests drive chromium with playwright "
                                     "(pip install playwright)")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_function("document.body.dataset.ready")
    assert page.evaluate("document.body.dataset.ready") == "1", page.inner_text("#title")
    return page, errors


def table_names(page) -> list[str]:
    return page.eval_on_selector_all("#rows tbody tr td.name", "cells => cells.map(c => c.textContent)")


def rows_sorted(page, names: list[str]) -> list[str]:
    """The table's names once a click's sort has loaded (the header changes at once, the rows when they come),
    or as they stand after the wait's timeout."""
    try:
        page.wait_for_function("names => JSON.stringify(Array.from(document.querySelectorAll('#rows tbody tr td.name'))"
                               ".map(c => c.textContent)) === JSON.stringify(names)", arg=names, timeout=10000)
    except Exception:  # noqa: BLE001 - the assertion that follows shows what the table holds
        pass
    return table_names(page)


GLYPHS = """svg => Array.from(svg.querySelectorAll('path.glyph')).map(p => {
    const box = p.getBBox();
    return [+p.dataset.i, p.dataset.base, +p.dataset.score, box.height, box.y];
})"""


def check_glyphs(glyphs, scores: np.ndarray):
    """L × 4 glyphs, each as tall as its score, positive ones above the axis and negative ones below."""
    length = scores.shape[0]
    assert len(glyphs) == length * 4
    seen = {(i, base): (score, height, top) for i, base, score, height, top in glyphs}
    for i in range(length):
        for b, base in enumerate("ACGT"):
            score, height, top = seen[(i, base)]
            assert score == pytest.approx(float(scores[i, b]), rel=1e-6, abs=1e-12)
            assert height == pytest.approx(abs(float(scores[i, b])), rel=1e-4, abs=1e-6)
            assert (top <= 1e-9) if score > 0 else (top >= -1e-9)


def test_the_page_loads_sorts_and_draws_the_files_scores(browser, server, scored):
    page, errors = open_page(browser, server)
    with h5py.File(scored / "scores.h5") as h5:
        names = [n.decode() for n in h5["names"][()]]
        prediction, contrib, hypothetical = h5["prediction"][()], h5["contrib"][()], h5["hypothetical"][()]
        chroms, starts = [c.decode() for c in h5["chrom"][()]], h5["start"][()]
    descending = [names[i] for i in np.argsort(-prediction[:, 0], kind="stable")]
    assert table_names(page) == descending  # sorted by the first task's prediction, highest first
    page.click("th[data-key=prediction]")
    assert rows_sorted(page, descending[::-1]) == descending[::-1]
    page.click("th[data-key=name]")
    assert rows_sorted(page, sorted(names)) == sorted(names)

    row = names.index(table_names(page)[1])
    page.click(f"#rows tbody tr[data-i='{row}']")
    page.wait_for_function(f"document.querySelector('#rows tr.selected')?.dataset.i === '{row}'")
    page.wait_for_function(f"document.querySelector('#title').textContent.startsWith({names[row]!r})")
    check_glyphs(page.eval_on_selector("svg.logo", GLYPHS), contrib[row, 0])

    page.check("#hypothetical")
    page.wait_for_function("document.querySelector('svg.logo path.glyph[data-base=C][data-i=\"0\"]')")
    check_glyphs(page.eval_on_selector("svg.logo", GLYPHS), hypothetical[row, 0])
    page.select_option("#task", "1")
    expected = float(hypothetical[row, 1][0, 1])  # task 1's C at position 0, once the logo is redrawn
    page.wait_for_function("Math.abs(+document.querySelector('svg.logo path.glyph[data-base=C][data-i=\"0\"]')"
                           f"?.dataset.score - {expected!r}) <= 1e-4 * Math.max(1, {abs(expected)!r})")
    check_glyphs(page.eval_on_selector("svg.logo", GLYPHS), hypothetical[row, 1])

    view = lambda: [float(v) for v in page.get_attribute("svg.logo", "viewBox").split()]  # noqa: E731
    x0, _, width, _ = view()
    assert (x0, width) == (0, 40)
    page.click("#zoom-in")
    assert view()[2] == 20 and view()[0] == 10
    page.click("#pan-right")
    assert view()[0] == 15
    page.click("#reset")
    assert view()[:3:2] == [0, 40]

    page.hover("svg.logo", position={"x": 5, "y": 60})
    tip = page.inner_text("#tooltip")
    assert tip.startswith(f"position 0 · {chroms[row]}:{starts[row]:,}\nbase ")
    assert errors == []


def test_seqlet_boxes_sit_at_the_seqlets_positions_and_the_motif_panel_links_them(browser, server, scored):
    page, errors = open_page(browser, server)
    page.click("th[data-key=name]")
    page.wait_for_function("document.querySelector('th[data-key=name].sorted')")
    seqlets = {(r[0], int(r[1])): (int(r[3]), int(r[4]))
               for r in (line.split("\t") for line in (scored / "motifs" / "seqlets.tsv").read_text().splitlines()[1:])}
    for (pattern, index), (start, end) in seqlets.items():
        page.click(f"#rows tbody tr[data-i='{index}']")
        # the selected row is marked before its record arrives: wait for its logo, not the previous row's boxes
        page.wait_for_function(f"document.getElementById('logos').dataset.i === '{index}'")
        boxes = page.eval_on_selector_all("svg.logo rect.seqlet", "r => r.map(b => [b.dataset.pattern, "
                                          "+b.getAttribute('x'), +b.getAttribute('width')])")
        assert boxes == [[pattern, start, end - start]]
    assert page.locator(".motif img").count() == 1
    page.click(".motif")
    page.wait_for_function("document.querySelectorAll('#motif-seqlets a').length === 2")
    assert errors == []


def test_the_variant_view_shows_both_alleles_on_one_scale(browser, variants, tmp_path):
    out = tmp_path / "variants.html"
    assert invoke("view", variants, "--out", out).exit_code == 0
    page, errors = open_page(browser, out.as_uri())
    with h5py.File(variants) as h5:
        effect = h5["alt_prediction"][()][:, 0] - h5["ref_prediction"][()][:, 0]
        ref, alt = h5["ref_contrib"][()], h5["alt_contrib"][()]
        alleles = [a.decode() for a in h5["ref"][()]], [a.decode() for a in h5["alt"][()]]
    assert table_names(page) == [f"rs{1000000 + i}" for i in np.argsort(-np.abs(effect), kind="stable")]  # by |effect|
    first = int(np.argmax(np.abs(effect)))
    header = page.locator("#rows thead th", has_text="q-value")  # the last column is on the screen, not cut off
    box, panel = header.bounding_box(), page.locator("#table-panel").bounding_box()
    assert box["x"] + box["width"] <= panel["x"] + panel["width"] + 1 <= 1400, (box, panel)
    logos = page.locator("svg.logo")
    assert logos.count() == 2
    check_glyphs(logos.nth(0).evaluate(GLYPHS), ref[first, 0])
    check_glyphs(logos.nth(1).evaluate(GLYPHS), alt[first, 0])
    boxes = [logos.nth(k).evaluate("s => [s.getAttribute('viewBox'), +s.querySelector('rect.variant').getAttribute('x'),"
                                   " +s.querySelector('rect.variant').dataset.span]") for k in (0, 1)]
    assert boxes[0][0] == boxes[1][0]  # one y scale
    assert boxes[0][1:] == [15, len(alleles[0][first])] and boxes[1][1:] == [15, len(alleles[1][first])]
    assert "effect" in page.inner_text("#title") and "p " in page.inner_text("#title")
    assert errors == []


def test_a_written_page_works_offline_and_holds_the_chosen_rows(browser, scored, tmp_path):
    out = tmp_path / "page.html"
    result = invoke("view", scored / "scores.h5", "--out", out, "--top", 2, "--motifs", scored / "motifs")
    assert result.exit_code == 0, result.output
    assert "http" not in out.read_text().split("<script>")[1].split("/api/")[0].replace("http://www.w3.org", "")
    page, errors = open_page(browser, out.as_uri())
    assert len(table_names(page)) == 2 and page.locator("svg.logo path.glyph").count() == 40 * 4
    assert invoke("view", scored / "scores.h5", "--out", out, "--top", 1).exit_code == 0  # its own page: replaced
    assert errors == []


def test_another_row_is_drawn_whole_while_another_task_keeps_the_zoom(browser, scored, tmp_path):
    out = tmp_path / "page.html"
    assert invoke("view", scored / "scores.h5", "--out", out).exit_code == 0
    page, errors = open_page(browser, out.as_uri())
    window = lambda: page.inner_text("#window")  # noqa: E731
    page.click("#zoom-in")
    zoomed = window()
    assert zoomed != "positions 0–40 of 40"
    page.select_option("#task", "1")  # the same sequence, another task: the zoom stays
    page.wait_for_function("document.getElementById('logos').dataset.task === '1'")
    assert window() == zoomed
    page.locator("#rows tbody tr").nth(1).click()
    page.wait_for_function("document.getElementById('window').textContent === 'positions 0–40 of 40'")
    assert errors == []


HOSTILE = ["/*SCRIPT*/", "<!--<script>", "</script><b>x</b>", "a&amp;b", "/*CONFIG*/", "<!--MARK-->"]


def test_no_record_name_can_change_the_written_page(write_scores, browser, tmp_path):
    # a record named /*SCRIPT*/ was replaced by the script, and <!--<script> opened an HTML comment: either emptied
    # the page's table; names are data: they reach the page as JSON escapes and are shown as text
    scores = write_scores(tmp_path / "s.h5", HOSTILE, np.random.default_rng(0).normal(size=(len(HOSTILE), 12, 4)))
    out = tmp_path / "page.html"
    assert invoke("view", scores, "--out", out).exit_code == 0
    html = out.read_text()
    assert html.count("<script") == 2 and html.count("</script>") == 2  # the config and the script, nothing more
    assert html.count("const config = JSON.parse") == 1 and "<!--<" not in html
    page, errors = open_page(browser, out.as_uri())
    assert sorted(table_names(page)) == sorted(HOSTILE)
    assert errors == []


def test_a_nan_prediction_is_one_line_naming_the_sequence(scored, tmp_path):
    broken = tmp_path / "nan.h5"
    shutil.copy(scored / "scores.h5", broken)
    shutil.copy(scored / "scores.tsv", tmp_path / "nan.tsv")
    with h5py.File(broken, "a") as h5:
        values = h5["prediction"][()]
        values[1, 0] = np.nan
        h5["prediction"][...] = values
        name = h5["names"][1].decode()
    result = invoke("view", broken, "--out", tmp_path / "p.html")
    assert result.exit_code == 1 and not (tmp_path / "p.html").exists()
    assert result.stderr.strip() == (f"seqlift: error: {broken}: damaged score file: 'prediction' of sequence "
                                      f"'{name}' (row 1) is NaN or infinite"), result.stderr
    with pytest.raises(SeqliftError, match="'prediction' of sequence"):
        serve(broken)  # the server refuses the file before it serves a page


def write_hits_folder(folder, scores):
    """A seqlift hits folder (its hits.tsv, the columns seqlift.hits writes) with hits in the file's rows 0 and 2."""
    from seqlift.hits import HITS_COLUMNS

    with h5py.File(scores) as h5:
        names = [n.decode() for n in h5["names"][()]]
    rows = [(0, "motif_a", "GATA1 (MA0035.5)", 5, 11, "+", 0.9), (0, "motif_b", "", 20, 28, "-", 0.4),
            (2, "motif_a", "GATA1 (MA0035.5)", 30, 36, "+", 1.5)]
    folder.mkdir()
    pd.DataFrame([{"name": names[i], "index": i, "chrom": "", "start": s, "end": e, "strand": strand, "motif": m,
                   "match": match, "coefficient": c, "correlation": 0.9, "importance": 1.0, "seq_start": s,
                   "seq_end": e, "seq_strand": strand} for i, m, match, s, e, strand, c in rows],
                 columns=HITS_COLUMNS).to_csv(folder / "hits.tsv", sep="\t", index=False)
    return folder


def test_hits_are_boxed_filtered_per_motif_and_link_to_their_sequence_zoomed(browser, scored, tmp_path):
    hits = write_hits_folder(tmp_path / "hits", scored / "scores.h5")
    out = tmp_path / "page.html"
    result = invoke("view", scored / "scores.h5", "--out", out, "--hits", hits, "--names", _names_file(tmp_path, scored))
    assert result.exit_code == 0, result.output
    page, errors = open_page(browser, out.as_uri())
    page.locator("#rows tbody tr", has_text=_name(scored, 0)).click()
    page.wait_for_function("document.querySelectorAll('svg.logo rect.hit').length === 2")
    boxes = page.eval_on_selector_all("svg.logo rect.hit", "r => r.map(b => [b.dataset.motif, +b.getAttribute('x'),"
                                      " +b.getAttribute('width')])")
    assert sorted(boxes) == [["motif_a", 5, 6], ["motif_b", 20, 8]]
    page.locator("#hit-motifs input[data-motif='motif_b']").uncheck()  # the per-motif filter
    page.wait_for_function("document.querySelectorAll('svg.logo rect.hit').length === 1")
    page.locator("#hit-motifs a", has_text="motif_a").click()
    links = page.locator("#hit-list a.hit-link")
    assert links.count() == 2 and links.nth(0).inner_text().startswith(_name(scored, 2))  # strongest first
    links.nth(0).click()
    page.wait_for_function("document.getElementById('window').textContent === 'positions 10–40 of 40'")
    assert page.locator("#rows tbody tr.selected").inner_text().startswith(_name(scored, 2))
    assert errors == []


def _name(scored, i):
    with h5py.File(scored / "scores.h5") as h5:
        return h5["names"][i].decode()


def _names_file(tmp_path, scored):
    with h5py.File(scored / "scores.h5") as h5:
        names = [n.decode() for n in h5["names"][()]]
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    return tmp_path / "names.txt"


def test_hits_of_another_file_are_refused(scored, files, tmp_path):
    other = tmp_path / "other.h5"
    assert invoke("score", files / "model.h5", files / "in.fa", "--out", other, "--n-refs", 2, "--quiet").exit_code == 0
    hits = write_hits_folder(tmp_path / "hits", scored / "scores.h5")
    result = invoke("view", other, "--out", tmp_path / "p.html", "--hits", hits)
    assert result.exit_code == 1 and "--hits" in result.stderr and "does not hold there" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "p.html").exists()
    result = invoke("view", scored / "scores.h5", "--out", tmp_path / "p.html", "--hits", tmp_path)
    assert result.exit_code == 1 and "no hits.tsv" in result.stderr


# ---------------------------------------------------------------------------------------------- misuse
def test_view_misuse_is_one_line(scored, files, tmp_path):
    (tmp_path / "notes.html").write_text("mine")
    (tmp_path / "names.txt").write_text("nobody\n")
    cases = [
        (["view", files / "in.fa"], "not an HDF5 score or variant file"),
        (["view", tmp_path / "missing.h5"], "file not found"),
        (["view", scored / "scores.h5", "--top", 3], "--top applies to --out only"),
        (["view", scored / "scores.h5", "--out", tmp_path / "notes.html"], "exists and was not written by seqlift"),
        (["view", scored / "scores.h5", "--out", scored / "scores.h5"], "is one of this run's inputs"),
        (["view", scored / "scores.h5", "--out", tmp_path / "p.html", "--names", tmp_path / "names.txt"],
         "'nobody' is not in"),
        (["view", scored / "scores.h5", "--out", tmp_path / "p.html", "--motifs", tmp_path], "no motifs.tsv"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code != 0 and message in result.stderr, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1
    assert (tmp_path / "notes.html").read_text() == "mine" and not (tmp_path / "p.html").exists()


def test_motifs_of_another_file_are_refused(scored, files, tmp_path):
    other = tmp_path / "other.h5"
    assert invoke("score", files / "model.h5", files / "in.fa", "--out", other, "--n-refs", 2, "--quiet").exit_code == 0
    with pytest.raises(SeqliftError, match="which .* does not hold there"):
        write_page(other, tmp_path / "p.html", scored / "motifs")
    assert not Path(tmp_path / "p.html").exists()
