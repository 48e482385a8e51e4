"""References for one-hot DNA: dinucleotide shuffles, ACGT frequency, all zeros.

The shuffle draws uniformly among all sequences with the same dinucleotide counts (Altschul &
Erickson 1985): a random arborescence of last exits rooted at the final letter (Wilson's
algorithm), every letter's other exits in random order, then the Eulerian walk. Keeping each
letter's original last exit instead (the usual shortcut) is exact but not uniform.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np

from .errors import SeqliftError

ALPHABET = "ACGT"


def _generator(seed: int, index: int) -> np.random.Generator:
    """One generator per sequence, from the seed and the sequence's index (chunking-independent)."""
    return np.random.default_rng([int(seed), int(index)])


def _exits(codes: np.ndarray, n_letters: int) -> list[list[int]]:
    exits = [[] for _ in range(n_letters)]
    for a, b in zip(codes[:-1].tolist(), codes[1:].tolist()):
        exits[a].append(b)
    return exits


def _last_exit_tree(exits, root, rng) -> dict[int, int]:
    """A random spanning arborescence toward ``root``: for every other letter, the letter it last exits to.

    Wilson's algorithm with loop-erased random walks that step along a uniformly chosen exit, so a
    tree's probability is proportional to the number of dinucleotide-labelled trees it stands for.
    """
    in_tree = {root}
    nxt = {}
    for start in range(len(exits)):
        if not exits[start] or start in in_tree:
            continue
        u = start
        while u not in in_tree:
            nxt[u] = exits[u][rng.integers(len(exits[u]))]
            u = nxt[u]
        u = start
        while u not in in_tree:
            in_tree.add(u)
            u = nxt[u]
    return nxt


def shuffle_codes(codes: np.ndarray, n: int, rng: np.random.Generator, n_letters: int) -> np.ndarray:
    """``n`` uniform dinucleotide shuffles of an integer-coded sequence, shape ``(n, L)``."""
    length = len(codes)
    out = np.empty((n, length), dtype=codes.dtype)
    if length < 3:
        out[:] = codes
        return out
    exits = _exits(codes, n_letters)
    first, last = int(codes[0]), int(codes[-1])
    for k in range(n):
        tree = _last_exit_tree(exits, last, rng)
        orders = []
        for v, targets in enumerate(exits):
            targets = list(targets)
            if v in tree:
                targets.remove(tree[v])
                order = [targets[i] for i in rng.permutation(len(targets))] + [tree[v]]
            else:
                order = [targets[i] for i in rng.permutation(len(targets))]
            orders.append(order)
        position = [0] * n_letters
        walk = [first]
        u = first
        for _ in range(length - 1):
            v = orders[u][position[u]]
            position[u] += 1
            walk.append(v)
            u = v
        out[k] = walk
    return out


def count_dinucleotide_shuffles(sequence: str) -> int:
    """How many distinct sequences share ``sequence``'s dinucleotide counts (BEST theorem)."""
    letters = sorted(set(sequence))
    codes = np.array([letters.index(c) for c in sequence])
    if len(codes) < 3:
        return 1
    exits = _exits(codes, len(letters))
    root = int(codes[-1])
    vertices = [v for v in range(len(letters)) if exits[v] or v == root]
    # Arborescences toward the root: determinant of the out-degree Laplacian without the root row/column.
    others = [v for v in vertices if v != root]
    matrix = [[Fraction(0)] * len(others) for _ in others]
    for i, u in enumerate(others):
        for w in exits[u]:
            matrix[i][i] += 1
            if w != root:
                matrix[i][others.index(w)] -= 1
    trees = _determinant(matrix)
    count = Fraction(trees) * math.factorial(len(exits[root]))
    for v in others:
        count *= math.factorial(len(exits[v]) - 1)
    for u in vertices:
        for w in set(exits[u]):
            count /= math.factorial(exits[u].count(w))
    return int(count)


def _determinant(matrix) -> Fraction:
    m = [row[:] for row in matrix]
    det = Fraction(1)
    for i in range(len(m)):
        pivot = next((r for r in range(i, len(m)) if m[r][i] != 0), None)
        if pivot is None:
            return Fraction(0)
        if pivot != i:
            m[i], m[pivot] = m[pivot], m[i]
            det = -det
        det *= m[i][i]
        for r in range(i + 1, len(m)):
            factor = m[r][i] / m[i][i]
            for c in range(i, len(m)):
                m[r][c] -= factor * m[i][c]
    return det


