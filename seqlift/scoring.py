"""Genomics-level scoring: one-hot sequences in, projected and hypothetical contributions out.

This is what ``seqlift score`` runs on each chunk of sequences: references are made (or taken),
each task is scored with the chosen method, and contributions are projected onto the observed
base (docs/method.md, "Averaging and hypothetical contributions").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import references as refs_mod
from .engine import Explainer, cached_explainer
from .errors import SeqliftError
from .methods import METHODS, attribute
from .sequences import reverse_complement


@dataclass
class ReferenceSpec:
    """How references are made: 'shuffle' (n per sequence, seeded), 'frequency', 'zeros' or 'given'.

    given: ``(R, L, 4)`` shared by every input or ``(N, R, L, 4)`` per input (for 'given').
    background: ``(4,)`` ACGT composition for 'frequency'.
    """

    kind: str = "shuffle"
    n_refs: int = 20
    seed: int = 0
    background: np.ndarray | None = None
    given: np.ndarray | None = None

    def make(self, one_hot: np.ndarray, start_index: int, names=None) -> np.ndarray:
        """References for a chunk of sequences whose first one has global index ``start_index``."""
        length = one_hot.shape[1]
        if self.kind == "shuffle":
            return refs_mod.shuffled_references(one_hot, self.n_refs, self.seed, start_index, names)
        if self.kind == "frequency":
            background = self.background if self.background is not None else refs_mod.composition(one_hot)
            return refs_mod.frequency_reference(background, length)
        if self.kind == "zeros":
            return np.zeros((1, length, 4), np.float32)
        if self.kind == "given":
            if self.given.ndim == 4:
                return self.given[start_index:start_index + len(one_hot)]
            return self.given
        raise SeqliftError(f"unknown reference kind '{self.kind}'")


@dataclass
class Scores:
    """Scores of N sequences of length L for T tasks (task axis right after N).

    contrib: ``(N, T, L, 4)`` projected onto the observed base; hypothetical: ``(N, T, L, 4)``;
    delta: ``(N, T)`` largest convergence delta over references; prediction and
    reference_prediction: ``(N, T)`` logits on the input and mean over references.
    """

    contrib: np.ndarray
    hypothetical: np.ndarray
    delta: np.ndarray
    prediction: np.ndarray
    reference_prediction: np.ndarray


def score_one_hot(explainer: Explainer, one_hot: np.ndarray, tasks, method="deeplift",
                  references: ReferenceSpec | None = None, start_index=0, names=None,
                  batch_size=None, refs: np.ndarray | None = None, extra=None, target="logit",
                  rc_average=False) -> Scores:
    """Score one-hot sequences ``(N, L, 4)`` for each task in ``tasks`` with ``method``.

    refs: this chunk's references when the caller made them already (``references.make``).
    extra: values of the model's other inputs, held fixed (``Explainer.check_extra``).
    target: 'logit' (each task's logit), 'sum' or 'profile' (the whole output; ``tasks`` must be
    ``[0]``). rc_average: also score each reverse complement against the reverse complements of its
    references, map its scores back onto the forward strand and average the two strands.
    """
    if method not in METHODS:
        raise SeqliftError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}")
    explained = explained_targets(explainer, tasks, target)
    references = references or ReferenceSpec()
    if method in ("grad-x-input", "saliency", "guided-backprop", "ism"):
        ref = np.zeros((1,) + one_hot.shape[1:], np.float32)  # gradient methods: x − 0 = x
    else:
        ref = refs if refs is not None else references.make(one_hot, start_index, names)
    if rc_average and extra:
        raise SeqliftError("--rc-average cannot reverse-complement the inputs held fixed (--extra): "
                           "score without one of them")
    scores = _score_strand(explainer, one_hot, ref, explained, method, batch_size, extra)
    if not rc_average:
        return scores
    reverse = _score_strand(explainer, reverse_complement(one_hot), reverse_complement(ref), explained, method,
                            batch_size, extra)
    return average_strands(scores, reverse)


def explained_targets(explainer: Explainer, tasks, target="logit") -> list:
    """The ``Target`` explained for each task: its logit, or the one 'sum'/'profile' target (task 0)."""
    if target == "logit":
        return [explainer.target(int(t)) for t in tasks]
    if list(tasks) != [0]:
        raise SeqliftError(f"--task applies to --target logit; --target {target} explains the whole output")
    return [explainer.target(target)]


def _score_strand(explainer, one_hot, ref, explained, method, batch_size, extra=None) -> Scores:
    """Scores of one strand's sequences ``(N, L, 4)`` against references ``ref`` for each target."""
    if method == "ism":  # one pass over the mutants serves every task
        from .methods import in_silico_mutagenesis

        per_task = in_silico_mutagenesis(explainer, one_hot, explained, batch_size=batch_size, extra=extra)
    else:
        per_task = [attribute(explainer, method, one_hot, ref, target=t, batch_size=batch_size, extra=extra)
                    for t in explained]
    hyp = np.stack([a.hypothetical for a in per_task], axis=1)
    if method == "ism":
        contrib = np.stack([a.contributions for a in per_task], axis=1)
    else:
        contrib = hyp * one_hot[:, None]
    return Scores(
        contrib=contrib.astype(np.float32),
        hypothetical=hyp.astype(np.float32),
        delta=np.stack([a.delta for a in per_task], axis=1),
        prediction=np.stack([a.prediction for a in per_task], axis=1),
        reference_prediction=np.stack([a.reference_prediction for a in per_task], axis=1),
    )


