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


class TargetKind:
    """One kind of target: what it refuses to explain (``check``), its ``value`` on actual activations and its
    ``difference`` over (input, reference) pairs. ``name``: ``--target``'s value and the score file's attribute
    (one of ``choices.TARGETS``, which lists them for the CLI without Keras)."""

    name = ""
    indexed = False  # one element of the output, chosen by index (``--task``)

    def label(self, index: int) -> str:
        return self.name

    def check(self, size: int, final_activation) -> None:
        """Refuse an output of ``size`` values ending in ``final_activation`` on which this target is constant."""

    def value(self, target: Target, out, final_activation):
        """The target on actual activations ``out`` ``(B, ...)``: ``(B,)``."""
        return self.linear(target, out, final_activation)

    def difference(self, target: Target, out_x, out_d, n_refs: int, final_activation):
        """``t(x) − t(ref)`` for every pair ``(B*R,)`` (see ``difference``)."""
        return self.linear(target, out_d, final_activation)

    def linear(self, target: Target, out, final_activation):
        """A target linear in the output ``(B, ...)``: the same map serves values and differences."""
        raise NotImplementedError

    def __repr__(self):
        return f"TargetKind({self.name!r})"


class Logit(TargetKind):
    """One logit; under a softmax, centred over the classes (Shrikumar et al. 2016, §2.4-2.5)."""

    name = "logit"
    indexed = True

    def label(self, index: int) -> str:
        return f"logit {index}"

    def linear(self, target, out, final_activation):
        flat = _flat(out)
        if final_activation == "softmax":
            flat = flat - ops.mean(flat, axis=-1, keepdims=True)
        return flat[:, target.index]


class Sum(TargetKind):
    """The sum of the whole output (a counts head)."""

    name = "sum"

    def check(self, size, final_activation):
        if final_activation == "softmax":
            raise SeqliftError("target 'sum' of a softmax output's logits means nothing (a softmax ignores a shift of "
                               "all its logits); explain each class's logit with --target logit --task N")

    def linear(self, target, out, final_activation):
        return ops.sum(_flat(out), axis=-1)


class Profile(TargetKind):
    """A profile head's softmax-weighted mean-centred logits, their change split exactly (``difference``)."""

    name = "profile"

    def check(self, size, final_activation):
        if final_activation:
            raise SeqliftError(f"target '{self.name}' needs a profile head's logits, but this output ends in a "
                               f"{final_activation} (classes or independent tasks); explain a task's "
                               "logit instead, or choose the profile head with output= (--output)")
        if size == 1:
            raise SeqliftError(f"target '{self.name}' on an output of one value (a counts head) is always 0 (its "
                               "softmax weight is 1); explain a counts head with --target sum")

    def value(self, target, out, final_activation):
        centred = _centred(_flat(out))
        return ops.sum(ops.stop_gradient(ops.softmax(centred, axis=-1)) * centred, axis=-1)

    def difference(self, target, out_x, out_d, n_refs, final_activation):
        centred = _centred(rules.per_pair(_flat(out_x), n_refs))
        d_centred = _centred(_flat(out_d))
        return self.weighted(ops.softmax(centred, axis=-1), centred, d_centred)

    def weighted(self, weights, centred, d_centred):
        """``Δt`` from the pairs' softmax weights and centred logits ``(B*R, n)`` and the logits' differences."""
        d_weights = rules.softmax_difference(centred, d_centred)
        return ops.sum(rules.bilinear(ops.multiply, weights, d_weights, centred, d_centred), axis=-1)


class ProfileFixedWeights(Profile):
    """``profile`` with the sequence's softmax weights held fixed (chrombpnet's stop-gradient)."""

    name = "profile-fixed-weights"

    def weighted(self, weights, centred, d_centred):
        return ops.sum(weights * d_centred, axis=-1)  # the sequence's weights, held fixed


LOGIT, SUM, PROFILE, PROFILE_FIXED_WEIGHTS = Logit(), Sum(), Profile(), ProfileFixedWeights()
KINDS: dict[str, TargetKind] = {kind.name: kind for kind in (LOGIT, SUM, PROFILE, PROFILE_FIXED_WEIGHTS)}


@dataclass(frozen=True)
class Target:
    """``kind``: a ``TargetKind``; ``index``: the logit's index into the flattened output (``logit`` only)."""

    kind: TargetKind = LOGIT
    index: int = 0

    @property
    def label(self) -> str:
        return self.kind.label(self.index)


def resolve(target, n_outputs: int) -> Target:
    """A ``Target`` from an output index (a logit), 'logit' (index 0), 'sum', 'profile' or a ``Target``."""
    if isinstance(target, str):
        if target not in KINDS:
            raise SeqliftError(f"unknown target '{target}'; choose {', '.join(KINDS)} or an output index")
        target = Target(KINDS[target])
    elif not isinstance(target, Target):
        if isinstance(target, bool) or not hasattr(target, "__index__"):
            raise SeqliftError(f"target {target!r} is not an output index or one of {', '.join(KINDS)}")
        target = Target(LOGIT, int(target))
    if target.kind.indexed and not 0 <= target.index < n_outputs:
        raise SeqliftError(f"target {target.index} is out of range: the model has {n_outputs} outputs "
                           f"(0..{n_outputs - 1})")
    return target


def check_fits(target: Target, output_shape: tuple, final_activation=None) -> Target:
    """``target`` if it means something on an output of ``output_shape`` (no batch axis) ending in
    ``final_activation``; else a ``SeqliftError`` saying which target fits. Each refused case would
    otherwise give a constant target, so all-zero contributions."""
    if final_activation == "softmax" and output_shape[-1:] == (1,):
        raise SeqliftError("this output is a softmax over one value, which is always 1: there is nothing to "
                           "explain; choose another output (--output) or a model without that softmax")
    target.kind.check(math.prod(output_shape), final_activation)
    return target


def is_positional(output_shape: tuple) -> bool:
    """Whether an output has a position axis (``(L, strands)``, a profile head) rather than one value per task."""
    return len(output_shape) >= 2 and math.prod(output_shape[:-1]) > 1


def _flat(out):
    """``(B, ...)`` → ``(B, n)``: positions and strands flattened together."""
    return ops.reshape(out, (-1, math.prod(out.shape[1:])))


def _centred(flat):
    """Logits ``(B, n)`` minus their mean over positions and strands."""
    return flat - ops.mean(flat, axis=-1, keepdims=True)


def value(target: Target, out, final_activation=None):
    """The target on actual activations ``out`` ``(B, ...)``: ``(B,)``."""
    return target.kind.value(target, out, final_activation)


def difference(target: Target, out_x, out_d, n_refs: int, final_activation=None):
    """``t(x) − t(ref)`` for every pair ``(B*R,)`` from ``out_x`` ``(B, ...)`` and ``out_d`` ``(B*R, ...)``
    (``profile-fixed-weights``: ``Σ_i w_i(x) Δℓ̄_i``, the weights of the sequence held fixed).

    ``profile``: the product rule splits ``Δt = Σ_i w̄_i Δℓ̄_i + Σ_i ℓ̄̄_i Δw_i`` (bars: means over the
    input and the reference). The first sum is the logits' share under weights held constant; the
    second, the change of the weights themselves, is what a stop-gradient drops (so chrombpnet's
    scores do not sum to Δt): it goes back to the logits through the softmax rule, so
    ``Σ C = t(x) − t(ref)`` exactly with bounded multipliers.
    """
    return target.kind.difference(target, out_x, out_d, n_refs, final_activation)
