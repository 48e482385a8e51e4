"""The screenshots of ``seqlift view`` in docs/ and the README, made from the shipped example.

1. ``seqlift score`` on the shipped 800 test sequences and ``seqlift motifs`` on the scores (named against the
   simulation's two motifs, ``--motif-db``): the score view and the motif view.
2. ``seqlift variants`` for the variant view: every test sequence with a GATA1 instance across its middle base gets
   an SNV there to the base the GATA1 matrix likes least (the test sequences serve as the genome).

Needs Debian's chromium and playwright. Usage: python docs/make_screenshots.py [--folder DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pandas as pd

DOCS = Path(__file__).resolve().parent
DATA = DOCS.parent / "data" / "simulations"


def seqlift(*args):
    subprocess.run([sys.executable, "-m", "seqlift.cli.main", *map(str, args)], check=True)


def variant_file(folder: Path) -> Path:
    """``seqlift variants`` on SNVs that break GATA1 sites: the shipped test sequences serve as the genome (each
    record a 200 bp chromosome, so a variant at position 101 has its record as its window)."""
    from seqlift.sequences import read_fasta
    from seqlift.simulation import load_motif

    records = {r.name: r.sequence for r in read_fasta(DATA / "test.fa")}
    motifs = pd.read_csv(DATA / "test_motifs.tsv", sep="\t")
    middle = len(next(iter(records.values()))) // 2
    hits = motifs[(motifs.motif == "GATA1") & (motifs.start <= middle) & (motifs.end > middle)]
    pwm = load_motif("GATA1")
    lines = []
    for hit in hits.itertuples():
        ref = records[hit.name][middle]
        worst = "ACGT"[int(np.argmin(pwm[middle - hit.start]))]  # the base the GATA1 matrix likes least there
        if worst != ref:
            lines.append(f"{hit.name}\t{middle + 1}\t{ref}\t{worst}\n")
    (folder / "snvs.tsv").write_text("".join(lines))
    (folder / "genome.fa").write_bytes((DATA / "test.fa").read_bytes())
    seqlift("variants", DATA / "model.h5", folder / "snvs.tsv", "--genome", folder / "genome.fa", "--task", "all",
            "--out", folder / "variants.h5", "--quiet")
    return folder / "variants.h5"


def shoot(url: str, out: Path, actions=lambda page: None):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 820})
        page.goto(url)
        page.wait_for_function("document.body.dataset.ready")
        actions(page)
        page.wait_for_timeout(300)
        page.screenshot(path=str(out))
        browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    from seqlift.view import serve

    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        tmp = Path(tmp)
        seqlift("score", DATA / "model.h5", DATA / "test.fa", "--task", "all", "--out", tmp / "example.h5", "--quiet")
        seqlift("motifs", tmp / "example.h5", "--out", tmp / "motifs", "--motif-db", DATA / "simulation_motifs.meme",
                "--quiet")
        variants = variant_file(tmp)

        def zoom_on_seqlet(page):
            page.click(".motif")
            page.wait_for_selector("#motif-seqlets a")
            page.click("#motif-seqlets a")
            page.wait_for_selector("svg.logo rect.seqlet")

        def zoom_on_variant(page):
            page.select_option("#task", "1")
            page.wait_for_timeout(300)
            for _ in range(2):
                page.click("#zoom-in")

        for scores, motifs, name, actions in ((tmp / "example.h5", tmp / "motifs", "view_scores.png", lambda p: None),
                                              (tmp / "example.h5", tmp / "motifs", "view_motifs.png", zoom_on_seqlet),
                                              (variants, None, "view_variants.png", zoom_on_variant)):
            found, stop = {}, threading.Event()
            thread = threading.Thread(target=serve, args=(scores, motifs),
                                      kwargs={"ready": lambda url: found.setdefault("url", url), "stop": stop})
            thread.start()
            while "url" not in found:
                threading.Event().wait(0.05)
            shoot(found["url"], DOCS / name, actions)
            stop.set()
            thread.join()
            print("wrote", DOCS / name)


if __name__ == "__main__":
    main()
