"""Test-wide settings (exact float32 on GPUs too) and the small model and files the CLI tests share."""

import keras
import numpy as np
import pytest
from keras import layers

from seqlift.outputs import Outputs
from seqlift.scorefile import ScoreWriter
from seqlift.scoring import Scores

LENGTH = 40

if keras.backend.backend() == "jax":
    import jax

    jax.config.update("jax_default_matmul_precision", "float32")
elif keras.backend.backend() == "torch":
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
elif keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """A 2-output sigmoid model over 40 bp (model.h5), 9 sequences (in.fa), a genome and a BED file."""
    d = tmp_path_factory.mktemp("score")
    rng = np.random.default_rng(0)
    inp = keras.Input((LENGTH, 4))
    h = layers.Conv1D(6, 5, activation="relu", padding="same")(inp)
    h = layers.MaxPooling1D(2)(h)
    h = layers.Dense(6, activation="relu", name="hidden")(layers.Flatten()(h))
    model = keras.Model(inp, layers.Dense(2, activation="sigmoid")(h))
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.4)
    model.get_layer("hidden").bias.assign(np.ones(6, "float32"))  # alive ReLUs, so gradients are not all zero
    model.save(d / "model.h5")
    seqs = ["".join(rng.choice(list("ACGT"), LENGTH)) for _ in range(9)]
    seqs[3] = seqs[3][:10] + "NNNN" + seqs[3][14:]
    (d / "in.fa").write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    genome = "".join(rng.choice(list("ACGT"), 300))
    (d / "genome.fa").write_text(f">chr1\n{genome[:200]}\n>chr2\n{genome[200:]}\n")
    (d / "regions.bed").write_text("chr1\t50\t70\npeak\nchr2\t10\t90\n".replace("peak\n", "chr1\t100\t180\tp\t0\t.\t1\t1\t1\t30\n"))
    return d


@pytest.fixture
def write_scores():
    """``write_scores(path, names, contrib, tasks=(0,))``: a small score file as ``seqlift score`` writes it
    (one-hot all A, hypothetical = 2 × contrib, zero deltas and predictions)."""
    return _write_scores


def _write_scores(path, names, contrib, tasks=(0,)):
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
