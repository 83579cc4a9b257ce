"""PATN's annotation and pair files: strict readers with errors that say where and how to fix, and writers.

Annotation CSV (``market-annotation-{train,test}.csv``): ``:``-separated, header
``name:keypoints_y:keypoints_x``, each coordinate field a JSON list of 18 integers, -1 = missing.
PATN's own files put a space after each ``:``; fields are stripped, so both spellings read.
Pairs CSV (``market-pairs-{train,test}.csv``): ``,``-separated, header ``from,to``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from poseformats.keypoints import MISSING, N_JOINTS, has_torso
from runtime.atomic import atomic_write_text

ANNOTATION_HEADER = "name:keypoints_y:keypoints_x"
PAIRS_HEADER = "from,to"
# PATN drops images of these "identities": -1 is Market-1501 junk, 0000 its distractors.
EXCLUDED_PREFIXES = ("-1", "0000")


class FormatError(ValueError):
    """A malformed annotation or pairs file; the message names the file, the 1-based line and a fix."""

    def __init__(self, path: str | os.PathLike, line: int, problem: str, fix: str) -> None:
        self.path = Path(path)
        self.line = line
        super().__init__(f"{path}, line {line}: {problem}. {fix}")


def _read_rows(path: Path, kind: str, producer: str, header: str, header_fix: str) -> list[str]:
    """The lines of a ``kind`` file after its header line (file line 2 on), the header checked first;
    ``producer`` says where such a file comes from, ``header_fix`` what the header must be."""
    if not path.is_file():
        raise FileNotFoundError(f"{kind} file {path} does not exist; {producer}")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != header:
        found = repr(lines[0].strip()) if lines else "an empty file"
        raise FormatError(path, 1, f"expected the header {header!r}, found {found}", header_fix)
    return lines[1:]


def _parse_coordinates(path: Path, line_no: int, field: str, axis: str) -> list[int]:
    fix = f"write keypoints_{axis} as a JSON list of 18 integers, e.g. [12, 30, -1, ...]"
    try:
        values = json.loads(field)
    except json.JSONDecodeError as exc:
        raise FormatError(path, line_no, f"keypoints_{axis} is not valid JSON ({exc.msg})", fix) from None
    if not isinstance(values, list):
        raise FormatError(path, line_no, f"keypoints_{axis} is a {type(values).__name__}, not a list", fix)
    if len(values) != N_JOINTS:
        raise FormatError(path, line_no, f"keypoints_{axis} has {len(values)} values, not {N_JOINTS}", fix)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FormatError(
                path, line_no, f"keypoints_{axis} holds the non-integer {value!r}",
                "coordinates are pixel indices: round them to integers, and use -1 for a missing joint",
            )  # fmt: skip
        if value < MISSING:
            raise FormatError(
                path, line_no, f"keypoints_{axis} holds {value}, below -1",
                "a coordinate is a pixel index >= 0, or -1 for a missing joint",
            )  # fmt: skip
    return values


def check_name(path: Path, line_no: int, name: str) -> None:
    """An image name is a file name inside the images folder: no folders, no '..', not absolute, so
    a crafted CSV cannot make a reader open a file outside that folder."""
    if "/" in name or "\\" in name or name in (".", "..") or Path(name).is_absolute():
        raise FormatError(path, line_no, f"image name {name!r} is not a plain file name",
                          "names are file names inside the images folder (no '/', no '..')")


def read_annotations(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an annotation CSV into {image name: (18, 2) int32 (y, x)}, in file order."""
    path = Path(path)
    rows = _read_rows(
        path, "annotation",
        "it is made by running the pose estimator over the image folder, or taken from PATN's "
        "market-annotation-train.csv / market-annotation-test.csv",
        ANNOTATION_HEADER, "the first line must be exactly that header, fields separated by ':'",
    )  # fmt: skip
    keypoints: dict[str, np.ndarray] = {}
    first_line: dict[str, int] = {}
    for line_no, line in enumerate(rows, start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(":")]
        if len(fields) != 3:
            raise FormatError(
                path,
                line_no,
                f"{len(fields)} ':'-separated fields, expected 3",
                "each row is name:[18 y values]:[18 x values]",
            )
        name, y_field, x_field = fields
        if not name:
            raise FormatError(path, line_no, "the image name is empty", "put the image's file name first")
        check_name(path, line_no, name)
        if name in first_line:
            raise FormatError(
                path,
                line_no,
                f"{name!r} was already annotated on line {first_line[name]}",
                "keep one row per image",
            )
        ys = _parse_coordinates(path, line_no, y_field, "y")
        xs = _parse_coordinates(path, line_no, x_field, "x")
        first_line[name] = line_no
        keypoints[name] = np.stack([np.asarray(ys), np.asarray(xs)], axis=1).astype(np.int32)
    return keypoints


