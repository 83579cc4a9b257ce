"""Assemble a training set in Market-1501 layout from kept real images and synthesised ones, so any
re-ID framework reads it as it reads Market-1501 (torchreid, layumi's baseline, fast-reid).

The folder gets ``bounding_box_train/`` (real + generated images under Market names), links to the
source's ``query/`` and ``bounding_box_test/`` (so it is a complete dataset root), and
``manifest.csv`` saying where every training image came from (inside a pipeline's run folder, links
and origins are relative, so the run folder can move). It is built under a temporary name
and renamed into place at the end, so an interrupted merge never leaves a folder that looks complete.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd

from runtime.atomic import atomic_path
from runtime.portable import current_root, is_under, relative

MANIFEST = "manifest.csv"
PARTIAL_MARKER = ".merge-partial"  # in the temporary folder while it is built: "this folder is mine"
LINK_MODES = ("hardlink", "copy", "symlink")
SOURCES = {"generated": "generated", "copied_condition": "copied"}  # synthesis status -> manifest source


def _link_target(src: Path, final_dir: Path) -> str:
    """What a link in ``final_dir`` (the folder it will sit in once the merged root is renamed into place)
    points at: relative when ``src`` lies in the same movable run folder (``runtime.portable``), so a
    moved or copied run folder still resolves it; absolute otherwise (a user's dataset stays put)."""
    target = Path(os.path.abspath(src))
    root = current_root()
    if root is not None and is_under(target, root):
        return os.path.relpath(target, os.path.abspath(final_dir))
    return str(src.resolve())


def _place(src: Path, dst: Path, mode: str, final_dir: Path) -> None:
    if mode == "symlink":
        dst.symlink_to(_link_target(src, final_dir))
        return
    if mode == "hardlink":
        try:
            os.link(src, dst)
            return
        except OSError:  # another file system, or links not allowed: copy instead
            pass
    shutil.copy2(src, dst)


def merge_training_set(kept: pd.DataFrame, synthesized: pd.DataFrame | None, source_root: str | Path,
                       out: str | Path, *, link: str = "hardlink") -> pd.DataFrame:
    """Write the merged dataset root ``out``; returns its manifest (name, identity, camera, source,
    origin, condition). ``kept`` rows need ``name``, ``path``, ``identity``, ``camera``;
    ``synthesized`` is the manifest of ``augment.synthesis.synthesize`` (skipped rows are left out)."""
    if link not in LINK_MODES:
        raise ValueError(f"link must be one of {', '.join(LINK_MODES)}, got {link!r}")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; remove it or choose another output folder")
    source_root = Path(source_root)
    rows = [{"name": r.name, "identity": r.identity, "camera": r.camera, "source": "real", "origin": r.path,
             "condition": ""} for r in kept.itertuples(index=False)]
    if synthesized is not None:
        rows += [{"name": r.name, "identity": r.identity, "camera": r.camera, "source": SOURCES[r.status],
                  "origin": r.path, "condition": r.condition}
                 for r in synthesized.itertuples(index=False) if r.status != "skipped"]
    manifest = pd.DataFrame(rows, columns=["name", "identity", "camera", "source", "origin", "condition"])
    duplicated = manifest["name"][manifest["name"].duplicated()]
    if not duplicated.empty:
        raise ValueError(f"{len(duplicated)} image names occur twice (e.g. {duplicated.iloc[0]}): kept and "
                         "synthesised images must be disjoint")
    manifest = manifest.sort_values("name").reset_index(drop=True)

    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        if not (tmp / PARTIAL_MARKER).is_file():  # not one this function made: never delete it
            raise FileExistsError(f"{tmp} exists and was not made by merge_training_set; move it away")
        shutil.rmtree(tmp)
    (tmp / "bounding_box_train").mkdir(parents=True)
    (tmp / PARTIAL_MARKER).touch()
    for r in manifest.itertuples(index=False):
        _place(Path(r.origin), tmp / "bounding_box_train" / r.name, link, out / "bounding_box_train")
    for split in ("query", "bounding_box_test"):
        if (source_root / split).is_dir():
            (tmp / split).symlink_to(_link_target(source_root / split, out), target_is_directory=True)
    with atomic_path(tmp / MANIFEST) as t:  # origins inside the run folder: relative to the manifest's folder
        manifest.assign(origin=relative(list(manifest["origin"]), out)).to_csv(t, index=False)
    tmp.rename(out)
    (out / PARTIAL_MARKER).unlink()
    return manifest
