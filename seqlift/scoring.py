"""Genomics-level scoring: one-hot sequences in, projected and hypothetical contributions out.

This is what ``seqlift score`` runs on each chunk of sequences: references are made (or taken),
each task is scored with the chosen method, and contributions are projected onto the observed
base (docs/method.md, "Averaging and hypothetical contributions").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import references as refs_mod
from . import targets as targets_mod
from .engine import Explainer, cached_explainer, capture_shapes, project
from .errors import SeqliftError
from .methods import DEEPLIFT, RESCALE, attribute, get_method
from .references import ReferenceSpec
from .sequences import EXTRA_FLIPS, reverse_complement

@dataclass(frozen=True)
class Scores:
    """Scores of N sequences of length L for T tasks (task axis right after N).

    contributions: ``(N, T, L, 4)`` projected onto the observed base (the score file's ``contrib``);
    hypothetical: ``(N, T, L, 4)``; delta: ``(N, T)`` largest convergence delta over references;
    prediction and reference_prediction: ``(N, T)`` logits on the input and mean over references.
    """

    contributions: np.ndarray
    hypothetical: np.ndarray
    delta: np.ndarray
    prediction: np.ndarray
    reference_prediction: np.ndarray


@dataclass(frozen=True)
class ScoredChunk:
    """One chunk of a ``seqlift score`` run as the run loop (``pipeline.run_loop``) hands it to the score file:
    ``names``, ``one_hot`` ``(n, L, 4)``, their ``scores``, and ``regions`` (BED input) or None."""

    names: list
    one_hot: np.ndarray
    scores: Scores
    regions: tuple | None = None

    @property
    def n(self) -> int:
        return len(self.names)

    def tracked(self) -> list:
        """``(names, Scores)`` whose convergence deltas the run reports (``pipeline.DeltaTracker``)."""
        return [(self.names, self.scores)]


@dataclass(frozen=True)
class ChunkSettings:
    """How each chunk of a run is scored (``score_chunk``), the same in this process and on a Ray worker: the
    ``tasks``, the method's name, the ``references``, sequences per compiled step (``batch_size``: None chooses),
    the ``target`` and whether both strands are averaged (``rc_average``)."""

    tasks: tuple
    method: str
    references: ReferenceSpec
    batch_size: int | None = None
    target: str = "logit"
    rc_average: bool = False


def flip_extra(explainer: Explainer, extra: dict | None, extra_rc: dict | None) -> dict:
    """The held-fixed inputs' values that go with the reverse complements of the sequences.

    extra: ``{input name: array}`` as ``Explainer.check_extra`` takes them; extra_rc: ``{input name: flip}``,
    a flip a name in ``EXTRA_FLIPS`` or the partner values themselves (an array of the same forms as
    ``extra``). Every input given in ``extra`` needs its flip (inputs left at zeros stay zeros);
    raises ``SeqliftError`` naming the input otherwise.
    """
    extra, extra_rc = dict(extra or {}), dict(extra_rc or {})
    shapes = dict(explainer.graph.fixed_inputs)
    for name in extra_rc:
        if name not in extra:
            raise SeqliftError(f"--extra-rc {name}: input '{name}' is not given with --extra, so it is zeros on both "
                               "strands; give its values with --extra or drop its --extra-rc")
    flipped = {}
    for name, value in extra.items():
        if name not in extra_rc:
            raise SeqliftError(f"--rc-average with input '{name}' held fixed (--extra): say how it flips on the reverse "
                               f"strand with --extra-rc {name}=reverse (positions reversed, strands kept), swap "
                               f"(strands swapped), both, or FILE.npy (its values for the reverse complements)")
        flip = extra_rc[name]
        if not isinstance(flip, str):
            flipped[name] = flip
            continue
        if flip not in EXTRA_FLIPS:
            raise SeqliftError(f"--extra-rc {name}={flip}: choose reverse, swap, both or a .npy file")
        shape = shapes.get(name, ())
        axes = EXTRA_FLIPS[flip]
        if len(shape) < (2 if -1 in axes else 1):
            raise SeqliftError(f"--extra-rc {name}={flip}: input '{name}' has shape {shape}, with no "
                               f"{'strand' if -1 in axes else 'position'} axis to flip")
        value = np.asarray(value)
        value = value[None] if value.shape == shape else value  # (1 or n, *S): axis 0 is the sequence
        flipped[name] = np.flip(value, [a + 1 if a >= 0 else a for a in axes])
    return flipped


def score_one_hot(explainer: Explainer, one_hot: np.ndarray, tasks, method=DEEPLIFT,
                  references: ReferenceSpec | None = None, start_index=0, names=None,
                  batch_size=None, refs: np.ndarray | None = None, extra=None, target="logit",
                  rc_average=False, extra_rc=None) -> Scores:
    """Score one-hot sequences ``(N, L, 4)`` for each task in ``tasks`` with ``method`` (a name or ``Method``).

    refs: this chunk's references when the caller made them already (``references.make``); a method
    that uses no references is scored against zeros. extra: values of the model's other inputs, held
    fixed (``Explainer.check_extra``). target: 'logit' (each task's logit), or one of the whole output's
    (``methods.TARGETS``: ``tasks`` must be ``[0]``). rc_average: also score each reverse complement against
    the reverse complements of its references, map its scores back onto the forward strand and
    average the two strands. extra_rc: with rc_average, how each input in ``extra`` flips with the
    sequence (``flip_extra``).
    """
    method = get_method(method)
    explained = explained_targets(explainer, tasks, target, rc_average)
    if not method.uses_references:
        references, refs = ReferenceSpec("zeros"), None  # gradients at the input alone: x − 0 = x
    ref = refs if refs is not None else (references or ReferenceSpec()).make(one_hot, start_index, names)
    if extra_rc and not rc_average:
        raise SeqliftError("--extra-rc (extra_rc) applies to --rc-average (rc_average) only")
    reverse_extra = flip_extra(explainer, extra, extra_rc) if rc_average else None
    scores = _score_strand(explainer, one_hot, ref, explained, method, batch_size, extra)
    if not rc_average:
        return scores
    reverse = _score_strand(explainer, reverse_complement(one_hot), reverse_complement(ref), explained, method,
                            batch_size, reverse_extra)
    return average_strands(scores, reverse)


def score_chunk(explainer: Explainer, settings: ChunkSettings, one_hot, start: int, names, refs=None, extra=None,
                extra_rc=None) -> Scores:
    """``score_one_hot`` of one chunk ``(n, L, 4)`` whose first sequence is input row ``start``, as ``settings``
    say: here or on a Ray worker (``cluster.ChunkScorer``), and for variants' windows. refs: the chunk's references
    when made already (None: made here)."""
    s = settings
    return score_one_hot(explainer, one_hot, list(s.tasks), s.method, s.references, start_index=start, names=names,
                         batch_size=s.batch_size, refs=refs, extra=extra, target=s.target, rc_average=s.rc_average,
                         extra_rc=extra_rc)


def explained_targets(explainer: Explainer, tasks, target="logit", rc_average=False) -> list:
    """The ``Target`` explained for each task: its logit, or the one whole-output target (task 0).

    rc_average: a logit of an output with positions (a profile head, ``(L, strands)``) is refused, since
    the reverse complement's logit with the same index is another position's and strand's.
    """
    if getattr(targets_mod.KINDS.get(target), "indexed", False):  # a logit per task
        if rc_average and targets_mod.is_positional(explainer.graph.output_shape):
            raise SeqliftError(f"--rc-average with --target logit on an output of shape "
                               f"{explainer.graph.output_shape} (positions and strands) would average each logit "
                               "with another position's on the reverse strand; use --target profile or --target "
                               "sum, or score without --rc-average")
        return [explainer.target(int(t)) for t in tasks]
    if list(tasks) != [0]:
        raise SeqliftError(f"--task applies to --target logit; --target {target} explains the whole output")
    return [explainer.target(target)]


def _score_strand(explainer, one_hot, ref, explained, method, batch_size, extra=None) -> Scores:
    """Scores of one strand's sequences ``(N, L, 4)`` against references ``ref`` for each target."""
    per_task = attribute(explainer, method, one_hot, ref, list(explained), batch_size=batch_size, extra=extra)
    hyp = np.stack([a.hypothetical for a in per_task], axis=1)
    return Scores(
        contributions=project(hyp, one_hot[:, None]).astype(np.float32),
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
        contributions=0.5 * (forward.contributions + reverse_complement(reverse.contributions)),
        hypothetical=0.5 * (forward.hypothetical + reverse_complement(reverse.hypothetical)),
        delta=np.maximum(forward.delta, reverse.delta),
        prediction=0.5 * (forward.prediction + reverse.prediction),
        reference_prediction=0.5 * (forward.reference_prediction + reverse.reference_prediction),
    )


def explainer_for_sequences(model, rule=RESCALE, normalize=True, device=None, output=None,
                            **model_options) -> Explainer:
    """An ``Explainer`` for a one-hot sequence model, normalized by default, that takes ``(N, L, 4)``
    whatever the model's own layout.

    model_options: ``input``, ``weights``, ``custom_objects``, ``layout``, ``allow_pickle`` (see ``Explainer``).
    """
    explainer = cached_explainer(model, rule=rule, normalize=normalize, device=device, output=output,
                                 channels_last=True, **model_options)
    shape = explainer.graph.input_shape
    if len(shape) != 2 or shape[1] != 4:
        raise SeqliftError(f"model input shape {shape} is not (length, 4): seqlift score needs a one-hot DNA model")
    if shape[0] is None:
        raise SeqliftError("model input length is not fixed; seqlift score needs a fixed-length model")
    return explainer


def score(model, one_hot, tasks=(0,), method=DEEPLIFT.name, rule=RESCALE, reference="shuffle", n_refs=20,
          seed=0, background=None, normalize=True, batch_size=None, output=None, input=None, extra=None,
          weights=None, custom_objects=None, target="logit", rc_average=False, extra_rc=None, layout=None,
          allow_pickle=False) -> Scores:
    """Score one-hot DNA in one call (the library form of ``seqlift score``).

    one_hot: ``(N, L, 4)``, or the model's own layout (``(N, 4, L)`` for a torch model reading
    channels first); scores come back in the same layout, with a task axis right after N.
    reference: 'shuffle', 'frequency', 'zeros', or an array of references ``(R, *S)`` or
    ``(N, R, *S)`` in that layout. model, input, extra, weights, custom_objects, layout,
    allow_pickle: as for ``seqlift.deeplift`` and ``Explainer``. target: one of ``methods.TARGETS``;
    rc_average: average both strands, with extra_rc saying how each input in extra flips (see
    ``score_one_hot``).
    """
    if isinstance(model, Explainer):
        if model.transposed:
            raise SeqliftError("score(): give the model itself, or an Explainer built with channels_last=True "
                               "(this one takes the model's (N, 4, L) layout)")
        explainer = model
    else:
        explainer = explainer_for_sequences(model, rule, normalize, output=output, input=input, weights=weights,
                                            custom_objects=custom_objects, layout=layout, allow_pickle=allow_pickle,
                                            **capture_shapes(model, one_hot, extra))
    # seqlift scores (N, L, 4); a model reading (N, 4, L) is given and gets back its own layout
    flip = (lambda v: np.swapaxes(v, -1, -2)) if explainer.graph.input_layout == "channels_first" else (lambda v: v)
    if isinstance(reference, str):
        bg = refs_mod.parse_background(background) if background is not None else None
        spec = ReferenceSpec(kind=reference, n_refs=n_refs, seed=seed, background=bg)
    else:
        spec = ReferenceSpec(kind="given", given=flip(np.asarray(reference, np.float32)))
    scores = score_one_hot(explainer, flip(np.asarray(one_hot, np.float32)), list(tasks), method, spec,
                           batch_size=batch_size, extra=extra, target=target, rc_average=rc_average,
                           extra_rc=extra_rc)
    return replace(scores, contributions=flip(scores.contributions), hypothetical=flip(scores.hypothetical))
