"""bigWig tracks (seqlift.tracks): values at genome coordinates, overlaps averaged, streaming, bad names."""

import numpy as np
import pyBigWig
import pytest

from seqlift import SeqliftError, tracks


def test_bigwig_values_at_known_coordinates_and_overlaps_averaged(tmp_path, write_scores):
    contrib = np.zeros((3, 10, 4), np.float32)
    contrib[0, :, 0] = np.arange(10)            # chr1:100-110 → 0..9
    contrib[1, :, 1] = 100.0                     # chr1:105-115 overlaps the first by 5 bp
    contrib[2, :, 2] = -1.0                      # chr2:0-10
    scores = write_scores(tmp_path / "s.h5", ["chr1:100-110", "chr1:105-115", "chr2:0-10"], contrib)
    (tmp_path / "sizes").write_text("chr1\t1000\nchr2\t50\n")
    out = tracks.write_bigwig_file(scores, tmp_path / "t.bw", chrom_sizes=tmp_path / "sizes")
    bw = pyBigWig.open(str(out))
    assert bw.chroms() == {"chr1": 1000, "chr2": 50}
    np.testing.assert_allclose(bw.values("chr1", 100, 105), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(bw.values("chr1", 105, 110), [(v + 100) / 2 for v in range(5, 10)])
    np.testing.assert_allclose(bw.values("chr1", 110, 115), [100] * 5)
    np.testing.assert_allclose(bw.values("chr2", 0, 10), [-1] * 10)
    assert np.isnan(bw.values("chr1", 99, 100)[0])  # nothing written outside the windows


def test_bigwig_streams_records_in_coordinate_order_whatever_the_file_order(tmp_path):
    names = ["chr2:5-9", "chr1:12-16", "chr1:0-4", "chr1:2-6", "chr1:14-18"]
    values = np.arange(20, dtype=np.float64).reshape(5, 4)
    read = []

    def read_values(ids):
        read.append(list(ids))
        return values[ids]

    out = tracks.write_bigwig(names, read_values, 4, {"chr1": 30, "chr2": 30}, tmp_path / "s.bw", block=1)
    assert read == [[2], [3], [1], [4], [0]]  # one record at a time, sorted by chromosome and start
    bw = pyBigWig.open(str(out))
    np.testing.assert_allclose(bw.values("chr1", 0, 6), [8, 9, (10 + 12) / 2, (11 + 13) / 2, 14, 15])
    np.testing.assert_allclose(bw.values("chr1", 12, 18), [4, 5, (6 + 16) / 2, (7 + 17) / 2, 18, 19])
    np.testing.assert_allclose(bw.values("chr2", 5, 9), [0, 1, 2, 3])


def test_bigwig_chain_of_overlapping_windows_is_written_in_pieces_with_exact_averages(tmp_path, monkeypatch):
    """Sliding windows chain over a whole chromosome: bases are written as they become final, so the buffer
    stays near the flush size plus one window, and every base is the mean of the windows covering it."""
    monkeypatch.setattr(tracks._Track, "FLUSH_BASES", 10)
    length, step, n = 8, 3, 60
    rng = np.random.default_rng(3)
    values = rng.normal(size=(n, length))
    names = [f"chr1:{i * step}-{i * step + length}" for i in range(n)]
    buffers = []
    add = tracks._Track.add

    def watched(self, chrom, start, row):
        add(self, chrom, start, row)
        buffers.append(len(self.total))

    monkeypatch.setattr(tracks._Track, "add", watched)
    out = tracks.write_bigwig(names, lambda ids: values[ids], length, {"chr1": 400}, tmp_path / "c.bw", block=7)
    total, count = np.zeros(400), np.zeros(400)
    for i in range(n):
        total[i * step:i * step + length] += values[i]
        count[i * step:i * step + length] += 1
    end = (n - 1) * step + length
    got = np.array(pyBigWig.open(str(out)).values("chr1", 0, end))
    np.testing.assert_allclose(got, total[:end] / count[:end], rtol=1e-6)  # float32 in the file
    assert max(buffers) <= 2 * (10 + step + length)


def test_bigwig_hypothetical_max_writes_the_strongest_base(tmp_path, write_scores):
    contrib = np.zeros((1, 4, 4), np.float32)
    contrib[0, 0] = [1, -3, 2, 0]
    scores = write_scores(tmp_path / "s.h5", ["chrX:0-4"], contrib)
    (tmp_path / "sizes").write_text("chrX\t10\n")
    bw = pyBigWig.open(str(tracks.write_bigwig_file(scores, tmp_path / "h.bw", chrom_sizes=tmp_path / "sizes",
                                                    hypothetical_max=True)))
    assert bw.values("chrX", 0, 1) == [-6.0]  # hypothetical = 2 × contrib in this file; |−6| is largest


@pytest.mark.parametrize("name, message", [
    ("seq1", "record 'seq1': name is not genome coordinates"),
    ("chr1:995-1005", "record 'chr1:995-1005': ends past chr1"),
    ("chr9:0-10", "chromosome 'chr9' is not in the chromosome sizes"),
])
def test_bigwig_bad_names_are_errors_naming_the_record(tmp_path, name, message, write_scores):
    scores = write_scores(tmp_path / "s.h5", [name], np.ones((1, 10, 4), np.float32))
    (tmp_path / "sizes").write_text("chr1\t1000\n")
    with pytest.raises(SeqliftError, match=message):
        tracks.write_bigwig_file(scores, tmp_path / "t.bw", chrom_sizes=tmp_path / "sizes")
    assert not (tmp_path / "t.bw").exists()
