"""The DeepLIFT engine: walks the lowered graph, batches inputs with their references, averages.

One compiled step per (method, target, batch shape) runs the forward pass of each input once, the
difference-from-reference pass of every (input, reference) pair, and one backward pass of the
backend's autodiff that yields the multipliers (see ``rules``). The last batch is padded so the
step is traced once. ``Explainer.attribute`` runs any method of the registry (``seqlift.methods``)
this way; DeepLIFT's step is ``deeplift_step``, and the pieces other methods build their steps
from are public here: ``Explainer.forward``, ``target``, ``target_on``, ``compile``, ``cached_step``,
``summarize``, ``pair_differences``, ``check_shapes`` and ``run_pairs``.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import warnings
from dataclasses import dataclass

from . import backend  # first: loads Keras quietly

import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from . import rules  # noqa: E402
from . import targets as targets_mod  # noqa: E402
from .errors import SeqliftError  # noqa: E402
from . import frontends  # noqa: E402
from .graph import Graph, assign_rules, normalize_first_convolution  # noqa: E402
from .choices import DEEPLIFT, RESCALE, REVEAL_CANCEL, Method  # noqa: E402

# Pairs (input × reference) per compiled step when the caller gives no batch size; on a GPU, what the
# backend's memory allows (backend.Backend.pairs_per_step_gpu).
PAIRS_PER_STEP_CPU = 256
PAIRS_PER_STEP_GPU = backend.ADAPTER.pairs_per_step_gpu


@dataclass
class Attribution:
    """Scores for N inputs of shape S, averaged over each input's references.

    contributions: ``(N, *S)`` raw contributions ``mean_r m_r ⊙ (x − ref_r)``.
    hypothetical: ``(N, *S)`` ``mean_r [m_r − Σ_c m_r ref_r]`` over the last axis: what each channel
        would contribute at each position (TF-MoDISco's input for one-hot sequences).
    delta: ``(N,)`` largest convergence delta ``|Σ C − (t(x) − t(ref))|`` over the references.
    prediction: ``(N,)`` the target on the input; reference_prediction: ``(N,)`` mean over references.
    """

    contributions: np.ndarray
    hypothetical: np.ndarray
    delta: np.ndarray
    prediction: np.ndarray
    reference_prediction: np.ndarray


class Explainer:
    """A model lowered for DeepLIFT, with compiled steps cached per target and batch shape.

    model: a ``keras.Model`` or a ``torch.nn.Module``; a path to ``.h5``/``.keras``, ``ARCH.json``
    with ``weights``, or ``FILE.py:FUNCTION`` returning either (see ``seqlift.frontends``).
    rule: 'rescale', 'reveal-cancel', 'genomics' or a dict from layer class to rule
    (``graph.assign_rules``). normalize: mean-normalize the
    convolution reading the one-hot input (Shrikumar et al. 2016, §2.6). device: 'cpu', 'gpu' or
    None (the backend's default: the GPU when one is visible). output: which output of a
    multi-output model to explain (index or name). input: which input of a multi-input model is
    explained (index or name; default: the only one with 4 channels); the others are held fixed at
    the values given as ``extra`` to each call (zeros by default). weights: a weights file (a Keras
    weights file, or a torch state dict ``.pt``/``.safetensors``). custom_objects: a Python file of
    custom Keras layer classes (or a dict name → class). layout: the model's own layout of its
    one-hot input, 'NCL' or 'NLC' (default: found from the model; Keras models are NLC).
    allow_pickle: read a whole pickled torch model (``torch.save(model)``: unpickling runs its code).
    channels_last: callers give inputs ``(N, L, 4)`` whatever the model's layout (``seqlift score``);
    by default inputs, references and scores are in the model's own layout (``(N, 4, L)`` for a
    torch model reading NCL). input_length, input_shape, extra_shapes: what capturing a torch model
    needs (Keras models declare their shapes): the sequences' length, or the inputs' per-sample
    shape in the model's layout (which also gives the layout), and ``{name: per-sample shape}`` of
    the inputs held fixed.
    """

    def __init__(self, model, rule=RESCALE, normalize=False, device=None, output=None, input=None, weights=None,
                 custom_objects=None, layout=None, allow_pickle=False, channels_last=False, input_length=None,
                 input_shape=None, extra_shapes=None):
        if device == "cpu" and backend.ADAPTER.cpu_needs_hidden_gpu and backend.gpu_available():
            raise SeqliftError("device='cpu' with the torch backend needs the GPU hidden before Keras is imported "
                               "(CUDA_VISIBLE_DEVICES=''); `seqlift score --device cpu` does this")
        self.frontend, self.model = frontends.load(model, weights, custom_objects, allow_pickle)
        self.rule, self.device, self.normalize, self.channels_last = rule, device, normalize, channels_last
        self._lowering = dict(output=output, input=input, layout=layout)
        self._graph = None
        self._steps = {}
        if self.frontend.declares_shapes or input_length is not None or input_shape is not None:
            self.lower(input_length=input_length, input_shape=input_shape, extra_shapes=extra_shapes)

    def lower(self, **shapes):
        """Lower the model (``shapes``: what capturing a torch model needs, see the class docstring).

        A torch model given without them is lowered on the first call, from the shapes of its arrays.
        """
        graph = self.frontend.implementation().lower(self.model, **self._lowering, **shapes)
        # Scores are computed on (N, L, 4); a model reading (N, 4, L) gets and returns its own layout.
        self.transposed = graph.input_layout == "channels_first" and not self.channels_last
        self.normalized = normalize_first_convolution(graph) if self.normalize else []
        assign_rules(graph, self.rule)
        self._graph = graph

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            raise SeqliftError(f"the {self.frontend.kind} {type(self.model).__name__} is captured for a length of "
                               "sequence, which the module does not fix: give --length L on the command line (BED and "
                               "variant input), or Explainer(..., input_length=L), or call attribute/deeplift first")
        return self._graph

    def _lower_for(self, inputs, extra):
        """Lower a model that waited for the shapes of its first call's arrays."""
        if self._graph is None:
            self.lower(**capture_shapes(self.model, inputs, extra))

    # ------------------------------------------------------------------ graph walk
    @property
    def n_outputs(self) -> int:
        return self.graph.output_size

    def target(self, target) -> targets_mod.Target:
        """``target`` (an output index, 'logit', 'sum', 'profile' or a ``Target``) checked against the model."""
        resolved = targets_mod.resolve(target, self.n_outputs)
        return targets_mod.check_fits(resolved, self.graph.output_shape or (self.n_outputs,),
                                      self.graph.final_activation)

    def target_value(self, out, target: targets_mod.Target):
        """The explained scalar per sample ``(B,)`` from the output's activations ``(B, ...)``."""
        return targets_mod.value(target, out, self.graph.final_activation)

    def target_on(self, x, target: targets_mod.Target, guided=False):
        """The explained scalar per sample ``(B,)`` on inputs ``x`` ``(B, *S)`` (``guided``: see ``forward``)."""
        return self.target_value(self.forward(x, guided=guided)[self.graph.output], target)

    def forward(self, x, guided=False):
        """Activations of every node on the actual input ``x``: ``(B, ...)``, in graph order.

        guided: every elementwise nonlinearity passes only positive gradients back (guided backpropagation).
        """
        acts = [x]
        for node in self.graph.nodes[1:]:
            value = node.op.forward([acts[j] for j in node.inputs])
            if guided and isinstance(node.op, rules.Elementwise):
                value = backend.ADAPTER.positive_gradient(value)
            acts.append(value)
        return acts

    def propagate(self, x, d, n_refs):
        """Output activation on ``x`` ``(B, ...)`` and output difference of every pair ``(B*R, ...)``."""
        nodes = self.graph.nodes
        ctx = rules.Context(n_refs=n_refs)
        acts = self.forward(x)
        deltas = [d]
        splits = {}

        def split_of(j):
            if j not in splits:
                node = nodes[j]
                if j == 0 or not node.op.linear:
                    splits[j] = rules.sign_split(deltas[j])
                else:
                    xs = [acts[k] for k in node.inputs]
                    ds = [deltas[k] for k in node.inputs]
                    splits[j] = node.op.split(xs, ds, lambda: [split_of(k) for k in node.inputs], ctx)
            return splits[j]

        for node in nodes[1:]:
            xs = [acts[j] for j in node.inputs]
            if node.rule == REVEAL_CANCEL:
                deltas.append(node.op.reveal_cancel(xs, lambda: [split_of(node.inputs[0])], ctx))
            else:
                deltas.append(node.op.delta(xs, [deltas[j] for j in node.inputs], ctx))
        return acts[self.graph.output], deltas[self.graph.output]

    def predict(self, x: np.ndarray, batch_size: int = 256, extra=None) -> np.ndarray:
        """The engine's forward pass, ``(N, n_outputs)`` logits (before the final sigmoid/softmax)."""
        self._lower_for(x, extra)
        step = self.cached_step(("predict",), lambda: self.compile(
            lambda v: ops.reshape(self.forward(v)[self.graph.output], (-1, self.n_outputs))))
        return self.apply(step, self.to_engine(x), batch_size, self.fixed_rows(extra, len(x)))

    def apply(self, step, x: np.ndarray, batch_size: int, fixed=None) -> np.ndarray:
        """A compiled one-input ``step`` over ``x`` in padded batches, on this explainer's device.

        fixed: the held-fixed inputs' packed values, ``(1, E)`` for all or ``(N, E)`` per input.
        """
        arrays, shared = _with_fixed([x], self.fixed_rows(None, 1) if fixed is None else fixed)
        with backend.scope(self.device):
            return _batched(lambda b, *f: backend.to_numpy(step(self._tensor(b), self._tensor(shared(f)))),
                            arrays, batch_size)

    # ------------------------------------------------------------------ inputs held fixed
    def compile(self, fn):
        """``fn(*tensors)`` compiled as ``step(*tensors, fixed)``: ``fixed`` ``(b, E)`` are the values of the
        inputs held fixed (``rules.FixedInput``), bound while ``fn`` runs (or is traced)."""
        graph = self.graph

        def step(*args):
            graph.fixed_values = args[-1]
            try:
                return fn(*args[:-1])
            finally:
                graph.fixed_values = None

        return backend.ADAPTER.compile(step)

    def check_extra(self, extra, n: int) -> list:
        """The fixed inputs' values as ``(1 or n, *S)`` arrays (views, not copies), in graph order.

        extra: dict from input name to an array ``S``, ``(1, *S)`` (the same for every input) or
        ``(n, *S)`` (one row per input); inputs not in it are zeros. Raises ``SeqliftError`` naming
        a wrong name or shape.
        """
        extra = dict(extra or {})
        names = [name for name, _ in self.graph.fixed_inputs]
        for name in extra:
            if name not in names:
                raise SeqliftError(f"extra input '{name}': the model has no such input besides the explained input "
                                   f"'{self.graph.input_name}' (others: {', '.join(names) or 'none'})")
        values = []
        for name, shape in self.graph.fixed_inputs:
            value = np.asarray(extra[name]) if name in extra else np.zeros(shape, backend.float_dtype())  # no copy
            value = value[None] if value.shape == shape else value
            if value.shape[1:] != shape or len(value) not in (1, n):
                raise SeqliftError(f"extra input '{name}': shape {value.shape}, expected {shape} for every "
                                   f"sequence or {(n,) + shape} (one row per sequence)")
            values.append(value)
        return values

    def fixed_rows(self, extra, n: int) -> np.ndarray:
        """The fixed inputs' values packed for a compiled step: ``(n, E)``, or ``(1, E)`` when shared by all."""
        values = self.check_extra(extra, n)
        rows = n if any(len(v) == n for v in values) else 1
        dtype = backend.float_dtype()
        flat = [np.broadcast_to(np.asarray(v, dtype).reshape(len(v), -1), (rows, int(np.prod(v.shape[1:]))))
                for v in values]
        return np.concatenate(flat, axis=1) if flat else np.zeros((rows, 0), dtype)

    def default_pairs(self) -> int:
        """(input, reference) pairs per compiled step when the caller gives no batch size."""
        return PAIRS_PER_STEP_GPU if (self.device != "cpu" and backend.gpu_available()) else PAIRS_PER_STEP_CPU

    def bytes_per_pair(self) -> int:
        """Memory one (input, reference) pair takes in a compiled step: an upper estimate.

        Every node's activation difference, its multiplier, what autodiff saves for the backward
        pass and RevealCancel's positive and negative parts: about 4 float32 values per node output.
        """
        if not hasattr(self, "_bytes_per_pair"):
            shape = tuple(1 if s is None else s for s in self.graph.input_shape)
            with backend.scope(self.device):
                acts = self.forward(self._tensor(np.zeros((1,) + shape)))
            self._bytes_per_pair = 4 * 4 * sum(int(np.prod(a.shape[1:])) for a in acts)
        return self._bytes_per_pair

    # ------------------------------------------------------------------ methods
    def cached_step(self, key, make):
        """The compiled step cached under ``key`` (made by ``make()`` the first time it is asked for)."""
        if key not in self._steps:
            self._steps[key] = make()
        return self._steps[key]

    def _tensor(self, array):
        return backend.to_tensor(array, self.device)

    def attribute(self, method: Method, inputs, references, target=0, batch_size=None, extra=None,
                  **options) -> Attribution | list[Attribution]:
        """Scores of ``inputs`` ``(N, *S)`` by ``method`` against ``references`` ``(R, *S)`` or ``(N, R, *S)``.

        target: an output index (that logit), 'sum', 'profile' (see ``seqlift.targets``), or a list of
        them (a list of ``Attribution`` is returned; a ``multi_target`` method scores them in one pass).
        extra: values of the model's other inputs, held fixed (see ``check_extra``).
        options: the method's own (``method.options``), e.g. ``ig_steps``; ``seqlift.attribute`` takes a
        method by name and sets aside the options of the registry's other methods.
        """
        unknown = sorted(set(options) - set(method.options))
        if unknown:
            raise SeqliftError(f"method {method.name} takes no option {', '.join(unknown)} (its options: "
                               f"{', '.join(method.options) or 'none'})")
        self._lower_for(inputs, extra)
        several = isinstance(target, (list, tuple))
        explained = tuple(self.target(t) for t in (target if several else [target]))
        inputs, references = self.to_engine(inputs), self.to_engine(references)
        check_shapes(self.graph.input_shape, inputs)
        fixed = self.fixed_rows(extra, len(inputs))
        results = []
        for group in [explained] if method.multi_target else [(t,) for t in explained]:
            step = self.cached_step((method.name, group, tuple(sorted(options.items()))),
                                    lambda: method.build_step(self, group, **options))
            results += method.run(self, step, inputs, references, batch_size, fixed, **options)
        results = [self.from_engine(r) for r in results]
        return results if several else results[0]

    def to_engine(self, array):
        """Inputs or references in the caller's layout as the engine's ``(..., L, 4)``."""
        if not self.transposed or array is None:
            return array
        return np.swapaxes(np.asarray(array), -1, -2)

    def from_engine(self, attribution: Attribution) -> Attribution:
        """An ``Attribution`` back in the caller's layout."""
        if not self.transposed:
            return attribution
        return dataclasses.replace(attribution, contributions=np.swapaxes(attribution.contributions, -1, -2),
                                   hypothetical=np.swapaxes(attribution.hypothetical, -1, -2))

    def deeplift(self, inputs, references, target=0, batch_size=None, extra=None) -> Attribution:
        """DeepLIFT scores of ``inputs`` ``(N, *S)`` against ``references`` ``(R, *S)`` or ``(N, R, *S)``:
        ``attribute`` with DeepLIFT's record (``seqlift.choices.DEEPLIFT``, the registry's first)."""
        return self.attribute(DEEPLIFT, inputs, references, target, batch_size, extra)


def deeplift_step(explainer: Explainer, targets):
    """DeepLIFT's compiled step for one target: multipliers from one backward pass through the
    differences the rules propagate (``Explainer.propagate``; docs/method.md)."""
    (target,) = targets

    def step(x, ref):
        n_refs = ref.shape[1]
        d = pair_differences(x, ref)

        def objective(z):
            out_x, out_d = explainer.propagate(x, z, n_refs)
            dt = targets_mod.difference(target, out_x, out_d, n_refs, explainer.graph.final_activation)
            return dt, explainer.target_value(out_x, target)

        m, (dt, t_x) = backend.ADAPTER.input_gradient(objective, d)
        return summarize(m, d, ref, dt, t_x)

    return explainer.compile(step)


def run_pairs(explainer: Explainer, step, inputs, references, batch_size=None, fixed=None,
              pairs_per_step=None) -> list[Attribution]:
    """Run a compiled ``step(x (B, *S), ref (B, R, *S), fixed)`` over all inputs in padded batches.

    batch_size: inputs per step (halved on running out of device memory); default ``pairs_per_step``
    (input, reference) pairs, or ``explainer.default_pairs()``. fixed: the held-fixed inputs' packed
    values (``Explainer.fixed_rows``); default zeros. Returns ``[Attribution]`` (a method's ``run``).
    """
    inputs = np.asarray(inputs, dtype=backend.float_dtype())
    refs = _per_input_references(inputs, references)
    n_refs = refs.shape[1]
    if batch_size is None:
        batch_size = max(1, (pairs_per_step or explainer.default_pairs()) // n_refs)
    arrays, shared = _with_fixed([inputs, refs], explainer.fixed_rows(None, 1) if fixed is None else fixed)

    def run(x, r, *f):
        with backend.scope(explainer.device):
            tensors = (backend.to_tensor(v, explainer.device) for v in (x, r, shared(f)))
            return [backend.to_numpy(v) for v in step(*tensors)]

    batch_size = min(batch_size, len(inputs))
    while True:
        try:
            return [Attribution(*_batched(run, arrays, batch_size))]
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is retried
            if batch_size == 1 or not backend.ADAPTER.is_out_of_memory(exc):
                raise
            batch_size //= 2
            warnings.warn(f"out of device memory; retrying with {batch_size} sequences "
                          f"({batch_size * n_refs} pairs) per step (set batch_size to choose)", stacklevel=2)


class ExplainerCache:
    """The one-call API's explainers (``seqlift.deeplift``, ``score``, ``attribute``): the last few, by settings.

    Each entry keeps the digest of the weights its model was lowered with (``frontends.weights_digest``): a
    model whose weights have changed since (a notebook edits them and calls again) is lowered again. Not a
    dict, which torch.export would replace by a copy on the module while it captures it; a copy or a pickle
    of a model holding one gets an empty one (the explainers are the original model's).
    """

    SIZE = 4

    def __init__(self):
        self._entries: collections.OrderedDict = collections.OrderedDict()

    def get(self, key, digest, make) -> Explainer:
        """The explainer cached under ``key`` if its weights' digest is ``digest``, else ``make()``'s.

        digest: a function giving the model's weights digest now (None for a model file, whose key says
        which version of the file it is): taken again after ``make()``, which may load weights.
        """
        entry = self._entries.get(key)
        if entry is None or (digest is not None and entry[0] != digest()):
            explainer = make()
            self._entries[key] = (digest() if digest is not None else None, explainer)
            while len(self._entries) > self.SIZE:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        return self._entries[key][1]

    def __len__(self):
        return len(self._entries)

    def __reduce__(self):
        return type(self), ()

    def __copy__(self):
        return type(self)()

    def __deepcopy__(self, memo):
        return type(self)()


# Explainers built for the one-call API from a path, keyed by file identity and settings.
_BY_PATH = ExplainerCache()
_CACHE_ATTRIBUTE = "_seqlift_explainers"


def cached_explainer(model, **settings) -> Explainer:
    """An ``Explainer`` for ``model`` and ``settings``, reused across one-call API calls (``ExplainerCache``).

    A model object keeps its explainers on itself (a reference cycle the garbage collector frees
    with the model: a table keyed by a weak reference to the model would keep it alive through each
    explainer's own reference to it), and one is reused while the model's weights are unchanged. A
    path keeps the last few explainers, keyed by the file's path, size and modification time (a
    rewritten file is loaded again). Anything else that changes what the model computes (an attribute
    its forward pass reads) is not seen: build an ``Explainer`` for it.
    """
    key = tuple(sorted((k, _fingerprint(v)) for k, v in settings.items()))
    if isinstance(model, (str, os.PathLike)):
        try:
            stat = os.stat(model)
        except OSError:
            return Explainer(model, **settings)  # the loader says what is wrong with the path
        key = (os.path.realpath(model), stat.st_size, stat.st_mtime_ns) + key
        return _BY_PATH.get(key, None, lambda: Explainer(model, **settings))
    if frontends.for_object(model) is None:
        return Explainer(model, **settings)  # which says what is wrong with it
    cache = getattr(model, _CACHE_ATTRIBUTE, None)
    if not isinstance(cache, ExplainerCache):
        cache = ExplainerCache()
        object.__setattr__(model, _CACHE_ATTRIBUTE, cache)  # not a tracked Keras or torch attribute
    return cache.get(key, lambda: frontends.weights_digest(model), lambda: Explainer(model, **settings))


def _fingerprint(value):
    """A hashable stand-in for a setting (arrays by content: ``repr`` elides the middle of large ones)."""
    if isinstance(value, np.ndarray):
        return (value.shape, str(value.dtype), hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest())
    if isinstance(value, dict):
        return tuple(sorted((str(k), _fingerprint(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_fingerprint(v) for v in value)
    if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):  # a weights or custom-objects file
        stat = os.stat(value)
        return os.path.realpath(value), stat.st_size, stat.st_mtime_ns
    return repr(value)


# What ``deeplift`` returns (``scores``), each ``(N, *S)``.
SCORES = ("contributions", "projected", "hypothetical")


def project(hypothetical, one_hot):
    """Hypothetical contributions projected onto the observed base: ``hypothetical ⊙ one_hot`` (shapes
    broadcast), what ``seqlift score`` writes as ``contrib``. Per position they sum to the contributions'
    sum ``Σ_c m ⊙ (x − ref)`` (docs/method.md, "Averaging and hypothetical contributions")."""
    return hypothetical * one_hot


def deeplift(model, inputs, references, target=0, rule=RESCALE, batch_size=None, normalize=False, output=None,
             input=None, extra=None, weights=None, custom_objects=None, layout=None, allow_pickle=False,
             scores="contributions"):
    """DeepLIFT contributions of ``inputs`` to one model output.

    model: a ``keras.Model`` or ``torch.nn.Module``, a path (``.h5`` from tf.keras 2.x or Keras 3, ``.keras``,
    or a Keras 2 ``ARCH.json`` with ``weights=WEIGHTS.h5``), or ``"FILE.py:FUNCTION"`` returning either
    (a torch module's weights: ``weights=STATE.pt`` or ``.safetensors``). inputs and references are in the
    model's own layout: ``(N, 4, L)`` for a torch model whose first layer reads channels first.
    custom_objects: a Python file (or dict) of the custom layer classes the model file uses.
    inputs: ``(N, *S)``; references: ``(R, *S)`` shared by every input or ``(N, R, *S)`` per input.
    target: index into the model's flattened output, before a final sigmoid or softmax (that logit);
    or 'sum' (the whole output), 'profile' or 'profile-fixed-weights' (its softmax-weighted mean-centred
    logits, see ``seqlift.targets``).
    rule: 'rescale', 'reveal-cancel', 'genomics' (RevealCancel on dense layers, Rescale on
    convolutions), or a dict from layer class to rule (``graph.assign_rules``).
    normalize: mean-normalize the first convolution per column (for one-hot inputs).
    output: for a model with several outputs, which one (index or name) ``target`` indexes into.
    input: for a model with several inputs, the one explained (index or name; default: the only one
    with 4 channels). extra: ``{name: array}`` for the others, held fixed: ``S`` or ``(1, *S)`` for
    every input, ``(N, *S)`` one row per input; default zeros.
    scores: what is returned, ``(N, *S)`` averaged over references: 'contributions' (raw, ``m ⊙ (x − ref)``
    per channel), 'projected' (onto the observed base, ``project``: ``seqlift score``'s ``contrib``, what a
    logo shows) or 'hypothetical' (``m − Σ_c m·ref``: what each base would contribute, TF-MoDISco's input);
    or a tuple of these names, for a tuple of arrays. The model is lowered and compiled on the first call
    and reused by later ones with the same settings and shapes while its weights are unchanged
    (``cached_explainer``).
    """
    names = (scores,) if isinstance(scores, str) else tuple(scores)
    unknown = [name for name in names if name not in SCORES]
    if unknown or not names:
        raise SeqliftError(f"scores={scores!r}: choose {', '.join(SCORES)}, or a tuple of them")
    explainer = cached_explainer(model, rule=rule, normalize=normalize, output=output, input=input, weights=weights,
                                 custom_objects=custom_objects, layout=layout, allow_pickle=allow_pickle,
                                 **capture_shapes(model, inputs, extra))
    attribution = explainer.deeplift(inputs, references, target=target, batch_size=batch_size, extra=extra)
    arrays = {"contributions": attribution.contributions, "hypothetical": attribution.hypothetical}
    if "projected" in names:
        arrays["projected"] = project(attribution.hypothetical, np.asarray(inputs, attribution.hypothetical.dtype))
    return arrays[scores] if isinstance(scores, str) else tuple(arrays[name] for name in names)


def capture_shapes(model, inputs, extra=None) -> dict:
    """What capturing a model that does not declare its input shapes needs (a torch module, or a
    ``FILE.py:FUNCTION`` that may return one), from the arrays of a call: ``input_shape`` per sample, in
    the model's layout, and ``extra_shapes`` (each extra array is ``(1, *S)`` or ``(N, *S)``)."""
    front_end = frontends.for_object(model) if not isinstance(model, (str, os.PathLike)) else (
        None if frontends.split_function(model) else frontends.for_file(model))
    if front_end is not None and front_end.declares_shapes:
        return {}
    return {"input_shape": tuple(np.shape(inputs)[1:]),
            "extra_shapes": {name: tuple(np.shape(v)[1:]) for name, v in (extra or {}).items()}}


def pair_differences(x, ref):
    """``x`` ``(B, *S)`` minus each of its references ``(B, R, *S)``, as one batch ``(B*R, *S)``."""
    return ops.reshape(ops.expand_dims(x, 1) - ref, (-1,) + tuple(x.shape[1:]))


def summarize(m, d, ref, dt, t_x):
    """Per-input averages over references of what one compiled step computed for its pairs.

    m, d: multipliers and differences ``(B*R, *S)``; ref: ``(B, R, *S)``; dt: ``t(x) − t(ref)`` ``(B*R,)``;
    t_x: ``(B,)``. Returns contributions, hypothetical ``(B, *S)``, delta, prediction and reference
    prediction ``(B,)`` (the fields of ``Attribution``).
    """
    batch, n_refs = ref.shape[0], ref.shape[1]
    shape = tuple(ref.shape[2:])
    m = ops.reshape(m, (batch, n_refs) + shape)
    d = ops.reshape(d, (batch, n_refs) + shape)
    per_pair = m * d
    contributions = ops.mean(per_pair, axis=1)
    hypothetical = ops.mean(m - ops.sum(m * ref, axis=-1, keepdims=True), axis=1)
    totals = ops.sum(ops.reshape(per_pair, (batch, n_refs, -1)), axis=-1)
    dt = ops.reshape(dt, (batch, n_refs))
    delta = ops.max(ops.abs(totals - dt), axis=1)
    reference_prediction = t_x - ops.mean(dt, axis=1)
    return contributions, hypothetical, delta, t_x, reference_prediction


def check_shapes(input_shape, inputs):
    """Refuse ``inputs`` ``(N, *S)`` whose per-sample shape ``S`` is not the model's ``input_shape``."""
    shape = tuple(np.shape(inputs)[1:])
    expected = tuple(input_shape)
    if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
        raise SeqliftError(f"inputs have shape {shape} per sample but the model expects {expected}")


def _with_fixed(arrays, fixed):
    """``fixed`` with one row per input joins the batched ``arrays``; a single shared row does not.

    Returns the arrays to batch and a function from the batched extras to this batch's fixed values.
    """
    if len(fixed) == len(arrays[0]):
        return arrays + [fixed], lambda f: f[0]
    return arrays, lambda f: fixed


def _per_input_references(inputs, references) -> np.ndarray:
    """References as ``(N, R, *S)``: shared ``(R, *S)`` ones are broadcast (a view, no copy)."""
    refs = np.asarray(references, dtype=inputs.dtype)
    sample = inputs.shape[1:]
    if refs.shape == sample:
        refs = refs[None]
    if refs.shape[1:] == sample:
        return np.broadcast_to(refs[None], (len(inputs),) + refs.shape)
    if refs.ndim == inputs.ndim + 1 and refs.shape[0] == len(inputs) and refs.shape[2:] == sample:
        return refs
    raise SeqliftError(
        f"references have shape {refs.shape}; expected (R, *S) or (N, R, *S) with N={len(inputs)}, S={sample}"
    )


def _batched(fn, arrays, batch_size):
    """Apply ``fn`` to fixed-size batches (the last one zero-padded); concatenate its outputs."""
    n = len(arrays[0])
    batch_size = max(1, min(batch_size, n)) if n else 1
    outputs = []
    for start in range(0, n, batch_size):
        chunk = [a[start:start + batch_size] for a in arrays]
        real = len(chunk[0])
        if real < batch_size:
            chunk = [np.concatenate([c, np.zeros((batch_size - real,) + c.shape[1:], c.dtype)]) for c in chunk]
        result = fn(*chunk)
        outputs.append([r[:real] for r in result] if isinstance(result, list) else result[:real])
    if not outputs:
        raise SeqliftError("no inputs to score")
    if isinstance(outputs[0], list):
        return [np.concatenate(parts) for parts in zip(*outputs)]
    return np.concatenate(outputs)
