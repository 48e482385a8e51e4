"""Lowering a Keras model to a graph of primitive operations that the DeepLIFT rules understand.

``CONVERTERS`` maps a Keras layer class to a function that adds the layer's primitives to the graph.
Adding a layer means adding a row here and its test; the engine never names a layer. A layer,
activation or operation that is not in the table is an error at load time naming it. Custom
layers add their rows with ``seqlift.register_layer`` (``custom_layers``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from . import backend  # noqa: F401  (first: loads Keras quietly)

import keras  # noqa: E402
from keras import layers as L  # noqa: E402
from keras import ops  # noqa: E402

from . import rules  # noqa: E402
from .errors import SeqliftError
from .methods import GENOMICS, RESCALE, REVEAL_CANCEL, RULES

# Elementwise activations, by the name Keras gives the function. Rescale and RevealCancel apply
# to any elementwise nonlinearity (Shrikumar et al. 2017, §3.5).
ELEMENTWISE_ACTIVATIONS = {
    "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "swish", "mish",
    "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid", "tanh", "softplus",
    "softsign", "exponential",
}
# Each of ``methods.RULES`` as a table from Keras layer class to rule ('*': every other layer).
RULE_PRESETS = {
    RESCALE: {},
    REVEAL_CANCEL: {"*": REVEAL_CANCEL},
    # "DeepLIFT-fc-RC-conv-RS" (Shrikumar et al. 2017, §4.2): RevealCancel after dense layers.
    GENOMICS: {L.Dense: REVEAL_CANCEL},
}
# The rules a nonlinearity can have (a preset is a choice of one per layer kind).
NODE_RULES = (RESCALE, REVEAL_CANCEL)


@dataclass
class Node:
    op: rules.Op
    inputs: list[int]
    rule: str = RESCALE  # for nonlinear ops: how their multipliers are computed
    source: type | None = None  # class of the Keras layer that holds this op (for per-layer rule choice)


@dataclass
class Graph:
    """Primitive ops in topological order; node 0 is the model's input."""

    nodes: list[Node] = field(default_factory=list)
    output: int = 0
    final_activation: str | None = None  # 'sigmoid' or 'softmax' removed from the end
    input_shape: tuple = ()
    output_size: int = 0
    output_shape: tuple = ()  # the explained output's shape without the batch axis, e.g. (L, 2) for a profile head
    normalized: list[str] = field(default_factory=list)
    input_name: str = ""  # the model input node 0 stands for: the one-hot sequence
    fixed_inputs: list[tuple[str, tuple]] = field(default_factory=list)  # every other input: (name, shape)
    fixed_values: object = None  # their packed values (b, E) while a compiled step runs (rules.FixedInput)

    def add(self, op, inputs, source: type | None = None):
        self.nodes.append(Node(op, list(inputs), source=source))
        return len(self.nodes) - 1


def _activation_name(fn) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return name


def _add_activation(graph, layer, fn, node_id):
    name = _activation_name(fn)
    if name == "linear":
        return node_id
    source = type(layer)
    if name == "softmax":
        return graph.add(rules.Softmax(layer), [node_id], source)
    if name not in ELEMENTWISE_ACTIVATIONS:
        raise SeqliftError(
            f"activation '{name}' of layer '{layer.name}' ({source.__name__}) is not supported; "
            f"supported: {', '.join(sorted(ELEMENTWISE_ACTIVATIONS | {'linear', 'softmax'}))}"
        )
    return graph.add(rules.Elementwise(layer, fn, name), [node_id], source)


def _channels_last(layer):
    fmt = getattr(layer, "data_format", "channels_last")
    if fmt != "channels_last":
        raise SeqliftError(
            f"layer '{layer.name}' ({type(layer).__name__}) uses data_format='{fmt}'; "
            "only channels_last (length, channels) sequence models are supported"
        )


def _weighted(op_class):
    def convert(graph, layer, ids, shapes):
        _channels_last(layer)
        if getattr(layer, "quantization_mode", None):
            raise SeqliftError(f"layer '{layer.name}' is quantized; explain the float model instead")
        node = graph.add(op_class(layer), ids, type(layer))
        return _add_activation(graph, layer, layer.activation, node)

    return convert


def _activation_layer(graph, layer, ids, shapes):
    return _add_activation(graph, layer, layer.activation, ids[0])


