"""Scoring on a Ray cluster (``seqlift[ray]``): each worker holds the compiled model once and scores chunks;
the driver gets the scores back in input order and writes them as a single process would.

A worker that dies is restarted and its chunks are run again (Ray actor restarts and task retries), so
the output is the single-process output: references are seeded per (seed, sequence index), not per worker.
"""

from __future__ import annotations

import logging
import socket

from .errors import SeqliftError


class ChunkScorer:
    """One Ray worker: the explainer built once from ``settings`` (``pipeline.worker_settings``)."""

    def __init__(self, settings: dict):
        from .scoring import explainer_for_sequences

        self.settings = settings
        self.explainer = explainer_for_sequences(**settings["explainer"])

    def score(self, one_hot, start: int, names, extra, extra_rc=None):
        """Scores of one chunk ``(n, L, 4)`` whose first sequence is input row ``start``."""
        from .scoring import score_chunk

        return score_chunk(self.explainer, self.settings, one_hot, start, names, extra=extra, extra_rc=extra_rc)

    def score_variants(self, ids, ref, alt, start: int, nulls, extra, extra_rc=None):
        """One chunk of variants as ``effects.score_variant_chunk`` scores it in a single process."""
        from .effects import score_variant_chunk

        return score_variant_chunk(self.explainer, self.settings, ids, ref, alt, start, nulls=nulls, extra=extra,
                                   extra_rc=extra_rc)


# Seconds to wait for a Ray head at HOST:PORT to answer before giving up (ray.init itself retries for minutes).
REACH_TIMEOUT = 5.0


def check_address(address: str):
    """``--ray local|auto|HOST:PORT``, checked before any work: an address must answer on its port, so an
    unreachable cluster fails in seconds with one line instead of Ray's minutes of retries."""
    if address in ("local", "auto"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SeqliftError(f"--ray {address}: expected local, auto or HOST:PORT of a Ray head (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT).close()
    except OSError as exc:
        raise SeqliftError(f"--ray {address}: no Ray head answers there ({exc.strerror or exc}); start one with "
                           "`ray start --head`, or use --ray local") from None


def connect(address: str):
    """Start a Ray cluster on this machine (``local``) or join one (``auto`` or an address)."""
    check_address(address)
    try:
        import ray
    except ImportError:
        raise SeqliftError("--ray needs Ray: pip install 'seqlift[ray]'") from None
    try:
        ray.init(address=None if address == "local" else address, include_dashboard=False,
                 log_to_driver=False, ignore_reinit_error=True, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SeqliftError(f"--ray {address}: cannot start or join a Ray cluster ({str(exc).splitlines()[0]})") from None
    return ray


def ray_map(settings: dict, jobs, address: str, workers: int | None):
    """``(kept, result)`` for each ``(kept, method, args)`` of ``jobs``, in order: ``ChunkScorer.method(*args)`` run
    by ``workers`` Ray workers (default: one per GPU, else one), each holding the model built from ``settings``
    once; ``kept`` stays with the driver."""
    ray = connect(address)
    from ray.util import ActorPool

    gpus = int(ray.cluster_resources().get("GPU", 0))
    workers = workers or max(gpus, 1)
    remote = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_restarts=-1, max_task_retries=-1)(ChunkScorer)
    pool = ActorPool([remote.remote(settings) for _ in range(workers)])
    pending = []
    try:
        for kept, method, args in jobs:
            pool.submit(lambda actor, v: getattr(actor, v[0]).remote(*v[1]), (method, args))
            pending.append(kept)
            if len(pending) > 2 * workers:  # a bounded number in flight keeps the driver's memory flat
                yield pending.pop(0), pool.get_next()
        while pending:
            yield pending.pop(0), pool.get_next()
    finally:
        if address == "local":
            ray.shutdown()
