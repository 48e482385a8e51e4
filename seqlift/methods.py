"""Attribution methods besides DeepLIFT, through the same graph walk and batching.

Ancona et al. 2018, Table 1: gradient×input, saliency (|gradient|), integrated gradients, guided
backpropagation ×input; and in-silico mutagenesis (every single-base substitution). Every method
returns an ``Attribution`` whose multipliers play DeepLIFT's role: contributions ``m ⊙ (x − ref)``
and hypothetical scores ``m − Σ_c m·ref``, so all methods land in the same score files.
"""

from __future__ import annotations

from . import _backend  # first: loads Keras quietly

import numpy as np  # noqa: E402
from keras import ops  # noqa: E402
from .engine import Attribution, Explainer, _check_shapes, _summarize, cached_explainer, pair_differences

METHODS = ("deeplift", "grad-x-input", "saliency", "integrated-gradients", "guided-backprop", "ism")
# Integrated gradients: midpoint Riemann sum over this many steps (completeness to ~1e-3 relative
# on the simulation model; the convergence delta reports it per sequence).
IG_STEPS = 32


def _targets(explainer: Explainer, x, target, guided=False):
    return explainer.target_value(explainer._forward(x, guided=guided)[explainer.graph.output], target)


def _target_differences(explainer, t_x, flat_ref, target, n_refs):
    """``t(x) − t(ref)`` of every (input, reference) pair, ``(B*R,)``."""
    t_ref = ops.reshape(_targets(explainer, flat_ref, target), (-1, n_refs))
    return ops.reshape(ops.expand_dims(t_x, 1) - t_ref, (-1,))


def _gradient_step(explainer: Explainer, target: int, kind: str):
    """Gradient at the input (``kind``: 'grad', 'saliency' or 'guided'), with zero references."""

    def step(x, ref):
        def objective(z):
            return (_targets(explainer, z, target, guided=kind == "guided"),)

        grad, (t_x,) = _backend.input_gradient(objective, x)
        if kind == "saliency":
            grad = ops.abs(grad)
        n_refs, shape = ref.shape[1], tuple(x.shape[1:])
        flat_ref = ops.reshape(ref, (-1,) + shape)
        m = ops.reshape(ops.repeat(ops.expand_dims(grad, 1), n_refs, axis=1), (-1,) + shape)
        dt = _target_differences(explainer, t_x, flat_ref, target, n_refs)
        return _summarize(m, pair_differences(x, ref), ref, dt, t_x)

    return explainer.compile(step)


def _integrated_gradients_step(explainer: Explainer, target: int, steps: int):
    """``(x − x̄)·mean_α ∇t(x̄ + α(x − x̄))``, α at the midpoints of ``steps`` intervals."""

    def step(x, ref):
        n_refs, shape = ref.shape[1], tuple(x.shape[1:])
        flat_ref = ops.reshape(ref, (-1,) + shape)
        d = pair_differences(x, ref)
        total = ops.zeros_like(d)
        for k in range(steps):
            alpha = (k + 0.5) / steps
            grad, _ = _backend.input_gradient(lambda z: (_targets(explainer, z, target),), flat_ref + alpha * d)
            total = total + grad
        t_x = _targets(explainer, x, target)
        dt = _target_differences(explainer, t_x, flat_ref, target, n_refs)
        return _summarize(total / steps, d, ref, dt, t_x)

    return explainer.compile(step)


