"""A real dask cluster, started the way a cluster user starts one (``dask scheduler`` and two
``dask worker`` processes on 127.0.0.1): a two-portion sweep runs against its tcp:// address, one
worker is killed (SIGKILL) while it holds a stage, and the sweep still finishes with the results of
the in-process sweep. Smoke-sized and bounded by timeouts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

DASK = Path(sys.executable).parent / "dask"
SWEEP = ["preset=smoke", "portions=0.5,1.0", "seeds=0", "methods=[none]", "evaluate_generator=false",
         "reid.optim.epochs=3", "reid.threads=1"]  # 3 epochs: a training long enough to be caught half-way
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lock_holders(cache: Path) -> dict[int, Path]:
    """PID -> stage folder of every process holding a stage lock now (from /proc/locks)."""
    inodes = {p.stat().st_ino: p.parent for p in cache.glob("*/*/.lock")}
    holders = {}
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[4].isdigit():
            inode = int(fields[5].split(":")[-1])
            if inode in inodes:
                holders[int(fields[4])] = inodes[inode]
    return holders


def _wait_for_cluster(address: str, n_workers: int, timeout: float) -> None:
    """Return once the scheduler answers and ``n_workers`` workers have joined it, so that the sweep
    neither times out connecting nor starts with one worker (which would leave nothing to kill)."""
    from distributed import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            with Client(address, timeout=10) as client:
                client.wait_for_workers(n_workers, timeout=max(1.0, deadline - time.monotonic()))
            return
        except OSError:  # the scheduler is not listening yet
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _sweep(out: Path, scheduler: str, timeout: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines.sweep", f"out={out}", *SWEEP,
                             f"dask.scheduler={scheduler}"], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.skipif(not DASK.exists() or not Path("/proc/locks").exists(), reason="needs the dask CLI and Linux")
def test_sweep_on_a_real_cluster_survives_a_killed_worker(tmp_path: Path) -> None:
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    workers = [subprocess.Popen([str(DASK), "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                 "--name", f"w{i}", "--local-directory", str(tmp_path / f"w{i}")],
                                env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(2)]
    procs += workers
    try:
        _wait_for_cluster(address, n_workers=2, timeout=180)  # a loaded machine starts them slowly
        sweep = _sweep(tmp_path / "cluster", address, 600)
        cache = tmp_path / "cluster" / "cache"
        killed = None
        deadline = time.monotonic() + 400
        while killed is None and time.monotonic() < deadline and sweep.poll() is None:
            for pid, folder in _lock_holders(cache).items() if cache.exists() else ():
                if pid in {w.pid for w in workers} and folder.parent.name == "train_reid":
                    os.kill(pid, signal.SIGKILL)  # a worker dies half-way through a re-ID training
                    killed = (pid, folder)
                    break
            time.sleep(0.05)
        output, _ = sweep.communicate(timeout=600)
        assert killed is not None, f"no worker was caught holding a stage (sweep exit {sweep.returncode}):\n" + output[-2000:]
        assert sweep.returncode == 0, output[-3000:]
        assert (killed[1] / "done.json").exists()  # the other worker finished the killed stage
        inprocess = _sweep(tmp_path / "inprocess", "inprocess", 600)
        output2, _ = inprocess.communicate(timeout=600)
        assert inprocess.returncode == 0, output2[-3000:]
        tables = [pd.read_csv(next((tmp_path / run).glob("sweep-*")) / "results.csv")
                  for run in ("cluster", "inprocess")]
        pd.testing.assert_frame_equal(tables[0], tables[1])  # identical mAP and rank-1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
