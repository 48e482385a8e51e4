"""Capture a torch module with ``torch.export`` and lower its core ATen graph to seqlift's operations.

The module is exported with a dynamic batch, decomposed to the core ATen operator set (one small
vocabulary for every model, functional calls included; ``logsumexp``, ``softplus`` and a few other
elementwise functions are kept whole, each has its own rule) and walked once:

- a node whose inputs are all constants (weights, buffers, Enformer's relative-position features)
  is computed by torch now and becomes a constant: folded;
- a node that depends only on inputs held fixed (``log(X_ctl + 1)``) is lowered for its forward
  pass and has difference 0 (``rules.Fixed``);
- every other node is lowered by ``ATEN[op]`` to operations of ``seqlift.rules`` whose weights are
  arrays; an operator with no row is an error naming it and the module path it came from
  (``rconvs.3``), before any work.

The engine's input is ``(N, L, 4)``. A module reading ``(N, 4, L)`` (``layout='NCL'``) has its
``(N, C, L)`` activations kept channels last as long as the operations allow (the table's ``channels_last``):
XLA's convolutions read channels last, and a transpose around each would double the cost.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import logging
import math
import operator
import os
import textwrap
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ... import backend  # noqa: F401  (first: loads Keras quietly)

import keras  # noqa: E402
from keras import ops  # noqa: E402

from ... import rules  # noqa: E402
from ...errors import SeqliftError  # noqa: E402
from ...graph import Graph, keep_ancestors, strip_final_activation  # noqa: E402
from .. import choose, first_line  # noqa: E402

aten = torch.ops.aten
LAYOUTS = ("NCL", "NLC")
_BIG = 2 ** 62  # slice ends at or beyond this mean "to the end"
# Operators kept whole rather than decomposed: each has one rule (a decomposition would spread it over
# a max, a where and an exp, whose rules do not add up to the operator's)
_KEPT_WHOLE = (aten.logsumexp.default, aten.softplus.default, aten.elu.default, aten.silu.default,
               aten.leaky_relu.default, aten.hardtanh.default, aten.gelu.default, aten._log_softmax.default,
               aten._safe_softmax.default)
_CHECKS = ("aten._assert", "aten.sym_constrain_range", "aten._functional_assert")


class Sym:
    """A size ``factor × batch`` (a dynamic dimension): -1 where a shape of activations is given, ``factor``
    in a shape of constants (whose batch dimension is 1: they broadcast)."""

    def __init__(self, factor=1):
        self.factor = factor


SYM = Sym()


# What a value of the exported graph became while lowering: a graph node, a constant, or the outputs of an
# operation with several (batch norm's (output, mean, invstd): the first is lowered, the others are None).
@dataclass(frozen=True)
class NodeValue:
    """The output of graph node ``index``."""

    index: int


@dataclass(frozen=True, eq=False)
class Const:
    """A constant: a parameter, a buffer, or what torch computed from constants alone (``_fold``)."""

    tensor: torch.Tensor


@dataclass(frozen=True, eq=False)
class Multi:
    """The outputs of an operation that has several, each a ``NodeValue``, ``Const`` or None (not lowered)."""

    values: list


def lower(model, output=None, input=None, layout=None, input_length=None, input_shape=None, extra_shapes=None) -> Graph:
    """``model`` (an ``nn.Module`` in eval mode) as a ``Graph`` whose input is ``(L, 4)``.

    input_length: L, the length of the sequences (a torch module does not declare it); or
    input_shape: the per-sample shape of the inputs in the module's own layout, ``(4, L)`` or
    ``(L, 4)``, which also gives the layout.
    extra_shapes: ``{forward parameter: per-sample shape}`` of the inputs held fixed (a control track).
    layout: 'NCL' or 'NLC', the module's own layout (default: the one it can be exported with, NCL first).
    output, input: which output (index or name, for a tuple or dict) and which forward parameter.
    """
    if input_shape is not None:
        input_shape = tuple(int(s) for s in input_shape)
        if len(input_shape) != 2 or 4 not in input_shape:
            raise SeqliftError(f"inputs have shape {input_shape} per sample; a sequence model reads (4, L) or (L, 4)")
        if layout is None and input_shape[0] != input_shape[1]:
            layout = "NCL" if input_shape[0] == 4 else "NLC"
        input_length = input_shape[1] if (layout or "NCL") == "NCL" else input_shape[0]
    if input_length is None:
        raise SeqliftError(f"{type(model).__name__}: a torch model does not declare its input length; give "
                           "input_length= (seqlift score and variants: --length L, or for FASTA input the first "
                           "record's length)")
    if layout is not None and layout not in LAYOUTS:
        raise SeqliftError(f"layout '{layout}': choose {' or '.join(LAYOUTS)}")
    params = _forward_parameters(model)
    explained = _choose_input(model, params, input)
    extra_shapes = dict(extra_shapes or {})
    for name in extra_shapes:
        if name not in params or name == explained:
            raise SeqliftError(f"extra input '{name}': {type(model).__name__}.forward has no such parameter besides "
                               f"the explained '{explained}' (parameters: {', '.join(params)})")
    missing = [p for p, required in params.items() if required and p != explained and p not in extra_shapes]
    if missing:
        raise SeqliftError(f"{type(model).__name__}.forward needs {', '.join(missing)}: give its values with "
                           f"--extra {missing[0]}=FILE.npy (extra={{'{missing[0]}': array}})")
    program, chosen_layout = _export(model, explained, extra_shapes, input_length, layout)
    return _Lowering(model, program, explained, extra_shapes, input_length, chosen_layout).run(output)


def _forward_parameters(model) -> dict[str, bool]:
    """forward's named parameters, each with whether it must be given (no default)."""
    params = {}
    for name, p in inspect.signature(model.forward).parameters.items():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            params[name] = p.default is p.empty
    if not params:
        raise SeqliftError(f"{type(model).__name__}.forward takes no named input")
    return params


def _choose_input(model, params: dict, input) -> str:
    names = list(params)
    if input is None:
        return names[0]
    if isinstance(input, str) and not input.lstrip("-").isdigit():
        if input not in names:
            raise SeqliftError(f"{type(model).__name__}.forward has no parameter '{input}' ({', '.join(names)})")
        return input
    index = int(input)
    if not 0 <= index < len(names):
        raise SeqliftError(f"input {index} is out of range: {type(model).__name__}.forward has {len(names)} parameters")
    return names[index]


def _example(shape, batch=2):
    """An example input to capture the module with (``shape`` per sample; only shapes and dtypes matter)."""
    return torch.rand((batch,) + tuple(shape), generator=torch.Generator().manual_seed(0))


