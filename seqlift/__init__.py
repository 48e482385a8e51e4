"""seqlift: DeepLIFT contribution scores for Keras and PyTorch DNA sequence models, and what comes after them.

Keras (and TensorFlow) load only when something that runs a model is first used, so reading score
files, drawing logos, writing bigWigs and finding motifs start fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path

__version__ = "0.1.0"

# A source checkout keeps cli/ and data/ beside seqlift/, where pyproject.toml installs them as seqlift.cli
# and seqlift.data: on PYTHONPATH, a checkout finds those two (and nothing else of the checkout: not tests/,
# not benchmarks/) there, so both run the same imports.
_CHECKOUT = Path(__file__).resolve().parent.parent
if not (Path(__file__).parent / "cli").is_dir() and (_CHECKOUT / "pyproject.toml").is_file() \
        and (_CHECKOUT / "cli" / "main.py").is_file():
    import importlib.abc
    import importlib.util
    import sys

    class _CheckoutFolders(importlib.abc.MetaPathFinder):
        """``seqlift.cli`` and ``seqlift.data`` (and their submodules) from the checkout's cli/ and data/."""

        FOLDERS = {"cli": _CHECKOUT / "cli", "data": _CHECKOUT / "data"}

        def find_spec(self, fullname, path=None, target=None):
            parts = fullname.split(".")
            if len(parts) < 2 or parts[0] != __name__ or parts[1] not in self.FOLDERS:
                return None
            folder = self.FOLDERS[parts[1]].joinpath(*parts[2:])
            if folder.is_dir() and (folder / "__init__.py").is_file():
                return importlib.util.spec_from_file_location(fullname, folder / "__init__.py",
                                                              submodule_search_locations=[str(folder)])
            module = folder.with_suffix(".py")
            return importlib.util.spec_from_file_location(fullname, module) if module.is_file() else None

    sys.meta_path.insert(0, _CheckoutFolders())

from .errors import SeqliftError  # noqa: E402

# Public names and the module each lives in, imported on first use (PEP 562).
_LAZY = {
    "Attribution": "engine", "Explainer": "engine", "deeplift": "engine",
    "METHODS": "methods", "Method": "methods", "attribute": "methods", "get_method": "methods",
    "in_silico_mutagenesis": "methods",
    "count_dinucleotide_shuffles": "references", "dinucleotide_shuffle": "references",
    "Scores": "scoring", "score": "scoring",
    "variant_effects": "effects",
    "one_hot_encode": "sequences",
    "register_layer": "frontends.keras.custom_layers",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'seqlift' has no attribute '{name}'")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["SeqliftError", "__version__", *sorted(_LAZY)]
