"""What a run chooses between by name, declared without Keras (the CLI lists them before ``--backend``
applies): DeepLIFT's rules for nonlinearities, the kinds of target, and the record an attribution method
is (``Method``), with the engine's own, DeepLIFT.

Below the graph and the engine: they read these names; the registry of methods (``seqlift.methods``)
and the targets' arithmetic (``seqlift.targets``) sit above them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

# DeepLIFT's rules for nonlinearities, by name (``graph.RULE_PRESETS`` says where each applies):
# Rescale everywhere, RevealCancel everywhere, or RevealCancel after dense layers only (genomics).
RESCALE = "rescale"
REVEAL_CANCEL = "reveal-cancel"
GENOMICS = "genomics"
RULES = (RESCALE, REVEAL_CANCEL, GENOMICS)

# What is explained (``--target``, the score file's ``target`` attribute): each task's logit, the sum of the
# output, or a profile head's profile, split exactly or (chrombpnet's) with the sequence's softmax weights held
# fixed. Each is a ``targets.TargetKind`` of that name.
TARGETS = ("logit", "sum", "profile", "profile-fixed-weights")
TASK_TARGET = TARGETS[0]  # the one target chosen per task (--task); the others explain a whole output


@dataclass(frozen=True)
class Lazy:
    """The function ``name`` of the seqlift module ``module``, imported when first called."""

    module: str
    name: str

    def __call__(self, *args, **kwargs):
        return getattr(importlib.import_module(f"{__package__}.{self.module}"), self.name)(*args, **kwargs)


@dataclass(frozen=True)
class Method:
    """One attribution method.

    build_step: ``(explainer, targets, **options) -> step``, the compiled step for a tuple of
        ``Target``s (one, unless ``multi_target``), cached per explainer by (name, targets, options).
    run: ``(explainer, step, inputs, references, batch_size, fixed, **options) -> [Attribution]``, one
        per target: ``engine.run_pairs`` for (input, reference) pair steps.
    uses_references: its multipliers compare each input with references; the others are scored
        against a zero reference (``x − 0 = x``). complete: claims summation to delta.
    multi_target: one pass serves every target. options: the keyword options it takes.
    """

    name: str
    description: str
    build_step: Callable
    run: Callable = Lazy("engine", "run_pairs")
    uses_references: bool = False
    complete: bool = False
    multi_target: bool = False
    options: tuple[str, ...] = ()


# The engine's own method (``Explainer.deeplift``); the registry, ``methods.METHODS``, lists it first.
DEEPLIFT = Method("deeplift", "DeepLIFT (Shrikumar et al. 2017), rules chosen by --rule",
                  Lazy("engine", "deeplift_step"), uses_references=True, complete=True)
