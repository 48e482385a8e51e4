"""Which seqlift file a path is, and each kind's reader and writer: the one place that tells score files
(``seqlift score``, ``merge``) and variant files (``seqlift variants``) apart."""

from __future__ import annotations

from dataclasses import dataclass

import h5py

from .outputs import Outputs
from .rowfile import merge_shards
from . import scorefile, variantfile
from .scorefile import ScoreFile, ScoreWriter
from .variantfile import VariantFile, VariantWriter


@dataclass(frozen=True)
class FileKind:
    """A kind of seqlift file: its ``reader`` and ``writer`` classes, what its rows are, and the dataset only it has."""

    name: str
    reader: type
    writer: type
    rows: str
    marker: str


SCORES = FileKind("scores", ScoreFile, ScoreWriter, "sequences", scorefile.MARKER)
VARIANTS = FileKind("variants", VariantFile, VariantWriter, "variants", variantfile.MARKER)
KINDS = (VARIANTS, SCORES)  # a variant file is checked first: its marker is the more specific


def file_kind(path) -> FileKind | None:
    """What seqlift file ``path`` is: ``SCORES``, ``VARIANTS``, or None (not HDF5, or neither)."""
    try:
        with h5py.File(path, "r") as h5:
            return next((kind for kind in KINDS if kind.marker in h5), None)
    except OSError:
        return None


def open_file(path, task=None) -> ScoreFile | VariantFile:
    """``path`` opened with the reader of its kind (a score file's reader names what is wrong with any other)."""
    return (file_kind(path) or SCORES).reader(path, task)


def merge(outputs: Outputs, out, shards) -> tuple[int, FileKind]:
    """Join the files of ``--shard K/N`` runs of one kind (the first shard's) into ``out`` and its TSV, in input
    order (``rowfile.merge_shards``). Returns the rows written and the kind."""
    kind = file_kind(shards[0]) or SCORES
    return merge_shards(outputs, out, shards, kind.reader, kind.writer.for_shards), kind
