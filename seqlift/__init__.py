"""seqlift: DeepLIFT contribution scores for Keras DNA sequence models, and what comes after them."""

from __future__ import annotations

__version__ = "0.1.0"

from . import _backend  # noqa: E402,F401  (first: sets up the Keras backend quietly)
from .engine import Attribution, Explainer  # noqa: E402
from .custom_layers import register_layer  # noqa: E402
from .errors import SeqliftError  # noqa: E402
from .methods import METHODS, attribute, in_silico_mutagenesis  # noqa: E402
from .references import count_dinucleotide_shuffles, dinucleotide_shuffle  # noqa: E402
from .scoring import Scores, score  # noqa: E402
from .sequences import one_hot_encode  # noqa: E402


def deeplift(model, inputs, references, target=0, rule="rescale", batch_size=None, normalize=False, output=None,
             input=None, extra=None, weights=None, custom_objects=None):
    """DeepLIFT contributions of ``inputs`` to one model output.

    model: a ``keras.Model``, a path (``.h5`` from tf.keras 2.x or Keras 3, ``.keras``, or a Keras 2
    ``ARCH.json`` with ``weights=WEIGHTS.h5``), or ``"FILE.py:FUNCTION"`` returning a ``keras.Model``.
    custom_objects: a Python file (or dict) of the custom layer classes the model file uses.
    inputs: ``(N, *S)``; references: ``(R, *S)`` shared by every input or ``(N, R, *S)`` per input.
    target: index into the model's flattened output, before a final sigmoid or softmax.
    rule: 'rescale', 'reveal_cancel', 'genomics' (RevealCancel on dense layers, Rescale on
    convolutions), or a dict from Keras layer class name to rule.
    normalize: mean-normalize the first convolution per column (for one-hot inputs).
    output: for a model with several outputs, which one (index or name) ``target`` indexes into.
    input: for a model with several inputs, the one explained (index or name; default: the only one
    with 4 channels). extra: ``{name: array}`` for the others, held fixed: ``S`` or ``(1, *S)`` for
    every input, ``(N, *S)`` one row per input; default zeros.
    Returns ``(N, *S)`` raw contributions ``m ⊙ (x − ref)`` averaged over references.
    """
    explainer = Explainer(model, rule=rule, normalize=normalize, output=output, input=input, weights=weights,
                          custom_objects=custom_objects)
    return explainer.deeplift(inputs, references, target=target, batch_size=batch_size, extra=extra).contributions


__all__ = [
    "Attribution", "Explainer", "METHODS", "Scores", "SeqliftError", "attribute", "count_dinucleotide_shuffles",
    "deeplift", "dinucleotide_shuffle", "in_silico_mutagenesis", "one_hot_encode", "register_layer", "score",
    "__version__",
]
