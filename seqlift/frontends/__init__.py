"""Front ends: each lowers one framework's models to seqlift's graph of primitive operations.

``FRONT_ENDS`` is the registry, one row per framework: the module that loads and lowers its models,
the package its model objects come from, and the model files it reads. Adding a front end adds a
row here and its module, which defines

- ``load(model, weights, custom_objects, allow_pickle) -> model``: a model object (checked, with
  ``weights`` loaded into it) from an object of its framework or one of its files;
- ``lower(model, output, input, layout) -> Graph``: the model as a ``seqlift.graph.Graph``;
- ``weights(model)``: its weights as ``(label, bytes as a uint8 array)`` pairs, what a lowering copies
  (``weights_digest``: an explainer cached for a model object is stale once they change).

Nothing here imports a framework: an object is matched to its front end only when its framework is
already imported (a class of a package that is not imported cannot be that package's), a file by its
suffix, so the Keras path never imports torch.

A model is given as an object, a file, or ``FILE.py:FUNCTION``: a Python function, called without
arguments, that returns a model object of any front end.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import SeqliftError


@dataclass(frozen=True)
class FrontEnd:
    """One framework: ``module`` (imported on first use) loads and lowers its models.

    package: the top-level package of its model classes; kind: what a model is called in messages;
    suffixes: the model files it reads. declares_shapes: its models declare their inputs' shapes, so one is
    lowered when loaded; the others are captured from the shapes of the arrays of a call (or a given length).
    """

    name: str
    module: str
    package: str
    kind: str
    suffixes: tuple[str, ...]
    declares_shapes: bool = False

    def implementation(self):
        return importlib.import_module(self.module)


FRONT_ENDS: dict[str, FrontEnd] = {fe.name: fe for fe in (
    FrontEnd("keras", f"{__name__}.keras", "keras", "keras.Model", (".h5", ".hdf5", ".keras", ".json"),
             declares_shapes=True),
    FrontEnd("torch", f"{__name__}.torch", "torch", "torch.nn.Module", (".pt", ".pth")),
)}


def kinds() -> str:
    return " or ".join(fe.kind for fe in FRONT_ENDS.values())


def for_object(obj) -> FrontEnd | None:
    """The front end whose framework ``obj`` is a model of, or None (nothing is imported to decide)."""
    for fe in FRONT_ENDS.values():
        if fe.package in sys.modules and fe.implementation().is_model(obj):
            return fe
    return None


def for_file(path) -> FrontEnd | None:
    """The front end that reads model files ending like ``path``, or None."""
    suffix = Path(str(path)).suffix.lower()
    for fe in FRONT_ENDS.values():
        if suffix in fe.suffixes:
            return fe
    return None


def load(model, weights=None, custom_objects=None, allow_pickle=False):
    """``(front end, model object)`` for a model given in any of the ways this module's docstring lists.

    weights: a weights file loaded into the model; custom_objects: Keras's custom layer classes;
    allow_pickle: read a whole pickled torch model (which runs code from the file).
    """
    if isinstance(model, (str, Path)):
        function = split_function(model)
        if function:
            model = from_function(*function)
            fe = for_object(model)
            if fe is None:
                raise SeqliftError(f"{model_name_of(function)}: returned {type(model).__name__}, not a model "
                                   f"(a {kinds()})")
        else:
            fe = for_file(model)
            if fe is None:
                path = Path(model)
                if not path.exists():
                    raise SeqliftError(f"{path}: model file not found")
                suffixes = ", ".join(s for f in FRONT_ENDS.values() for s in f.suffixes)
                raise SeqliftError(f"{path}: not a model file seqlift reads ({suffixes}, or FILE.py:FUNCTION)")
    else:
        fe = for_object(model)
        if fe is None:
            raise SeqliftError(f"model: got {type(model).__name__}, which is not a model; give a {kinds()}, a model "
                               "file or 'FILE.py:FUNCTION'")
    return fe, fe.implementation().load(model, weights=weights, custom_objects=custom_objects,
                                        allow_pickle=allow_pickle)


def weights_digest(model) -> str:
    """A digest of a model object's weights (its front end's ``weights``: labels, shapes and every byte)."""
    digest = hashlib.blake2b(digest_size=16)
    for label, data in for_object(model).implementation().weights(model):
        digest.update(label.encode())
        digest.update(memoryview(data))
    return digest.hexdigest()


def model_name_of(function) -> str:
    return f"{function[0]}:{function[1]}"


def split_function(model) -> tuple[Path, str] | None:
    """``(file, function)`` for a ``FILE.py:FUNCTION`` model, else None."""
    if not isinstance(model, (str, Path)):
        return None
    text = str(model)
    path, sep, function = text.rpartition(":")
    if sep and path.endswith(".py") and function.isidentifier():
        return Path(path), function
    return None


def model_files(model, weights=None, custom_objects=None) -> list[str]:
    """Every file reading this model touches: the model (or its ``.py``), weights, custom objects."""
    if not isinstance(model, (str, Path)):
        files = []
    else:
        function = split_function(model)
        files = [str(function[0]) if function else str(model)]
    return files + [str(p) for p in (weights, custom_objects) if p]


def describe(model) -> str:
    """The model as recorded in a score file: its resolved path, with ``:FUNCTION`` for a function."""
    function = split_function(model)
    if function:
        return f"{function[0].resolve()}:{function[1]}"
    return str(Path(model).resolve())


def choose(names: list[str], value, kind: str, owner: str) -> int:
    """The index of a model's input or output given by name or index (``kind``: 'input' or 'output'); ``owner``
    names the model in messages."""
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        if value not in names:
            raise SeqliftError(f"{owner} has no {kind} '{value}' ({kind}s: {', '.join(names)})")
        return names.index(value)
    index = int(value)
    if not 0 <= index < len(names):
        raise SeqliftError(f"{kind} {index} is out of range: {owner} has {len(names)} {kind}(s)")
    return index


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def import_file(path, option: str):
    """Import a Python file as a module; errors name ``option`` and the file."""
    path = Path(path)
    if not path.exists():
        raise SeqliftError(f"{option} {path}: file not found")
    if path.suffix != ".py":
        raise SeqliftError(f"{option} {path}: not a Python file (.py)")
    name = f"seqlift_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.resolve().parent))  # so that it can import the files beside it
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:  # sys.exit() in a script meant to be run: never seqlift's exit status
        del sys.modules[name]
        raise SeqliftError(f"{option} {path}: importing it called sys.exit({exc.code!r}); guard the script's "
                           "top-level code with if __name__ == '__main__':") from None
    except Exception as exc:  # noqa: BLE001 - the user's code failed: say where and why, in one line
        del sys.modules[name]
        raise SeqliftError(f"{option} {path}: importing it failed ({type(exc).__name__}: {first_line(exc)})") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def from_function(path: Path, function: str):
    """What ``FUNCTION`` in the Python file ``path`` returns when called without arguments."""
    module = import_file(path, "model")
    build = getattr(module, function, None)
    if not callable(build):
        names = [n for n, v in vars(module).items() if inspect.isfunction(v) and v.__module__ == module.__name__]
        raise SeqliftError(f"{path}:{function}: {path} has no function '{function}' (functions: "
                           f"{', '.join(names) or 'none'})")
    try:
        return build()
    except SystemExit as exc:
        raise SeqliftError(f"{path}:{function}: calling it called sys.exit({exc.code!r}); it must return the "
                           "model") from None
    except Exception as exc:  # noqa: BLE001
        raise SeqliftError(f"{path}:{function}: calling it failed ({type(exc).__name__}: {first_line(exc)})") from None
