"""Summation to delta of each target, and the cost of ``--target profile``, on a BPNet-style model.

Model: the engine benchmark's trunk (1000 bp, Conv1D 64×21, six residual dilated Conv1D 64×3) with
a profile head (Conv1D 2×75 over both strands: logits (1000, 2)) and a counts head (global average
pooling, Dense(1)), random weights. Each sequence is explained against 20 dinucleotide shuffles.

- Summation to delta per target: the engine's convergence delta (per sequence-reference pair), and
  the averaged contributions' sum against ``t(x) − mean_r t(ref_r)`` recomputed in NumPy from the
  model's own predictions (Keras ``predict``).
- Throughput: sequences/s of ``--target profile`` against ``--target logit`` on the same explainer,
  compiled steps warmed up first, measured in this one run.
- Attention and normalization: the same errors on a small transformer (200 bp, conv stem, max
  pooling to 50 tokens, MultiHeadAttention 4×8, LayerNormalization, feed-forward, dense head) under
  every rule.

Usage: python benchmarks/targets.py [--n-seqs 32] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from engine_speed import LENGTH, N_REFS, bpnet_like, random_inputs, timed  # noqa: E402

import seqlift  # noqa: E402
from seqlift.methods import RESCALE, RULES  # noqa: E402
from seqlift.references import shuffled_references  # noqa: E402

PROFILE_LOGIT = 2 * (LENGTH // 2)  # the profile logit explained by --target logit: centre position, + strand


def bpnet_profile_counts(seed=0):
    """The engine benchmark's trunk with a 2-strand profile head and a counts head."""
    import keras
    from keras import layers

    trunk = bpnet_like(seed)
    profile = layers.Conv1D(2, 75, padding="same", name="profile")(trunk.layers[-3].output)
    counts = layers.Identity(name="counts")(trunk.output)
    return keras.Model(trunk.input, [profile, counts])


def transformer(seed=0, length=200):
    """A conv stem, one post-norm transformer block, a dense head."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input((length, 4))
    h = layers.MaxPooling1D(4)(layers.Conv1D(32, 11, padding="same", activation="relu")(inp))
    h = layers.LayerNormalization()(layers.Add()([h, layers.MultiHeadAttention(4, 8)(h, h)]))
    feed_forward = layers.Dense(32)(layers.Dense(64, activation="gelu")(h))
    h = layers.LayerNormalization()(layers.Add()([h, feed_forward]))
    return keras.Model(inp, layers.Dense(1)(layers.GlobalAveragePooling1D()(h)))


def profile_target(logits):
    """bpnet-lite's t = Σ softmax(ℓ̄)·ℓ̄ over positions × strands, in float64: ``(N,)``."""
    flat = logits.reshape(len(logits), -1).astype(np.float64)
    centred = flat - flat.mean(1, keepdims=True)
    w = np.exp(centred - centred.max(1, keepdims=True))
    return ((w / w.sum(1, keepdims=True)) * centred).sum(1)


def weight_share(model, x, refs):
    """How much of Δt the profile weights' own change carries: ``Σ ℓ̄̄·Δw`` over ``|Δt|``, per pair.

    The product rule splits ``Δt = Σ w̄·Δℓ̄ + Σ ℓ̄̄·Δw``; a stop-gradient keeps only the first sum.
    Returns the median and 90th percentile of ``|Σ ℓ̄̄·Δw| / |Δt|`` over (sequence, reference) pairs.
    """
    def centred_and_weights(v):
        flat = np.asarray(model.predict(v, batch_size=64, verbose=0)[0], np.float64).reshape(len(v), -1)
        flat = flat - flat.mean(1, keepdims=True)
        w = np.exp(flat - flat.max(1, keepdims=True))
        return flat, w / w.sum(1, keepdims=True)

    c, w = centred_and_weights(x)
    c0, w0 = centred_and_weights(refs.reshape((-1,) + x.shape[1:]))
    c, w = np.repeat(c, refs.shape[1], axis=0), np.repeat(w, refs.shape[1], axis=0)
    share = np.abs((0.5 * (c + c0) * (w - w0)).sum(1)) / np.abs((w * c).sum(1) - (w0 * c0).sum(1))
    return {"median": float(np.median(share)), "p90": float(np.percentile(share, 90))}


