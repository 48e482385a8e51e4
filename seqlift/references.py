"""References for one-hot DNA: dinucleotide shuffles, ACGT frequency, all zeros.

The shuffle draws uniformly among all sequences with the same dinucleotide counts (Altschul &
Erickson 1985): a random arborescence of last exits rooted at the final letter (Wilson's
algorithm), every letter's other exits in random order, then the Eulerian walk. Keeping each
letter's original last exit instead (the usual shortcut) is exact but not uniform.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable

# numba's compiled-shuffle cache goes to the user's cache folder, never into the installed package.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                                             / "seqlift" / "numba"))
import numba  # noqa: E402
import numpy as np

from .errors import SeqliftError
from .methods import DEEPLIFT, get_method
from .sequences import codes_to_one_hot, codes_to_string, encode_records, one_hot_to_codes, read_fasta


MAX_SEED = 2**32 - 1


def check_seed(seed) -> int:
    """A seed in 0 … 2³²−1 (what NumPy's seeding takes), else a one-line error."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise SeqliftError(f"seed {seed!r} is out of range: give an integer from 0 to {MAX_SEED}")
    return int(seed)


def _generator(seed: int, index: int) -> np.random.Generator:
    """One generator per sequence, from the seed and the sequence's index (chunking-independent)."""
    return np.random.default_rng([check_seed(seed), int(index)])


def _exits(codes: np.ndarray, n_letters: int) -> list[list[int]]:
    exits = [[] for _ in range(n_letters)]
    for a, b in zip(codes[:-1].tolist(), codes[1:].tolist()):
        exits[a].append(b)
    return exits


@numba.njit(cache=True)
def _shuffle_kernel(codes, n, n_letters, seed, out):  # pragma: no cover - compiled
    """``n`` uniform shuffles of ``codes`` into ``out`` ``(n, L)`` (Altschul & Erickson): see ``shuffle_codes``."""
    np.random.seed(seed)
    length = codes.shape[0]
    degree = np.zeros(n_letters, np.int64)
    for i in range(length - 1):
        degree[codes[i]] += 1
    offset = np.zeros(n_letters + 1, np.int64)
    for v in range(n_letters):
        offset[v + 1] = offset[v] + degree[v]
    targets = np.empty(length - 1, np.int64)
    fill = offset[:-1].copy()
    for i in range(length - 1):
        targets[fill[codes[i]]] = codes[i + 1]
        fill[codes[i]] += 1
    root, first = codes[length - 1], codes[0]
    order = np.empty(length - 1, np.int64)
    for k in range(n):
        # 1. Wilson's algorithm: a random arborescence of last exits rooted at the final letter, each
        #    step along a uniformly chosen exit (a tree weighted by its dinucleotide multiplicity).
        in_tree = np.zeros(n_letters, np.bool_)
        in_tree[root] = True
        nxt = np.full(n_letters, -1, np.int64)
        for start in range(n_letters):
            if degree[start] == 0 or in_tree[start]:
                continue
            u = start
            while not in_tree[u]:
                nxt[u] = targets[offset[u] + np.random.randint(degree[u])]
                u = nxt[u]
            u = start
            while not in_tree[u]:
                in_tree[u] = True
                u = nxt[u]
        # 2. every letter's other exits in uniformly random order, its last exit last
        for v in range(n_letters):
            lo, hi = offset[v], offset[v + 1]
            if hi == lo:
                continue
            order[lo:hi] = targets[lo:hi]
            end = hi
            if v != root:
                for j in range(lo, hi):  # move one copy of the last exit to the end
                    if order[j] == nxt[v]:
                        order[j], order[hi - 1] = order[hi - 1], order[j]
                        break
                end = hi - 1
            for j in range(end - 1, lo, -1):  # Fisher-Yates on [lo, end)
                r = lo + np.random.randint(j - lo + 1)
                order[j], order[r] = order[r], order[j]
        # 3. the Eulerian walk from the first letter
        position = offset[:-1].copy()
        u = first
        out[k, 0] = u
        for i in range(1, length):
            v = order[position[u]]
            position[u] += 1
            out[k, i] = v
            u = v


@numba.njit(cache=True, parallel=True, nogil=True)  # nogil: shuffles overlap scoring (pipeline's prefetch)
def _shuffle_batch(codes, n, n_letters, seeds, out):  # pragma: no cover - compiled
    """Every sequence of ``codes`` ``(N, L)`` shuffled ``n`` times into ``out`` ``(N, n, L)``, in parallel.

    Each sequence seeds the generator of the thread that runs it before drawing, so the result does
    not depend on the number of threads or on which thread takes which sequence.
    """
    for i in numba.prange(codes.shape[0]):
        _shuffle_kernel(codes[i], n, n_letters, seeds[i], out[i])


# Ours, not deeplift's dinuc_shuffle (the shortcut keeping each letter's last exit): that reaches 9 of the 27
# shuffles of ACCCACGATGATG, this one all 27 uniformly (tests/test_references.py).
def shuffle_codes(codes: np.ndarray, n: int, rng: np.random.Generator, n_letters: int) -> np.ndarray:
    """``n`` uniform dinucleotide shuffles of an integer-coded sequence, shape ``(n, L)``.

    Altschul & Erickson (1985): (1) a random spanning arborescence of last exits rooted at the final
    letter (Wilson's algorithm), (2) each letter's other exits in random order, (3) the Eulerian
    walk. Compiled with numba: the pure-Python walk managed 292 sequences/s at 1000 bp, a sixth of
    the engine's speed on an H200. ``rng`` seeds it.
    """
    codes = np.ascontiguousarray(codes, dtype=np.int8)
    out = np.repeat(codes[None], n, axis=0)
    if len(codes) >= 3:
        _shuffle_kernel(codes, n, n_letters, int(rng.integers(2**31 - 1)), out)
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
    if len(letters) > 127:
        raise SeqliftError("dinucleotide_shuffle handles at most 127 distinct letters")
    codes = np.array([letters.index(c) for c in sequence], dtype=np.int8)
    shuffled = shuffle_codes(codes, n, _generator(seed, 0), len(letters))
    return ["".join(letters[c] for c in row) for row in shuffled]


def shuffled_references(one_hot: np.ndarray, n: int, seed: int, start_index: int = 0,
                        names=None) -> np.ndarray:
    """``n`` dinucleotide shuffles of each sequence in ``one_hot`` ``(N, L, 4)``: ``(N, n, L, 4)``.

    Sequence ``i`` of the chunk is shuffled with a seed drawn from ``(seed, start_index + i)``, so
    the references do not depend on how the input is chunked. N (an all-zero row) is shuffled as a
    fifth letter. A sequence whose only valid shuffle is itself gets a warning.
    """
    codes = one_hot_to_codes(np.asarray(one_hot))
    seeds = np.array([_generator(seed, start_index + i).integers(2**31 - 1) for i in range(len(codes))], np.int64)
    shuffles = np.repeat(codes[:, None], n, axis=1)
    if codes.shape[1] >= 3 and n:
        _shuffle_batch(codes, n, 5, seeds, shuffles)
    if n:
        for i in np.flatnonzero(np.all(shuffles == codes[:, None], axis=(1, 2))):
            text = codes_to_string(codes[i])
            if count_dinucleotide_shuffles(text) == 1:
                label = names[i] if names is not None else f"#{start_index + i}"
                warnings.warn(f"sequence {label} has a single dinucleotide shuffle (itself); "
                              "its references equal the input and its scores are zero", stacklevel=2)
    return codes_to_one_hot(shuffles)


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
    if not np.all(np.isfinite(background)):
        raise SeqliftError(f"background {values} has a value that is not a finite number")
    if np.any(background < 0):
        raise SeqliftError(f"background {values} has a negative frequency")
    if abs(background.sum() - 1.0) > 1e-3:
        raise SeqliftError(f"background {values} sums to {background.sum():.4g}, not 1")
    return (background / background.sum()).astype(np.float32)


def frequency_reference(background, length: int) -> np.ndarray:
    """The ACGT-frequency reference: the background composition at every position, ``(1, L, 4)``."""
    return np.broadcast_to(np.asarray(background, np.float32), (1, length, 4)).copy()


def composition(one_hot) -> np.ndarray:
    """ACGT composition ``(4,)`` of one-hot sequences ``(N, L, 4)``, or of an iterable of such chunks
    (an input read chunk by chunk); N positions are ignored, and no base at all gives 0.25 each."""
    chunks = [one_hot] if isinstance(one_hot, np.ndarray) else one_hot
    counts = np.zeros(4, np.float64)
    for chunk in chunks:
        counts += np.asarray(chunk).reshape(-1, 4).sum(0)
    if counts.sum() == 0:
        return np.full(4, 0.25, np.float32)
    return (counts / counts.sum()).astype(np.float32)


class ReferenceKind:
    """One way of making references. ``name``: what ``--reference`` says (and the score file's ``reference``
    attribute, but for ``given``, whose FASTA path it is); ``options``: the options only this kind takes."""

    name = ""
    options: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        """How ``--reference`` names this kind in messages."""
        return self.name

    def per_input(self, spec: ReferenceSpec) -> int:
        return 1

    def for_input(self, spec: ReferenceSpec, length: int, n_inputs: int, composition) -> ReferenceSpec:
        return spec

    def make(self, spec: ReferenceSpec, one_hot: np.ndarray, start_index: int, names) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self):
        return f"ReferenceKind({self.name!r})"


