"""Weights released in the repository (``releases/<name>/``), treated as data: each folder holds the
weights file and ``release.json``, which names the file, its sha256 and size, the command and config
that made it, and what it scores. Nothing is loaded before its hash is checked, so a truncated,
half-copied or edited file is refused with one line that says how to get the right one back.

The releases folder is the repository's ``releases/`` unless a ``root`` is passed or the environment
variable ``PONA_RELEASES`` names another (tests, or weights kept outside the checkout).

Layout and conventions: docs/releases.md.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.checkpoint import file_sha256

RELEASES_DIR = Path(__file__).resolve().parent.parent / "releases"
ROOT_ENV = "PONA_RELEASES"
MANIFEST = "release.json"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SHA256 = re.compile(r"[0-9a-f]{64}")
RELEASED_PREFIX = "released:"  # how a config names a release where it also accepts a path: released:<name>
# the file format of a released ResNet trunk (made by reid.release, read by re-ID starts and by the generator's
# optional identity term); defined here because both packages read it and neither imports the other
TRUNK_RELEASE_FORMAT = "reid-trunk-release"
TRUNK_BACKBONES = ("resnet50", "resnet34", "resnet18")  # the torchvision ResNets such a release may hold
HOW_TO_MAKE = "make it with `python -m pona_model.release --checkpoint ... --name {name}` (docs/releases.md)"


class ReleaseError(ValueError):
    """A released file is missing, altered or not described by its manifest."""


@dataclass(frozen=True)
class Release:
    """A verified release: ``path`` is the weights file whose sha256 matched the manifest."""

    name: str
    path: Path
    sha256: str
    manifest: dict[str, Any]


def releases_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$PONA_RELEASES``, else the repository's ``releases/`` (read at each call, so a
    test or a user can point it elsewhere without reimporting)."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ROOT_ENV, "")
    return Path(env) if env else RELEASES_DIR


def check_name(name: str) -> str:
    """A release name is one folder name: letters, digits, ``.``, ``_``, ``-`` (never a path)."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or name in (".", ".."):
        raise ReleaseError(f"release name {name!r} is not a folder name: use letters, digits, '.', '_' and '-' "
                           "(e.g. pona-synth)")
    return name


def named_release(spec: str | os.PathLike) -> str | None:
    """``NAME`` of the spelling ``released:NAME`` (checked as a folder name), None for anything else
    (a path, or a config word such as ``imagenet``)."""
    text = str(spec)
    return check_name(text[len(RELEASED_PREFIX):]) if text.startswith(RELEASED_PREFIX) else None


def release_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    return releases_root(root) / check_name(name)


def available(root: str | os.PathLike | None = None) -> list[str]:
    """The release names under ``root`` (default: see ``releases_root``)."""
    base = releases_root(root)
    if not base.is_dir():
        return []
    return sorted(p.parent.name for p in base.glob(f"*/{MANIFEST}") if not p.parent.name.startswith("."))


def _where(root: str | os.PathLike | None) -> str:
    """Which releases folder was searched and why, for the 'not found' line."""
    if root is None and os.environ.get(ROOT_ENV):
        return f" (releases folder from ${ROOT_ENV})"
    return ""


def read_manifest(name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """``release.json`` of release ``name``, checked for the entries verification needs."""
    folder = release_dir(name, root)
    manifest_path = folder / MANIFEST
    restore = f"restore it with `git checkout -- {manifest_path}`"
    if not manifest_path.is_file():
        names = ", ".join(available(root)) or "none"
        raise ReleaseError(f"no released weights named {name!r}: {manifest_path} does not exist{_where(root)} "
                           f"(released: {names}); fetch the repository's releases/ or "
                           + HOW_TO_MAKE.format(name=name))
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = " ".join(str(exc).split())
        raise ReleaseError(f"{manifest_path} is not valid JSON ({reason}); {restore}") from exc
    if not isinstance(manifest, dict):
        raise ReleaseError(f"{manifest_path} holds a JSON {type(manifest).__name__}, not an object; {restore}")
    for key in ("file", "sha256", "bytes"):
        if key not in manifest:
            raise ReleaseError(f"{manifest_path} has no {key!r} entry; {restore}")
    file, digest, size = manifest["file"], manifest["sha256"], manifest["bytes"]
    if not isinstance(file, str) or not NAME.fullmatch(file):
        raise ReleaseError(f"{manifest_path}: 'file' must name a file inside {folder}, got {file!r}; {restore}")
    if not isinstance(digest, str) or not SHA256.fullmatch(digest):
        raise ReleaseError(f"{manifest_path}: 'sha256' must be 64 lowercase hex digits, got {digest!r}; {restore}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ReleaseError(f"{manifest_path}: 'bytes' must be a non-negative integer, got {size!r}; {restore}")
    return manifest


def verify_release(name: str, root: str | os.PathLike | None = None) -> Release:
    """The release's weights file after checking its size and sha256 against ``release.json``."""
    manifest = read_manifest(name, root)
    path = release_dir(name, root) / manifest["file"]
    retrain = " ".join(str(manifest.get("command") or "see its model card").split())  # one line
    fix = f"restore it with `git checkout -- {path}` (or retrain it: {retrain})"
    if not path.is_file():
        raise ReleaseError(f"released weights {path} are missing; {fix}")
    size = path.stat().st_size
    if size != manifest["bytes"]:
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


def verify_trunk_release(name: str, root: str | os.PathLike | None = None, *, role: str = "a re-ID trunk") -> Release:
    """``verify_release``, then the manifest must say it is a ResNet trunk made by ``python -m reid.release``;
    ``role`` names what the caller wants it for in the one-line error."""
    release = verify_release(name, root)
    manifest = release.manifest
    if manifest.get("format") != TRUNK_RELEASE_FORMAT or manifest.get("backbone") not in TRUNK_BACKBONES:
        raise ReleaseError(f"release {name!r} holds {manifest.get('format', 'unknown')!r} weights, not {role} "
                           f"({TRUNK_RELEASE_FORMAT}); name a release made by python -m reid.release")
    return release
