"""Gradient attribution methods through the same graph walk and batching as DeepLIFT.

Ancona et al. 2018, Table 1: gradient × input, saliency (|gradient|), integrated gradients and
guided backpropagation × input. Each builds a compiled ``step(x (B, *S), ref (B, R, *S))`` that
returns what ``engine.summarize`` makes of its multipliers, so ``engine.run_pairs`` runs it like
DeepLIFT's. Registered in ``seqlift.methods``.
"""

from __future__ import annotations

from . import backend  # first: loads Keras quietly

from keras import ops  # noqa: E402

from .engine import Explainer, pair_differences, run_pairs, summarize  # noqa: E402

# Integrated gradients: midpoint Riemann sum over this many steps (completeness to ~1e-3 relative
# on the simulation model; the convergence delta reports it per sequence).
IG_STEPS = 32
# (input, reference) pairs per integrated-gradients step, each evaluated at ``ig_steps`` points.
IG_PAIRS = 256


def _target_differences(explainer: Explainer, t_x, flat_ref, target, n_refs):
    """``t(x) − t(ref)`` of every (input, reference) pair, ``(B*R,)``."""
    t_ref = ops.reshape(explainer.target_on(flat_ref, target), (-1, n_refs))
    return ops.reshape(ops.expand_dims(t_x, 1) - t_ref, (-1,))


def _input_gradient_step(explainer: Explainer, target, guided=False, absolute=False):
    """Gradient at the input (``guided``: through guided backpropagation; ``absolute``: its size)."""

    def step(x, ref):
        grad, (t_x,) = backend.ADAPTER.input_gradient(lambda z: (explainer.target_on(z, target, guided=guided),), x)
        if absolute:
            grad = ops.abs(grad)
        n_refs, shape = ref.shape[1], tuple(x.shape[1:])
        flat_ref = ops.reshape(ref, (-1,) + shape)
        m = ops.reshape(ops.repeat(ops.expand_dims(grad, 1), n_refs, axis=1), (-1,) + shape)
        dt = _target_differences(explainer, t_x, flat_ref, target, n_refs)
        return summarize(m, pair_differences(x, ref), ref, dt, t_x)

    return explainer.compile(step)


def gradient_step(explainer: Explainer, targets):
    """Gradient × input: the gradient of the target as every reference's multiplier."""
    (target,) = targets
    return _input_gradient_step(explainer, target)


def saliency_step(explainer: Explainer, targets):
    """Saliency: ``|∇t(x)|`` as the multiplier."""
    (target,) = targets
    return _input_gradient_step(explainer, target, absolute=True)


def guided_backprop_step(explainer: Explainer, targets):
    """Guided backpropagation: only positive gradients pass back through each nonlinearity."""
    (target,) = targets
    return _input_gradient_step(explainer, target, guided=True)


def integrated_gradients_step(explainer: Explainer, targets, ig_steps: int = IG_STEPS):
    """``(x − x̄)·mean_α ∇t(x̄ + α(x − x̄))``, α at the midpoints of ``ig_steps`` intervals."""
    (target,) = targets

    def step(x, ref):
        n_refs, shape = ref.shape[1], tuple(x.shape[1:])
        flat_ref = ops.reshape(ref, (-1,) + shape)
        d = pair_differences(x, ref)
        total = ops.zeros_like(d)
        for k in range(ig_steps):
            alpha = (k + 0.5) / ig_steps
            grad, _ = backend.ADAPTER.input_gradient(lambda z: (explainer.target_on(z, target),), flat_ref + alpha * d)
            total = total + grad
        t_x = explainer.target_on(x, target)
        dt = _target_differences(explainer, t_x, flat_ref, target, n_refs)
        return summarize(total / ig_steps, d, ref, dt, t_x)

    return explainer.compile(step)


def run_integrated_gradients(explainer: Explainer, step, inputs, references, batch_size, fixed,
                             ig_steps: int = IG_STEPS):
    """``engine.run_pairs`` with fewer pairs per step: each pair is evaluated at ``ig_steps`` points."""
    pairs = max(1, IG_PAIRS // ig_steps)
    return run_pairs(explainer, step, inputs, references, batch_size, fixed, pairs_per_step=pairs)
