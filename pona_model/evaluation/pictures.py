"""The pictures written beside the scores: a comparison grid and a same-person-many-poses sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pona_model.comparison import SheetBlock, comparison_grid, enlarge, pose_sheet, save_png
from pona_model.evaluation.loading import PairImages
from pona_model.evaluation.pairs import ScoredPair

PICTURE_MIN_CELL = 128  # pictures of smaller images are enlarged by an integer factor (nearest neighbour)


def write_pictures(out: Path, pairs: list[ScoredPair], loader: PairImages, grid_pairs: int, sheet_conditions: int,
                    sheet_poses: int) -> dict[str, Any]:
    """The comparison grid and the same-person-many-poses sheet beside ``out``; paths or skip reasons."""
    assert loader.size is not None
    factor = -(-PICTURE_MIN_CELL // loader.size[0])
    files: dict[str, Any] = {"picture_scale": factor}
    if grid_pairs > 0:
        picks = np.unique(np.linspace(0, len(pairs) - 1, min(grid_pairs, len(pairs))).round().astype(int)).tolist()
        rows = [(loader.condition(pairs[i]), pairs[i]) for i in picks]
        rows = [(c, p) for c, p in rows if c is not None]
        if rows:
            grid = comparison_grid([c for c, _ in rows], [loader.target_keypoints(p) for _, p in rows],
                                   [loader.generated(p) for _, p in rows], [loader.target(p) for _, p in rows])
            files["grid"] = str(out.with_name(out.stem + "_grid.png"))
            save_png(files["grid"], enlarge(grid, factor))
        else:
            files["grid"] = {"skipped": "no condition image available (pass images=DIR)"}
    if sheet_conditions > 0 and sheet_poses > 0:
        by_source: dict[str, list[ScoredPair]] = {}
        for p in pairs:
            if p.source is not None:
                by_source.setdefault(p.source, []).append(p)
        ranked = sorted(by_source.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:sheet_conditions]
        blocks = []
        for _, group in ranked:
            chosen = group[:sheet_poses]
            condition = loader.condition(chosen[0])
            if condition is None:
                continue
            blocks.append(SheetBlock(condition, [loader.target_keypoints(p) for p in chosen],
                                     {"generated": [loader.generated(p) for p in chosen]},
                                     [loader.target(p) for p in chosen]))
        if blocks:
            files["sheet"] = str(out.with_name(out.stem + "_sheet.png"))
            save_png(files["sheet"], enlarge(pose_sheet(blocks), factor))
            files["sheet_layout"] = ("per condition image: row 1 condition | target poses; row 2 generated; "
                                     "row 3 real targets")
        else:
            files["sheet"] = {"skipped": "no condition image available (pass images=DIR)"}
    return files