def _elementwise_layer(name):
    def convert(graph, layer, ids, shapes):
        return graph.add(rules.Elementwise(layer, layer.call, name), ids, type(layer))

    return convert


def _softmax_layer(graph, layer, ids, shapes):
    axis = layer.axis if isinstance(layer.axis, int) else tuple(layer.axis)
    return graph.add(rules.Softmax(layer, axis), ids, type(layer))


def _structural(fn):
    def convert(graph, layer, ids, shapes):
        _channels_last(layer)
        return graph.add(rules.Structural(layer, lambda xs: fn(layer, xs)), ids, type(layer))

    return convert


def _single(layer, xs):
    return layer.call(xs[0])


def _merge(layer, xs):
    return layer.call(list(xs))


def _identity(layer, xs):
    return xs[0]


def _max_pooling(graph, layer, ids, shapes):
    _channels_last(layer)
    op = rules.MaxPool(layer, layer.pool_size[0], layer.strides[0], layer.padding)
    return graph.add(op, ids, type(layer))


def _global_max_pooling(graph, layer, ids, shapes):
    _channels_last(layer)
    op = rules.MaxPool(layer, None, None, "valid", keepdims=layer.keepdims)
    return graph.add(op, ids, type(layer))


def _batch_norm(graph, layer, ids, shapes):
    return graph.add(rules.BatchNorm(layer, len(shapes[0])), ids, type(layer))


def _subtract(graph, layer, ids, shapes):
    return graph.add(rules.Subtract(layer), ids, type(layer))


def _multiply(graph, layer, ids, shapes):
    return graph.add(rules.Multiply(layer), ids, type(layer))


def _layer_norm(graph, layer, ids, shapes):
    if getattr(layer, "rms_scaling", False):
        raise SeqliftError(f"layer '{layer.name}' (LayerNormalization) uses the deprecated rms_scaling=True; "
                           "use RMSNormalization instead")
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    op = rules.LayerNorm(layer, len(shapes[0]), axes, layer.epsilon, layer.gamma if layer.scale else None,
                         layer.beta if layer.center else None)
    return graph.add(op, ids, type(layer))


def _rms_norm(graph, layer, ids, shapes):
    op = rules.LayerNorm(layer, len(shapes[0]), layer.axis, layer.epsilon, layer.scale, None, center=False)
    return graph.add(op, ids, type(layer))


def _call_roles(layer):
    """Which of the layer's input tensors are ``query``, ``value`` and ``key`` (indices into them)."""
    nodes = layer._inbound_nodes
    if len(nodes) != 1:
        raise SeqliftError(f"layer '{layer.name}' (MultiHeadAttention) is called {len(nodes)} times; "
                           "seqlift explains attention layers called once")
    node = nodes[0]
    bound = dict(zip(("query", "value", "key"), node.arguments.args))
    bound.update(node.arguments.kwargs)
    unsupported = [k for k in ("attention_mask", "query_mask", "value_mask", "key_mask", "use_causal_mask",
                               "return_attention_scores") if bound.get(k) not in (None, False)]
    if layer._sliding_window is not None:
        unsupported.append("sliding_window")
    if unsupported:
        raise SeqliftError(f"layer '{layer.name}' (MultiHeadAttention) uses {', '.join(unsupported)}; "
                           "seqlift explains unmasked attention")
    if bound.get("key") is None:
        bound["key"] = bound["value"]
    tensors = [id(t) for t in node.input_tensors]
    return {role: tensors.index(id(bound[role])) for role in ("query", "value", "key")}


def _multi_head_attention(graph, layer, ids, shapes):
    """Projections (linear), scores = key · query/√d (product rule), softmax over the keys, weights ·
    value (product rule), an optional sigmoid gate (product), the output projection (linear)."""
    roles = {role: ids[i] for role, i in _call_roles(layer).items()}
    source = type(layer)

    def dense(sub, parent):
        return _add_activation(graph, sub, sub.activation, graph.add(rules.EinsumDense(sub), [parent], source))

    query, key, value = (dense(getattr(layer, f"_{r}_dense"), roles[r]) for r in ("query", "key", "value"))
    scale, dot, combine = layer._inverse_sqrt_key_dim, layer._dot_product_equation, layer._combine_equation
    scores = graph.add(rules.Bilinear(layer, lambda k, q: ops.einsum(dot, k, q * scale), f"{layer.name}/scores"),
                       [key, query], source)
    weights = graph.add(rules.Softmax(layer, tuple(layer._softmax.axis), f"{layer.name}/softmax"), [scores], source)
    out = graph.add(rules.Bilinear(layer, lambda w, v: ops.einsum(combine, w, v), f"{layer.name}/combine"),
                    [weights, value], source)
    if layer._use_gate:
        gate = dense(layer._gate_dense, roles["query"])
        out = graph.add(rules.Multiply(layer, f"{layer.name}/gate"), [out, gate], source)
    return dense(layer._output_dense, out)