def dinucleotide_shuffle(sequence: str, n: int, seed: int = 0) -> list[str]:
    """``n`` shuffles of ``sequence`` keeping its exact dinucleotide counts, uniform over all such.

    Works for any alphabet (N and lowercase letters are letters of their own). Seeded: the same
    ``(sequence, n, seed)`` gives the same shuffles.
    """
    letters = sorted(set(sequence))
    codes = np.array([letters.index(c) for c in sequence], dtype=np.int64)
    shuffled = shuffle_codes(codes, n, _generator(seed, 0), len(letters))
    return ["".join(letters[c] for c in row) for row in shuffled]


def one_hot_to_codes(one_hot: np.ndarray) -> np.ndarray:
    """``(L, 4)`` one-hot → letter codes 0-3, and 4 for an all-zero row (N)."""
    codes = one_hot.argmax(-1)
    codes[one_hot.sum(-1) == 0] = 4
    return codes


def codes_to_one_hot(codes: np.ndarray) -> np.ndarray:
    table = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), np.float32)])
    return table[codes]


def shuffled_references(one_hot: np.ndarray, n: int, seed: int, start_index: int = 0,
                        names=None) -> np.ndarray:
    """``n`` dinucleotide shuffles of each sequence in ``one_hot`` ``(N, L, 4)``: ``(N, n, L, 4)``.

    Sequence ``i`` of the chunk is shuffled with a generator from ``(seed, start_index + i)``, so
    the references do not depend on how the input is chunked. N (an all-zero row) is shuffled as a
    fifth letter. A sequence whose only valid shuffle is itself gets a warning.
    """
    out = np.empty((len(one_hot), n) + one_hot.shape[1:], dtype=np.float32)
    for i, seq in enumerate(one_hot):
        codes = one_hot_to_codes(seq)
        rng = _generator(seed, start_index + i)
        shuffles = shuffle_codes(codes, n, rng, 5)
        if n and np.all(shuffles == codes):
            text = "".join("ACGTN"[c] for c in codes)
            if count_dinucleotide_shuffles(text) == 1:
                label = names[i] if names is not None else f"#{start_index + i}"
                warnings.warn(f"sequence {label} has a single dinucleotide shuffle (itself); "
                              "its references equal the input and its scores are zero", stacklevel=2)
        out[i] = codes_to_one_hot(shuffles)
    return out


def parse_background(text_or_values) -> np.ndarray:
    """A background composition ``(4,)`` for A, C, G, T: from 'a,c,g,t' or four numbers."""
    if isinstance(text_or_values, str):
        try:
            values = [float(v) for v in text_or_values.split(",")]
        except ValueError:
            raise SeqliftError(f"background '{text_or_values}' is not four comma-separated numbers (A,C,G,T)") from None
    else:
        values = [float(v) for v in text_or_values]
    if len(values) != 4:
        raise SeqliftError(f"background needs 4 values (A,C,G,T), got {len(values)}")
    background = np.array(values, dtype=np.float64)
    if np.any(background < 0):
        raise SeqliftError(f"background {values} has a negative frequency")
    if abs(background.sum() - 1.0) > 1e-3:
        raise SeqliftError(f"background {values} sums to {background.sum():.4g}, not 1")
    return (background / background.sum()).astype(np.float32)


def frequency_reference(background, length: int) -> np.ndarray:
    """The ACGT-frequency reference: the background composition at every position, ``(1, L, 4)``."""
    return np.broadcast_to(np.asarray(background, np.float32), (1, length, 4)).copy()


def composition(one_hot: np.ndarray) -> np.ndarray:
    """ACGT composition of a set of one-hot sequences ``(N, L, 4)`` (N positions ignored)."""
    counts = one_hot.reshape(-1, 4).sum(0).astype(np.float64)
    if counts.sum() == 0:
        return np.full(4, 0.25, np.float32)
    return (counts / counts.sum()).astype(np.float32)