def attribute(explainer: Explainer, method: str, inputs, references, target=0, batch_size=None,
              ig_steps=IG_STEPS, extra=None) -> Attribution:
    """Scores of ``inputs`` ``(N, *S)`` by ``method`` against ``references`` (see ``Explainer.deeplift``).

    Gradient methods ignore the references' content for their multipliers but use them for
    ``x − ref`` (pass zeros for the textbook gradient×input). ``explainer`` may also be a model or a
    path: its explainer is then built once and reused by later calls (``engine.cached_explainer``).
    extra: values of the model's other inputs, held fixed (``Explainer.check_extra``).
    """
    if not isinstance(explainer, Explainer):
        explainer = cached_explainer(explainer)
    if method == "deeplift":
        return explainer.deeplift(inputs, references, target=target, batch_size=batch_size, extra=extra)
    target = explainer.target(target)
    _check_shapes(explainer.graph.input_shape, inputs)
    if method == "ism":
        return in_silico_mutagenesis(explainer, inputs, target, batch_size=batch_size, extra=extra)
    fixed = explainer.fixed_rows(extra, len(inputs))
    kinds = {"grad-x-input": "grad", "saliency": "saliency", "guided-backprop": "guided"}
    if method in kinds:
        return explainer.run_pairs((method, target), lambda: _gradient_step(explainer, target, kinds[method]),
                                   inputs, references, batch_size, fixed)
    if method == "integrated-gradients":
        if batch_size is None:
            batch_size = max(1, 256 // (ig_steps * max(1, _n_refs(inputs, references))) or 1)
        return explainer.run_pairs((method, target, ig_steps),
                                   lambda: _integrated_gradients_step(explainer, target, ig_steps),
                                   inputs, references, batch_size, fixed)
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def _n_refs(inputs, references):
    refs = np.asarray(references)
    return refs.shape[1] if refs.ndim == np.ndim(inputs) + 1 else (refs.shape[0] if refs.ndim == np.ndim(inputs) else 1)


def in_silico_mutagenesis(explainer: Explainer, inputs, target=0, batch_size=None, extra=None):
    """Every single-base substitution of one-hot ``inputs`` ``(N, L, 4)``: ``t(x with b at i) − t(x)``.

    hypothetical: the effect of each base at each position, centred over the four bases
    (``ism[i, b] − mean_b ism[i, b]``); contributions: that value at the observed base. Positions
    that are N (all-zero rows) get zeros. delta is NaN (ISM has no completeness to check);
    reference_prediction is the mean prediction over all mutants. ``target`` may be a list: every
    target is then scored from one pass over the mutants, and a list of ``Attribution`` returned.
    extra: values of the model's other inputs, held fixed (``Explainer.check_extra``).
    """
    targets = [explainer.target(t) for t in (target if isinstance(target, (list, tuple)) else [target])]
    inputs = np.asarray(inputs, dtype=np.float32)
    n, length, alphabet = inputs.shape
    predict = explainer._cached(("select", tuple(targets)), lambda: explainer.compile(
        lambda v: ops.stack([_targets(explainer, v, t) for t in targets], axis=-1)))
    chunk = batch_size or 512
    fixed = explainer.fixed_rows(extra, n)
    base = explainer.apply(predict, inputs, chunk, fixed)  # (N, T)
    hyp = np.zeros((len(targets),) + inputs.shape, np.float32)
    mean_mutant = np.zeros((len(targets), n), np.float32)
    eye = np.eye(alphabet, dtype=np.float32)
    for i, seq in enumerate(inputs):
        mutants = np.repeat(seq[None], length * alphabet, axis=0).reshape(length, alphabet, length, alphabet)
        mutants[np.arange(length), :, np.arange(length), :] = eye
        row = fixed[min(i, len(fixed) - 1)][None]  # a sequence's mutants share its fixed inputs
        values = explainer.apply(predict, mutants.reshape(-1, length, alphabet), chunk, row)
        values = values.reshape(length, alphabet, len(targets))
        observed = seq.sum(-1) > 0
        for k in range(len(targets)):
            effect = values[..., k] - base[i, k]
            effect[~observed] = 0.0
            hyp[k, i] = effect - effect.mean(-1, keepdims=True)
            mean_mutant[k, i] = values[..., k][observed][seq[observed] == 0].mean() if observed.any() else base[i, k]
    results = [Attribution(hyp[k] * inputs, hyp[k], np.full(n, np.nan, np.float32), base[:, k].astype(np.float32),
                           mean_mutant[k]) for k in range(len(targets))]
    return results if isinstance(target, (list, tuple)) else results[0]