_IDENTITY_AT_INFERENCE = [
    "Dropout", "SpatialDropout1D", "GaussianDropout", "GaussianNoise", "AlphaDropout",
    "ActivityRegularization", "Identity",
]

CONVERTERS = {
    L.Conv1D: _weighted(rules.Conv1D),
    L.Dense: _weighted(rules.Dense),
    L.Activation: _activation_layer,
    L.ReLU: _elementwise_layer("relu"),
    L.LeakyReLU: _elementwise_layer("leaky_relu"),
    L.PReLU: _elementwise_layer("prelu"),
    L.ELU: _elementwise_layer("elu"),
    L.Softmax: _softmax_layer,
    L.MaxPooling1D: _max_pooling,
    L.GlobalMaxPooling1D: _global_max_pooling,
    L.AveragePooling1D: _structural(_single),
    L.GlobalAveragePooling1D: _structural(_single),
    L.BatchNormalization: _batch_norm,
    L.Flatten: _structural(_single),
    L.Reshape: _structural(_single),
    L.Permute: _structural(_single),
    L.Cropping1D: _structural(_single),
    L.ZeroPadding1D: _structural(_single),
    L.UpSampling1D: _structural(_single),
    L.Add: _structural(_merge),
    L.Average: _structural(_merge),
    L.Concatenate: _structural(_merge),
    L.Subtract: _subtract,
    L.Multiply: _multiply,
    L.EinsumDense: _weighted(rules.EinsumDense),
    L.LayerNormalization: _layer_norm,
    L.RMSNormalization: _rms_norm,
    L.MultiHeadAttention: _multi_head_attention,
    **{getattr(L, name): _structural(_identity) for name in _IDENTITY_AT_INFERENCE if hasattr(L, name)},
}


def converter_for(layer):
    # Exact class first, then base classes (a user's subclass of Dense is still a Dense, unless it
    # computes something else: a custom call needs its own converter, seqlift.register_layer).
    kind = type(layer)
    for cls in kind.__mro__:
        if cls in CONVERTERS:
            custom_call = cls is not kind and not kind.__module__.startswith("keras") and kind.call is not cls.call
            return None if custom_call else CONVERTERS[cls]
    return None


def build_graph(model: keras.Model, output=None, input=None) -> Graph:
    """Lower ``model`` to primitive ops; raises ``SeqliftError`` naming any unsupported layer.

    output: which model output to explain (index or name), needed when the model has several
    (e.g. a BPNet-style profile head and counts head); only that output's ancestors are kept.
    input: which model input is explained (index or name), needed when the model has several
    and not exactly one of them has 4 channels; every other input is held fixed (``rules.FixedInput``).
    """
    if isinstance(model, keras.Sequential):
        if not model.built or not model.inputs:
            raise SeqliftError("the Sequential model has no input shape; build it with keras.Input first")
    chosen = _choose_output(model, output)
    explained = _choose_input(model, input)
    graph = Graph(input_shape=tuple(model.inputs[explained].shape[1:]))
    graph.add(rules.Op(model, name="input"), [])
    outs = _inline(graph, model, _input_nodes(graph, model, explained))
    _keep_ancestors(graph, outs[chosen])
    out_tensor = model.outputs[chosen]
    _strip_final_activation(graph, len(out_tensor.shape))
    size = 1
    for s in out_tensor.shape[1:]:
        size *= s
    graph.output_size = size
    graph.output_shape = tuple(out_tensor.shape[1:])
    return graph


def _input_names(model) -> list[str]:
    return [t._keras_history.operation.name for t in model.inputs]


