"""Reading sequences (seqlift.sequences): one-hot encoding and its errors (test_misuse.py fuzzes the readers)."""

import pytest

from seqlift import SeqliftError
from seqlift.sequences import one_hot_encode


def test_one_hot_encoding_and_errors():
    x = one_hot_encode("ACgtN")
    assert x.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    with pytest.raises(SeqliftError, match=r"record 'r1': invalid character 'X' at position 3"):
        one_hot_encode("ACXT", "r1")
