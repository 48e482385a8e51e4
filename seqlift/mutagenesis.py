"""In-silico mutagenesis: the target on every single-base substitution of one-hot DNA.

``t(x with b at i) − t(x)`` for every position ``i`` and base ``b``, from forward passes only; one
pass over the mutants serves every target. Registered in ``seqlift.methods``.
"""

from __future__ import annotations

from . import backend  # noqa: F401  (first: loads Keras quietly)

import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from .engine import Attribution, Explainer  # noqa: E402

# Sequences (or mutants) per forward pass when the caller gives no batch size.
MUTANTS_PER_STEP = 512


def mutagenesis_step(explainer: Explainer, targets):
    """Every target's value on a batch of inputs: ``(B, *S) -> (B, T)``."""
    return explainer.compile(lambda v: ops.stack([explainer.target_on(v, t) for t in targets], axis=-1))


def run_mutants(explainer: Explainer, step, inputs, references, batch_size, fixed) -> list[Attribution]:
    """One ``Attribution`` per target of ``step`` for one-hot ``inputs`` ``(N, L, 4)`` (references unused).

    hypothetical: the effect of each base at each position, centred over the four bases
    (``ism[i, b] − mean_b ism[i, b]``); contributions: that value at the observed base. Positions
    that are N (all-zero rows) get zeros. delta is NaN (ISM has no completeness to check);
    reference_prediction is the mean prediction over all mutants.
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    n = len(inputs)
    chunk = batch_size or MUTANTS_PER_STEP
    base = explainer.apply(step, inputs, chunk, fixed)  # (N, T)
    n_targets = base.shape[1]
    hyp = np.zeros((n_targets,) + inputs.shape, np.float32)
    mean_mutant = np.zeros((n_targets, n), np.float32)
    for i, seq in enumerate(inputs):
        row = fixed[min(i, len(fixed) - 1)][None]  # a sequence's mutants share its fixed inputs
        values = explainer.apply(step, _mutants(seq), chunk, row).reshape(seq.shape + (n_targets,))
        observed = seq.sum(-1) > 0
        for k in range(n_targets):
            effect = values[..., k] - base[i, k]
            effect[~observed] = 0.0
            hyp[k, i] = effect - effect.mean(-1, keepdims=True)
            mean_mutant[k, i] = values[..., k][observed][seq[observed] == 0].mean() if observed.any() else base[i, k]
    return [Attribution(hyp[k] * inputs, hyp[k], np.full(n, np.nan, np.float32), base[:, k].astype(np.float32),
                        mean_mutant[k]) for k in range(n_targets)]


def _mutants(seq: np.ndarray) -> np.ndarray:
    """Every single-base substitution of one sequence ``(L, A)``: ``(L*A, L, A)``, position-major."""
    length, alphabet = seq.shape
    mutants = np.repeat(seq[None], length * alphabet, axis=0).reshape(length, alphabet, length, alphabet)
    mutants[np.arange(length), :, np.arange(length), :] = np.eye(alphabet, dtype=np.float32)
    return mutants.reshape(-1, length, alphabet)
