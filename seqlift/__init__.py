"""seqlift: DeepLIFT contribution scores for Keras DNA sequence models, and what comes after them."""

from __future__ import annotations

__version__ = "0.1.0"

from . import _backend  # noqa: E402,F401  (first: sets up the Keras backend quietly)
from .engine import Attribution, Explainer  # noqa: E402
from .errors import SeqliftError  # noqa: E402
from .methods import METHODS, attribute, in_silico_mutagenesis  # noqa: E402
from .references import count_dinucleotide_shuffles, dinucleotide_shuffle  # noqa: E402
from .scoring import Scores, score  # noqa: E402
from .sequences import one_hot_encode  # noqa: E402


def deeplift(model, inputs, references, target=0, rule="rescale", batch_size=None, normalize=False, output=None):
    """DeepLIFT contributions of ``inputs`` to one model output.

    model: a ``keras.Model`` or a path (``.h5`` from tf.keras 2.x or Keras 3, or ``.keras``).
    inputs: ``(N, *S)``; references: ``(R, *S)`` shared by every input or ``(N, R, *S)`` per input.
    target: index into the model's flattened output, before a final sigmoid or softmax.
    rule: 'rescale', 'reveal_cancel', 'genomics' (RevealCancel on dense layers, Rescale on
    convolutions), or a dict from Keras layer class name to rule.
    normalize: mean-normalize the first convolution per column (for one-hot inputs).
    output: for a model with several outputs, which one (index or name) ``target`` indexes into.
    Returns ``(N, *S)`` raw contributions ``m ⊙ (x − ref)`` averaged over references.
    """
    explainer = Explainer(model, rule=rule, normalize=normalize, output=output)
    return explainer.deeplift(inputs, references, target=target, batch_size=batch_size).contributions


__all__ = [
    "Attribution", "Explainer", "METHODS", "Scores", "SeqliftError", "attribute", "count_dinucleotide_shuffles",
    "deeplift", "dinucleotide_shuffle", "in_silico_mutagenesis", "one_hot_encode", "score", "__version__",
]
