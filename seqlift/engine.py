"""The DeepLIFT engine: walks the lowered graph, batches inputs with their references, averages.

One compiled step per (method, target, batch shape) runs the forward pass of each input once, the
difference-from-reference pass of every (input, reference) pair, and one backward pass of the
backend's autodiff that yields the multipliers (see ``rules``). The last batch is padded so the
step is traced once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from keras import ops

from . import _backend, rules, targets
from .errors import SeqliftError
from .graph import Graph, assign_rules, build_graph, load_model, normalize_first_convolution

# Pairs (input × reference) per compiled step when the caller gives no batch size. Eager PyTorch
# keeps every intermediate of the step alive until the backward pass (~35 GB at 1024 pairs of the
# 1000 bp benchmark model); XLA (TensorFlow, JAX) frees them, 4096 pairs fit in ~40 GB.
PAIRS_PER_STEP_CPU = 256
PAIRS_PER_STEP_GPU = 1024 if _backend.NAME == "torch" else 4096


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
    """A Keras model lowered for DeepLIFT, with compiled steps cached per target and batch shape.

    model: ``keras.Model`` or path to ``.h5``/``.keras``. rule: 'rescale', 'reveal_cancel',
    'genomics' or a dict from Keras layer class name to rule. normalize: mean-normalize the
    convolution reading the one-hot input (Shrikumar et al. 2016, §2.6). device: 'cpu', 'gpu' or
    None (the backend's default: the GPU when one is visible). output: which output of a
    multi-output model to explain (index or name).
    """

    def __init__(self, model, rule="rescale", normalize=False, device=None, output=None):
        if device == "cpu" and _backend.NAME == "torch" and _backend.gpu_available():
            raise SeqliftError("device='cpu' with the torch backend needs the GPU hidden before Keras is imported "
                               "(CUDA_VISIBLE_DEVICES=''); `seqlift score --device cpu` does this")
        self.model = load_model(model)
        self.graph: Graph = build_graph(self.model, output)
        self.normalized = normalize_first_convolution(self.graph) if normalize else []
        assign_rules(self.graph, rule)
        self.rule = rule
        self.device = device
        self._steps = {}

    # ------------------------------------------------------------------ graph walk
    @property
    def n_outputs(self) -> int:
        return self.graph.output_size

    def target(self, target) -> targets.Target:
        """``target`` (an output index, 'logit', 'sum', 'profile' or a ``Target``) checked against the model."""
        return targets.resolve(target, self.n_outputs)

    def target_value(self, out, target: targets.Target):
        """The explained scalar per sample ``(B,)`` from the output's activations ``(B, ...)``."""
        return targets.value(target, out, self.graph.final_activation)

    def _forward(self, x, guided=False):
        """Activations of every node on the actual input ``x``: ``(B, ...)``."""
        acts = [x]
        for node in self.graph.nodes[1:]:
            value = node.op.forward([acts[j] for j in node.inputs])
            if guided and isinstance(node.op, rules.Elementwise):
                value = _backend.positive_gradient(value)
            acts.append(value)
        return acts

    def _propagate(self, x, d, n_refs):
        """Output activation on ``x`` ``(B, ...)`` and output difference of every pair ``(B*R, ...)``."""
        nodes = self.graph.nodes
        ctx = rules.Context(n_refs=n_refs)
        acts = self._forward(x)
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
            if node.rule == "reveal_cancel":
                deltas.append(node.op.reveal_cancel(xs, lambda: [split_of(node.inputs[0])], ctx))
            else:
                deltas.append(node.op.delta(xs, [deltas[j] for j in node.inputs], ctx))
        return acts[self.graph.output], deltas[self.graph.output]

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """The engine's forward pass, ``(N, n_outputs)`` logits (before the final sigmoid/softmax)."""
        step = self._cached(("predict",), lambda: _backend.compile(
            lambda v: ops.reshape(self._forward(v)[self.graph.output], (-1, self.n_outputs))))
        return self.apply(step, x, batch_size)

    def apply(self, step, x: np.ndarray, batch_size: int) -> np.ndarray:
        """A compiled one-input ``step`` over ``x`` in padded batches, on this explainer's device."""
        with _backend.scope(self.device):
            return _batched(lambda b: _backend.to_numpy(step(self._tensor(b))), [x], batch_size)

    def default_pairs(self) -> int:
        """(input, reference) pairs per compiled step when the caller gives no batch size."""
        return PAIRS_PER_STEP_GPU if (self.device != "cpu" and _backend.gpu_available()) else PAIRS_PER_STEP_CPU

    def bytes_per_pair(self) -> int:
        """Memory one (input, reference) pair takes in a compiled step: an upper estimate.

        Every node's activation difference, its multiplier, what autodiff saves for the backward
        pass and RevealCancel's positive and negative parts: about 4 float32 values per node output.
        """
        if not hasattr(self, "_bytes_per_pair"):
            shape = tuple(1 if s is None else s for s in self.graph.input_shape)
            with _backend.scope(self.device):
                acts = self._forward(self._tensor(np.zeros((1,) + shape)))
            self._bytes_per_pair = 4 * 4 * sum(int(np.prod(a.shape[1:])) for a in acts)
        return self._bytes_per_pair

    # ------------------------------------------------------------------ DeepLIFT
    def _deeplift_step(self, target):
        def step(x, ref):
            n_refs = ref.shape[1]
            d = pair_differences(x, ref)

            def objective(z):
                out_x, out_d = self._propagate(x, z, n_refs)
                dt = targets.difference(target, out_x, out_d, n_refs, self.graph.final_activation)
                return dt, self.target_value(out_x, target)

            m, (dt, t_x) = _backend.input_gradient(objective, d)
            return _summarize(m, d, ref, dt, t_x)

        return _backend.compile(step)

    def _cached(self, key, make):
        if key not in self._steps:
            self._steps[key] = make()
        return self._steps[key]

    def _tensor(self, array):
        return _backend.to_tensor(array, self.device)

    def run_pairs(self, key, make_step, inputs, references, batch_size=None) -> Attribution:
        """Run a compiled ``step(x (B, *S), ref (B, R, *S))`` over all inputs in padded batches."""
        inputs = np.asarray(inputs, dtype=_backend.float_dtype())
        refs = _per_input_references(inputs, references)
        n_refs = refs.shape[1]
        if batch_size is None:
            batch_size = max(1, self.default_pairs() // n_refs)
        step = self._cached(key, make_step)

        def run(x, r):
            with _backend.scope(self.device):
                return [_backend.to_numpy(v) for v in step(self._tensor(x), self._tensor(r))]

        batch_size = min(batch_size, len(inputs))
        while True:
            try:
                return Attribution(*_batched(run, [inputs, refs], batch_size))
            except Exception as exc:  # noqa: BLE001 - only out-of-memory is retried
                if batch_size == 1 or not _backend.is_out_of_memory(exc):
                    raise
                batch_size //= 2
                warnings.warn(f"out of device memory; retrying with {batch_size} sequences "
                              f"({batch_size * n_refs} pairs) per step (set batch_size to choose)", stacklevel=2)

    def deeplift(self, inputs, references, target=0, batch_size=None) -> Attribution:
        """DeepLIFT scores of ``inputs`` ``(N, *S)`` against ``references`` ``(R, *S)`` or ``(N, R, *S)``.

        target: an output index (that logit), 'sum' or 'profile' (see ``seqlift.targets``).
        """
        target = self.target(target)
        _check_shapes(self.graph.input_shape, inputs)
        return self.run_pairs(("deeplift", target), lambda: self._deeplift_step(target),
                              inputs, references, batch_size)


def pair_differences(x, ref):
    """``x`` ``(B, *S)`` minus each of its references ``(B, R, *S)``, as one batch ``(B*R, *S)``."""
    return ops.reshape(ops.expand_dims(x, 1) - ref, (-1,) + tuple(x.shape[1:]))


def _summarize(m, d, ref, dt, t_x):
    """Per-input averages over references of what one compiled step computed for its pairs."""
    batch, n_refs = ref.shape[0], ref.shape[1]
    shape = tuple(ref.shape[2:])
    m = ops.reshape(m, (batch, n_refs) + shape)
    d = ops.reshape(d, (batch, n_refs) + shape)
    contrib = m * d
    contributions = ops.mean(contrib, axis=1)
    hypothetical = ops.mean(m - ops.sum(m * ref, axis=-1, keepdims=True), axis=1)
    totals = ops.sum(ops.reshape(contrib, (batch, n_refs, -1)), axis=-1)
    dt = ops.reshape(dt, (batch, n_refs))
    delta = ops.max(ops.abs(totals - dt), axis=1)
    reference_prediction = t_x - ops.mean(dt, axis=1)
    return contributions, hypothetical, delta, t_x, reference_prediction


def _check_shapes(input_shape, inputs):
    shape = tuple(np.shape(inputs)[1:])
    expected = tuple(input_shape)
    if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
        raise SeqliftError(f"inputs have shape {shape} per sample but the model expects {expected}")


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
