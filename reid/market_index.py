"""One pandas table of every image in a Market-1501-layout folder.

Everything downstream (the torchreid dataset, the augmentation manifest, the pose annotation of
the training set) starts from this table, so the layout problems a user can fix (wrong root, a
missing split folder, foreign file names, leaked identities, an empty split) are reported here,
once, with the file names and the fix, instead of as a shape error deep inside training. The same
index reads any folder in Market layout, e.g. a reduced or augmented training set written by the
pipeline (index it with ``splits=("train",)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from poseformats.market_names import N_CAMERAS, parse_name
from runtime.images import IMAGE_EXTENSIONS, image_files

MARKET_DIRNAME = "Market-1501-v15.09.15"
SPLIT_FOLDERS: dict[str, str] = {"train": "bounding_box_train", "query": "query",
                                 "gallery": "bounding_box_test"}
SPLITS: tuple[str, ...] = ("train", "query", "gallery")
COLUMNS = ["path", "name", "identity", "identity_str", "camera", "sequence", "frame", "box", "split", "kind"]

LAYOUT_HELP = (f"expected layout: ROOT/{{{','.join(SPLIT_FOLDERS.values())}}}/*.jpg, where ROOT is the "
               f"{MARKET_DIRNAME} folder or a folder containing it")
_SHOWN = 5  # how many offending names an error message lists


class MarketLayoutError(ValueError):
    """A Market-layout folder that cannot be indexed; the message names the files and the fix."""


def resolve_root(root: str | Path) -> Path:
    """The Market folder itself: ``root``, or ``root/Market-1501-v15.09.15`` when that exists."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise MarketLayoutError(f"Market root {path} does not exist or is not a folder; {LAYOUT_HELP}")
    nested = path / MARKET_DIRNAME
    return (nested if nested.is_dir() else path).absolute()


def split_dir(root: str | Path, split: str) -> Path:
    """The folder of one split (``train`` -> ``bounding_box_train``), checked to exist."""
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    market = resolve_root(root)
    folder = market / SPLIT_FOLDERS[split]
    if not folder.is_dir():
        present = sorted(p.name for p in market.iterdir() if p.is_dir())
        raise MarketLayoutError(
            f"{folder} is missing (the {split} split); {LAYOUT_HELP}. Folders found in {market}: "
            f"{', '.join(present) or 'none'}. To index only some splits pass splits=(...), "
            "e.g. splits=('train',) for an augmented training set")
    return folder


def _shown(items: Sequence[str]) -> str:
    more = f", ... ({len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _rows(folder: Path, split: str) -> list[dict]:
    images = image_files(folder)
    if not images:
        raise MarketLayoutError(f"{folder} (the {split} split) holds no images "
                                f"({'/'.join(sorted(IMAGE_EXTENSIONS))}); {LAYOUT_HELP}")
    rows, bad = [], []
    for path in images:
        parsed = parse_name(path.name)
        if parsed is None:
            bad.append(path.name)
            continue
        rows.append({"path": str(path), "name": path.name, "identity": parsed.identity,
                     "identity_str": parsed.identity_str, "camera": parsed.camera,
                     "sequence": parsed.sequence, "frame": parsed.frame, "box": parsed.box,
                     "split": split, "kind": parsed.kind})
    if bad:
        raise MarketLayoutError(
            f"{len(bad)} file name(s) in {folder} do not parse as Market-1501 names "
            f"(IDENTITY_cCAMERAsSEQUENCE_FRAME_BOX.jpg, e.g. 0002_c1s1_000451_03.jpg, identity -1 or digits, "
            f"camera 1..{N_CAMERAS}): {_shown(bad)}. Rename or move them out of the folder")
    return rows


def _check_disjoint(table: pd.DataFrame) -> None:
    """Train and test identities must not overlap (distractors and junk excepted)."""
    normal = table[table["kind"] == "normal"]
    train = normal[normal["split"] == "train"]
    test = normal[normal["split"] != "train"]
    shared = sorted(set(train["identity"]) & set(test["identity"]))
    if not shared:
        return
    first = shared[0]
    example_train = train.loc[train["identity"] == first, "path"].iloc[0]
    example_test = test.loc[test["identity"] == first, "path"].iloc[0]
    ids = [train.loc[train["identity"] == i, "identity_str"].iloc[0] for i in shared]
    raise MarketLayoutError(
        f"{len(shared)} identit{'y appears' if len(shared) == 1 else 'ies appear'} in both train and "
        f"test (query/gallery): {_shown(ids)}; e.g. {example_train} and {example_test}. Market-1501 "
        "train and test identities are disjoint: remove the leaked images from one side")


def verify_images(paths: Iterable[str | Path], *, progress: bool = True) -> None:
    """Decode every image fully; raise naming the files that do not decode (truncated or corrupt
    files otherwise fail only when a data loader worker reaches them)."""
    from PIL import Image
    from tqdm.auto import tqdm

    paths = list(paths)
    bad: list[str] = []
    for path in tqdm(paths, desc="decoding images", unit="img", disable=not progress):
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            bad.append(f"{path} ({type(exc).__name__}: {exc})")
    if bad:
        raise MarketLayoutError(f"{len(bad)} of {len(paths)} images do not decode: {_shown(bad)}. "
                                "Re-extract or re-generate them, or delete them")


def index_market(root: str | Path, splits: Sequence[str] = SPLITS, *, verify: bool = False,
                 progress: bool = True) -> pd.DataFrame:
    """Index every image of the given splits under ``root`` into one table.

    Columns: path, name, identity (int; 0 distractor, -1 junk), identity_str (as in the file name),
    camera (1..6), sequence, frame, box, split (train / query / gallery), kind (normal / distractor /
    junk). Rows are sorted by split (train, query, gallery) then file name. ``verify`` decodes every
    image (slow on the full dataset, so off by default) with a progress bar.
    """
    unknown = [s for s in splits if s not in SPLIT_FOLDERS]
    if unknown or not splits:
        raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {tuple(splits)}")
    ordered = [s for s in SPLITS if s in splits]
    rows: list[dict] = []
    for split in ordered:
        rows.extend(_rows(split_dir(root, split), split))
    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("identity", "camera", "sequence", "frame", "box"):
        table[column] = table[column].astype("int64")
    _check_disjoint(table)
    if verify:
        verify_images(table["path"], progress=progress)
    return table
