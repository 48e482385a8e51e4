"""The Keras front end's lowering: a Keras model to seqlift's graph of primitive operations.

``CONVERTERS`` maps a Keras layer class to a function that adds the layer's primitives to the graph,
with the layer's weights read out as plain arrays. Adding a layer means adding a row here and its
test; the engine never names a layer. A layer, activation or operation that is not in the table is
an error at load time naming it. Custom layers add their rows with ``seqlift.register_layer``
(``custom_layers``).
"""

from __future__ import annotations

import math

from ... import backend  # noqa: F401  (first: loads Keras quietly)

import keras  # noqa: E402
from keras import layers as L  # noqa: E402
from keras import ops  # noqa: E402

from ... import rules  # noqa: E402
from ...errors import SeqliftError  # noqa: E402
from ...graph import Graph, keep_ancestors, strip_final_activation  # noqa: E402
from .. import choose  # noqa: E402

# Elementwise activations, by the name Keras gives the function. Rescale and RevealCancel apply
# to any elementwise nonlinearity (Shrikumar et al. 2017, §3.5).
ELEMENTWISE_ACTIVATIONS = {
    "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "swish", "mish",
    "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid", "tanh", "softplus",
    "softsign", "exponential",
}


def _array(value):
    """A layer's weight as a plain tensor (not the layer's variable), or None."""
    return None if value is None else ops.convert_to_tensor(ops.convert_to_numpy(value))


def _kind(layer) -> str:
    return type(layer).__name__


def _activation_name(fn) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return name


def _add_activation(graph, layer, fn, node_id):
    name = _activation_name(fn)
    if name == "linear":
        return node_id
    source = type(layer)
    if name == "softmax":
        return graph.add(rules.Softmax(layer.name, _kind(layer)), [node_id], source)
    if name not in ELEMENTWISE_ACTIVATIONS:
        raise SeqliftError(
            f"activation '{name}' of layer '{layer.name}' ({source.__name__}) is not supported; "
            f"supported: {', '.join(sorted(ELEMENTWISE_ACTIVATIONS | {'linear', 'softmax'}))}"
        )
    return graph.add(rules.Elementwise(layer.name, _kind(layer), fn, name), [node_id], source)


def _channels_last(layer):
    fmt = getattr(layer, "data_format", "channels_last")
    if fmt != "channels_last":
        raise SeqliftError(
            f"layer '{layer.name}' ({type(layer).__name__}) uses data_format='{fmt}'; "
            "only channels_last (length, channels) sequence models are supported"
        )


def _weighted(make_op):
    def convert(graph, layer, ids, shapes):
        _channels_last(layer)
        if getattr(layer, "quantization_mode", None):
            raise SeqliftError(f"layer '{layer.name}' is quantized; explain the float model instead")
        node = graph.add(make_op(layer), ids, type(layer))
        return _add_activation(graph, layer, layer.activation, node)

    return convert


def _bias(layer):
    return _array(layer.bias) if getattr(layer, "use_bias", True) and layer.bias is not None else None


def _dense_op(layer):
    return rules.Dense(layer.name, _kind(layer), _array(layer.kernel), _bias(layer))


def _conv_op(layer):
    return rules.Conv1D(layer.name, _kind(layer), _array(layer.kernel), _bias(layer), strides=list(layer.strides),
                        dilation=layer.dilation_rate, padding=layer.padding, groups=getattr(layer, "groups", 1))


def _einsum_dense_op(layer):
    return rules.EinsumDense(layer.name, _kind(layer), _array(layer.kernel), _array(layer.bias), layer.equation)


def _activation_layer(graph, layer, ids, shapes):
    return _add_activation(graph, layer, layer.activation, ids[0])


def _elementwise_layer(name, activation):
    """An activation layer as a plain function of its parameters (``activation(layer)`` builds it)."""
    def convert(graph, layer, ids, shapes):
        return graph.add(rules.Elementwise(layer.name, _kind(layer), activation(layer), name), ids, type(layer))

    return convert


def _relu(layer):
    negative_slope, max_value, threshold = layer.negative_slope, layer.max_value, layer.threshold
    return lambda x: keras.activations.relu(x, negative_slope=negative_slope, max_value=max_value,
                                            threshold=threshold)


def _leaky_relu(layer):
    negative_slope = layer.negative_slope
    return lambda x: keras.activations.leaky_relu(x, negative_slope=negative_slope)