def summation_errors(model, head, target, numpy_target, x, refs, rule=RESCALE, output=None):
    """Largest engine delta and largest error against NumPy, absolute and relative to max(1, |t|)."""
    explainer = seqlift.Explainer(model, rule=rule, normalize=True, output=output)
    att = explainer.deeplift(x, refs, target=target)
    outputs = lambda v: np.asarray(model.predict(v, batch_size=64, verbose=0)[head] if head is not None
                                   else model.predict(v, batch_size=64, verbose=0))
    t_x = numpy_target(outputs(x))
    t_ref = numpy_target(outputs(refs.reshape((-1,) + x.shape[1:]))).reshape(len(x), -1)
    error = np.abs(att.contributions.reshape(len(x), -1).sum(1) - (t_x - t_ref.mean(1)))
    scale = np.maximum(1.0, np.maximum(np.abs(t_x), np.abs(t_ref).max(1)))
    return {"engine_delta_max": float(att.delta.max()), "engine_delta_relative_max": float((att.delta / scale).max()),
            "numpy_error_max": float(error.max()), "numpy_error_relative_max": float((error / scale).max()),
            "t_abs_max": float(np.abs(t_x).max())}


def throughput(model, x, refs, n_seqs, rounds=3):
    """Sequences/s of the logit and profile targets on one explainer of the profile head.

    The two are timed alternately, ``rounds`` times each, and the best time of each is kept, so
    load from other processes on a shared machine falls on both alike.
    """
    explainer = seqlift.Explainer(model, normalize=True, output="profile")
    targets = {"logit": PROFILE_LOGIT, "profile": "profile"}
    best = {}
    for target in targets.values():
        explainer.deeplift(x[:2], refs[:2], target=target)  # compile
    for _ in range(rounds):
        for label, target in targets.items():
            seconds = timed(lambda: explainer.deeplift(x, refs, target=target))
            best[label] = min(best.get(label, float("inf")), seconds)
    rates = {label: n_seqs / seconds for label, seconds in best.items()}
    rates["profile_over_logit_time"] = best["profile"] / best["logit"]
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-seqs", type=int, default=32)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x, refs = random_inputs(rng, args.n_seqs)
    model = bpnet_profile_counts()
    result = {"model": "BPNet-style, 1000 bp, profile (1000, 2) + counts, random weights",
              "n_seqs": args.n_seqs, "n_refs": N_REFS, "backend": seqlift.backend.NAME, "summation": {}}
    cases = {
        f"logit (profile head, index {PROFILE_LOGIT})": (0, PROFILE_LOGIT, lambda o: o.reshape(len(o), -1)[:, PROFILE_LOGIT], "profile"),
        "sum (counts head)": (1, "sum", lambda o: o.reshape(len(o), -1).sum(1), "counts"),
        "sum (profile head)": (0, "sum", lambda o: o.reshape(len(o), -1).sum(1), "profile"),
        "profile (profile head)": (0, "profile", profile_target, "profile"),
    }
    for label, (head, target, numpy_target, output) in cases.items():
        result["summation"][label] = summation_errors(model, head, target, numpy_target, x, refs, output=output)
        print(label, result["summation"][label], flush=True)
    result["profile_weight_share_of_delta_t"] = weight_share(model, x, refs)
    print("weight share", result["profile_weight_share_of_delta_t"], flush=True)
    start = time.perf_counter()
    result["throughput_seq_per_s"] = throughput(model, x, refs, args.n_seqs)
    print("throughput", result["throughput_seq_per_s"], f"({time.perf_counter() - start:.0f} s)", flush=True)
    small = transformer()
    xt = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (args.n_seqs, 200))]
    refs_t = shuffled_references(xt, N_REFS, seed=1)
    result["transformer"] = {
        rule: summation_errors(small, None, 0, lambda o: o[:, 0], xt, refs_t, rule=rule)
        for rule in RULES}
    print("transformer", result["transformer"], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
