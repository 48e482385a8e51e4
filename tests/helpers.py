"""What several test modules share: random weights, random one-hot input, and the summation-to-delta check."""

import keras
import numpy as np
from keras import layers

from seqlift import methods

# Summation to delta must hold to float32 rounding: |Σ C − Δt| ≤ ATOL + RTOL·(|t(x)| + |t(ref)|).
ATOL, RTOL = 1e-5, 2e-5
RULES = list(methods.RULES)


def randomize(model, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        values = rng.normal(size=w.shape) * scale
        if "moving_variance" in w.path:
            values = np.abs(values) + 0.5
        w.assign(values.astype("float32"))
    return model


def one_hot(rng, shape):
    return np.eye(4, dtype="float32")[rng.integers(0, 4, shape)]


def assert_summation(attribution):
    scale = np.abs(attribution.prediction) + np.abs(attribution.reference_prediction)
    assert np.all(attribution.delta <= ATOL + RTOL * scale), attribution.delta.max()


def trunk(inp):
    return layers.Conv1D(6, 3, padding="same", activation="relu")(inp)


def head(h):
    h = layers.Flatten()(h) if len(h.shape) == 3 else h
    return layers.Dense(1)(layers.Dense(5, activation="relu")(h))


def transformer_block(seed):
    """A conv stem, one post-norm transformer block (attention, feed-forward), a dense head."""
    rng = np.random.default_rng(seed)
    inp = keras.Input((24, 4))
    h = layers.Conv1D(8, 5, padding="same", activation="relu")(inp)
    if rng.random() < 0.5:
        h = layers.MaxPooling1D(2)(h)
    attention = layers.MultiHeadAttention(2, 4, dropout=0.1, use_gate=bool(seed % 2))(h, h)
    h = layers.LayerNormalization()(layers.Add()([h, layers.Dropout(0.1)(attention)]))
    feed_forward = layers.Dense(8)(layers.Dense(16, activation=str(rng.choice(["gelu", "relu", "swish"])))(h))
    h = layers.LayerNormalization()(layers.Add()([h, feed_forward]))
    h = layers.GlobalAveragePooling1D()(h) if rng.random() < 0.5 else layers.Flatten()(h)
    return keras.Model(inp, layers.Dense(2, activation=str(rng.choice(["sigmoid", "softmax", "linear"])))(h))


def profile_and_counts(path, length=40, seed=3):
    """A BPNet-shaped model saved at ``path``: a profile head ``(L, 2)`` and a counts head ``(1,)`` on one trunk."""
    inp = keras.Input((length, 4))
    h = layers.Conv1D(6, 5, padding="same", activation="relu")(inp)
    model = keras.Model(inp, [layers.Conv1D(2, 5, padding="same", name="profile")(h),
                              layers.Dense(1, name="counts")(layers.GlobalAveragePooling1D()(h))])
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.4)
    model.save(path)
    return path


def completed_rows(partial) -> int:
    """Rows an in-progress file (``OUT.partial``) has flushed; 0 while it is being set up or read mid-write."""
    import h5py

    try:
        with h5py.File(partial, "r", locking=False) as h5:  # the writer holds the lock
            return int(h5.attrs.get("resume_completed_sequences", 0))
    except Exception:  # noqa: BLE001 - read mid-write: the caller asks again
        return 0
