"""Keras 2.0–2.2 model files, read by Keras 3: the one place that knows how old Keras wrote them.

- A JSON architecture (``model.to_json()``). Keras 2.0–2.1 write a Sequential's ``"config"`` as a
  *list* of layer configs whose first carries ``batch_input_shape``; 2.2 writes
  ``{"name", "layers"}``. Functional models are ``"class_name": "Model"`` with ``inbound_nodes``
  as tf.keras 2.x still writes them. ``translate_config`` turns both into what tf.keras 2.x
  writes into an ``.h5`` file, and Keras 3 reads that with the loader it uses for such files.
- A weights file (``model.save_weights()``, or the ``model_weights`` group of ``model.save()``):
  root attribute ``layer_names``; one group per layer with attribute ``weight_names``
  (``conv1d_1/kernel:0``, ...) and one dataset per weight at ``layer/weight_name``, in the order
  trainable weights, then non-trainable ones (``load_weights_h5``).

Initializers, regularizers and constraints only matter for training, and Keras 3 names several
of them differently, so they are dropped from every layer's config (custom layers' too: weights are
loaded afterwards).
"""

from __future__ import annotations

import copy
from pathlib import Path

import h5py
import keras
import numpy as np

from ...errors import SeqliftError

_TRAINING_ONLY = ("_initializer", "_regularizer", "_constraint")
# Keras 2 writes the shape a layer was built for into its config (every layer of a tf-keras 2.x Sequential,
# ``input_shape`` on layers given one); Keras 3 takes shapes from InputLayers only and refuses these keys.
_SHAPE_KEYS = ("batch_input_shape", "input_shape", "input_dim", "batch_size")
_RENAMED = {"LeakyReLU": {"alpha": "negative_slope"}}
# Keras 1 spellings: their configs and weight layouts differ; we ask for a Keras 2 re-save instead.
_KERAS1_ARGUMENTS = ("output_dim", "nb_filter", "filter_length", "border_mode", "subsample_length", "init")


def translate_config(config: dict, source: str) -> dict:
    """A Keras 2.0–2.2 model config ``{"class_name", "config"}`` in the form tf.keras 2.x writes.

    source names the file in errors.
    """
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise SeqliftError(f"{source}: not a Keras 2 model architecture (no 'class_name' and 'config'); a file from "
                           "Keras 0.x or 1.x must be loaded in Keras 2 and saved again")
    if str(config.get("keras_version", "2")).startswith("1"):
        raise SeqliftError(f"{source}: written by Keras {config['keras_version']}; seqlift reads Keras 2 and "
                           "later: load it in Keras 2 and save it again")
    return _translate_layer(copy.deepcopy(config), source)


def _translate_layer(layer: dict, source: str) -> dict:
    kind, config = layer["class_name"], layer["config"]
    if kind == "Sequential":
        layers = config if isinstance(config, list) else config.get("layers", [])
        name = "sequential" if isinstance(config, list) else config.get("name", "sequential")
        shape = _batch_shape(layers[0]["config"]) if layers and layers[0]["class_name"] != "InputLayer" else None
        layers = [_translate_layer(sub, source) for sub in layers]
        layer["config"] = {"name": name, "layers": _with_input_layer(layers, shape)}
    elif kind in ("Model", "Functional"):
        config["layers"] = [_translate_layer(sub, source) for sub in config["layers"]]
        _renumber_nested_nodes(config)
    elif kind != "InputLayer":
        _check_keras2(layer, source)
        for key in [k for k in config if k.endswith(_TRAINING_ONLY) or k in _SHAPE_KEYS]:
            del config[key]
        for old, new in _RENAMED.get(kind, {}).items():
            if old in config:
                config[new] = config.pop(old)
        if kind == "BatchNormalization" and isinstance(config.get("axis"), list) and len(config["axis"]) == 1:
            config["axis"] = config["axis"][0]  # tf-keras 2.x writes [2]; Keras 3 takes one axis as an int
    return layer


def _renumber_nested_nodes(config: dict):
    """Keras 2 numbers a nested model's calls from 1: its node 0 joined its own inputs when it was built
    (tf-keras ``_should_skip_first_node``). Keras 3 numbers them from 0, so each reference to such a
    model in ``inbound_nodes``, ``input_layers`` and ``output_layers`` moves down by one."""
    nested = {sub["config"].get("name") for sub in config["layers"] if _skips_first_node(sub)}
    if not nested:
        return

    def renumber(ref):
        if isinstance(ref, list) and len(ref) >= 3 and ref[0] in nested and isinstance(ref[1], int) and ref[1] > 0:
            ref[1] -= 1

    for sub in config["layers"]:
        for node in sub.get("inbound_nodes") or []:
            for ref in node if isinstance(node, list) else []:
                renumber(ref)
    for key in ("input_layers", "output_layers"):
        refs = config.get(key) or []
        for ref in refs if refs and isinstance(refs[0], list) else [refs]:
            renumber(ref)


def _skips_first_node(layer: dict) -> bool:
    """A nested functional model, or a nested Sequential that starts with an InputLayer (tf-keras's rule)."""
    if layer.get("class_name") in ("Model", "Functional"):
        return True
    layers = layer["config"].get("layers") if layer.get("class_name") == "Sequential" else None
    return bool(layers) and layers[0].get("class_name") == "InputLayer"


