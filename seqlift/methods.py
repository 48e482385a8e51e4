"""The attribution methods seqlift computes: one ``Method`` record each, in one registry.

A record says how the method's compiled step is built, how that step is run over the inputs,
whether the method compares inputs with references, whether its scores claim to sum to
``t(x) − t(ref)`` (completeness: their convergence deltas are checked) and whether one pass serves
several targets. The CLI's ``--method`` choices, the score file's ``method`` attribute, the
benchmark's rows and the ``seqlift score`` job all read this table; nothing else names a method.

Every method returns ``Attribution``s whose multipliers play DeepLIFT's role: contributions
``m ⊙ (x − ref)`` and hypothetical scores ``m − Σ_c m·ref``, so all land in the same score files.
This module loads no Keras (the CLI lists the methods before ``--backend`` is applied): step
builders and runners are imported from their modules on first use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The names of rules and targets and the engine's own method live below the engine (``seqlift.choices``);
# the registry gives them to its readers (the CLI, the benchmark) with the other methods.
from .choices import DEEPLIFT, GENOMICS, RESCALE, REVEAL_CANCEL, RULES, TARGETS, Lazy, Method  # noqa: F401
from .errors import SeqliftError

GRAD_X_INPUT = Method("grad-x-input", "gradient × input (Ancona et al. 2018)", Lazy("gradients", "gradient_step"))
SALIENCY = Method("saliency", "|gradient| (Simonyan et al. 2014)", Lazy("gradients", "saliency_step"))
INTEGRATED_GRADIENTS = Method("integrated-gradients", "integrated gradients from each reference (Sundararajan "
                              "et al. 2017)", Lazy("gradients", "integrated_gradients_step"),
                              run=Lazy("gradients", "run_integrated_gradients"), uses_references=True, complete=True,
                              options=("ig_steps",))
GUIDED_BACKPROP = Method("guided-backprop", "guided backpropagation × input (Springenberg et al. 2015)",
                         Lazy("gradients", "guided_backprop_step"))
ISM = Method("ism", "in-silico mutagenesis: every single-base substitution", Lazy("mutagenesis", "mutagenesis_step"),
             run=Lazy("mutagenesis", "run_mutants"), multi_target=True)

METHODS: dict[str, Method] = {m.name: m for m in (DEEPLIFT, GRAD_X_INPUT, SALIENCY, INTEGRATED_GRADIENTS,
                                                  GUIDED_BACKPROP, ISM)}


def register_method(method: Method) -> Method:
    """Add ``method`` to ``METHODS``: ``--method`` (the choices of a CLI imported after it), ``MethodSpec`` and
    ``attribute`` take its name from then on. A name registered again is replaced. Its ``build_step`` and ``run``
    are any callables of the forms ``Method`` documents (``engine.summarize`` turns multipliers into scores)."""
    if not isinstance(method, Method):
        raise SeqliftError(f"register_method: {method!r} is not a seqlift.methods.Method")
    METHODS[method.name] = method
    return method


def get_method(method: str | Method) -> Method:
    """The registered ``Method`` named ``method`` (a ``Method`` is returned as it is)."""
    if isinstance(method, Method):
        return method
    if method not in METHODS:
        raise SeqliftError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}")
    return METHODS[method]


def attribute(explainer, method, inputs, references, target=0, batch_size=None, extra=None, **options):
    """Scores of ``inputs`` ``(N, *S)`` by ``method`` (a name or ``Method``) against ``references``
    ``(R, *S)`` shared or ``(N, R, *S)`` per input; an ``Attribution``, or a list for a list of targets.

    Gradient methods ignore the references' content for their multipliers but use them for
    ``x − ref`` (pass zeros for the textbook gradient×input). ``explainer`` may also be a model or a
    path: its explainer is then built once and reused by later calls (``engine.cached_explainer``).
    extra: values of the model's other inputs, held fixed (``Explainer.check_extra``).
    options: the method's own (``ig_steps`` for integrated gradients, default 32); those of other registered
    methods are ignored (one call can loop over methods), any other name is an error.
    """
    from .engine import Explainer, cached_explainer, capture_shapes

    known = {name for m in METHODS.values() for name in m.options}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SeqliftError(f"no method takes the option {', '.join(unknown)} (options: {', '.join(sorted(known))})")
    method = get_method(method)
    options = {name: value for name, value in options.items() if name in method.options}  # one call can loop over methods
    if not isinstance(explainer, Explainer):
        explainer = cached_explainer(explainer, **capture_shapes(explainer, inputs, extra))
    return explainer.attribute(method, inputs, references, target, batch_size, extra, **options)


def in_silico_mutagenesis(explainer, inputs, target=0, batch_size=None, extra=None):
    """Every single-base substitution of one-hot ``inputs`` ``(N, L, 4)``: ``t(x with b at i) − t(x)``.

    hypothetical: the effect of each base at each position, centred over the four bases
    (``ism[i, b] − mean_b ism[i, b]``); contributions: that value at the observed base. Positions
    that are N (all-zero rows) get zeros. delta is NaN (ISM has no completeness to check);
    reference_prediction is the mean prediction over all mutants. ``target`` may be a list: every
    target is then scored from one pass over the mutants, and a list of ``Attribution`` returned.
    """
    return attribute(explainer, ISM, inputs, None, target, batch_size, extra)


# Relative convergence delta above which a run warns (--delta-warn).
DELTA_WARN = 1e-3
# Tasks one run explains without --force: each is a full pass and a full (N, L, 4) slice of the score file.
MAX_TASKS = 64


@dataclass(frozen=True)
class MethodSpec:
    """What a run explains and how: ``--method``, ``--rule`` (DeepLIFT's), ``--target``, ``--rc-average``,
    ``--delta-warn`` (``delta_thresholds``: relative convergence deltas warned above) and ``--force`` (explain
    more than ``MAX_TASKS`` tasks). The tasks themselves are chosen once the model's outputs are known."""

    method: str = DEEPLIFT.name
    rule: str | None = None
    target: str = "logit"
    rc_average: bool = False
    delta_thresholds: tuple | None = None
    force: bool = False

    @classmethod
    def parse(cls, method=DEEPLIFT.name, rule=None, target="logit", rc_average=False, delta_warn=None,
              force=False) -> MethodSpec:
        """The options as given (None: not given); an option that does nothing with the method is an error.
        delta_warn: one threshold or several."""
        chosen = get_method(method)
        if rule is not None and rule not in RULES:
            raise SeqliftError(f"--rule {rule}: choose one of {', '.join(RULES)}")
        if rule is not None and chosen is not DEEPLIFT:
            raise SeqliftError(f"--rule applies to --method {DEEPLIFT.name} only, not {chosen.name}")
        if target not in TARGETS:
            raise SeqliftError(f"--target {target}: choose one of {', '.join(TARGETS)}")
        thresholds = None
        if delta_warn is not None:
            thresholds = tuple(delta_warn) if isinstance(delta_warn, (tuple, list)) else (delta_warn,)
            if not chosen.complete:
                complete = [m.name for m in METHODS.values() if m.complete]
                raise SeqliftError(f"--delta-warn applies to {' and '.join(complete)} only, not {chosen.name}")
            for threshold in thresholds:
                if not (math.isfinite(threshold) and threshold > 0):
                    raise SeqliftError(f"--delta-warn {threshold}: must be a positive number (relative delta, "
                                       "e.g. 1e-3)")
        return cls(chosen.name, rule, target, bool(rc_average), thresholds, bool(force))

    @property
    def chosen(self) -> Method:
        """The registered ``Method``."""
        return get_method(self.method)

    @property
    def rule_name(self) -> str:
        """The DeepLIFT rule that applies (Rescale unless ``--rule`` says otherwise)."""
        return self.rule or RESCALE

    @property
    def thresholds(self) -> tuple:
        """The convergence-delta thresholds warned above (``--delta-warn``, else ``DELTA_WARN``)."""
        return self.delta_thresholds or (DELTA_WARN,)

    def attributes(self) -> dict:
        """The score file's attributes for what was explained and how."""
        return {"method": self.method, "rule": self.rule_name, "target": self.target,
                "rc_average": bool(self.rc_average)}
