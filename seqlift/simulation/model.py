"""The simulation's model (Shrikumar et al. 2017, appendix G) and its training (``seqlift simulate --train``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import backend  # noqa: F401  (first: loads Keras without TensorFlow's C++ log lines)
from ..sequences import one_hot_encode
from .data import TASKS, Simulation
from .metrics import auprc, auroc


def build_model(length=200, n_tasks=3):
    """Conv1D(50, 11) ReLU ×2, global average pooling, Dense(50) ReLU, Dropout(0.5), Dense(3) sigmoid."""
    import keras
    from keras import layers

    inp = keras.Input((length, 4), name="sequence")
    h = layers.Conv1D(50, 11, activation="relu", name="conv1")(inp)
    h = layers.Conv1D(50, 11, activation="relu", name="conv2")(h)
    h = layers.GlobalAveragePooling1D(name="pool")(h)
    h = layers.Dense(50, activation="relu", name="dense")(h)
    h = layers.Dropout(0.5, name="dropout")(h)
    out = layers.Dense(n_tasks, activation="sigmoid", name="tasks")(h)
    return keras.Model(inp, out, name="tal1_gata1")


def train(sim: Simulation, seed=0, epochs=60, patience=5, batch_size=128, progress=None):
    """Train the paper's model (binary cross-entropy, Adam 0.001, early stopping on the valid split).

    progress: ``progress(epoch, epochs)`` after each epoch (1-based; early stopping may end before ``epochs``).
    Returns the model and its test metrics (auROC, auPRC per task).
    """
    import keras

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if progress is not None:
                progress(epoch + 1, epochs)

    keras.utils.set_random_seed(seed)
    x = np.stack([one_hot_encode(s, n) for n, s in zip(sim.names, sim.sequences)])
    y = sim.labels[list(TASKS)].to_numpy(np.float32)
    split = sim.labels["split"].to_numpy()
    model = build_model(x.shape[1], y.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="binary_crossentropy")
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    model.fit(x[split == "train"], y[split == "train"], validation_data=(x[split == "valid"], y[split == "valid"]),
              epochs=epochs, batch_size=batch_size, callbacks=[stop, Report()], verbose=0)
    test = split == "test"
    prob = model.predict(x[test], verbose=0)
    metrics = pd.DataFrame({
        "task": list(TASKS),
        "auroc": [auroc(y[test, t], prob[:, t]) for t in range(y.shape[1])],
        "auprc": [auprc(y[test, t], prob[:, t]) for t in range(y.shape[1])],
        "n_test": int(test.sum()),
    })
    return model, metrics