def write_annotations(path: str | os.PathLike, keypoints: Mapping[str, np.ndarray]) -> None:
    """Write {image name: (18, 2) (y, x)} as an annotation CSV, atomically, in mapping order."""
    rows = [ANNOTATION_HEADER]
    for name, kp in keypoints.items():
        if not name or any(c in name for c in ":\n\r"):
            raise ValueError(f"image name {name!r} cannot be written: it is empty or holds ':' or a newline")
        kp = np.asarray(kp)
        if kp.shape != (N_JOINTS, 2) or not np.issubdtype(kp.dtype, np.integer):
            raise ValueError(
                f"keypoints of {name!r} must be an integer (18, 2) array, got {kp.dtype} {kp.shape}"
            )
        if (kp < MISSING).any():
            raise ValueError(f"keypoints of {name!r} hold values below -1: {kp.min()}")
        rows.append(f"{name}:{json.dumps(kp[:, 0].tolist())}:{json.dumps(kp[:, 1].tolist())}")
    atomic_write_text(path, "\n".join(rows) + "\n")


def read_pairs(path: str | os.PathLike, known_names: Collection[str] | None = None) -> pd.DataFrame:
    """Read a pairs CSV into a DataFrame with string columns ``from`` and ``to``, in file order.

    With ``known_names`` (e.g. the annotation dict) every name must be in it, so a stale pairs file
    fails here rather than in the middle of training.
    """
    path = Path(path)
    rows = _read_rows(
        path, "pairs",
        "it is made from an annotation file with build_pairs / write_pairs, or taken from PATN's "
        "market-pairs-train.csv / market-pairs-test.csv",
        PAIRS_HEADER, "the first line must be exactly 'from,to'",
    )  # fmt: skip
    sources: list[str] = []
    targets: list[str] = []
    unknown: list[tuple[int, str]] = []
    for line_no, line in enumerate(rows, start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2 or not all(fields):
            raise FormatError(
                path,
                line_no,
                f"expected two non-empty ','-separated names, found {line!r}",
                "each row is condition_image_name,target_image_name",
            )
        for name in fields:
            check_name(path, line_no, name)
        if known_names is not None:
            unknown.extend((line_no, n) for n in fields if n not in known_names)
        sources.append(fields[0])
        targets.append(fields[1])
    if unknown:
        line_no, name = unknown[0]
        raise FormatError(
            path,
            line_no,
            f"{name!r} has no annotation ({len(unknown)} such names in the file)",
            "rebuild the pairs from the annotation file in use, or annotate the missing images",
        )
    return pd.DataFrame({"from": sources, "to": targets}, dtype=object)


def write_pairs(path: str | os.PathLike, pairs: pd.DataFrame) -> None:
    """Write a DataFrame with columns ``from`` and ``to`` as a pairs CSV, atomically, in row order."""
    missing = {"from", "to"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs need the columns 'from' and 'to'; missing {sorted(missing)}")
    rows = [PAIRS_HEADER]
    for a, b in zip(pairs["from"], pairs["to"], strict=True):
        a, b = str(a), str(b)
        if not a or not b or any(c in a + b for c in ",\n\r"):
            raise ValueError(
                f"pair ({a!r}, {b!r}) cannot be written: a name is empty or holds ',' or a newline"
            )
        rows.append(f"{a},{b}")
    atomic_write_text(path, "\n".join(rows) + "\n")


def identity_of(name: str) -> str:
    """The person identity of an image: its file name up to the first ``_`` (all of it if there is none)."""
    return name.split("_", 1)[0]


def build_pairs(
    keypoints: Mapping[str, np.ndarray],
    *,
    n: int | None = None,
    max_per_identity: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """PATN's training pairs: all ordered pairs (a, b), a != b, of images of the same identity.

    Only images with both shoulders and both hips (``has_torso``) whose names do not start with
    ``-1`` or ``0000`` take part. ``max_per_identity`` keeps at most that many pairs of each identity,
    then ``n`` at most that many pairs overall (all of them when fewer exist), both drawn without
    replacement by one numpy Generator seeded with ``seed``, identities visited in sorted order.
    The rows always come sorted by (from, to), whatever was sampled: the same inputs and seed give
    the same table.
    """
    if (n is not None and n < 0) or (max_per_identity is not None and max_per_identity < 0):
        raise ValueError(f"n and max_per_identity must be >= 0, got {n} and {max_per_identity}")
    by_identity: dict[str, list[str]] = {}
    for name, kp in keypoints.items():
        if name.startswith(EXCLUDED_PREFIXES) or not has_torso(np.asarray(kp)):
            continue
        by_identity.setdefault(identity_of(name), []).append(name)

    rng = np.random.default_rng(seed)
    sources: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for identity in sorted(by_identity):
        names = np.array(sorted(by_identity[identity]), dtype=object)
        a, b = np.nonzero(~np.eye(len(names), dtype=bool))  # row-major: sorted by (from, to)
        if max_per_identity is not None and len(a) > max_per_identity:
            keep = np.sort(rng.choice(len(a), size=max_per_identity, replace=False))
            a, b = a[keep], b[keep]
        sources.append(names[a])
        targets.append(names[b])
    pairs = pd.DataFrame({
        "from": np.concatenate(sources) if sources else np.array([], dtype=object),
        "to": np.concatenate(targets) if targets else np.array([], dtype=object),
    }, dtype=object)  # fmt: skip
    if n is not None and len(pairs) > n:
        pairs = pairs.iloc[np.sort(rng.choice(len(pairs), size=n, replace=False))]
    return pairs.sort_values(["from", "to"], kind="stable").reset_index(drop=True)
