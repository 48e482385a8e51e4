"""Reading sequences (seqlift.sequences): one-hot encoding and its errors (test_misuse.py fuzzes the readers)."""

import os
import re
import time
from pathlib import Path

import pytest

from seqlift import SeqliftError
from seqlift.sequences import one_hot_encode


def test_one_hot_encoding_and_errors():
    x = one_hot_encode("ACgtN")
    assert x.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    with pytest.raises(SeqliftError, match=r"record 'r1': invalid character 'X' at position 3"):
        one_hot_encode("ACXT", "r1")


def index_and(path: Path, change) -> bytes:
    """Index ``path`` (read it once), change it with ``change(path)``, and return the index's bytes as they were."""
    from seqlift import sequences

    sequences.fasta_names(path)
    index = Path(f"{path}.fai").read_bytes()
    change(path)
    return index


def later(path: Path, seconds: int = 10):
    """Set ``path``'s modification time ``seconds`` into the future (newer than anything made now)."""
    stamp = time.time() + seconds
    os.utime(path, (stamp, stamp))


@pytest.mark.parametrize("change, problem", [
    (lambda p: p.write_text(">new\nTTTT\n" + p.read_text()), "the line before record 'a' (byte 8) is not its header"),
    (lambda p: p.write_text(p.read_text() + ">extra\nGG\n"), "the file does not end with record 'b' of 4 bp"),
    (lambda p: p.write_text(p.read_text()[:-3]), "the file does not end with record 'b' of 4 bp"),
    (lambda p: p.write_text(p.read_text().replace("CG\n>b", "CGT\n>b")), "the line before record 'b'"),
])
def test_an_index_that_does_not_match_its_fasta_is_reported_never_used_or_overwritten(tmp_path, change, problem):
    """A record prepended, appended, cut or lengthened, the old index made newer than the file: pyfaidx judged it by
    modification time and read other records' bases (and dropped the last)."""
    from seqlift.sequences import read_fasta

    fasta = tmp_path / "x.fa"
    fasta.write_text(">a desc\nACGTA\nCG\n>b\nAAAA\n")
    index = index_and(fasta, change)
    later(Path(f"{fasta}.fai"))
    with pytest.raises(SeqliftError, match=rf"x.fa.fai: this FASTA index does not match .*x.fa \({re.escape(problem)}.*\); "
                                           "remove it and seqlift indexes the FASTA again"):
        list(read_fasta(fasta))
    assert Path(f"{fasta}.fai").read_bytes() == index


def test_an_index_that_matches_is_used_whatever_the_times_and_never_rewritten(tmp_path):
    from seqlift.sequences import read_fasta

    for text in (">a desc\nACGTA\nCG\n\n>b\nAAAA\n>c\n\n", ">a\r\nACGTA\r\nCG\r\n>b\r\nAAAA", ">a\nACGTA\nCG\n>b\nAAAA"):
        fasta = tmp_path / "x.fa"
        fasta.write_text(text)
        Path(f"{fasta}.fai").unlink(missing_ok=True)
        index = index_and(fasta, later)  # the FASTA newer than its index: pyfaidx rebuilt (overwrote) it
        stamp = Path(f"{fasta}.fai").stat().st_mtime_ns
        assert [(r.name, r.sequence) for r in read_fasta(fasta)][:2] == [("a", "ACGTACG"), ("b", "AAAA")]
        assert Path(f"{fasta}.fai").read_bytes() == index and Path(f"{fasta}.fai").stat().st_mtime_ns == stamp


def test_a_stale_bgzip_index_is_reported(tmp_path):
    import pysam

    from seqlift.sequences import read_fasta

    plain, fasta = tmp_path / "x.fa", tmp_path / "x.fa.gz"
    plain.write_text(">a\nACGTA\nCG\n>b\nAAAA\n")
    pysam.tabix_compress(str(plain), str(fasta))
    index_and(fasta, lambda p: None)
    plain.write_text(">new\nTTTT\n" + plain.read_text())
    pysam.tabix_compress(str(plain), str(fasta), force=True)
    for stale in (f"{fasta}.fai", f"{fasta}.gzi"):
        later(Path(stale))
    with pytest.raises(SeqliftError, match=r"x.fa.gz.fai \(and its .gzi\): this FASTA index does not match"):
        list(read_fasta(fasta))


def test_a_stale_index_in_seqlifts_cache_is_made_again(tmp_path, monkeypatch):
    """The cache is keyed by the FASTA's size and time: a file rewritten with both kept reuses a stale index,
    which seqlift (its owner) makes again."""
    from seqlift import sequences

    folder = tmp_path / "ro"
    folder.mkdir()
    fasta = folder / "x.fa"
    fasta.write_text(">a\nACGT\n>b\nGGGG\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sequences.os, "access", lambda path, mode: Path(path) != folder)  # root may write anywhere
    assert sequences.fasta_names(fasta) == ["a", "b"]
    stat = fasta.stat()
    fasta.write_text(">b\nGGGG\n>c\nACGT\n")
    os.utime(fasta, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    monkeypatch.setattr(sequences, "_CHECKED_INDEXES", set(), raising=False)  # what this process saw is the old file
    assert [(r.name, r.sequence) for r in sequences.read_fasta(fasta)] == [("b", "GGGG"), ("c", "ACGT")]
    assert not Path(f"{fasta}.fai").exists() and len(list((tmp_path / "cache").rglob("x.fa.fai"))) == 1
