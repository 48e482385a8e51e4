"""Score files (seqlift.scorefile): the HDF5 layout written and read back, tasks, merging shards."""

import numpy as np
import pytest

from seqlift import SeqliftError
from seqlift.scorefile import read_scores


def test_read_scores_picks_a_task(tmp_path, write_scores):
    contrib = np.stack([np.full((2, 6, 4), 1.0), np.full((2, 6, 4), 2.0)], axis=1).astype(np.float32)
    scores = write_scores(tmp_path / "s.h5", ["a", "b"], contrib, tasks=(0, 2))
    assert read_scores(scores, 2)["contrib"][0, 0, 0] == 2.0
    assert read_scores(scores)["contrib"][0, 0, 0] == 1.0
    with pytest.raises(SeqliftError, match="task 1 is not in the file"):
        read_scores(scores, 1)


def test_one_hot_rows_are_checked_as_they_are_read(tmp_path, write_scores):
    """An all-zero position (N) is one-hot; two 1s, or a 0.5, are not: refused naming the file and sequence."""
    import h5py

    from seqlift.scorefile import ScoreFile

    for row, value in ((0, [0, 0, 0, 0]), (1, [1, 0, 1, 0]), (2, [0.5, 0.5, 0, 0])):
        path = write_scores(tmp_path / f"s{row}.h5", ["a", "b", "c"], np.ones((3, 6, 4), np.float32))
        with h5py.File(path, "r+") as h5:
            one_hot = h5["one_hot"][()]
            one_hot[row, 4] = value
            h5["one_hot"][...] = one_hot
        with ScoreFile(path) as scores:
            if row == 0:  # N
                assert scores.rows("one_hot", [0])[0, 4].tolist() == [0, 0, 0, 0]
                continue
            with pytest.raises(SeqliftError, match=rf"s{row}.h5: damaged score file: 'one_hot' of sequence "
                                                   rf"'{'abc'[row]}' \(row {row}\) is not one-hot"):
                next(scores.chunks("one_hot"))
