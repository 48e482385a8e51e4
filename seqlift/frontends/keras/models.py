"""The ways to give seqlift a model, and the Python files that come with them.

A model is one of:

- a ``keras.Model`` object;
- ``MODEL.h5`` (tf.keras 2.x or Keras 3) or ``MODEL.keras``;
- ``ARCH.json`` (``model.to_json()``, Keras 2.0 and later) with ``weights=WEIGHTS.h5`` (what
  ``model.save_weights()`` writes; Keras 2 files are translated by ``compat``);
- ``FILE.py:FUNCTION``: a Python function, called without arguments, that returns a ``keras.Model``
  (for a lab that rebuilt its architecture in code and loads its weights there).

``custom_objects``: a Python file whose Keras layer classes are used when the model is read (it may
also call ``seqlift.register_layer`` for them). A Lambda layer in a model file is refused, as Keras's
safe mode refuses to run code stored in a file.
"""

from __future__ import annotations

import inspect
import json
import zipfile
from pathlib import Path

import h5py
import keras

from . import compat
from ...errors import SeqliftError
from .. import first_line as _first_line
from .. import from_function, import_file, split_function

MODEL_SUFFIXES = (".h5", ".hdf5", ".keras", ".json")
_CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda")  # their computation is code stored in the file
_CONTAINERS = ("Functional", "Sequential", "Model")


def load_model(model, weights=None, custom_objects=None) -> keras.Model:
    """A ``keras.Model`` from any of the forms in this module's docstring.

    weights: a weights file for a JSON architecture (or to replace the weights of any other form).
    custom_objects: path to a Python file of custom layer classes, or a dict name → class.
    """
    objects = read_custom_objects(custom_objects)
    if isinstance(model, keras.Model):
        loaded = model
    elif split_function(model):
        loaded = _check_model(from_function(*split_function(model)), split_function(model))
    else:
        path = Path(model)
        config = _check_model_file(path, objects)
        if path.suffix == ".json":
            return _from_json(path, config, weights, objects)
        loaded = _keras_load(path, objects, config)
    if weights is not None:
        _load_weights(loaded, Path(weights))
    return loaded


def _check_model_file(path: Path, objects: dict) -> dict | None:
    """The architecture stored in the model file at ``path`` (translated if Keras 2 JSON), checked
    before Keras builds anything: the file exists and holds an architecture, every layer class is known."""
    if not path.exists():
        raise SeqliftError(f"{path}: model file not found")
    if path.suffix not in MODEL_SUFFIXES:
        raise SeqliftError(f"{path}: not a Keras model file (expected .h5, .keras, ARCH.json with --weights, "
                           "or FILE.py:FUNCTION)")
    config = stored_config(path)
    if path.suffix == ".json":
        config = compat.translate_config(config, str(path))
    elif config is None and compat.is_weights_file(path):
        raise SeqliftError(f"{path}: holds weights only, no architecture; give the architecture as MODEL "
                           f"(ARCH.json or FILE.py:FUNCTION) and this file as --weights {path}")
    _check_layers(path, config, objects)
    return config


def _keras_load(path: Path, objects: dict, config=None) -> keras.Model:
    try:
        from ...backend import quiet_native_stderr

        with quiet_native_stderr():  # loading can import TensorFlow, whose C++ logs at import
            loaded = keras.models.load_model(path, compile=False, custom_objects=objects)
    except Exception as exc:  # noqa: BLE001 - any loader failure means the file is not a usable model
        if config is None or not _written_by_keras2(path):
            raise SeqliftError(f"{path}: cannot be read as a Keras model ({_first_line(exc)})") from None
        # Keras 3 cannot read every tf.keras 2.x file (a nested model's node numbering): translate it as its JSON
        try:
            return _from_json(path, compat.translate_config(config, str(path)), path, objects)
        except SeqliftError:
            raise SeqliftError(f"{path}: cannot be read as a Keras model ({_first_line(exc)})") from None
    if not isinstance(loaded, keras.Model):
        raise SeqliftError(f"{path}: holds no Keras model")
    return loaded