def _choose_input(model, input) -> int:
    """The explained input: as asked, the only one, or the only one with 4 channels (one-hot DNA)."""
    names = _input_names(model)
    if input is not None or len(names) == 1:
        return _choose(model, names, 0 if input is None else input, "input")
    four = [i for i, t in enumerate(model.inputs) if len(t.shape) == 3 and t.shape[-1] == 4]
    if len(four) == 1:
        return four[0]
    listed = ", ".join(f"{n} {tuple(t.shape[1:])}" for n, t in zip(names, model.inputs))
    raise SeqliftError(f"model '{model.name}' has {len(names)} inputs ({listed}) and {len(four) or 'none'} of them "
                       "with 4 channels; choose the one-hot sequence input with input= (--input NAME|INDEX)")


def _input_nodes(graph: Graph, model, explained: int) -> list[int]:
    """Node 0 for the explained input; a ``FixedInput`` node for every other one."""
    names, ids, offset = _input_names(model), [], 0
    graph.input_name = names[explained]
    for i, tensor in enumerate(model.inputs):
        if i == explained:
            ids.append(0)
            continue
        shape = tuple(tensor.shape[1:])
        if any(s is None for s in shape):
            raise SeqliftError(f"input '{names[i]}' has shape {shape}: an input held fixed needs a fixed shape")
        op = rules.FixedInput(model, names[i], shape, offset, lambda: graph.fixed_values)
        ids.append(graph.add(op, [0]))
        graph.fixed_inputs.append((names[i], shape))
        offset += op.size
    return ids


def _output_names(model) -> list[str]:
    return [t._keras_history.operation.name for t in model.outputs]


def _choose_output(model, output) -> int:
    names = _output_names(model)
    if output is None:
        if len(names) > 1:
            raise SeqliftError(f"model '{model.name}' has {len(names)} outputs ({', '.join(names)}); "
                               "choose one with output= (--output)")
        return 0
    return _choose(model, names, output, "output")


def _choose(model, names: list[str], value, kind: str) -> int:
    """The index of a model input or output given by name or index (``kind``: 'input' or 'output')."""
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        if value not in names:
            raise SeqliftError(f"model '{model.name}' has no {kind} '{value}' ({kind}s: {', '.join(names)})")
        return names.index(value)
    index = int(value)
    if not 0 <= index < len(names):
        raise SeqliftError(f"{kind} {index} is out of range: model '{model.name}' has {len(names)} {kind}(s)")
    return index


def _keep_ancestors(graph: Graph, output: int):
    """Drop every node the chosen output does not depend on, keeping topological order."""
    keep, stack = set(), [output]
    while stack:
        i = stack.pop()
        if i not in keep:
            keep.add(i)
            stack.extend(graph.nodes[i].inputs)
    order = sorted(keep)
    remap = {old: new for new, old in enumerate(order)}
    graph.nodes = [graph.nodes[i] for i in order]
    for node in graph.nodes:
        node.inputs = [remap[j] for j in node.inputs]
    graph.output = remap[output]


def _inline(graph: Graph, model: keras.Model, input_ids: list[int]) -> list[int]:
    """Add ``model``'s layers to ``graph`` with its inputs bound to ``input_ids``; returns output ids."""
    functional = getattr(model, "_functional", None) or model
    if not hasattr(functional, "_nodes_by_depth"):
        raise SeqliftError(f"model '{model.name}' ({type(model).__name__}) is a subclassed model; "
                           "seqlift explains Sequential and functional models")
    ids = {id(t): i for t, i in zip(functional.inputs, input_ids)}
    for depth in sorted(functional._nodes_by_depth, reverse=True):
        for node in functional._nodes_by_depth[depth]:
            layer = node.operation
            if isinstance(layer, L.InputLayer):
                continue
            try:
                parents = [ids[id(t)] for t in node.input_tensors]
            except KeyError:
                raise SeqliftError(f"layer '{layer.name}' is not connected to the model's input") from None
            shapes = [tuple(t.shape) for t in node.input_tensors]
            if isinstance(layer, keras.Model):
                outs = _inline(graph, layer, parents)
            else:
                convert = converter_for(layer)
                if convert is None:
                    raise SeqliftError(_unsupported(layer))
                outs = convert(graph, layer, parents, shapes)
                outs = outs if isinstance(outs, list) else [outs]
            for t, i in zip(node.output_tensors, outs):
                ids[id(t)] = i
    return [ids[id(t)] for t in functional.outputs]


