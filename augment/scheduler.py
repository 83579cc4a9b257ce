"""Where sharded work runs: in this process, on a local cluster of worker processes, or on an
existing ``dask.distributed`` cluster given by its address. Synthesis and sweeps share it.

``scheduler`` values: ``inprocess`` (dask's synchronous scheduler: no processes, easiest to debug,
the default), ``local`` (a ``LocalCluster`` of ``workers`` single-threaded processes, one GPU each
where GPUs exist), or a scheduler address such as ``tcp://10.0.0.5:8786``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


def check_scheduler(scheduler: str) -> str:
    if scheduler in ("inprocess", "local") or "://" in scheduler:
        return scheduler
    raise ValueError(f"scheduler must be inprocess, local or a dask scheduler address like tcp://HOST:8786, "
                     f"got {scheduler!r}")


@contextlib.contextmanager
def dask_client(scheduler: str, workers: int = 2) -> Iterator[Any]:
    """Yield a ``distributed.Client`` (``None`` for in-process work); the local cluster it started,
    if any, is shut down on exit."""
    check_scheduler(scheduler)
    if scheduler == "inprocess":
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler == "local":
        if workers < 1:
            raise ValueError(f"workers must be >= 1 for a local cluster, got {workers}")
        import dask

        # Non-daemonic workers: a stage run on a worker (a re-ID or generator training) starts its own
        # data-loader processes, which daemonic processes may not have.
        with dask.config.set({"distributed.worker.daemon": False}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        log.info("started a local dask cluster of %d worker processes", workers)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    client = Client(scheduler)
    log.info("connected to dask scheduler %s (%d workers)", scheduler, len(client.scheduler_info()["workers"]))
    try:
        yield client
    finally:
        client.close()


def map_tasks(client: Any, fn: Callable[[T], R], items: Sequence[T], desc: str) -> list[R]:
    """``[fn(x) for x in items]``, on the client's workers when there is one, with a progress bar;
    results come back in the order of ``items``."""
    if client is None:
        return [fn(item) for item in tqdm(items, desc=desc, unit="shard")]
    from distributed import as_completed

    futures = client.map(fn, items, pure=False)
    position = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    for future in tqdm(as_completed(futures), total=len(futures), desc=desc, unit="shard"):
        results[position[future.key]] = future.result()
    return results


def worker_device(device: str) -> str:
    """The device a task should use: with ``auto`` and several GPUs, worker N of a cluster takes
    GPU N modulo the GPU count, so each worker process owns one GPU."""
    if device != "auto":
        return device
    import torch

    if not torch.cuda.is_available():
        return "auto"
    try:
        from distributed import get_worker

        name = get_worker().name
        index = int(name) if str(name).isdigit() else 0
    except (ImportError, ValueError):
        index = 0
    return f"cuda:{index % torch.cuda.device_count()}"