def _written_by_keras2(path: Path) -> bool:
    """Whether an HDF5 model file says Keras (or tf.keras) 2.x wrote it."""
    try:
        with h5py.File(path, "r") as f:
            version = f.attrs.get("keras_version", b"")
    except OSError:
        return False
    return (version.decode() if isinstance(version, bytes) else str(version)).startswith("2.")


def stored_config(path: Path) -> dict | None:
    """The architecture stored in a model file (``.json``, ``.h5`` or ``.keras``), or None."""
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text())
        if path.suffix in (".h5", ".hdf5") and h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                text = f.attrs.get("model_config")
            return json.loads(text) if text is not None else None
        if path.suffix == ".keras" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise SeqliftError(f"{path}: cannot be read as a Keras model ({_first_line(exc)})") from None
    return None


def _stored_layers(config):
    """Every entry ``{"class_name", "config"}`` of a stored architecture, nested models' layers included."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict) and "class_name" in item:
            yield item
            inner = item.get("config")
            stack.extend(inner if isinstance(inner, list) else inner.get("layers", []) if isinstance(inner, dict) else [])


def _check_layers(path: Path, config, objects: dict) -> None:
    """Refuse a layer whose code is stored in the file (a Lambda, as Keras's safe mode does) and a
    layer class nothing defines, naming the layer and what to do."""
    registered = {name.split(">")[-1] for name in keras.saving.get_custom_objects()}
    for layer in _stored_layers(config):
        kind, inner = layer["class_name"], layer.get("config")
        name = inner.get("name", "?") if isinstance(inner, dict) else "?"
        if kind in _CODE_LAYERS:
            raise SeqliftError(f"{path}: layer '{name}' is a {kind} layer, whose code seqlift does not run from a "
                               "model file; rebuild the model in Python and give it as FILE.py:FUNCTION")
        if not (kind in _CONTAINERS or hasattr(keras.layers, kind) or kind in objects or kind in registered):
            raise SeqliftError(f"{path}: layer '{name}' is of class {kind}, which Keras does not define; give the "
                               "Python file defining it with --custom-objects FILE.py")


def _from_json(path: Path, config: dict, weights, objects: dict) -> keras.Model:
    """A model from a translated JSON architecture and its weights file."""
    if weights is None:
        raise SeqliftError(f"{path}: a JSON architecture holds no weights; give them with --weights WEIGHTS.h5")
    try:
        from ...backend import quiet_native_stderr

        with quiet_native_stderr():
            model = compat.model_from_config(config, custom_objects=objects)
    except Exception as exc:  # noqa: BLE001 - a config Keras cannot build is the user's file
        raise SeqliftError(f"{path}: cannot be built as a Keras model ({_first_line(exc)})") from None
    _load_weights(model, Path(weights))
    return model


def _load_weights(model: keras.Model, path: Path) -> None:
    if not path.exists():
        raise SeqliftError(f"{path}: weights file not found")
    if path.name.endswith(".weights.h5"):  # Keras 3's own weights format
        try:
            model.load_weights(path)
        except Exception as exc:  # noqa: BLE001
            raise SeqliftError(f"{path}: cannot load these weights into the model ({_first_line(exc)})") from None
        return
    compat.load_weights_h5(model, path)


def read_custom_objects(custom_objects) -> dict:
    """``{class name: class}`` for the Keras layer classes defined in a Python file (or a dict as given)."""
    if custom_objects is None or isinstance(custom_objects, dict):
        return dict(custom_objects or {})
    module = import_file(custom_objects, "--custom-objects")
    found = {name: obj for name, obj in vars(module).items()
             if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer) and obj.__module__ == module.__name__}
    if not found:
        raise SeqliftError(f"--custom-objects {custom_objects}: defines no Keras layer class")
    return found


def _check_model(model, function) -> keras.Model:
    if not isinstance(model, keras.Model):
        raise SeqliftError(f"{function[0]}:{function[1]}: returned {type(model).__name__}, not a keras.Model")
    return model