def _unsupported(layer) -> str:
    kind = type(layer).__name__
    if isinstance(layer, L.Lambda):
        return (f"layer '{layer.name}' is a Lambda layer, which seqlift cannot explain; rebuild the model without it "
                "(standard layers, or a custom layer registered with seqlift.register_layer) in FILE.py:FUNCTION")
    if not type(layer).__module__.startswith("keras"):
        return (f"layer '{layer.name}' ({kind}) is a custom layer seqlift does not know; lower it to seqlift's "
                "operations with seqlift.register_layer (see the README)")
    return f"layer '{layer.name}' ({kind}) is not supported by DeepLIFT in seqlift; see the README for the supported layers"


def _strip_final_activation(graph: Graph, output_rank: int):
    """Explain the logit: remove a final sigmoid or softmax (Shrikumar et al. 2016, §2.4-2.5)."""
    node = graph.nodes[graph.output]
    op = node.op
    if isinstance(op, rules.Softmax):
        if op.axis not in (-1, output_rank - 1):
            raise SeqliftError(f"{op.describe()}: only a softmax over the last axis is supported")
        graph.final_activation = "softmax"
    elif isinstance(op, rules.Elementwise) and op.fn_name == "sigmoid":
        graph.final_activation = "sigmoid"
    else:
        return
    graph.output = node.inputs[0]
    # Every other node is an ancestor of the output and comes before it in topological order.
    del graph.nodes[graph.output + 1:]


def assign_rules(graph: Graph, rule) -> None:
    """Choose Rescale or RevealCancel for each nonlinearity.

    ``rule``: one of ``methods.RULES`` ('rescale', 'reveal-cancel', 'genomics'), or a dict from Keras
    layer class to rule: the class of the layer holding the activation (or a base class of it), else
    for a standalone activation layer the nearest weighted layer before it; ``'*'`` sets the default.
    """
    if isinstance(rule, str):
        if rule not in RULE_PRESETS:
            raise SeqliftError(f"unknown rule '{rule}'; choose {', '.join(RULES)}")
        table = RULE_PRESETS[rule]
    else:
        table = dict(rule)
    for key, value in table.items():
        if value not in NODE_RULES:
            raise SeqliftError(f"unknown rule '{value}' in the rule table; use {' or '.join(NODE_RULES)}")
        if key != "*" and not isinstance(key, type):
            raise SeqliftError(f"rule table key {key!r}: give a Keras layer class (e.g. keras.layers.Dense), "
                               "or '*' for every other layer")
    default = table.get("*", RESCALE)
    for node in graph.nodes:
        if node.op.linear:
            continue
        if not isinstance(node.op, rules.Elementwise):
            continue  # max pooling and products have one rule each
        node.rule = _rule_of(table, node.source) or _rule_of(table, _weighted_source(graph, node)) or default


def _rule_of(table: dict, layer_class: type | None) -> str | None:
    """The rule ``table`` gives ``layer_class`` or its nearest base class in it (method resolution order)."""
    for cls in layer_class.__mro__ if layer_class is not None else ():
        if cls in table:
            return table[cls]
    return None


def _weighted_source(graph: Graph, node: Node) -> type | None:
    """Class of the nearest weighted layer feeding ``node`` through single-input linear ops."""
    while node.inputs:
        parent = graph.nodes[node.inputs[0]]
        if isinstance(parent.op, rules.Weighted):
            return parent.source
        if not parent.op.linear or len(parent.inputs) != 1:
            return None
        node = parent
    return None


def normalize_first_convolution(graph: Graph) -> list[str]:
    """Mean-normalize every Conv1D or Dense that reads the one-hot input directly.

    Shrikumar et al. 2016, §2.6: on one-hot input each position sums to one, so moving the mean
    weight of each column into the bias leaves predictions unchanged, and an all-zeros input then
    behaves like the average base. Returns the names of the layers normalized.
    """
    names = []
    if len(graph.input_shape) != 2:
        return names  # not a (length, channels) sequence input
    for node in graph.nodes:
        if node.inputs == [0] and isinstance(node.op, rules.Weighted) and node.op.normalizable:
            if getattr(node.op.layer, "groups", 1) != 1:
                warnings.warn(f"{node.op.describe()} is a grouped convolution: its columns do not see one-hot "
                              "rows whole, so it is not mean-normalized", stacklevel=2)
                continue
            node.op.normalize()
            names.append(node.op.name)
    graph.normalized = names
    return names
