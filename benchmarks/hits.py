"""Precision and recall of the planted TAL1 and GATA1 instances of the shipped example, side by side:

(a) ``seqlift hits`` (Fi-NeMo) on the shipped model's DeepLIFT scores, with the motifs ``seqlift motifs`` found there;
(b) FIMO (memelite) on the sequences with the true PWMs (p < 1e-4, its default), the model not involved;
(c) TF-MoDISco-lite's seqlets (``seqlift motifs``' seqlets.tsv).

The simulation knows every planted instance (``data/simulations/test_motifs.tsv``). A call of motif M matches a
planted instance of M when they overlap by at least half of the shorter of the two (a 6 bp hit core in a 16 bp TAL1
site, a 50 bp seqlet around a 10 bp GATA1 site). Precision: calls that match a planted instance of their motif;
recall: planted instances matched by a call. Patterns are named by TOMTOM against the simulation's two motifs, so
``pos_pattern_k`` maps to GATA1 or TAL1; a pattern matching neither counts as wrong calls (precision).

Usage: python benchmarks/hits.py [--n-refs 20] [--json benchmarks/results/hits_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent.parent / "data" / "simulations"


def seqlift(*args):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "seqlift.cli.main", *map(str, args), "--quiet"], check=True)
    return time.perf_counter() - start


def overlaps(a_start, a_end, b_start, b_end) -> bool:
    shorter = min(a_end - a_start, b_end - b_start)
    return min(a_end, b_end) - max(a_start, b_start) >= shorter / 2


def score(calls: pd.DataFrame, planted: pd.DataFrame) -> dict:
    """Precision and recall of ``calls`` (name, motif, start, end) against ``planted``, overall and per motif."""
    by_site = {key: list(zip(rows["start"], rows["end"])) for key, rows in planted.groupby(["name", "motif"])}
    matched_calls, found = 0, set()
    for name, motif, start, end in zip(calls["name"], calls["motif"], calls["start"], calls["end"]):
        hits = [(s, e) for s, e in by_site.get((name, motif), []) if overlaps(start, end, s, e)]
        matched_calls += bool(hits)
        found |= {(name, motif, s, e) for s, e in hits}
    result = {"calls": len(calls), "precision": matched_calls / max(len(calls), 1),
              "recall": len(found) / len(planted)}
    for motif in ("GATA1", "TAL1"):
        mine, theirs = calls[calls["motif"] == motif], planted[planted["motif"] == motif]
        result[f"recall_{motif}"] = len({f for f in found if f[1] == motif}) / len(theirs)
        result[f"calls_{motif}"] = len(mine)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-refs", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from memelite import fimo
    from memelite.io import read_meme

    from seqlift.scorefile import ScoreFile

    planted = pd.read_csv(DATA / "test_motifs.tsv", sep="\t")
    database = DATA / "simulation_motifs.meme"
    to_motif = {"GATA1_disc1": "GATA1", "TAL1_known1": "TAL1"}
    results, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seconds["score"] = seqlift("score", DATA / "model.h5", DATA / "test.fa", "--out", tmp / "s.h5", "--n-refs",
                                   args.n_refs)
        seconds["motifs"] = seqlift("motifs", tmp / "s.h5", "--out", tmp / "motifs", "--motif-db", database)
        seconds["hits"] = seqlift("hits", tmp / "s.h5", "--motifs", tmp / "motifs", "--out", tmp / "hits")
        patterns = pd.read_csv(tmp / "motifs" / "motifs.tsv", sep="\t")
        named = dict(zip(patterns["pattern"], patterns["best_match"].map(to_motif).fillna("other")))
        hits = pd.read_csv(tmp / "hits" / "hits.tsv", sep="\t")
        hits["motif"] = hits["motif"].map(named)
        in_sequence = hits[["name", "motif"]].assign(start=hits["seq_start"], end=hits["seq_end"])
        results["seqlift hits (Fi-NeMo)"] = score(in_sequence, planted)
        seqlets = pd.read_csv(tmp / "motifs" / "seqlets.tsv", sep="\t")
        seqlets["motif"] = seqlets["pattern"].map(named)
        results["TF-MoDISco-lite seqlets"] = score(seqlets, planted)
        with ScoreFile(tmp / "s.h5") as scores:
            names, one_hot = scores.names, scores.rows("one_hot", np.arange(scores.n))
        start = time.perf_counter()
        found = pd.concat(fimo(read_meme(str(database)), one_hot.transpose(0, 2, 1).astype(np.float32)))
        seconds["fimo"] = time.perf_counter() - start
        found = pd.DataFrame({"name": names[found["sequence_name"].astype(int)],
                              "motif": found["motif_name"].map(to_motif), "start": found["start"],
                              "end": found["end"]})
        results["FIMO, true PWMs (p < 1e-4)"] = score(found, planted)
    table = pd.DataFrame(results).T
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(json.dumps({"seconds": {k: round(v, 1) for k, v in seconds.items()}}))
    if args.json:
        Path(args.json).write_text(json.dumps({"planted": len(planted), "n_refs": args.n_refs, "seconds": seconds,
                                               "methods": results}, indent=2))


if __name__ == "__main__":
    main()
