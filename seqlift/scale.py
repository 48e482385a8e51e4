"""How a run scales: ``ScaleSpec`` (``--batch-size``, ``--chunk-size``, ``--shard``, ``--resume``, ``--ray``,
``--workers``, ``--device``), parsed and checked here, and the sizes it implies: sequences per chunk (the unit of
resume and of shards), the shard's rows, and sequences per compiled step from the memory estimate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import backend
from .errors import SeqliftError

if TYPE_CHECKING:
    from .engine import Explainer

# Positions (sequence × reference × bp) per chunk: ~4M keeps a chunk's references near 64 MB.
POSITIONS_PER_CHUNK = 1 << 22
# Chunks the prefetch thread prepares ahead of the one being scored.
PREFETCH_DEPTH = 2
# Share of the free memory --batch-size auto fills: the estimate is an upper bound, the rest is headroom.
MEMORY_FRACTION = 0.8
DEVICES = ("cpu", "gpu")


@dataclass(frozen=True)
class ScaleSpec:
    """How the work is cut and where it runs. None: the default (chosen from the input and the memory).

    batch_size: sequences per compiled step; chunk_size: sequences per chunk; shard: ``"K/N"``, the K-th of N
    contiguous parts of the input; resume: continue ``OUT.partial``; ray: ``local``, ``auto`` or a Ray head's
    address; workers: Ray workers; device: ``cpu`` or ``gpu``.
    """

    batch_size: int | None = None
    chunk_size: int | None = None
    shard: str | None = None
    resume: bool = False
    ray: str | None = None
    workers: int | None = None
    device: str | None = None

    @classmethod
    def parse(cls, batch_size=None, chunk_size=None, shard=None, resume=False, ray=None, workers=None,
              device=None) -> ScaleSpec:
        """The options as given (``device`` 'auto' is the default); each checked without reading anything."""
        for option, value in (("--batch-size", batch_size), ("--chunk-size", chunk_size), ("--workers", workers)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise SeqliftError(f"{option} {value}: must be a whole number of at least 1")
        if workers is not None and not ray:
            raise SeqliftError("--workers applies to --ray only (Ray workers); without --ray one process scores")
        if shard is not None:
            parse_shard(shard)
        device = None if device == "auto" else device
        if device is not None and device not in DEVICES:
            raise SeqliftError(f"--device {device}: choose auto, cpu or gpu")
        return cls(batch_size, chunk_size, shard, bool(resume), ray, workers, device)

    def check(self):
        """What needs the machine: a Ray head that answers, a GPU that is there."""
        if self.ray:
            from .cluster import check_address

            check_address(self.ray)
        if self.device == "gpu" and not backend.gpu_available():
            raise SeqliftError("--device gpu: the Keras backend sees no GPU")

    def rows(self, n: int, chunk: int) -> range:
        """The input rows this run scores (``shard_rows``)."""
        return shard_rows(self.shard, n, chunk)

    def resume_keys(self) -> dict:
        """What an in-progress file must share with this run to be continued (the scale's part)."""
        return {"batch_size": self.batch_size or 0, "shard": self.shard or ""}


def parse_shard(shard: str) -> tuple[int, int]:
    """``"K/N"`` (1-based) as ``(K, N)``."""
    k, _, total = shard.partition("/")
    if not (k.isdigit() and total.isdigit() and 1 <= int(k) <= int(total)):
        raise SeqliftError(f"--shard {shard}: expected K/N with 1 <= K <= N, e.g. 3/10")
    return int(k), int(total)


def shard_rows(shard: str | None, n: int, chunk: int) -> range:
    """The input rows of shard ``"K/N"`` (1-based): the K-th of N contiguous runs of whole chunks, so a
    shard's chunks, and so its scores, are those of the run that scores everything."""
    if shard is None:
        return range(n)
    k, total = parse_shard(shard)
    n_chunks = -(-n // chunk)
    if total > n_chunks:
        raise SeqliftError(f"--shard {shard}: the input's {n} rows make {n_chunks} chunk(s) of up to {chunk} "
                           f"(--chunk-size), fewer than {total} shards; use fewer shards or a smaller --chunk-size")
    first, stop = (k - 1) * n_chunks // total, k * n_chunks // total
    return range(first * chunk, min(stop * chunk, n))


def shard_attributes(shard: str | None, rows: range, n: int) -> dict:
    """The attributes ``seqlift merge`` checks and removes: which part of how many input rows."""
    if shard is None:
        return {}
    return {"shard": shard, "shard_first": rows.start, "shard_input_sequences": n}


def chunk_size(given: int | None, length: int, n_refs: int) -> int:
    """Sequences per chunk: fixed by the settings, so a resumed or split run has the same boundaries."""
    default = max(1, POSITIONS_PER_CHUNK // (length * n_refs))
    return given or (default // 64 * 64 or default)  # whole HDF5 chunks of 64 rows (scorefile)


def batch_size(explainer: Explainer, length: int, n_refs: int, given: int | None, n_sequences: int,
               chunk: int, windows: int = 1) -> int:
    """Sequences per compiled step. ``given`` (--batch-size) is checked against the memory estimate and
    refused, with it, when it would not fit; auto (None) takes the default pairs per step
    (``Explainer.default_pairs``) or, where they would not fit, as many whole sequences as fit in
    ``MEMORY_FRACTION`` of the free memory (a GPU's for the step, the host's for the references), and
    at least one: it is refused only when one sequence's references would not fit (``--n-refs``)."""
    on_gpu = explainer.device != "cpu" and backend.gpu_available()
    host = available_memory()
    device = backend.gpu_free_memory() if on_gpu else None
    # a chunk never exceeds the input; ``windows``: sequences scored per input row (a variant's ref and alt: 2)
    references = windows * references_memory(length, n_refs, min(chunk, n_sequences))
    per_sequence = n_refs * explainer.bytes_per_pair()
    if host is not None and references + (0 if on_gpu else per_sequence) > host:
        raise SeqliftError(f"--n-refs {n_refs} needs about {(references + per_sequence) / 2**30:.1f} GiB even at one "
                           f"sequence per step, but {host / 2**30:.1f} GiB is available; lower --n-refs"
                           + (" or --chunk-size" if chunk > 1 else ""))
    if given:
        batch = min(given, n_sequences)  # a step never exceeds the input
        for where, free, needed in (("", host, references + (0 if on_gpu else batch * per_sequence)),
                                    (" on the GPU", device, batch * per_sequence if on_gpu else 0)):
            if free is not None and needed > free:
                raise SeqliftError(f"--n-refs {n_refs} with --batch-size {given} needs about {needed / 2**30:.1f} "
                                   f"GiB{where} but {free / 2**30:.1f} GiB is available; lower --batch-size, or "
                                   "leave it out to choose what fits")
        return batch
    batch = max(1, explainer.default_pairs() // n_refs)
    free = device if on_gpu else (None if host is None else host - references)
    if free is not None:
        batch = min(batch, max(1, int(MEMORY_FRACTION * free) // per_sequence))
    return min(batch, n_sequences)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def references_memory(length: int, n_refs: int, chunk: int) -> int:
    """Bytes for the chunks of references in flight: the one scored and those ``Prefetch`` holds ready.
    chunk: sequences per chunk (``chunk_size``)."""
    return (1 + PREFETCH_DEPTH) * chunk * n_refs * length * 4 * 4 * 2  # float32 one-hot and the shuffles' copy


def estimate_memory(explainer, length: int, n_refs: int, batch_size: int | None, chunk: int) -> int:
    """Bytes for the references in flight (``references_memory``) plus one compiled step's activations
    (``Explainer.bytes_per_pair``, an upper estimate: benchmarks/memory_estimate.py measures it)."""
    pairs = (batch_size or max(1, explainer.default_pairs() // n_refs)) * n_refs
    return references_memory(length, n_refs, chunk) + pairs * explainer.bytes_per_pair()
