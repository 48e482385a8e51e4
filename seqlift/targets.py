"""What is explained: one logit, the sum of an output, or a profile head's weighted logits.

- ``logit``: one element of the chosen output, before a final sigmoid or softmax; under a softmax,
  centred over the classes (Shrikumar et al. 2016, §2.4-2.5). Today's default.
- ``sum``: the sum of the whole chosen output, e.g. a BPNet counts head (chrombpnet's counts target).
- ``profile``: ``t = Σ_i w_i ℓ̄_i`` over the chosen output's logits ``ℓ`` flattened over positions
  and strands, ``ℓ̄ = ℓ − mean(ℓ)``, ``w = softmax(ℓ̄)`` computed on each sequence and each
  reference separately: the value of bpnet-lite's ``ProfileWrapper`` (one softmax over both strands,
  as its loss) and of chrombpnet's ``get_weightedsum_meannormed_logits`` (one strand). DeepLIFT
  splits its change exactly, the weights' own change included (``difference``).
- ``profile-fixed-weights``: the same ``t`` with the sequence's weights ``w(x)`` held fixed, as
  chrombpnet's stop-gradient holds them for DeepSHAP: a linear target, ``Δt = Σ_i w_i(x) Δℓ̄_i``. Its
  contributions sum to that, not to the profile's own change ``t(x) − t(ref)`` (which is also
  ``Σ_i ℓ̄_i(ref) (w_i(x) − w_i(ref))`` away); what it reports for a reference is ``Σ_i w_i(x) ℓ̄_i(ref)``.

A target has two forms: its ``value`` on actual activations (what gradient methods differentiate:
for ``profile`` the weights are a stop-gradient, as in chrombpnet) and its ``difference`` over
(input, reference) pairs, whose autodiff multipliers are DeepLIFT's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import backend  # noqa: F401  (first: loads Keras without TensorFlow's C++ log lines)

from keras import ops  # noqa: E402

from . import rules  # noqa: E402
from .errors import SeqliftError  # noqa: E402
from .methods import TARGETS  # noqa: E402

KINDS = TARGETS  # methods.TARGETS: --target is parsed without Keras
PROFILES = ("profile", "profile-fixed-weights")  # a profile head's weighted logits, split exactly or not


@dataclass(frozen=True)
class Target:
    """``kind`` in ``KINDS``; ``index``: the logit's index into the flattened output (``logit`` only)."""

    kind: str = "logit"
    index: int = 0

    @property
    def label(self) -> str:
        return f"logit {self.index}" if self.kind == "logit" else self.kind


def resolve(target, n_outputs: int) -> Target:
    """A ``Target`` from an output index (a logit), 'logit' (index 0), 'sum', 'profile' or a ``Target``."""
    if isinstance(target, str):
        if target not in KINDS:
            raise SeqliftError(f"unknown target '{target}'; choose {', '.join(KINDS)} or an output index")
        target = Target(target)
    elif not isinstance(target, Target):
        if isinstance(target, bool) or not hasattr(target, "__index__"):
            raise SeqliftError(f"target {target!r} is not an output index or one of {', '.join(KINDS)}")
        target = Target("logit", int(target))
    if target.kind == "logit" and not 0 <= target.index < n_outputs:
        raise SeqliftError(f"target {target.index} is out of range: the model has {n_outputs} outputs "
                           f"(0..{n_outputs - 1})")
    return target


def check_fits(target: Target, output_shape: tuple, final_activation=None) -> Target:
    """``target`` if it means something on an output of ``output_shape`` (no batch axis) ending in
    ``final_activation``; else a ``SeqliftError`` saying which target fits. Each refused case would
    otherwise give a constant target, so all-zero contributions."""
    size = math.prod(output_shape)
    if final_activation == "softmax" and output_shape[-1:] == (1,):
        raise SeqliftError("this output is a softmax over one value, which is always 1: there is nothing to "
                           "explain; choose another output (--output) or a model without that softmax")
    if target.kind in PROFILES and final_activation:
        raise SeqliftError(f"target '{target.kind}' needs a profile head's logits, but this output ends in a "
                           f"{final_activation} (classes or independent tasks); explain a task's "
                           "logit instead, or choose the profile head with output= (--output)")
    if target.kind in PROFILES and size == 1:
        raise SeqliftError(f"target '{target.kind}' on an output of one value (a counts head) is always 0 (its softmax "
                           "weight is 1); explain a counts head with --target sum")
    if target.kind == "sum" and final_activation == "softmax":
        raise SeqliftError("target 'sum' of a softmax output's logits means nothing (a softmax ignores a shift of "
                           "all its logits); explain each class's logit with --target logit --task N")
    return target


def is_positional(output_shape: tuple) -> bool:
    """Whether an output has a position axis (``(L, strands)``, a profile head) rather than one value per task."""
    return len(output_shape) >= 2 and math.prod(output_shape[:-1]) > 1


def _flat(out):
    """``(B, ...)`` → ``(B, n)``: positions and strands flattened together."""
    return ops.reshape(out, (-1, math.prod(out.shape[1:])))


def _linear(target: Target, out, final_activation):
    """``logit`` and ``sum`` are linear in the output ``(B, ...)``: the same map serves values and differences."""
    flat = _flat(out)
    if target.kind == "sum":
        return ops.sum(flat, axis=-1)
    if final_activation == "softmax":
        flat = flat - ops.mean(flat, axis=-1, keepdims=True)
    return flat[:, target.index]


def _centred(flat):
    """Logits ``(B, n)`` minus their mean over positions and strands."""
    return flat - ops.mean(flat, axis=-1, keepdims=True)


def value(target: Target, out, final_activation=None):
    """The target on actual activations ``out`` ``(B, ...)``: ``(B,)``."""
    if target.kind not in PROFILES:
        return _linear(target, out, final_activation)
    centred = _centred(_flat(out))
    return ops.sum(ops.stop_gradient(ops.softmax(centred, axis=-1)) * centred, axis=-1)


def difference(target: Target, out_x, out_d, n_refs: int, final_activation=None):
    """``t(x) − t(ref)`` for every pair ``(B*R,)`` from ``out_x`` ``(B, ...)`` and ``out_d`` ``(B*R, ...)``
    (``profile-fixed-weights``: ``Σ_i w_i(x) Δℓ̄_i``, the weights of the sequence held fixed).

    ``profile``: the product rule splits ``Δt = Σ_i w̄_i Δℓ̄_i + Σ_i ℓ̄̄_i Δw_i`` (bars: means over the
    input and the reference). The first sum is the logits' share under weights held constant; the
    second, the change of the weights themselves, is what a stop-gradient drops (so chrombpnet's
    scores do not sum to Δt): it goes back to the logits through the softmax rule, so
    ``Σ C = t(x) − t(ref)`` exactly with bounded multipliers.
    """
    if target.kind not in PROFILES:
        return _linear(target, out_d, final_activation)
    centred = _centred(rules.per_pair(_flat(out_x), n_refs))
    d_centred = _centred(_flat(out_d))
    weights = ops.softmax(centred, axis=-1)
    if target.kind == "profile-fixed-weights":
        return ops.sum(weights * d_centred, axis=-1)  # the sequence's weights, held fixed
    d_weights = rules.softmax_difference(centred, d_centred)
    return ops.sum(rules.bilinear(ops.multiply, weights, d_weights, centred, d_centred), axis=-1)
