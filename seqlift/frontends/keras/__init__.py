"""The Keras front end: Keras 3 models (and Keras 2 files) lowered to seqlift's graph.

``models`` reads every form a Keras model comes in, ``compat`` translates Keras 2 files,
``lowering`` turns the layers into primitive operations with their weights as plain arrays, and
``custom_layers`` lets users lower their own layers (``seqlift.register_layer``).
"""

from __future__ import annotations

from ... import backend  # noqa: F401  (first: loads Keras quietly)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ...errors import SeqliftError  # noqa: E402
from .lowering import build_graph  # noqa: E402
from .models import load_model  # noqa: E402


def is_model(obj) -> bool:
    return isinstance(obj, keras.Model)


def load(model, weights=None, custom_objects=None, allow_pickle=False) -> keras.Model:
    """A checked ``keras.Model`` (``models.load_model``); ``allow_pickle`` does not apply to Keras files."""
    return load_model(model, weights, custom_objects)


def weights(model):
    """The model's variables as ``(label, bytes)``: path, shape and dtype, and a uint8 view of the values."""
    from keras import ops

    for variable in model.weights:
        data = np.ascontiguousarray(ops.convert_to_numpy(variable)).reshape(-1).view(np.uint8)
        yield f"{variable.path} {tuple(variable.shape)} {variable.dtype}", data


def lower(model, output=None, input=None, layout=None, **shapes):
    """The model's graph (``lowering.build_graph``). Keras sequence models read ``(N, L, 4)``, and
    declare their input shapes (``shapes``, what a torch model needs to be captured, are not used)."""
    if layout not in (None, "NLC"):
        raise SeqliftError(f"--layout {layout}: Keras models read (N, L, 4) (NLC); --layout applies to torch models")
    return build_graph(model, output, input)
