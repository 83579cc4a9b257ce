"""Weights released in the repository (``releases/<name>/``), treated as data: each folder holds the
weights file and ``release.json``, which names the file, its sha256 and size, the command and config
that made it, and what it scores. Nothing is loaded before its hash is checked, so a truncated,
half-copied or edited file is refused with one line that says how to get the right one back.

Layout and conventions: docs/releases.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.checkpoint import file_sha256

RELEASES_DIR = Path(__file__).resolve().parent.parent / "releases"
MANIFEST = "release.json"


class ReleaseError(ValueError):
    """A released file is missing, altered or not described by its manifest."""


@dataclass(frozen=True)
class Release:
    """A verified release: ``path`` is the weights file whose sha256 matched the manifest."""

    name: str
    path: Path
    sha256: str
    manifest: dict[str, Any]


def release_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    return Path(root) / name if root is not None else RELEASES_DIR / name


def available(root: str | os.PathLike | None = None) -> list[str]:
    """The release names under ``root`` (default: the repository's ``releases/``)."""
    base = Path(root) if root is not None else RELEASES_DIR
    return sorted(p.parent.name for p in base.glob(f"*/{MANIFEST}")) if base.is_dir() else []


def read_manifest(name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    folder = release_dir(name, root)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        names = ", ".join(available(root)) or "none"
        raise ReleaseError(f"no released weights named {name!r}: {manifest_path} does not exist (released: {names})")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReleaseError(f"{manifest_path} is not valid JSON ({exc}); restore it with "
                           f"`git checkout -- {manifest_path}`") from exc
    for key in ("file", "sha256", "bytes"):
        if key not in manifest:
            raise ReleaseError(f"{manifest_path} has no {key!r} entry; restore it with `git checkout -- {manifest_path}`")
    return manifest


def verify_release(name: str, root: str | os.PathLike | None = None) -> Release:
    """The release's weights file after checking its size and sha256 against ``release.json``."""
    manifest = read_manifest(name, root)
    path = release_dir(name, root) / manifest["file"]
    fix = (f"restore it with `git checkout -- {path}` (or retrain it: {manifest.get('command', 'see its model card')})")
    if not path.is_file():
        raise ReleaseError(f"released weights {path} are missing; {fix}")
    size = path.stat().st_size
    if size != int(manifest["bytes"]):
        raise ReleaseError(f"released weights {path} are {size} bytes, release.json says {manifest['bytes']} "
                           f"(truncated or replaced); {fix}")
    digest = file_sha256(path)
    if digest != manifest["sha256"]:
        raise ReleaseError(f"released weights {path} have sha256 {digest[:12]}..., release.json says "
                           f"{manifest['sha256'][:12]}... (altered); {fix}")
    return Release(name, path, digest, manifest)


def write_manifest(folder: str | os.PathLike, file: str, **facts: Any) -> dict[str, Any]:
    """Describe ``folder/file`` in ``folder/release.json`` (its sha256 and size, plus ``facts``)."""
    from runtime.atomic import atomic_write_text

    folder = Path(folder)
    path = folder / file
    manifest = {"file": file, "sha256": file_sha256(path), "bytes": path.stat().st_size, **facts}
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest
