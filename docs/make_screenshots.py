"""The screenshots of ``seqlift view`` in docs/ and the README, made from the shipped example.

1. ``seqlift score`` on the shipped 800 test sequences and ``seqlift motifs`` on the scores: the score view and the
   motif view.
2. A variant file for the variant view: every test sequence with a GATA1 instance across its middle base gets that
   base changed to the one the GATA1 matrix likes least; both windows are scored with ``seqlift.score`` (the same
   model, references and settings) and written in the layout ``seqlift.view.data.VARIANT_DATASETS`` names.

Needs Debian's chromium and playwright. Usage: python docs/make_screenshots.py [--folder DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

DOCS = Path(__file__).resolve().parent
DATA = DOCS.parent / "data" / "simulations"


def seqlift(*args):
    subprocess.run([sys.executable, "-m", "seqlift.cli.main", *map(str, args)], check=True)


def variant_file(path: Path):
    import seqlift
    from seqlift.sequences import one_hot_encode, read_fasta
    from seqlift.simulation import load_motif

    records = {r.name: r.sequence for r in read_fasta(DATA / "test.fa")}
    motifs = pd.read_csv(DATA / "test_motifs.tsv", sep="\t")
    length = len(next(iter(records.values())))
    middle = length // 2
    hits = motifs[(motifs.motif == "GATA1") & (motifs.start <= middle) & (motifs.end > middle)]
    pwm = load_motif("GATA1")
    rows = []
    for hit in hits.itertuples():
        sequence = records[hit.name]
        worst = "ACGT"[int(np.argmin(pwm[middle - hit.start]))]
        if worst == sequence[middle]:
            continue
        rows.append((hit.name, sequence, sequence[:middle] + worst + sequence[middle + 1:], sequence[middle], worst))
    ref = np.stack([one_hot_encode(r[1]) for r in rows])
    alt = np.stack([one_hot_encode(r[2]) for r in rows])
    scored = {side: seqlift.score(str(DATA / "model.h5"), x, tasks=[0, 1, 2], n_refs=20)
              for side, x in (("ref", ref), ("alt", alt))}
    with h5py.File(path, "w") as h5:
        text = h5py.string_dtype()
        h5["ids"] = np.array([f"{r[0]}:{middle + 1}:{r[3]}:{r[4]}" for r in rows], dtype=object).astype(text)
        h5["chrom"] = np.array([r[0] for r in rows], dtype=object).astype(text)
        h5["pos"] = np.full(len(rows), middle + 1)
        h5["ref"] = np.array([r[3] for r in rows], dtype=object).astype(text)
        h5["alt"] = np.array([r[4] for r in rows], dtype=object).astype(text)
        for side, x in (("ref", ref), ("alt", alt)):
            h5[f"{side}_one_hot"] = x
            h5[f"{side}_contrib"] = scored[side].contributions
            h5[f"{side}_hypothetical"] = scored[side].hypothetical
            h5[f"{side}_prediction"] = scored[side].prediction
        h5.attrs.update(tasks=np.array([0, 1, 2]), method="deeplift", rule="rescale", target="logit")


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
        seqlift("motifs", tmp / "example.h5", "--out", tmp / "motifs", "--quiet")
        variant_file(tmp / "variants.h5")

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
                                              (tmp / "variants.h5", None, "view_variants.png", zoom_on_variant)):
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
