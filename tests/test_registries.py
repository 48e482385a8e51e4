"""What a newcomer adds by touching one module: an output format (destinations), an attribution method (methods) and
a layer's DeepLIFT rule (rules), each registered here from outside the package and used end to end."""

import numpy as np
import pytest

from seqlift import SeqliftError, pipeline
from seqlift.destinations import EXTRA_OUTPUTS, ExtraOutput, ScoreOutputs, register_output
from seqlift.scorefile import read_scores


class ContribNpy(ExtraOutput):
    """A new format: the projected contributions ``(N, T, L, 4)`` as one ``.npy``, streamed chunk by chunk."""

    keyword = "contrib_npy"
    help = "Also write the contributions as one .npy."

    def stream(self, outputs, value, plan):
        return _NpyStream(outputs.file(value, self.option, None))


class _NpyStream:
    def __init__(self, path):
        self.path, self.parts = path, []

    def write(self, names, one_hot, scores):
        self.parts.append(scores.contributions)

    def close(self, n):
        with open(self.path, "wb") as handle:
            np.save(handle, np.concatenate(self.parts))

    def discard(self):
        self.parts = []


@pytest.fixture
def contrib_npy():
    register_output(ContribNpy())
    yield
    del EXTRA_OUTPUTS["contrib_npy"]


def test_a_registered_output_format_is_an_option_checked_and_written(files, tmp_path, contrib_npy):
    out, npy = tmp_path / "s.h5", tmp_path / "c.npy"
    assert "contrib_npy" in ScoreOutputs.keywords()
    request = pipeline.build_request(str(files / "model.h5"), str(files / "in.fa"), out=out, contrib_npy=str(npy),
                                     n_refs=2)
    result = pipeline.run(pipeline.prepare(request, lambda n: [0, 1]))
    scores = read_scores(result.out)
    written = np.load(npy)
    assert written.shape == (9, 2, 40, 4)
    assert np.array_equal(written[:, 0], scores["contrib"])  # the file's first task, as the score file holds it
    # a file already there that the format cannot tell as its own is refused, before any work
    npy.write_text("mine")
    with pytest.raises(SeqliftError, match="--contrib-npy .*c.npy"):
        pipeline.prepare(pipeline.build_request(str(files / "model.h5"), str(files / "in.fa"), out=tmp_path / "t.h5",
                                                contrib_npy=str(npy)), lambda n: [0])
    assert npy.read_text() == "mine"


def test_registering_an_output_keyword_again_replaces_it_and_bad_keywords_are_refused(contrib_npy):
    again = register_output(ContribNpy())
    assert EXTRA_OUTPUTS["contrib_npy"] is again
    for keyword in ("out", "chrom_sizes", "not-an-identifier"):
        bad = ContribNpy()
        bad.keyword = keyword
        with pytest.raises(ValueError, match="keyword"):
            register_output(bad)
