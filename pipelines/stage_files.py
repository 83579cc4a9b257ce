"""What a finished stage wrote, recorded so that its reuse can be checked: every file of the stage
folder with its size and SHA-256, every link with its target. A later run compares every hash before it
reuses the stage (``verify=full``, the default): a bit flip keeps a file's size, and a flipped pixel or
CSV digit would otherwise be used silently. It costs little next to a stage: on a p = 0.2 sweep's
folders (``runs/regime``) at most 0.15 s a stage beyond the checkpoints (6,694 images, 22 MB, page
cache warm).
``verify=size`` compares sizes (one ``stat`` a file) and only the checkpoints' hashes, where a half-copied
or bit-flipped file would load as garbage or fail deep in a later stage. A file that differs is damage,
never silently used: the stage runner redoes the stage.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from runtime.checkpoint import file_sha256

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")
CHECKS = ("full", "size")  # the pipeline's verify= choices, the default first


def _walk(folder: Path, skip: Collection[str]) -> Iterator[os.DirEntry[str]]:
    """Files and links below ``folder`` (links are not followed), without ``skip`` names at its top and
    temporary files (``.NAME.*.tmp``)."""
    stack = [(folder, True)]
    while stack:
        directory, top = stack.pop()
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if (top and entry.name in skip) or (entry.name.startswith(".") and entry.name.endswith(".tmp")):
                    continue
                if entry.is_symlink() or entry.is_file(follow_symlinks=False):
                    yield entry
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), False))


def record_files(folder: Path, skip: Collection[str]) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"} or {"link": target}}`` for the stage folder's outputs."""
    files: dict[str, dict[str, Any]] = {}
    for entry in _walk(folder, skip):
        name = Path(entry.path).relative_to(folder).as_posix()
        if entry.is_symlink():
            files[name] = {"link": os.readlink(entry.path)}
        else:
            files[name] = {"size": entry.stat(follow_symlinks=False).st_size, "sha256": file_sha256(entry.path)}
    return files


def total_bytes(files: dict[str, dict[str, Any]]) -> int:
    """The bytes a recorded stage holds (links count nothing)."""
    return sum(int(f.get("size", 0)) for f in files.values())


def hashed(name: str, check: str) -> bool:
    """Whether ``check`` compares this file's content, not only its size."""
    return check == "full" or name.endswith(CHECKPOINT_SUFFIXES)


def damage(folder: Path, files: dict[str, dict[str, Any]], check: str = "full") -> list[tuple[str, str]]:
    """``(relative path, how it differs)`` for each recorded output that is gone, has another size, points
    elsewhere, or has another SHA-256 (every file under ``check="full"``; checkpoints only under ``"size"``)."""
    found = []
    for name, want in files.items():
        path = folder / name
        if "link" in want:
            target = os.readlink(path) if path.is_symlink() else None
            if target != want["link"]:
                found.append((name, f"link {target!r} != {want['link']!r}" if target is not None else "missing"))
            continue
        try:
            size = path.stat().st_size if not path.is_symlink() else None
        except FileNotFoundError:
            size = None
        if size is None:
            found.append((name, "missing"))
        elif size != want["size"]:
            found.append((name, f"size {want['size']} != {size}"))
        elif hashed(name, check) and file_sha256(path) != want["sha256"]:
            found.append((name, f"sha256 {want['sha256'][:12]} != {file_sha256(path)[:12]}"))
    return found
