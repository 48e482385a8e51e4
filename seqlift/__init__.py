"""seqlift: DeepLIFT contribution scores for Keras and PyTorch DNA sequence models, and what comes after them.

Keras (and TensorFlow) load only when something that runs a model is first used, so reading score
files, drawing logos, writing bigWigs and finding motifs start fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path

__version__ = "0.1.0"

# A source checkout keeps cli/ and data/ beside seqlift/, where pyproject.toml installs them as seqlift.cli
# and seqlift.data: on PYTHONPATH, a checkout finds them there, so both run the same imports.
_CHECKOUT = Path(__file__).resolve().parent.parent
if not (Path(__file__).parent / "cli").is_dir() and (_CHECKOUT / "pyproject.toml").is_file() \
        and (_CHECKOUT / "cli" / "main.py").is_file():
    __path__.append(str(_CHECKOUT))  # noqa: F821 - a package's __path__

from .errors import SeqliftError  # noqa: E402

# Public names and the module each lives in, imported on first use (PEP 562).
_LAZY = {
    "Attribution": "engine", "Explainer": "engine", "deeplift": "engine",
    "METHODS": "methods", "Method": "methods", "attribute": "methods", "get_method": "methods",
    "in_silico_mutagenesis": "methods",
    "count_dinucleotide_shuffles": "references", "dinucleotide_shuffle": "references",
    "Scores": "scoring", "score": "scoring",
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