def average_strands(forward: Scores, reverse: Scores) -> Scores:
    """Forward-strand scores averaged with a reverse complement's, flipped back onto the forward strand.

    Contributions, hypothetical contributions and predictions are averaged; delta is the larger of the two.
    """
    return Scores(
        contrib=0.5 * (forward.contrib + reverse_complement(reverse.contrib)),
        hypothetical=0.5 * (forward.hypothetical + reverse_complement(reverse.hypothetical)),
        delta=np.maximum(forward.delta, reverse.delta),
        prediction=0.5 * (forward.prediction + reverse.prediction),
        reference_prediction=0.5 * (forward.reference_prediction + reverse.reference_prediction),
    )


def explainer_for_sequences(model, rule="rescale", normalize=True, device=None, output=None,
                            **model_options) -> Explainer:
    """An ``Explainer`` for a one-hot ``(L, 4)`` sequence model, normalized by default.

    model_options: ``input``, ``weights``, ``custom_objects`` (see ``Explainer``).
    """
    explainer = cached_explainer(model, rule=rule, normalize=normalize, device=device, output=output, **model_options)
    shape = explainer.graph.input_shape
    if len(shape) != 2 or shape[1] != 4:
        raise SeqliftError(f"model input shape {shape} is not (length, 4): seqlift score needs a one-hot DNA model")
    if shape[0] is None:
        raise SeqliftError("model input length is not fixed; seqlift score needs a fixed-length model")
    return explainer


def score(model, one_hot, tasks=(0,), method="deeplift", rule="rescale", reference="shuffle", n_refs=20,
          seed=0, background=None, normalize=True, batch_size=None, output=None, input=None, extra=None,
          weights=None, custom_objects=None, target="logit", rc_average=False) -> Scores:
    """Score one-hot DNA ``(N, L, 4)`` in one call (the library form of ``seqlift score``).

    reference: 'shuffle', 'frequency', 'zeros', or an array of references ``(R, L, 4)`` or
    ``(N, R, L, 4)``. Returns ``Scores`` with a task axis right after N. model, input, extra,
    weights, custom_objects: as for ``seqlift.deeplift``. target: 'logit', 'sum' or 'profile';
    rc_average: average both strands (see ``score_one_hot``).
    """
    explainer = model if isinstance(model, Explainer) else explainer_for_sequences(
        model, rule, normalize, output=output, input=input, weights=weights, custom_objects=custom_objects)
    if isinstance(reference, str):
        bg = refs_mod.parse_background(background) if background is not None else None
        spec = ReferenceSpec(kind=reference, n_refs=n_refs, seed=seed, background=bg)
    else:
        spec = ReferenceSpec(kind="given", given=np.asarray(reference, np.float32))
    return score_one_hot(explainer, np.asarray(one_hot, np.float32), list(tasks), method, spec,
                         batch_size=batch_size, extra=extra, target=target, rc_average=rc_average)