class Shuffle(ReferenceKind):
    """``n_refs`` dinucleotide shuffles of each sequence, seeded (``shuffled_references``)."""

    name = "shuffle"
    options = ("--n-refs", "--seed")

    def per_input(self, spec):
        return spec.n_refs

    def make(self, spec, one_hot, start_index, names):
        return shuffled_references(one_hot, spec.n_refs, spec.seed, start_index, names)


class Frequency(ReferenceKind):
    """One reference of expected bases: the background (default: the input's composition) at every position."""

    name = "frequency"
    options = ("--background",)

    def for_input(self, spec, length, n_inputs, composition):
        return replace(spec, background=composition()) if spec.background is None else spec

    def make(self, spec, one_hot, start_index, names):
        background = spec.background if spec.background is not None else composition(one_hot)
        return frequency_reference(background, one_hot.shape[1])


class Zeros(ReferenceKind):
    """One all-zeros reference (what methods without references are scored against: ``x − 0 = x``)."""

    name = "zeros"

    def make(self, spec, one_hot, start_index, names):
        return np.zeros((1, one_hot.shape[1], 4), np.float32)


class Given(ReferenceKind):
    """References given as arrays, or read from a FASTA file (``refs_per_input`` consecutive records per input)."""

    name = "given"
    options = ("--refs-per-input",)

    @property
    def shown(self) -> str:
        return "PATH.fa"

    def per_input(self, spec):
        return spec.given.shape[-3]  # (R, L, 4) or (N, R, L, 4)

    def for_input(self, spec, length, n_inputs, composition):
        if spec.given is not None:
            return spec
        path = Path(spec.path)
        if not path.exists():
            raise SeqliftError(f"--reference {path}: not {', '.join(REFERENCE_KINDS)} or an existing FASTA file")
        _, refs = encode_records(read_fasta(path), length, path)
        if spec.refs_per_input:
            if len(refs) != n_inputs * spec.refs_per_input:
                needed = n_inputs * spec.refs_per_input
                raise SeqliftError(f"{path}: {len(refs)} reference records, but --refs-per-input "
                                   f"{spec.refs_per_input} with {n_inputs} inputs needs {needed}")
            refs = refs.reshape(n_inputs, spec.refs_per_input, length, 4)
        return replace(spec, given=refs)

    def make(self, spec, one_hot, start_index, names):
        if spec.given.ndim == 4:
            return spec.given[start_index:start_index + len(one_hot)]
        return spec.given


