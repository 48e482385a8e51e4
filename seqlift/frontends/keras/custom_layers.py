"""Custom Keras layers: ``register_layer`` teaches seqlift to lower one to its primitive operations.

seqlift explains a model by lowering each layer to primitive operations whose DeepLIFT rules it
knows (``lowering.CONVERTERS``). A custom layer is lowered by a converter that builds it out of
standard layers (Conv1D, Dense, activations, pooling, merges, ...), each of which keeps its rule.
See the README for a worked example (a reverse-complement-equivariant convolution).
"""

from __future__ import annotations

import keras
import numpy as np

from . import lowering as graph_mod
from ...errors import SeqliftError


class Lowering:
    """What a converter gets: helpers that add seqlift's operations for one custom layer.

    Tensors are named by node ids: ``inputs`` (the custom layer's inputs, in call order) and the
    value every helper returns. ``shape(node)``: a node's shape, ``(None, ...)`` with the batch first.
    """

    def __init__(self, graph, layer, inputs, shapes):
        self.graph, self.layer, self.inputs = graph, layer, list(inputs)
        self._shapes = {i: tuple(s) for i, s in zip(self.inputs, shapes)}
        self._count = 0

    def shape(self, node: int) -> tuple:
        return self._shapes[node]

    def apply(self, keras_layer, inputs) -> int:
        """Lower a standard Keras layer called on node(s) ``inputs``; built here if it is not yet."""
        ids = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        shapes = [self._shapes[i] for i in ids]
        arg = shapes[0] if len(shapes) == 1 else shapes
        if not keras_layer.built:
            keras_layer.build(arg)
        convert = graph_mod.converter_for(keras_layer)
        if convert is None:
            raise SeqliftError(f"the converter of layer '{self.layer.name}' ({type(self.layer).__name__}) uses "
                               f"{type(keras_layer).__name__}, which seqlift cannot lower")
        out = convert(self.graph, keras_layer, ids, shapes)
        self._shapes[out] = tuple(keras_layer.compute_output_shape(arg))
        return out

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{self.layer.name}_{kind}{self._count}"

    def conv1d(self, x: int, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, activation=None) -> int:
        """A Conv1D with ``kernel`` ``(K, C_in, C_out)`` and ``bias`` ``(C_out,)`` (or None) on node ``x``."""
        kernel = np.asarray(keras.ops.convert_to_numpy(kernel), np.float32)
        conv = keras.layers.Conv1D(kernel.shape[-1], kernel.shape[0], strides=strides, padding=padding,
                                   dilation_rate=dilation_rate, activation=activation, use_bias=bias is not None,
                                   name=self._name("conv1d"))
        return self._weighted(conv, x, kernel, bias)

    def dense(self, x: int, kernel, bias=None, activation=None) -> int:
        """A Dense layer with ``kernel`` ``(C_in, C_out)`` and ``bias`` ``(C_out,)`` (or None) on node ``x``."""
        kernel = np.asarray(keras.ops.convert_to_numpy(kernel), np.float32)
        layer = keras.layers.Dense(kernel.shape[-1], activation=activation, use_bias=bias is not None,
                                   name=self._name("dense"))
        return self._weighted(layer, x, kernel, bias)

    def activation(self, x: int, activation) -> int:
        """An elementwise activation (a name such as 'relu', or a Keras activation function) on node ``x``."""
        return self.apply(keras.layers.Activation(activation, name=self._name("activation")), x)

    def _weighted(self, layer, x, kernel, bias) -> int:
        layer.build(self._shapes[x])
        layer.kernel.assign(kernel)
        if bias is not None:
            layer.bias.assign(np.asarray(keras.ops.convert_to_numpy(bias), np.float32))
        return self.apply(layer, x)


def register_layer(layer_class, converter) -> None:
    """Explain models containing ``layer_class`` by lowering it with ``converter``.

    ``converter(lower, layer, inputs) -> node``: ``lower`` is a ``Lowering`` (its helpers ``conv1d``,
    ``dense``, ``activation`` and ``apply(keras_layer, nodes)`` add standard operations, each with its
    DeepLIFT rule), ``layer`` the instance in the model (read its weights there), ``inputs`` the node
    ids of its inputs; it returns the node id of the layer's output (a list for several outputs).
    The converter must compute exactly what the layer's ``call`` does. Registering a class again
    replaces its converter; subclasses of ``layer_class`` use it too.
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise SeqliftError(f"register_layer: {layer_class!r} is not a Keras layer class")
    if not callable(converter):
        raise SeqliftError(f"register_layer: the converter for {layer_class.__name__} is not callable")

    def convert(graph, layer, ids, shapes):
        return converter(Lowering(graph, layer, ids, shapes), layer, list(ids))

    graph_mod.CONVERTERS[layer_class] = convert
