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