def _check_keras2(layer: dict, source: str):
    """Keras 1 argument names in a standard layer (a custom layer may use any names)."""
    config = layer["config"]
    if layer["class_name"] == "Merge":  # Keras 1's, still readable by 2.0-2.1; Keras 3 has no such layer
        raise SeqliftError(f"{source}: layer '{config.get('name', '?')}' is the old Merge layer; rebuild the model "
                           "with Concatenate, Add or Multiply in FILE.py:FUNCTION")
    if not hasattr(keras.layers, layer["class_name"]):
        return
    old = [key for key in _KERAS1_ARGUMENTS if key in config]
    if old:
        raise SeqliftError(f"{source}: layer '{config.get('name', '?')}' ({layer['class_name']}) has Keras 1 "
                           f"arguments ({', '.join(old)}); load it in Keras 2 and save it again")


def _batch_shape(config) -> list | None:
    """The batch input shape Keras 2 wrote on a layer (``batch_input_shape``, or ``input_shape`` without the batch)."""
    if not isinstance(config, dict):
        return None
    if config.get("batch_input_shape") is not None:
        return list(config["batch_input_shape"])
    if config.get("input_shape") is not None:
        return [None] + list(config["input_shape"])
    return None


def _with_input_layer(layers: list, shape) -> list:
    """Keras 2.0–2.2 keep a Sequential's input shape on its first layer; Keras 3 needs an InputLayer.

    layers: translated already (their shape keys removed); shape: the first one's ``_batch_shape``.
    """
    if not layers or layers[0]["class_name"] == "InputLayer" or shape is None:
        return layers
    first = layers[0]["config"]
    input_config = {"batch_shape": shape, "dtype": first.get("dtype", "float32"),
                    "name": f"{first.get('name', 'layer')}_input"}
    return [{"class_name": "InputLayer", "config": input_config}] + layers


def model_from_config(config: dict, custom_objects=None) -> keras.Model:
    """Build a translated config with Keras 3's reader of tf.keras 2.x ``.h5`` files (safe mode on)."""
    from keras.src.legacy.saving import saving_options, saving_utils
    from keras.src.saving import serialization_lib

    with saving_options.keras_option_scope(use_legacy_config=True), serialization_lib.SafeModeScope(True):
        return saving_utils.model_from_config(config, custom_objects=custom_objects)


# ---------------------------------------------------------------------------------------- weights
def _names(attrs, key: str) -> list[str]:
    """A list-of-strings attribute; Keras 2 splits long ones into ``key0``, ``key1``, ..."""
    if key in attrs:
        values = list(attrs[key])
    else:
        values, i = [], 0
        while f"{key}{i}" in attrs:
            values += list(attrs[f"{key}{i}"])
            i += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _legacy_weights(layer) -> list:
    """A layer's variables in the order Keras 2 saved them: trainable, then non-trainable."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def is_weights_file(path) -> bool:
    """Whether ``path`` is an HDF5 file of Keras weights (``layer_names`` at its root)."""
    try:
        with h5py.File(path, "r") as f:
            return bool(_names(f.attrs, "layer_names"))
    except OSError:
        return False


def read_weights_h5(path) -> dict[str, list[np.ndarray]]:
    """``{layer name: [weight arrays]}`` from a Keras 2 (or tf.keras, or Keras 3 legacy) HDF5 file."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
            if not _names(group.attrs, "layer_names"):
                raise SeqliftError(f"{path}: holds no Keras 2 weights (no 'layer_names'); give the file "
                                   "model.save_weights() or model.save() wrote (Keras 3's end in .weights.h5)")
            return {name: [np.asarray(group[name][w]) for w in _names(group[name].attrs, "weight_names")]
                    for name in _names(group.attrs, "layer_names")}
    except KeyError as exc:
        raise SeqliftError(f"{path}: a layer or weight it lists is missing ({exc}); the file is damaged") from None
    except OSError as exc:
        raise SeqliftError(f"{path}: not an HDF5 weights file ({exc})") from None


def load_weights_h5(model: keras.Model, path) -> None:
    """Set ``model``'s weights from a Keras 2 weights file, by layer name (by order where names differ)."""
    saved = {name: values for name, values in read_weights_h5(path).items() if values}
    layers = [layer for layer in model.layers if _legacy_weights(layer)]
    if all(layer.name in saved for layer in layers) and len(saved) == len(layers):
        pairs = [(layer, layer.name) for layer in layers]
    elif len(saved) == len(layers):  # e.g. a model rebuilt in code, whose layers are named anew
        pairs = list(zip(layers, saved))
    else:
        raise SeqliftError(f"{path}: weights for {len(saved)} layer(s) ({', '.join(saved)}) but the model has "
                           f"{len(layers)} layer(s) with weights ({', '.join(layer.name for layer in layers)})")
    for layer, name in pairs:
        variables, values = _legacy_weights(layer), saved[name]
        shapes = [tuple(v.shape) for v in variables]
        if shapes != [value.shape for value in values]:
            raise SeqliftError(f"{path}: layer '{name}' holds weights of shapes {[v.shape for v in values]} but "
                               f"layer '{layer.name}' of the model needs {shapes}")
        for variable, value in zip(variables, values):
            variable.assign(value)
