"""runtime.releases: a release folder verifies only when its weights file is the one release.json
describes; every way it can be damaged is refused in one line that names the file and the fix."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from runtime.releases import (
    MANIFEST,
    ROOT_ENV,
    ReleaseError,
    available,
    read_manifest,
    release_dir,
    releases_root,
    verify_release,
    write_manifest,
)

PAYLOAD = bytes(range(256)) * 8  # 2,048 known bytes
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A releases folder with one release, ``tiny``: weights.bin and its release.json."""
    folder = tmp_path / "releases" / "tiny"
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(PAYLOAD)
    write_manifest(folder, "weights.bin", command="python -m make_tiny", iterations=3)
    return tmp_path / "releases"


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def test_a_written_release_verifies_with_the_known_hash(root: Path) -> None:
    manifest = json.loads((root / "tiny" / MANIFEST).read_text())
    assert manifest == {"file": "weights.bin", "sha256": PAYLOAD_SHA, "bytes": 2048,
                        "command": "python -m make_tiny", "iterations": 3}
    release = verify_release("tiny", root)
    assert (release.name, release.path, release.sha256) == ("tiny", root / "tiny" / "weights.bin", PAYLOAD_SHA)
    assert release.manifest["iterations"] == 3
    assert available(root) == ["tiny"]


def test_the_root_comes_from_the_environment_when_not_given(root: Path, monkeypatch) -> None:
    monkeypatch.setenv(ROOT_ENV, str(root))
    assert releases_root() == root and release_dir("tiny") == root / "tiny"
    assert verify_release("tiny").sha256 == PAYLOAD_SHA
    monkeypatch.delenv(ROOT_ENV)
    assert releases_root().name == "releases" and releases_root() != root


def test_a_truncated_file_is_refused(root: Path) -> None:
    path = root / "tiny" / "weights.bin"
    path.write_bytes(PAYLOAD[:1000])
    with pytest.raises(ReleaseError) as exc:
        verify_release("tiny", root)
    line = _one_line(exc)
    assert f"released weights {path} are 1000 bytes, release.json says 2048 (truncated or replaced)" in line
    assert f"git checkout -- {path}" in line and "python -m make_tiny" in line


def test_one_altered_byte_is_refused(root: Path) -> None:
    path = root / "tiny" / "weights.bin"
    altered = bytearray(PAYLOAD)
    altered[700] ^= 1
    path.write_bytes(bytes(altered))  # same size: only the hash tells
    with pytest.raises(ReleaseError) as exc:
        verify_release("tiny", root)
    line = _one_line(exc)
    found = hashlib.sha256(bytes(altered)).hexdigest()
    assert f"{path} have sha256 {found[:12]}..., release.json says {PAYLOAD_SHA[:12]}... (altered)" in line
    assert f"git checkout -- {path}" in line


def test_a_missing_weights_file_is_refused(root: Path) -> None:
    path = root / "tiny" / "weights.bin"
    path.unlink()
    with pytest.raises(ReleaseError) as exc:
        verify_release("tiny", root)
    assert f"released weights {path} are missing; restore it with `git checkout -- {path}`" in _one_line(exc)


def test_a_missing_manifest_names_where_it_was_expected_and_how_to_make_it(root: Path) -> None:
    with pytest.raises(ReleaseError) as exc:
        verify_release("other", root)
    line = _one_line(exc)
    assert f"no released weights named 'other': {root / 'other' / MANIFEST} does not exist" in line
    assert "(released: tiny)" in line and "python -m pona_model.release --checkpoint ... --name other" in line


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "holds a JSON list, not an object"),
    ('{"file": "weights.bin", "bytes": 2048}', "has no 'sha256' entry"),
    ('{"file": "../escape.bin", "sha256": "' + "0" * 64 + '", "bytes": 1}', "'file' must name a file inside"),
    ('{"file": "weights.bin", "sha256": "abc", "bytes": 2048}', "'sha256' must be 64 lowercase hex digits"),
    ('{"file": "weights.bin", "sha256": "' + "0" * 64 + '", "bytes": "2048"}', "'bytes' must be a non-negative"),
])
def test_an_invalid_manifest_is_refused(root: Path, text: str, message: str) -> None:
    manifest = root / "tiny" / MANIFEST
    manifest.write_text(text)
    with pytest.raises(ReleaseError) as exc:
        read_manifest("tiny", root)
    line = _one_line(exc)
    assert str(manifest) in line and message in line and f"git checkout -- {manifest}" in line


@pytest.mark.parametrize("name", ["../tiny", "a/b", "", ".hidden"])
def test_a_release_name_is_one_folder_name(root: Path, name: str) -> None:
    with pytest.raises(ReleaseError, match="is not a folder name"):
        verify_release(name, root)


def test_a_folder_being_written_is_not_listed(root: Path) -> None:
    tmp = root / ".tiny.abc.tmp"
    tmp.mkdir()
    (tmp / MANIFEST).write_text("{}")
    assert available(root) == ["tiny"]
