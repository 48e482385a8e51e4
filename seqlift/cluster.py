"""Scoring on a Ray cluster (``seqlift[ray]``): each worker holds the compiled model once and scores chunks;
the driver gets the scores back in input order and writes them as a single process would.

A worker that dies is restarted and its chunks are run again (Ray actor restarts and task retries), so
the output is the single-process output: references are seeded per (seed, sequence index), not per worker.
"""

from __future__ import annotations

import logging
import socket

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping

from .errors import SeqliftError

if TYPE_CHECKING:  # the driver checks an address (``check_address``) without loading Keras
    from .scoring import ChunkSettings


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs: how to build the explainer once (``scoring.explainer_for_sequences``'s keywords) and how
    each chunk is scored (``chunk``)."""

    explainer: Mapping
    chunk: ChunkSettings


class ChunkScorer:
    """One Ray worker: the explainer built once from ``settings``; it runs whatever scoring function the driver
    sends, as the driver would run it itself."""

    def __init__(self, settings: WorkerSettings):
        from .scoring import explainer_for_sequences

        self.settings = settings
        self.explainer = explainer_for_sequences(**settings.explainer)

    def run(self, score: Callable, args: tuple):
        """``score(explainer, chunk settings, *args)``: one chunk's scores."""
        return score(self.explainer, self.settings.chunk, *args)


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


def ray_map(settings: WorkerSettings, jobs, address: str, workers: int | None):
    """``(kept, result)`` for each ``(kept, score, args)`` of ``jobs``, in order: ``score(explainer, settings.chunk,
    *args)`` run by ``workers`` Ray workers (default: one per GPU, else one), each holding the model built from
    ``settings`` once; ``kept`` stays with the driver. ``score`` is a module-level function (sent by reference)."""
    ray = connect(address)
    from ray.util import ActorPool

    gpus = int(ray.cluster_resources().get("GPU", 0))
    workers = workers or max(gpus, 1)
    remote = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_restarts=-1, max_task_retries=-1)(ChunkScorer)
    pool = ActorPool([remote.remote(settings) for _ in range(workers)])
    pending = []
    try:
        for kept, score, args in jobs:
            pool.submit(lambda actor, job: actor.run.remote(*job), (score, args))
            pending.append(kept)
            if len(pending) > 2 * workers:  # a bounded number in flight keeps the driver's memory flat
                yield pending.pop(0), pool.get_next()
        while pending:
            yield pending.pop(0), pool.get_next()
    finally:
        if address == "local":
            ray.shutdown()
