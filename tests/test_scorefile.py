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