@contextlib.contextmanager
def _quiet_torch_logs():
    """torch logs the traceback of a failed capture (its fake tensors') on stderr before raising it; the error
    seqlift makes of it is the one line the user sees."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _export(model, explained, extra_shapes, length, layout):
    """The exported program and the layout it was exported with (each layout tried when not given)."""
    errors = {}
    for candidate in [layout] if layout else LAYOUTS:
        kwargs = _inputs(model, explained, extra_shapes, length, candidate)
        batch = torch.export.Dim("batch", min=1)
        dynamic = {name: {0: batch} for name in kwargs}
        try:
            with torch.no_grad(), warnings.catch_warnings(), _quiet_torch_logs():
                warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecations
                program = torch.export.export(model, (), kwargs, dynamic_shapes=dynamic, strict=False)
        except Exception as exc:  # noqa: BLE001 - the module does not run on this layout (or at all)
            errors[candidate] = f"{type(exc).__name__}: {first_line(exc)}"
            continue
        table = torch.export.default_decompositions()
        for op in _KEPT_WHOLE:
            if op in table:
                del table[op]
        with warnings.catch_warnings(), _quiet_torch_logs():
            warnings.simplefilter("ignore", FutureWarning)
            return program.run_decompositions(table), candidate
    for candidate in errors:
        needed = _needed_lengths(model, explained, extra_shapes, length, candidate)
        if needed:
            lengths = str(needed[0]) if len(needed) == 1 else f"{needed[0]} to {needed[-1]}"
            raise SeqliftError(f"{type(model).__name__} takes sequences of {lengths} bp, not {length}: give "
                               f"--length {needed[0]} (input_length=), or sequences of that length")
    tried = "; ".join(f"(N, {'4, L' if k == 'NCL' else 'L, 4'}): {v}" for k, v in errors.items())
    raise SeqliftError(f"{type(model).__name__}: torch.export could not capture it with inputs of length {length} "
                       f"({tried[:600]})")


def _inputs(model, explained, extra_shapes, length, layout, batch=2):
    """Example keyword inputs of ``forward``, in its order, for sequences of ``length`` in ``layout``."""
    shape = (4, length) if layout == "NCL" else (length, 4)
    given = {explained: _example(shape, batch), **{name: _example(s, batch) for name, s in extra_shapes.items()}}
    return {name: given[name] for name in _forward_parameters(model) if name in given}


class _DenseMismatch(Exception):
    """A dense layer got ``got`` features where it takes ``expected``: the module is built for another length."""

    def __init__(self, got, expected):
        super().__init__(got, expected)
        self.got, self.expected = got, expected


def _needed_lengths(model, explained, extra_shapes, length, layout, window=64) -> list[int]:
    """The sequence lengths a module runs on, when a dense layer (``nn.Linear``) refuses ``length``: the features it
    gets grow linearly with the length (give or take pooling's rounding), so two lengths give the length that
    brings the features it takes, and forward passes around it find those that run. [] when no dense layer is
    to blame or no length near it runs (inputs held fixed whose shape holds the length are resized with it)."""

    def check(module, inputs):
        got = inputs[0].shape[-1]
        if got != module.in_features:
            raise _DenseMismatch(got, module.in_features)

    def features(n):
        """None if the module runs on sequences of ``n`` bp, else its first wrong dense layer's features."""
        extra = {name: tuple(n if s == length else s for s in shape) for name, shape in extra_shapes.items()}
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model(**_inputs(model, explained, extra, n, layout, batch=1))
        except _DenseMismatch as mismatch:
            return mismatch
        except Exception:  # noqa: BLE001 - it fails at this length some other way
            return False
        return None

    hooks = [m.register_forward_pre_hook(check) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    try:
        first, second = features(length), features(2 * length)
        if not (isinstance(first, _DenseMismatch) and isinstance(second, _DenseMismatch)) or \
                second.expected != first.expected or second.got <= first.got:
            return []
        guess = round(length + (first.expected - first.got) * length / (second.got - first.got))
        for n in sorted(range(max(1, guess - window), guess + window + 1), key=lambda n: abs(n - guess)):
            if features(n) is None:
                below, above = n, n
                while below > max(1, guess - window) and features(below - 1) is None:
                    below -= 1
                while above < guess + window and features(above + 1) is None:
                    above += 1
                return list(range(below, above + 1))
        return []
    finally:
        for hook in hooks:
            hook.remove()


class _Lowering:
    """One walk over the exported graph (see the module docstring)."""

    def __init__(self, model, program, explained, extra_shapes, length, layout):
        self.model, self.program, self.layout = model, program, layout
        self.modules = dict(model.named_modules())
        self.graph = Graph(input_shape=(length, 4), frontend="torch",
                           input_layout="channels_first" if layout == "NCL" else "channels_last")
        self.explained, self.extra_shapes = explained, extra_shapes
        self.varies = {}  # graph node id -> depends on the explained input
        self.values = {}  # fx node -> NodeValue | Const | Multi | python value

    # ------------------------------------------------------------------ values
    def node(self, op, inputs, source=None, fixed=False):
        """Add ``op`` reading graph nodes ``inputs``; an op reading only fixed inputs, or whose value does not
        depend on its inputs' values (``fixed``: ``zeros_like``), gets difference 0."""
        varies = not fixed and any(self.varies[i] for i in inputs)
        if not varies:
            op = rules.Fixed(op)
        i = self.graph.add(op, inputs, source)
        self.varies[i] = varies
        return NodeValue(i)

    def run(self, output):
        g = self.graph
        g.add(rules.Input("input", "input"), [])
        self.varies[0] = True
        first = 0
        self.channels_last = set()  # graph nodes holding a (B, C, L) torch tensor as (B, L, C)
        self.materialized = {}
        if self.layout == "NCL":
            self.channels_last.add(0)  # node 0 is (B, L, 4): the module's (B, 4, L) transposed
        g.input_name = self.explained
        signature = self.program.graph_signature
        constants = {**signature.inputs_to_parameters, **signature.inputs_to_buffers,
                     **getattr(signature, "inputs_to_lifted_tensor_constants", {})}
        state = {**self.program.state_dict, **getattr(self.program, "constants", {})}
        order = [name for name in _forward_parameters(self.model) if name == self.explained or name in self.extra_shapes]
        user_inputs = dict(zip(signature.user_inputs, order))  # placeholder -> forward parameter
        offset = 0
        self.batch = None
        for fx in self.program.graph.nodes:
            if fx.op == "placeholder" and fx.name in user_inputs and user_inputs[fx.name] == self.explained:
                self.batch = fx.meta["val"].shape[0]
        for fx in self.program.graph.nodes:
            if fx.op == "placeholder":
                if fx.name in constants:
                    self.values[fx] = Const(state[constants[fx.name]].detach())
                elif user_inputs[fx.name] == self.explained:
                    self.values[fx] = NodeValue(first)
                else:
                    name = user_inputs[fx.name]
                    shape = tuple(self.extra_shapes[name])
                    op = rules.FixedInput(name, shape, offset, lambda: g.fixed_values)
                    i = g.add(op, [0])
                    self.varies[i] = False
                    g.fixed_inputs.append((name, shape))
                    offset += op.size
                    self.values[fx] = NodeValue(i)
            elif fx.op == "call_function":
                self.values[fx] = self._call(fx)
            elif fx.op == "output":
                return self._finish(fx, output)
        raise SeqliftError("the exported graph has no output")

    def _finish(self, fx, output):
        outs = list(fx.args[0])
        names = self._output_names(len(outs))
        chosen = _choose_output(self.model, names, output)
        value = self.values[outs[chosen]]
        if _is_node(value):
            value = self.materialize(value)
        if not _is_node(value) or not self.varies[value.index]:
            raise SeqliftError(f"output {names[chosen]} of {type(self.model).__name__} does not depend on its input "
                               f"'{self.explained}'")
        keep_ancestors(self.graph, value.index)
        self.graph.output_name = names[chosen] if len(names) > 1 else ""
        shape = tuple(outs[chosen].meta["val"].shape)
        strip_final_activation(self.graph, len(shape))
        self.graph.output_size = math.prod(int(s) for s in shape[1:])
        self.graph.output_shape = tuple(int(s) for s in shape[1:])
        return self.graph

    def _output_names(self, n):
        """The module's ``output_names`` (a user's, as Keras models have), a dict's keys, the names of the
        variables ``forward`` returns (``_returned_names``), else the indices."""
        given = getattr(self.model, "output_names", None)
        if given is not None:
            if not (isinstance(given, (list, tuple)) and all(isinstance(g, str) and g for g in given)
                    and len(set(given)) == len(given) == n):
                raise SeqliftError(f"{type(self.model).__name__}.output_names is {given!r}: it must be {n} different "
                                   f"names, one per output of forward")
            return list(given)
        spec = self.program.call_spec.out_spec if hasattr(self.program, "call_spec") else None
        context = getattr(spec, "context", None)
        if isinstance(context, (list, tuple)) and len(context) == n and all(isinstance(c, str) for c in context):
            return list(context)  # a dict's keys
        return _returned_names(type(self.model).forward, n) or [str(i) for i in range(n)]

    # ------------------------------------------------------------------ one ATen node
    def _call(self, fx):
        args = _map(fx.args, self._value)
        kwargs = _map(dict(fx.kwargs), self._value)
        if str(fx.target).startswith(_CHECKS):
            return None  # a check torch.export records (dtype, device, a size's range): nothing to compute
        if fx.target is aten.sym_size.int:
            return SYM if fx.args[1] == 0 else int(fx.meta["val"])
        if fx.target is operator.getitem:
            container, index = args
            if isinstance(container, Multi):
                if container.values[index] is None:
                    raise SeqliftError(f"{self._where(fx)}: output {index} of {fx.args[0].target} is used; seqlift "
                                       "lowers its first output only")
                return container.values[index]
            return container[index]
        if not _depends(args) and not _depends(kwargs):
            return self._fold(fx, args, kwargs)
        row = ATEN.get(fx.target)
        if row is None:
            raise SeqliftError(f"{self._where(fx)}: operation {fx.target} has no DeepLIFT rule in seqlift (the "
                               f"{len(ATEN)} ATen operators it lowers are listed in the README)")
        try:
            kept = None if row.channels_last is None else row.channels_last(self, fx, row.lower, args, kwargs)
            if kept is not None:
                return kept
            args, kwargs = self.materialize(args), self.materialize(kwargs)
            return row.lower(self, fx, *args, **kwargs)
        except SeqliftError:
            raise
        except Exception as exc:  # noqa: BLE001 - an argument pattern the lowering does not handle
            raise SeqliftError(f"{self._where(fx)}: cannot lower {fx.target} as called here "
                               f"({type(exc).__name__}: {first_line(exc)})") from None

    def _value(self, fx):
        value = self.values[fx]
        return value

    # ------------------------------------------------------------------ channels last
    # XLA's CPU convolutions read channels last; transposing around each of them doubled the cost of a
    # BPNet. So a (B, C, L) activation is kept as (B, L, C) through the operations that do not care
    # (convolutions, elementwise functions, batch norm, slices, sums, concatenation) and transposed back
    # (``materialize``) only where an operation needs the module's own layout.
    def is_channels_last(self, value) -> bool:
        return _is_node(value) and value.index in self.channels_last

    def mark(self, value, channels_last=True):
        if channels_last and _is_node(value):
            self.channels_last.add(value.index)
        return value

    def materialize(self, value):
        """``value`` with every channels-last node replaced by the module's layout (one transpose each)."""
        return _map(value, self._materialize_node, NodeValue)

    def _materialize_node(self, value: NodeValue) -> NodeValue:
        if not self.is_channels_last(value):
            return value
        i = value.index
        if i not in self.materialized:
            op = rules.Structural(self.graph.nodes[i].op.name + "/ncl", "permute",
                                  lambda xs: ops.transpose(xs[0], (0, 2, 1)))
            self.materialized[i] = self.node(op, [i])
        return self.materialized[i]

    def to_channels_last(self, value):
        if self.is_channels_last(value):
            return value
        op = rules.Structural(self.graph.nodes[value.index].op.name + "/nlc", "permute",
                              lambda xs: ops.transpose(xs[0], (0, 2, 1)))
        return self.mark(self.node(op, [value.index]))

    def _fold(self, fx, args, kwargs):
        """A node of constants only: computed now by torch."""
        plain = _map(args, _unwrap, Const), _map(kwargs, _unwrap, Const)  # the constants as torch tensors
        if fx.target in (operator.mul, operator.floordiv) and isinstance(plain[0][0], Sym):
            (sym, k) = plain[0]
            if isinstance(k, int) and (fx.target is operator.mul or sym.factor % k == 0):
                return Sym(sym.factor * k if fx.target is operator.mul else sym.factor // k)
        if fx.target is operator.mul and isinstance(plain[0][1], Sym) and isinstance(plain[0][0], int):
            return Sym(plain[0][1].factor * plain[0][0])
        if any(isinstance(v, Sym) for v in _leaves(plain)):
            if not str(fx.target).startswith("aten."):
                raise ValueError(f"{fx.target} of a batch-dependent size")
            plain = _map(plain, lambda sym: sym.factor, Sym)  # a constant's batch is 1
        with torch.no_grad():
            result = fx.target(*plain[0], **plain[1])
        if isinstance(result, torch.SymInt):
            return SYM
        return _wrap(result)

    def _where(self, fx) -> str:
        path, kind = self.path(fx)
        return f"module '{path}' ({kind})" if path else f"{type(self.model).__name__}.forward"

    def path(self, fx):
        stack = fx.meta.get("nn_module_stack") or {}
        if not stack:
            return "", type(self.model).__name__
        path, kind = list(stack.values())[-1]
        kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
        return path, kind.rsplit(".", 1)[-1]

    def name_of(self, fx):
        path, _ = self.path(fx)
        return f"{path}/{fx.name}" if path else fx.name

    def source(self, fx):
        path, _ = self.path(fx)
        module = self.modules.get(path)
        return type(module) if module is not None and path else None

    def shape(self, fx):
        """The per-sample shape of ``fx``'s first output (batch dimension excluded)."""
        val = fx.meta["val"]
        val = val[0] if isinstance(val, (tuple, list)) else val
        return tuple(int(s) for s in val.shape[1:])

    def rank(self, fx):
        val = fx.meta["val"]
        val = val[0] if isinstance(val, (tuple, list)) else val
        return len(val.shape)

    def add(self, fx, op, inputs, fixed=False):
        ids = [value.index for value in inputs]
        if op.linear:
            return self.node(op, ids, self.source(fx), fixed)
        # A nonlinear rule pairs each activation with its references along the first axis: that axis must be
        # the batch alone. Where it is the batch merged with heads ((B·H, ...), attention's bmm), the rule
        # runs on (B, H, ...) and its output is merged back.
        merged = self._merged_factor(fx)
        if merged == 1:
            return self.node(op, ids, self.source(fx), fixed)
        if not isinstance(op, (rules.Bilinear, rules.Multiply, rules.Elementwise)):
            raise ValueError(f"its input's first axis is the batch merged with another ({merged}x)")
        name = op.name
        split = [self.node(rules.Structural(name + "/unmerge", "view", lambda xs, k=merged: ops.reshape(
            xs[0], (-1, k) + tuple(xs[0].shape[1:]))), [i], self.source(fx)).index for i in ids]
        out = self.node(op, split, self.source(fx), fixed).index
        return self.node(rules.Structural(name + "/merge", "view", lambda xs: ops.reshape(
            xs[0], (-1,) + tuple(xs[0].shape[2:]))), [out], self.source(fx))

    def _merged_factor(self, fx) -> int:
        """k where the first axis of every activation ``fx`` reads is k × the batch (1: the batch alone)."""
        factors = set()
        for arg in fx.all_input_nodes:
            if not _is_node(self.values.get(arg)):
                continue
            val = arg.meta.get("val")
            first = val.shape[0] if val is not None and len(val.shape) else None
            if not isinstance(first, torch.SymInt):
                raise ValueError(f"its input {arg.name} has shape {tuple(val.shape)}, whose first axis is not the batch")
            ratio = first.node.expr / self.batch.node.expr
            if not ratio.is_Integer:
                raise ValueError(f"its input {arg.name} has shape {tuple(val.shape)}, whose first axis is not the batch")
            factors.add(int(ratio))
        if len(factors) > 1:
            raise ValueError("its inputs merge the batch with different axes")
        return factors.pop() if factors else 1


# ---------------------------------------------------------------------------------- helpers
def _map(value, fn, kind=torch.fx.Node):
    """``value`` with each ``kind`` in it (through lists, tuples and dicts) replaced by ``fn`` of it."""
    if isinstance(value, (list, tuple)):
        return type(value)(_map(v, fn, kind) for v in value)
    if isinstance(value, dict):
        return {k: _map(v, fn, kind) for k, v in value.items()}
    if isinstance(value, kind):
        return fn(value)
    return value


def _leaves(value):
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    else:
        yield value


def _depends(value) -> bool:
    if isinstance(value, NodeValue):
        return True
    if isinstance(value, (list, tuple)):
        return any(_depends(v) for v in value)
    if isinstance(value, dict):
        return any(_depends(v) for v in value.values())
    return False


def _unwrap(value):
    if isinstance(value, Const):
        return value.tensor
    return value


def _wrap(result):
    if isinstance(result, torch.Tensor):
        return Const(result.detach())
    if isinstance(result, (tuple, list)):
        return Multi([_wrap(r) for r in result])
    return result


def _is_node(value) -> bool:
    return isinstance(value, NodeValue)


def _is_const(value) -> bool:
    return isinstance(value, Const)


def _array(value):
    """A constant (tensor or number) as a backend tensor of the engine's dtype."""
    if _is_const(value):
        value = value.tensor
    if isinstance(value, torch.Tensor):
        return ops.convert_to_tensor(value.detach().cpu().to(torch.float32).numpy())
    return value


def _numpy(value):
    return value.tensor.detach().cpu().to(torch.float32).numpy()


def _returned_names(forward, n) -> list[str] | None:
    """The names of the ``n`` variables every ``return`` of ``forward`` returns (bpnet-lite's BPNet: ``return
    y_profile, y_counts``), without a prefix ending in '_' they all share: ``['profile', 'counts']``. None where
    the source cannot be read or a return is not the same tuple of names."""
    try:
        function = ast.parse(textwrap.dedent(inspect.getsource(forward))).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        return None
    returned = set()
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue  # a nested function's returns are not forward's
        if isinstance(node, ast.Return):
            elements = node.value.elts if isinstance(node.value, ast.Tuple) else []
            returned.add(tuple(e.id if isinstance(e, ast.Name) else None for e in elements))
        stack.extend(ast.iter_child_nodes(node))
    if len(returned) != 1:
        return None
    names = list(returned.pop())
    if len(names) != n or None in names or len(set(names)) != n:
        return None
    shared = os.path.commonprefix(names)
    shared = shared[:shared.rfind("_") + 1]
    return [name[len(shared):] for name in names] if all(len(name) > len(shared) for name in names) else names


def _choose_output(model, names, output) -> int:
    if output is None:
        if len(names) > 1:
            raise SeqliftError(f"{type(model).__name__} has {len(names)} outputs ({', '.join(names)}); choose one with "
                               "output= (--output INDEX|NAME)")
        return 0
    return choose(names, output, "output", type(model).__name__)


def _shape_arg(shape, traced):
    """A shape argument with its batch-dependent entries as -1 (at most one).

    traced: the shape torch traced for the result, which gives each size the argument leaves to be inferred
    (``x.reshape(x.shape[0], -1)``: the batch, and -1 for the rest).
    """
    shape = [int(t) if not isinstance(s, Sym) and int(s) == -1 and not isinstance(t, torch.SymInt) else s
             for s, t in zip(shape, traced)]
    shape = [(-1 if isinstance(s, Sym) else int(s)) for s in shape]
    if shape.count(-1) > 1:
        raise ValueError(f"shape {shape} has several batch-dependent sizes")
    return tuple(shape)


# ---------------------------------------------------------------------------------- the ATen table
def _structural(kind, make):
    def lower(lw, fx, x, *args, **kwargs):
        return lw.add(fx, rules.Structural(lw.name_of(fx), kind, make(lw, fx, *args, **kwargs)), [x])

    return lower


def _view(lw, fx, shape):
    shape = _shape_arg(shape, fx.meta["val"].shape)
    return lambda xs: ops.reshape(xs[0], shape if -1 in shape else (-1,) + shape[1:])


def _expand(lw, fx, shape):
    shape = list(shape)

    def fn(xs):
        x = xs[0]
        lead = len(shape) - len(x.shape)
        target = [x.shape[i - lead] if (isinstance(s, Sym) or s == -1) and i >= lead else s
                  for i, s in enumerate(shape)]
        return ops.broadcast_to(x, tuple(target))

    return fn


def _permute(lw, fx, dims):
    dims = tuple(int(d) for d in dims)
    return lambda xs: ops.transpose(xs[0], dims)


def _squeeze(lw, fx, dims=None):
    rank = lw.rank(fx.args[0])
    dims = [d % rank for d in ([dims] if isinstance(dims, int) else dims)] if dims is not None else None
    in_shape = (None,) + lw.shape(fx.args[0])
    dims = [d for d in (dims if dims is not None else range(rank)) if d > 0 and in_shape[d] == 1]
    return lambda xs: ops.squeeze(xs[0], axis=tuple(dims)) if dims else xs[0]


def _unsqueeze(lw, fx, dim):
    dim = dim % (lw.rank(fx.args[0]) + 1)
    return lambda xs: ops.expand_dims(xs[0], dim)


def _size(fx, dim):
    """Axis ``dim`` of ``fx``'s value: its size, or None where it depends on the batch (the batch, or the batch
    merged with another axis, wherever it stands: attention moves it)."""
    size = fx.meta["val"].shape[dim]
    return None if isinstance(size, torch.SymInt) else int(size)


def _slice(lw, fx, dim=0, start=None, end=None, step=1):
    rank = lw.rank(fx.args[0])
    dim = dim % rank
    n = _size(fx.args[0], dim)
    if n is None:
        if (start or 0) == 0 and (end is None or isinstance(end, Sym) or end >= _BIG) and step == 1:
            return lambda xs: xs[0]  # x[:] on the batch
        raise ValueError("slicing the batch dimension")
    start = 0 if start is None else (start + n if start < 0 else min(start, n))
    end = n if end is None or end >= _BIG else (end + n if end < 0 else min(end, n))
    index = tuple([slice(None)] * dim + [slice(start, end, step)])
    return lambda xs: xs[0][index]


def _select(lw, fx, dim, index):
    dim = dim % lw.rank(fx.args[0])
    if _size(fx.args[0], dim) is None:
        raise ValueError("selecting from the batch dimension")
    key = tuple([slice(None)] * dim + [index])
    return lambda xs: xs[0][key]


def _flip(lw, fx, dims):
    dims = tuple(dims)
    return lambda xs: ops.flip(xs[0], axis=dims)


def _identity(lw, fx, *args, **kwargs):
    return lambda xs: xs[0]


def _mean(lw, fx, dims=None, keepdim=False, dtype=None):
    dims = tuple(dims) if dims is not None else None
    return lambda xs: ops.mean(xs[0], axis=dims, keepdims=keepdim)


def _sum(lw, fx, dims=None, keepdim=False, dtype=None):
    dims = tuple(dims) if dims is not None else None
    return lambda xs: ops.sum(xs[0], axis=dims, keepdims=keepdim)


def _cat(lw, fx, tensors, dim=0):
    if not all(_is_node(t) for t in tensors):
        raise ValueError("a constant concatenated to the activations")
    fn = lambda xs: ops.concatenate(list(xs), axis=dim)  # noqa: E731
    return lw.add(fx, rules.Structural(lw.name_of(fx), "cat", fn), tensors)


def _pad(lw, fx, x, pad, value=0.0):
    rank = lw.rank(fx.args[0])
    widths = [(0, 0)] * rank
    for i in range(len(pad) // 2):
        widths[rank - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if any(a < 0 or b < 0 for a, b in widths):
        raise ValueError("negative padding")
    fn = lambda xs: ops.pad(xs[0], widths)  # noqa: E731
    if value == 0:
        return lw.add(fx, rules.Structural(lw.name_of(fx), "constant_pad_nd", fn), [x])
    shape = (1,) + lw.shape(fx.args[0])
    offset = ops.pad(ops.zeros(shape), widths, constant_values=value)
    return lw.add(fx, rules.Affine(lw.name_of(fx), "constant_pad_nd", fn, offset), [x])


def _binary(kind):
    """add/sub/mul/div with two activations, an activation and a constant, or a number."""

    def lower(lw, fx, a, b, alpha=1):
        name = lw.name_of(fx)
        if alpha != 1:
            b = Const(_unwrap(b) * alpha) if not _is_node(b) else b
            if _is_node(b):
                b = _scaled(lw, fx, b, alpha)
        if _is_node(a) and _is_node(b):
            if kind == "add":
                return lw.add(fx, rules.Structural(name, "add", lambda xs: xs[0] + xs[1]), [a, b])
            if kind == "sub":
                return lw.add(fx, rules.Subtract(name, "sub"), [a, b])
            if kind == "mul":
                return lw.add(fx, rules.Multiply(name, "mul"), [a, b])
            raise ValueError("a division of two activations")
        if _is_node(a):
            c = _array(b)
            if kind == "add":
                return lw.add(fx, rules.Affine(name, "add", lambda xs: xs[0], c), [a])
            if kind == "sub":
                return lw.add(fx, rules.Affine(name, "sub", lambda xs: xs[0], -c), [a])
            if kind == "mul":
                return lw.add(fx, rules.Affine(name, "mul", lambda xs: xs[0] * c), [a])
            return lw.add(fx, rules.Affine(name, "div", lambda xs: xs[0] / c), [a])
        c = _array(a)
        if kind == "add":
            return lw.add(fx, rules.Affine(name, "add", lambda xs: xs[0], c), [b])
        if kind == "sub":
            return lw.add(fx, rules.Affine(name, "sub", lambda xs: -xs[0], c), [b])
        if kind == "mul":
            return lw.add(fx, rules.Affine(name, "mul", lambda xs: c * xs[0]), [b])
        return lw.add(fx, rules.Elementwise(name, "div", lambda v: c / v, "reciprocal"), [b])

    return lower


def _scaled(lw, fx, x, alpha):
    return lw.add(fx, rules.Affine(lw.name_of(fx) + "/alpha", "mul", lambda xs: xs[0] * alpha), [x])


def _neg(lw, fx, x):
    return lw.add(fx, rules.Affine(lw.name_of(fx), "neg", lambda xs: -xs[0]), [x])


def _elementwise(fn_name, make):
    def lower(lw, fx, x, *args, **kwargs):
        return lw.add(fx, rules.Elementwise(lw.name_of(fx), fn_name, make(*args, **kwargs), fn_name), [x])

    return lower


def _gelu(approximate="none"):
    exact = approximate == "none"
    return lambda v: keras.activations.gelu(v, approximate=not exact)


def _softplus(beta=1, threshold=20):
    if beta == 1:
        return lambda v: ops.where(v > threshold, v, ops.softplus(v))
    return lambda v: ops.where(v * beta > threshold, v, ops.softplus(v * beta) / beta)


def _elu(alpha=1.0, scale=1.0, input_scale=1.0):
    if scale == 1.0 and input_scale == 1.0:
        return lambda v: keras.activations.elu(v, alpha=alpha)
    return lambda v: scale * keras.activations.elu(v * input_scale, alpha=alpha)


def _leaky(negative_slope=0.01):
    return lambda v: keras.activations.leaky_relu(v, negative_slope=negative_slope)


def _hardtanh(low=-1.0, high=1.0):
    return lambda v: ops.clip(v, low, high)


def _pow(exponent):
    return lambda v: ops.power(v, exponent)


def _convolution(lw, fx, x, weight, bias, stride, padding, dilation, transposed, output_padding, groups,
                 channels_last=False):
    if transposed:
        raise ValueError("transposed convolution")
    if not _is_const(weight):
        raise ValueError("a convolution whose weights depend on the input")
    w = _numpy(weight)
    name = lw.name_of(fx)
    b = None if bias is None else _array(bias)
    if w.ndim == 3:
        if groups != 1:
            raise ValueError(f"groups={groups}; seqlift lowers convolutions with groups=1")
        kernel = ops.convert_to_tensor(np.ascontiguousarray(w.transpose(2, 1, 0)))  # (K, C_in, C_out)
        op = rules.Conv1D(name, "convolution", kernel, b, strides=int(stride[0]), dilation=int(dilation[0]),
                          padding=(int(padding[0]), int(padding[0])), channels_first=not channels_last)
        return lw.add(fx, op, [x])
    if all(s == 1 for s in w.shape[2:]) and all(s == 1 for s in stride) and not any(padding) and groups == 1:
        # a pointwise convolution of any rank (Enformer's attention pooling logits): a dense map over channels
        rank = w.ndim
        kernel = ops.convert_to_tensor(np.ascontiguousarray(w.reshape(w.shape[:2]).T))  # (C_in, C_out)
        perm = (0,) + tuple(range(2, rank)) + (1,)
        back = (0, rank - 1) + tuple(range(1, rank - 1))
        moved = lw.add(fx, rules.Structural(name + "/channels_last", "permute",
                                            lambda xs: ops.transpose(xs[0], perm)), [x])
        dense = lw.add(fx, rules.Dense(name, "convolution", kernel, b), [moved])
        return lw.add(fx, rules.Structural(name + "/channels_first", "permute",
                                           lambda xs: ops.transpose(xs[0], back)), [dense])
    if w.ndim == 4 and groups == 1 and w.shape[2] == lw.shape(fx.args[0])[1] and int(padding[0]) == 0:
        # a 2-D convolution as tall as its input (the one-hot sequence as an image (N, 1, 4, L)): one output row, a
        # 1-D convolution along the length over the C·H channels of the input's rows
        _, channels, height, width = (None,) + lw.shape(fx.args[0])
        kernel = ops.convert_to_tensor(np.ascontiguousarray(w.reshape(w.shape[0], -1, w.shape[3]).transpose(2, 1, 0)))
        rows = lw.add(fx, rules.Structural(name + "/rows", "view", lambda xs: ops.reshape(
            xs[0], (-1, channels * height, width))), [x])
        op = rules.Conv1D(name, "convolution", kernel, b, strides=int(stride[1]), dilation=int(dilation[1]),
                          padding=(int(padding[1]), int(padding[1])), channels_first=True)
        row = lw.add(fx, op, [rows])
        return lw.add(fx, rules.Structural(name + "/image", "unsqueeze", lambda xs: ops.expand_dims(xs[0], 2)), [row])
    raise ValueError(f"a {w.ndim - 2}-D convolution with kernel {w.shape[2:]} (seqlift lowers 2-D ones only as "
                     "tall as their input)")


def _addmm(lw, fx, bias, a, b, beta=1, alpha=1):
    if beta != 1 or alpha != 1 or not _is_node(a) or not _is_const(b):
        raise ValueError("addmm other than x @ W + b")
    return lw.add(fx, rules.Dense(lw.name_of(fx), "addmm", _array(b), _array(bias)), [a])


def _matmul(kind):
    def lower(lw, fx, a, b):
        name = lw.name_of(fx)
        if _is_node(a) and _is_node(b):
            return lw.add(fx, rules.Bilinear(name, kind, ops.matmul), [a, b])
        if _is_node(a):
            if kind == "mm":
                return lw.add(fx, rules.Dense(name, kind, _array(b), None), [a])
            w = _array(b)
            return lw.add(fx, rules.Affine(name, kind, lambda xs: ops.matmul(xs[0], w)), [a])
        w = _array(a)
        return lw.add(fx, rules.Affine(name, kind, lambda xs: ops.matmul(w, xs[0])), [b])

    return lower


def _softmax(lw, fx, x, dim, half_to_float=False):
    return lw.add(fx, rules.Softmax(lw.name_of(fx), "softmax", dim), [x])


def _log_softmax(lw, fx, x, dim, half_to_float=False):
    lse = lw.add(fx, rules.LogSumExp(lw.name_of(fx) + "/logsumexp", "log_softmax", dim, keepdims=True), [x])
    return lw.add(fx, rules.Subtract(lw.name_of(fx), "log_softmax"), [x, lse])


def _logsumexp(lw, fx, x, dims, keepdim=False):
    dims = tuple(dims) if isinstance(dims, (list, tuple)) else (dims,)
    return lw.add(fx, rules.LogSumExp(lw.name_of(fx), "logsumexp", dims, keepdims=keepdim), [x])


def _layer_norm(lw, fx, x, shape, weight, bias, eps):
    rank = lw.rank(fx.args[0])
    axes = list(range(rank - len(shape), rank))
    op = rules.LayerNorm(lw.name_of(fx), "layer_norm", rank, axes, eps, None if weight is None else _array(weight),
                         None if bias is None else _array(bias))
    return Multi([lw.add(fx, op, [x]), None, None])


def _batch_norm(lw, fx, x, weight, bias, running_mean, running_var, momentum, eps):
    rank = lw.rank(fx.args[0])
    op = rules.BatchNorm(lw.name_of(fx), "batch_norm", rank, 1, _array(running_mean), _array(running_var),
                         None if weight is None else _array(weight), None if bias is None else _array(bias), eps)
    return Multi([lw.add(fx, op, [x]), None, None])


def _to_channels_last(rank):
    return (0,) + tuple(range(2, rank)) + (1,)


def _to_channels_first(rank):
    return (0, rank - 1) + tuple(range(1, rank - 1))


def _max_pool(lw, fx, x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    kernel = list(kernel)
    stride = list(stride) if stride else kernel
    padding = [padding] * len(kernel) if isinstance(padding, int) else list(padding)
    dilation = [dilation] * len(kernel) if isinstance(dilation, int) else list(dilation)
    shape = lw.shape(fx.args[0])
    if ceil_mode or any(padding) or any(d != 1 for d in dilation):
        raise ValueError("max pooling with padding, dilation or ceil_mode")
    if not (len(kernel) == 2 and kernel[0] == 1 and stride[0] == 1 and shape[1] == 1):
        raise ValueError(f"max pooling over {kernel} (seqlift pools along the length)")
    name = lw.name_of(fx)
    channels = shape[0]
    # (N, C, 1, L) -> (N, L, C) -> pooled (N, L', C) -> (N, C, 1, L')
    to = lw.add(fx, rules.Structural(name + "/to_nlc", "max_pool", lambda xs: ops.transpose(
        ops.reshape(xs[0], (-1, channels, xs[0].shape[-1])), (0, 2, 1))), [x])
    pooled = lw.add(fx, rules.MaxPool(name, "max_pool", int(kernel[1]), int(stride[1]), "valid"), [to])
    back = lw.add(fx, rules.Structural(name + "/to_nc1l", "max_pool", lambda xs: ops.expand_dims(
        ops.transpose(xs[0], (0, 2, 1)), 2)), [pooled])
    return Multi([back, None])


def _avg_pool(lw, fx, x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
              divisor_override=None):
    kernel = [kernel] if isinstance(kernel, int) else list(kernel)
    stride = list(stride) if stride else kernel
    stride = [stride] * len(kernel) if isinstance(stride, int) else stride
    padding = [padding] * len(kernel) if isinstance(padding, int) else list(padding)
    if ceil_mode or divisor_override or (any(padding) and not count_include_pad):
        raise ValueError("average pooling with ceil_mode, divisor_override or count_include_pad=False")
    rank = lw.rank(fx.args[0])
    widths = [(0, 0), (0, 0)] + [(p, p) for p in padding]
    to, back = _to_channels_last(rank), _to_channels_first(rank)

    def fn(xs):
        v = ops.pad(xs[0], widths) if any(padding) else xs[0]
        v = ops.average_pool(ops.transpose(v, to), pool_size=tuple(kernel), strides=tuple(stride), padding="valid",
                             data_format="channels_last")
        return ops.transpose(v, back)

    return lw.add(fx, rules.Structural(lw.name_of(fx), "avg_pool", fn), [x])


def _full_like(lw, fx, x, value, **kwargs):
    fn = lambda xs: ops.full_like(xs[0], value)  # noqa: E731
    return lw.add(fx, rules.Structural(lw.name_of(fx), "full_like", fn), [x], fixed=True)


def _zeros_like(lw, fx, x, **kwargs):
    return _full_like(lw, fx, x, 0.0)


# ---------------------------------------------------------------------------------- channels last
# Each row's ``channels_last(lw, fx, lower, args, kwargs)``: the lowering of ``fx`` with its (B, C, L)
# activations kept as (B, L, C) (``lower`` is the row's own), or None where the module's layout is needed.
_SWAP = {1: 2, 2: 1}  # a (B, C, L) axis -> the same axis of (B, L, C)


def _pointwise_nlc(lw, fx, lower, args, kwargs):
    """An elementwise or identity operator: any layout in, the same out."""
    if not lw.is_channels_last(args[0] if args else None):
        return None
    return lw.mark(lower(lw, fx, *args, **kwargs))


def _binary_nlc(lw, fx, lower, args, kwargs):
    """add/sub/mul/div of two channels-last activations, or of one and a number."""
    if not (lw.is_channels_last(args[0] if args else None) or len(args) > 1 and lw.is_channels_last(args[1])):
        return None
    a, b = args[0], args[1]
    if _is_node(a) and _is_node(b):
        if not (lw.is_channels_last(a) and lw.is_channels_last(b)):
            return None
    elif not _scalar(b if _is_node(a) else a):
        return None
    return lw.mark(lower(lw, fx, *args, **kwargs))


def _convolution_nlc(lw, fx, lower, args, kwargs):
    """A 1-D convolution reads channels last whatever its input's layout (XLA's CPU convolutions do)."""
    x, weight = args[0], args[1]
    if not (_is_const(weight) and weight.tensor.dim() == 3) or lw.rank(fx.args[0]) != 3:
        return None
    return lw.mark(_convolution(lw, fx, lw.to_channels_last(x), *args[1:], channels_last=True, **kwargs))


def _batch_norm_nlc(lw, fx, lower, args, kwargs):
    if not lw.is_channels_last(args[0] if args else None):
        return None
    x, weight, bias, mean, var, momentum, eps = args
    op = rules.BatchNorm(lw.name_of(fx), "batch_norm", 3, 2, _array(mean), _array(var),
                         None if weight is None else _array(weight), None if bias is None else _array(bias), eps)
    return Multi([lw.mark(lw.add(fx, op, [x])), None, None])


def _slice_nlc(lw, fx, lower, args, kwargs):
    if not lw.is_channels_last(args[0] if args else None):
        return None
    x, dim = args[0], (args[1] if len(args) > 1 else 0) % 3
    if dim == 0:
        return None
    start, end = (list(args[2:4]) + [None, None])[:2]
    step = args[4] if len(args) > 4 else 1
    n = (None,) + lw.shape(fx.args[0])
    n = n[dim]
    start = 0 if start is None else (start + n if start < 0 else min(start, n))
    end = n if end is None or end >= _BIG else (end + n if end < 0 else min(end, n))
    index = tuple([slice(None)] * _SWAP[dim] + [slice(start, end, step)])
    op = rules.Structural(lw.name_of(fx), "slice", lambda xs: xs[0][index])
    return lw.mark(lw.add(fx, op, [x]))


def _reduce_nlc(kind, reduce):
    """mean or sum over given axes other than the batch."""

    def channels_last(lw, fx, lower, args, kwargs):
        if not lw.is_channels_last(args[0] if args else None) or len(args) <= 1:
            return None
        x, dims = args[0], args[1]
        keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
        dims = [d % 3 for d in (dims if isinstance(dims, (list, tuple)) else [dims])]
        if 0 in dims:
            return None
        axes = tuple(_SWAP[d] for d in dims)
        op = rules.Structural(lw.name_of(fx), kind, lambda xs: reduce(xs[0], axis=axes, keepdims=keepdim))
        # dropping one of the two swapped axes leaves the other where the module has it
        return lw.mark(lw.add(fx, op, [x]), channels_last=keepdim)

    return channels_last


def _cat_nlc(lw, fx, lower, args, kwargs):
    tensors, dim = args[0], (args[1] if len(args) > 1 else 0)
    if not any(lw.is_channels_last(t) for t in tensors):
        return None
    if not all(lw.is_channels_last(t) for t in tensors) or lw.rank(fx) != 3 or dim % 3 == 0:
        return None
    axis = _SWAP[dim % 3]
    op = rules.Structural(lw.name_of(fx), "cat", lambda xs: ops.concatenate(list(xs), axis=axis))
    return lw.mark(lw.add(fx, op, tensors))


def _scalar(value) -> bool:
    if isinstance(value, (int, float)):
        return True
    return _is_const(value) and value.tensor.numel() == 1


# ---------------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Row:
    """How one ATen operator is lowered: ``lower(lw, fx, *args, **kwargs)`` with its activations in the module's
    layout, and ``channels_last`` (None: never) with them kept channels last (see the section above)."""

    lower: Callable
    channels_last: Callable | None = None


ATEN: dict[object, Row] = {
    aten.full_like.default: Row(_full_like),
    aten.zeros_like.default: Row(_zeros_like),
    aten.convolution.default: Row(_convolution, _convolution_nlc),
    aten.addmm.default: Row(_addmm),
    aten.mm.default: Row(_matmul("mm")),
    aten.bmm.default: Row(_matmul("bmm")),
    aten.matmul.default: Row(_matmul("matmul")),
    aten.relu.default: Row(_elementwise("relu", lambda: keras.activations.relu), _pointwise_nlc),
    aten.gelu.default: Row(_elementwise("gelu", _gelu), _pointwise_nlc),
    aten.sigmoid.default: Row(_elementwise("sigmoid", lambda: keras.activations.sigmoid), _pointwise_nlc),
    aten.tanh.default: Row(_elementwise("tanh", lambda: keras.activations.tanh), _pointwise_nlc),
    aten.softplus.default: Row(_elementwise("softplus", _softplus), _pointwise_nlc),
    aten.elu.default: Row(_elementwise("elu", _elu), _pointwise_nlc),
    aten.silu.default: Row(_elementwise("silu", lambda: keras.activations.silu), _pointwise_nlc),
    aten.leaky_relu.default: Row(_elementwise("leaky_relu", _leaky), _pointwise_nlc),
    aten.hardtanh.default: Row(_elementwise("hardtanh", _hardtanh), _pointwise_nlc),
    aten.exp.default: Row(_elementwise("exp", lambda: ops.exp), _pointwise_nlc),
    aten.log.default: Row(_elementwise("log", lambda: ops.log), _pointwise_nlc),
    aten.log1p.default: Row(_elementwise("log1p", lambda: ops.log1p), _pointwise_nlc),
    aten.sqrt.default: Row(_elementwise("sqrt", lambda: ops.sqrt), _pointwise_nlc),
    aten.rsqrt.default: Row(_elementwise("rsqrt", lambda: ops.rsqrt), _pointwise_nlc),
    aten.pow.Tensor_Scalar: Row(_elementwise("pow", _pow), _pointwise_nlc),
    aten.max_pool2d_with_indices.default: Row(_max_pool),
    aten.avg_pool2d.default: Row(_avg_pool),
    aten.avg_pool1d.default: Row(_avg_pool),
    aten._native_batch_norm_legit_no_training.default: Row(_batch_norm, _batch_norm_nlc),
    aten.native_layer_norm.default: Row(_layer_norm),
    aten._softmax.default: Row(_softmax),
    aten._safe_softmax.default: Row(_softmax),  # 0 for rows entirely -inf (masked): none without a mask
    aten._log_softmax.default: Row(_log_softmax),
    aten.logsumexp.default: Row(_logsumexp),
    aten.add.Tensor: Row(_binary("add"), _binary_nlc),
    aten.sub.Tensor: Row(_binary("sub"), _binary_nlc),
    aten.mul.Tensor: Row(_binary("mul"), _binary_nlc),
    aten.div.Tensor: Row(_binary("div"), _binary_nlc),
    aten.add.Scalar: Row(_binary("add"), _binary_nlc),
    aten.sub.Scalar: Row(_binary("sub"), _binary_nlc),
    aten.mul.Scalar: Row(_binary("mul"), _binary_nlc),
    aten.div.Scalar: Row(_binary("div"), _binary_nlc),
    aten.neg.default: Row(_neg, _pointwise_nlc),
    aten.cat.default: Row(_cat, _cat_nlc),
    aten.constant_pad_nd.default: Row(_pad),
    aten.slice.Tensor: Row(_structural("slice", _slice), _slice_nlc),
    aten.select.int: Row(_structural("select", _select)),
    aten.view.default: Row(_structural("view", _view)),
    aten._unsafe_view.default: Row(_structural("view", _view)),
    aten.reshape.default: Row(_structural("reshape", _view)),
    aten.expand.default: Row(_structural("expand", _expand)),
    aten.permute.default: Row(_structural("permute", _permute)),
    aten.squeeze.dims: Row(_structural("squeeze", _squeeze)),
    aten.squeeze.dim: Row(_structural("squeeze", _squeeze)),
    aten.squeeze.default: Row(_structural("squeeze", _squeeze)),
    aten.unsqueeze.default: Row(_structural("unsqueeze", _unsqueeze)),
    aten.flip.default: Row(_structural("flip", _flip)),
    aten.clone.default: Row(_structural("clone", _identity), _pointwise_nlc),
    aten.alias.default: Row(_structural("alias", _identity), _pointwise_nlc),
    aten._to_copy.default: Row(_structural("to", _identity), _pointwise_nlc),
    aten.dropout.default: Row(_structural("dropout", _identity), _pointwise_nlc),
    aten.mean.dim: Row(_structural("mean", _mean), _reduce_nlc("mean", ops.mean)),
    aten.mean.default: Row(_structural("mean", _mean), _reduce_nlc("mean", ops.mean)),
    aten.sum.dim_IntList: Row(_structural("sum", _sum), _reduce_nlc("sum", ops.sum)),
    aten.sum.default: Row(_structural("sum", _sum), _reduce_nlc("sum", ops.sum)),
}
