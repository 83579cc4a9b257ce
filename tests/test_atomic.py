"""Atomic writes: all or nothing under the final name, ordinary permissions."""

from __future__ import annotations

import os

import pytest

from runtime.atomic import atomic_path, atomic_write_text


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_written_file_has_the_umask_mode(tmp_path):
    atomic_write_text(tmp_path / "sub" / "b.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "sub" / "b.txt").stat().st_mode & 0o777 == 0o666 & ~mask