SHUFFLE, FREQUENCY, ZEROS, GIVEN = Shuffle(), Frequency(), Zeros(), Given()
KINDS: dict[str, ReferenceKind] = {kind.name: kind for kind in (SHUFFLE, FREQUENCY, ZEROS, GIVEN)}
# What ``--reference`` may name besides a FASTA file of references (kind 'given').
REFERENCE_KINDS = tuple(name for name, kind in KINDS.items() if kind is not GIVEN)


@dataclass(frozen=True)
class ReferenceSpec:
    """How references are made: ``kind`` names a ``ReferenceKind`` ('shuffle': ``n_refs`` per sequence,
    seeded; 'frequency', 'zeros' or 'given'), as ``--reference`` and the score file name it.

    background: ``(4,)`` ACGT composition for 'frequency' (None: the input's, see ``for_input``).
    given: ``(R, L, 4)`` shared by every input or ``(N, R, L, 4)`` per input, read from ``path``
    (``refs_per_input`` consecutive records per input) by ``for_input``.
    """

    kind: str = SHUFFLE.name
    n_refs: int = 20
    seed: int = 0
    background: np.ndarray | None = None
    given: np.ndarray | None = None
    path: str | None = None
    refs_per_input: int | None = None

    @classmethod
    def parse(cls, reference: str | None = None, n_refs=None, seed=None, background=None, refs_per_input=None,
              method=DEEPLIFT) -> ReferenceSpec:
        """The spec ``seqlift score`` was given: ``--reference`` ('shuffle', 'frequency', 'zeros' or a FASTA
        path; None: shuffle) and its options (None: not given). An option that does nothing with this
        reference or ``method`` is an error; a method that uses no references is scored against zeros."""
        text = reference or SHUFFLE.name
        kind = KINDS[text] if text in REFERENCE_KINDS else GIVEN
        method = get_method(method)
        given = {"--reference": reference, "--n-refs": n_refs, "--seed": seed, "--background": background,
                 "--refs-per-input": refs_per_input}
        for option, value in given.items():
            if value is not None and not method.uses_references:
                raise SeqliftError(f"{option} does nothing with --method {method.name}, which uses no reference")
        for option, value in given.items():
            owner = next((k for k in KINDS.values() if option in k.options), kind)
            if value is not None and owner is not kind:
                raise SeqliftError(f"{option} applies to --reference {owner.shown} only, not --reference {text}")
        if not method.uses_references:
            return cls(ZEROS.name)
        return cls(kind.name, n_refs=20 if n_refs is None else n_refs, seed=_option_seed(seed),
                   background=None if background is None else parse_background(background),
                   path=text if kind is GIVEN else None, refs_per_input=refs_per_input)

    @property
    def source(self) -> ReferenceKind:
        """The ``ReferenceKind`` that ``kind`` names."""
        if self.kind not in KINDS:
            raise SeqliftError(f"unknown reference kind '{self.kind}'")
        return KINDS[self.kind]

    @property
    def name(self) -> str:
        """What ``--reference`` said: the kind, or the references' FASTA file."""
        return self.path if self.source is GIVEN and self.path else self.kind

    @property
    def per_input(self) -> int:
        """References per input: the one place this number is worked out."""
        return self.source.per_input(self)

    def for_input(self, length: int, n_inputs: int, composition: Callable[[], np.ndarray]) -> ReferenceSpec:
        """This spec completed for an input of ``n_inputs`` sequences of ``length`` bp: a FASTA of references
        read and checked, or ``composition()`` (the input's ACGT composition) as a missing background."""
        return self.source.for_input(self, length, n_inputs, composition)

    def make(self, one_hot: np.ndarray, start_index: int, names=None) -> np.ndarray:
        """References for a chunk of sequences whose first one has global index ``start_index``."""
        return self.source.make(self, one_hot, start_index, names)

    def attributes(self) -> dict:
        """The score file's attributes for the references."""
        return {"reference": self.name, "n_refs": self.per_input, "seed": self.seed,
                "background": self.background if self.background is not None else np.zeros(0, np.float32)}


def _option_seed(seed) -> int:
    """``--seed`` (None: 0), checked, with the option named."""
    try:
        return check_seed(0 if seed is None else seed)
    except SeqliftError as exc:
        raise SeqliftError(f"--seed: {exc}") from None