def _prelu(layer):
    alpha = _array(layer.alpha)
    return lambda x: keras.activations.relu(x) + -alpha * keras.activations.relu(-x)


def _elu(layer):
    alpha = layer.alpha
    return lambda x: keras.activations.elu(x, alpha=alpha)


def _softmax_layer(graph, layer, ids, shapes):
    axis = layer.axis if isinstance(layer.axis, int) else tuple(layer.axis)
    return graph.add(rules.Softmax(layer.name, _kind(layer), axis), ids, type(layer))


def _structural(make_fn):
    """A weight-free layer as a function of its inputs: ``make_fn(layer, shapes)`` reads its settings."""
    def convert(graph, layer, ids, shapes):
        _channels_last(layer)
        return graph.add(rules.Structural(layer.name, _kind(layer), make_fn(layer, shapes)), ids, type(layer))

    return convert


def _flatten(layer, shapes):
    size = math.prod(shapes[0][1:])
    return lambda xs: ops.reshape(xs[0], (-1, size))


def _reshape(layer, shapes):
    target = tuple(layer.target_shape)
    if -1 in target:  # resolved from the input's shape: the batch is the only unknown left
        known = math.prod(s for s in target if s != -1)
        target = tuple(math.prod(shapes[0][1:]) // known if s == -1 else s for s in target)
    return lambda xs: ops.reshape(xs[0], (-1,) + target)


def _permute(layer, shapes):
    perm = (0,) + tuple(layer.dims)
    return lambda xs: ops.transpose(xs[0], perm)


def _cropping(layer, shapes):
    start, end = layer.cropping
    return lambda xs: xs[0][:, start:xs[0].shape[1] - end]


def _zero_padding(layer, shapes):
    padding = tuple(layer.padding)
    return lambda xs: ops.pad(xs[0], [(0, 0), padding, (0, 0)])


def _upsampling(layer, shapes):
    size = layer.size
    return lambda xs: ops.repeat(xs[0], size, axis=1)


def _average_pooling(layer, shapes):
    pool, strides, padding = layer.pool_size, layer.strides, layer.padding
    return lambda xs: ops.average_pool(xs[0], pool_size=pool, strides=strides, padding=padding,
                                       data_format="channels_last")


def _global_average_pooling(layer, shapes):
    keepdims = layer.keepdims
    return lambda xs: ops.mean(xs[0], axis=1, keepdims=keepdims)


def _add(layer, shapes):
    def fn(xs):
        y = xs[0]
        for x in xs[1:]:
            y = ops.add(y, x)
        return y

    return fn


def _average(layer, shapes):
    add = _add(layer, shapes)
    return lambda xs: ops.divide(add(xs), len(xs))


def _concatenate(layer, shapes):
    axis = layer.axis
    return lambda xs: ops.concatenate(list(xs), axis=axis)


def _identity(layer, shapes):
    return lambda xs: xs[0]


def _max_pooling(graph, layer, ids, shapes):
    _channels_last(layer)
    op = rules.MaxPool(layer.name, _kind(layer), layer.pool_size[0], layer.strides[0], layer.padding)
    return graph.add(op, ids, type(layer))


def _global_max_pooling(graph, layer, ids, shapes):
    _channels_last(layer)
    op = rules.MaxPool(layer.name, _kind(layer), None, None, "valid", keepdims=layer.keepdims)
    return graph.add(op, ids, type(layer))


def _batch_norm(graph, layer, ids, shapes):
    op = rules.BatchNorm(layer.name, _kind(layer), len(shapes[0]), layer.axis, _array(layer.moving_mean),
                         _array(layer.moving_variance), _array(layer.gamma) if layer.scale else None,
                         _array(layer.beta) if layer.center else None, layer.epsilon)
    return graph.add(op, ids, type(layer))


def _subtract(graph, layer, ids, shapes):
    return graph.add(rules.Subtract(layer.name, _kind(layer)), ids, type(layer))


def _multiply(graph, layer, ids, shapes):
    return graph.add(rules.Multiply(layer.name, _kind(layer)), ids, type(layer))


def _layer_norm(graph, layer, ids, shapes):
    if getattr(layer, "rms_scaling", False):
        raise SeqliftError(f"layer '{layer.name}' (LayerNormalization) uses the deprecated rms_scaling=True; "
                           "use RMSNormalization instead")
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    op = rules.LayerNorm(layer.name, _kind(layer), len(shapes[0]), axes, layer.epsilon,
                         _array(layer.gamma) if layer.scale else None, _array(layer.beta) if layer.center else None)
    return graph.add(op, ids, type(layer))


def _rms_norm(graph, layer, ids, shapes):
    op = rules.LayerNorm(layer.name, _kind(layer), len(shapes[0]), layer.axis, layer.epsilon, _array(layer.scale),
                         None, center=False)
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

    kind = _kind(layer)

    def dense(sub, parent):
        return _add_activation(graph, sub, sub.activation, graph.add(_einsum_dense_op(sub), [parent], source))

    query, key, value = (dense(getattr(layer, f"_{r}_dense"), roles[r]) for r in ("query", "key", "value"))
    scale, dot, combine = layer._inverse_sqrt_key_dim, layer._dot_product_equation, layer._combine_equation
    scores = graph.add(rules.Bilinear(f"{layer.name}/scores", kind, lambda k, q: ops.einsum(dot, k, q * scale)),
                       [key, query], source)
    weights = graph.add(rules.Softmax(f"{layer.name}/softmax", kind, tuple(layer._softmax.axis)), [scores], source)
    out = graph.add(rules.Bilinear(f"{layer.name}/combine", kind, lambda w, v: ops.einsum(combine, w, v)),
                    [weights, value], source)
    if layer._use_gate:
        gate = dense(layer._gate_dense, roles["query"])
        out = graph.add(rules.Multiply(f"{layer.name}/gate", kind), [out, gate], source)
    return dense(layer._output_dense, out)


_IDENTITY_AT_INFERENCE = [
    "Dropout", "SpatialDropout1D", "GaussianDropout", "GaussianNoise", "AlphaDropout",
    "ActivityRegularization", "Identity",
]

CONVERTERS = {
    L.Conv1D: _weighted(_conv_op),
    L.Dense: _weighted(_dense_op),
    L.Activation: _activation_layer,
    L.ReLU: _elementwise_layer("relu", _relu),
    L.LeakyReLU: _elementwise_layer("leaky_relu", _leaky_relu),
    L.PReLU: _elementwise_layer("prelu", _prelu),
    L.ELU: _elementwise_layer("elu", _elu),
    L.Softmax: _softmax_layer,
    L.MaxPooling1D: _max_pooling,
    L.GlobalMaxPooling1D: _global_max_pooling,
    L.AveragePooling1D: _structural(_average_pooling),
    L.GlobalAveragePooling1D: _structural(_global_average_pooling),
    L.BatchNormalization: _batch_norm,
    L.Flatten: _structural(_flatten),
    L.Reshape: _structural(_reshape),
    L.Permute: _structural(_permute),
    L.Cropping1D: _structural(_cropping),
    L.ZeroPadding1D: _structural(_zero_padding),
    L.UpSampling1D: _structural(_upsampling),
    L.Add: _structural(_add),
    L.Average: _structural(_average),
    L.Concatenate: _structural(_concatenate),
    L.Subtract: _subtract,
    L.Multiply: _multiply,
    L.EinsumDense: _weighted(_einsum_dense_op),
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
    graph = Graph(input_shape=tuple(model.inputs[explained].shape[1:]), frontend="keras")
    graph.add(rules.Input("input", "Input"), [])
    outs = _inline(graph, model, _input_nodes(graph, model, explained))
    keep_ancestors(graph, outs[chosen])
    out_tensor = model.outputs[chosen]
    strip_final_activation(graph, len(out_tensor.shape))
    size = 1
    for s in out_tensor.shape[1:]:
        size *= s
    graph.output_size = size
    graph.output_shape = tuple(out_tensor.shape[1:])
    names = _output_names(model)
    graph.output_name = names[chosen] if len(names) > 1 else ""
    return graph


def _input_names(model) -> list[str]:
    return [t._keras_history.operation.name for t in model.inputs]


def _choose_input(model, input) -> int:
    """The explained input: as asked, the only one, or the only one with 4 channels (one-hot DNA)."""
    names = _input_names(model)
    if input is not None or len(names) == 1:
        return choose(names, 0 if input is None else input, "input", f"model '{model.name}'")
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
        op = rules.FixedInput(names[i], shape, offset, lambda: graph.fixed_values)
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
    return choose(names, output, "output", f"model '{model.name}'")


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
