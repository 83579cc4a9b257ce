"""The local dask cluster runs whole stages, and stages start processes of their own."""

from __future__ import annotations

import multiprocessing

from augment.scheduler import dask_client


def _starts_a_process(_: int) -> int:
    child = multiprocessing.get_context("spawn").Process(target=print, args=("child",))
    child.start()  # a daemonic worker would raise "daemonic processes are not allowed to have children"
    child.join()
    return child.exitcode


def test_a_local_cluster_worker_may_start_data_loader_processes():
    with dask_client("local", 1) as client:
        assert client.submit(_starts_a_process, 0).result() == 0


def _loader_start_method(_: int) -> str:
    from runtime.device import loader_context

    return loader_context(1).get_start_method()


def _default_start_method(_: int) -> str:
    return multiprocessing.get_start_method()


def test_data_loaders_fork_even_where_the_process_default_is_spawn():
    """A dask worker defaults to spawn; a spawned loader re-imports torch for every epoch's loader."""
    from runtime.device import loader_context

    assert loader_context(0) is None  # the DataLoader takes no context without workers
    if "fork" not in multiprocessing.get_all_start_methods():
        return
    with dask_client("local", 1) as client:
        assert client.submit(_default_start_method, 0).result() == "spawn"
        assert client.submit(_loader_start_method, 0).result() == "fork"
