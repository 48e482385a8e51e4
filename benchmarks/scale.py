"""Genome scale (issue 15): the driver's maximum write rate into HDF5, and Ray's scaling from 1 to 2 workers.

- write rate: ``ScoreWriter.append`` of ready-made scores (1000 bp, one task), each chunk flushed and
  counted as ``seqlift score`` does for ``--resume``: the most sequences/s one driver can write, so the
  most one driver can take from any number of Ray workers;
- Ray: ``seqlift score --ray local --workers W`` (``pipeline.prepare`` and ``run``) on a small model,
  W = 1 then 2, wall time of the whole run including the cluster's start.

Usage: python benchmarks/scale.py [--n-seqs 400] [--json benchmarks/results/scale_cpu_tensorflow.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def write_rate(folder: Path, n: int = 20000, length: int = 1000, chunk: int = 1000) -> float:
    """Sequences/s that ``ScoreWriter`` appends (random scores, chunks of ``chunk``, flushed each)."""
    from seqlift.outputs import Outputs
    from seqlift.scorefile import ScoreWriter
    from seqlift.scoring import Scores

    rng = np.random.default_rng(0)
    one_hot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (chunk, length))]
    hyp = rng.normal(size=(chunk, 1, length, 4)).astype(np.float32)
    scores = Scores(hyp * one_hot[:, None], hyp, *(rng.normal(size=(chunk, 1)).astype(np.float32) for _ in range(3)))
    names = [f"chr1:{i * length}-{(i + 1) * length}" for i in range(chunk)]
    with Outputs() as outputs:
        writer = ScoreWriter(outputs, folder / "rate.h5", length, [0], {"method": "deeplift"},
                             summary=folder / "rate.tsv", resume={"chunk_size": chunk})
        began = time.perf_counter()
        for _ in range(n // chunk):
            writer.append(names, one_hot, scores)
        writer.close()
        return n / (time.perf_counter() - began)


def small_model(path: Path, length: int = 1000):
    import keras
    from keras import layers

    inp = keras.Input((length, 4))
    h = layers.Conv1D(32, 19, activation="relu", padding="same")(inp)
    h = layers.MaxPooling1D(10)(h)
    h = layers.Conv1D(32, 11, activation="relu", padding="same")(h)
    h = layers.GlobalAveragePooling1D()(h)
    keras.Model(inp, layers.Dense(1)(h)).save(path)


def ray_seconds(folder: Path, n_seqs: int, workers: int) -> float:
    from seqlift import pipeline

    rng = np.random.default_rng(0)
    fasta = folder / "in.fa"
    if not fasta.exists():
        fasta.write_text("".join(f">s{i}\n{''.join(rng.choice(list('ACGT'), 1000))}\n" for i in range(n_seqs)))
    request = pipeline.build_request(str(folder / "model.h5"), str(fasta), out=folder / f"ray{workers}.h5", n_refs=10,
                                     chunk_size=25, ray="local", workers=workers)
    began = time.perf_counter()
    pipeline.run(pipeline.prepare(request, lambda n: [0]))
    return time.perf_counter() - began


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-seqs", type=int, default=400)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result = {"cores": os.cpu_count(), "write_rate_seq_per_s_1000bp": round(write_rate(folder), 1)}
        print(result, flush=True)
        small_model(folder / "model.h5")
        for workers in (1, 2):
            seconds = ray_seconds(folder, args.n_seqs, workers)
            result[f"ray_{workers}_workers_s"] = round(seconds, 1)
            result[f"ray_{workers}_workers_seq_per_s"] = round(args.n_seqs / seconds, 1)
            print(result, flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
