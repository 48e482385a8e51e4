"""Dinucleotide shuffles (exact, uniform, seeded), backgrounds and frequency references (seqlift.references)."""

import collections
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seqlift
from seqlift import SeqliftError
from seqlift import references as refs
from seqlift.sequences import decode, one_hot_encode


def dinucleotides(seq):
    return collections.Counter(seq[i:i + 2] for i in range(len(seq) - 1))


def all_shuffles(seq):
    """Every sequence with seq's dinucleotide counts, by walking the multigraph of its dinucleotides."""
    exits = collections.defaultdict(collections.Counter)
    for a, b in zip(seq, seq[1:]):
        exits[a][b] += 1
    found = set()

    def walk(path, remaining):
        if remaining == 0:
            found.add("".join(path))
            return
        for nxt, count in list(exits[path[-1]].items()):
            if count:
                exits[path[-1]][nxt] -= 1
                walk(path + [nxt], remaining - 1)
                exits[path[-1]][nxt] += 1

    walk([seq[0]], len(seq) - 1)
    return found


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ACGTN", min_size=0, max_size=80), st.integers(0, 2**31 - 1))
def test_every_shuffle_keeps_the_exact_dinucleotide_counts(seq, seed):
    for shuffled in seqlift.dinucleotide_shuffle(seq, 5, seed):
        assert dinucleotides(shuffled) == dinucleotides(seq)
        assert len(shuffled) == len(seq)
        assert shuffled[:1] == seq[:1] and shuffled[-1:] == seq[-1:]


def test_shuffles_are_uniform_over_all_valid_shuffles():
    seq = "ACCCACGATGATG"
    valid = all_shuffles(seq)
    assert len(valid) == 27 == seqlift.count_dinucleotide_shuffles(seq)
    draws = 27 * 400
    counts = collections.Counter(seqlift.dinucleotide_shuffle(seq, draws, seed=3))
    assert set(counts) == valid  # the keep-the-original-last-exit shortcut reaches only 9 of them
    expected = draws / 27
    chi2 = sum((counts[s] - expected) ** 2 / expected for s in valid)
    assert chi2 < 54.1  # 26 degrees of freedom, p = 0.001


@pytest.mark.parametrize("seq", ["ACGTTGCAAGT", "AAAACCCGGT", "GATTACAGATTACA", "ACNNACGNA"])
def test_shuffle_count_formula_matches_enumeration(seq):
    assert seqlift.count_dinucleotide_shuffles(seq) == len(all_shuffles(seq))


def test_same_seed_same_shuffles_and_chunking_does_not_matter():
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (6, 40))]
    whole = refs.shuffled_references(x, 4, seed=11)
    parts = np.concatenate([refs.shuffled_references(x[:2], 4, seed=11, start_index=0),
                            refs.shuffled_references(x[2:], 4, seed=11, start_index=2)])
    assert np.array_equal(whole, parts)
    assert np.array_equal(whole, refs.shuffled_references(x, 4, seed=11))
    assert not np.array_equal(whole, refs.shuffled_references(x, 4, seed=12))
    assert seqlift.dinucleotide_shuffle("ACGTAGCTAGGA", 3, 5) == seqlift.dinucleotide_shuffle("ACGTAGCTAGGA", 3, 5)


def test_shuffles_do_not_depend_on_the_number_of_threads():
    import numba

    x = np.eye(4, dtype=np.float32)[np.random.default_rng(1).integers(0, 4, (9, 60))]
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = refs.shuffled_references(x, 3, seed=4)
        numba.set_num_threads(before)
        many = refs.shuffled_references(x, 3, seed=4)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, many)


def test_n_is_shuffled_as_a_fifth_letter():
    seq = "ACGNNTACGTNACGT"
    x = one_hot_encode(seq)[None]
    for row in refs.shuffled_references(x, 10, seed=0)[0]:
        assert dinucleotides(decode(row)) == dinucleotides(seq)


def test_sequence_with_a_single_valid_shuffle_warns():
    x = one_hot_encode("ACTGACTGACTG")[None]
    assert seqlift.count_dinucleotide_shuffles("ACTGACTGACTG") == 1
    with pytest.warns(UserWarning, match="single dinucleotide shuffle"):
        refs.shuffled_references(x, 3, seed=0, names=["periodic"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refs.shuffled_references(one_hot_encode("ACCCACGATGATG")[None], 3, seed=0)


@pytest.mark.parametrize("text, message", [
    ("0.3,0.2,0.5", "4 values"), ("0.5,0.5,0.5,-0.5", "negative"), ("0.3,0.3,0.3,0.3", "sums to"),
    ("a,b,c,d", "not four"),
])
def test_bad_background_is_an_error(text, message):
    with pytest.raises(SeqliftError, match=message):
        refs.parse_background(text)


def test_frequency_reference_is_the_background_everywhere():
    ref = refs.frequency_reference(refs.parse_background("0.3,0.2,0.2,0.3"), 5)
    assert ref.shape == (1, 5, 4)
    np.testing.assert_allclose(ref[0], [[0.3, 0.2, 0.2, 0.3]] * 5, rtol=1e-6)


def test_composition_of_chunks_is_that_of_the_whole_input():
    seqs = ["AACGTN", "GGGGTT", "ANNNNA"]
    whole = np.stack([one_hot_encode(s) for s in seqs])
    expected = np.array([4, 1, 5, 3], np.float32) / 13  # N positions are not counted
    np.testing.assert_allclose(refs.composition(whole), expected, rtol=1e-6)
    assert np.array_equal(refs.composition(iter([whole[:1], whole[1:]])), refs.composition(whole))
    assert np.array_equal(refs.composition(one_hot_encode("NNNN")[None]), np.full(4, 0.25, np.float32))
