"""The six-pose sheet: test people, each in several target poses, beside the real target and the oracle.

One row per person: the condition image, then for each target pose the real target, the generated image
and, where the dataset has a renderer, the oracle rendering (the condition's person in the target's exact
shot under the condition's camera: the best any generator could draw from the condition image). Under
each generated image a bar gives the limb-region verdict on that pair (``metrics.limbs``): green when it
is closer to the target than to the condition in the target's limb region, red when not, grey when the
pair is left out. All images are shown at the generator's size, enlarged by ``scale`` (nearest neighbour).

``bench/six_pose_sheet.py`` is the command; the oracle comes in as a function (``synthmarket.oracle``),
since this package does not read the renderer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw, ImageFont

from pona_model.comparison import enlarge, save_png
from pona_model.inference import LoadedGenerator
from pona_model.metrics.images import resize_rgb
from pona_model.metrics.limbs import limb_margins
from pona_model.pair_dataset import PairDataset
from pona_model.sample_grid import to_uint8
from poseformats.keypoints import has_torso
from poseformats.market_names import parse_name
from runtime.atomic import atomic_write_text

# (target name, condition name) -> the oracle image, uint8 (H, W, 3) at any size
OracleImage = Callable[[str, str], np.ndarray]

CELL_GAP, GROUP_GAP, BAR, HEADER = 2, 10, 5, 14  # pixels of the enlarged sheet
VERDICT_COLOURS = {"holds": (40, 170, 60), "fails": (210, 40, 40), "left out": (150, 150, 150)}


@dataclass
class SheetRow:
    """One person: the condition image and the target images whose poses it is generated in."""

    condition: str
    targets: list[str]


def _identity(name: str) -> str:
    parsed = parse_name(name)
    return parsed.identity_str if parsed is not None else name


def choose_rows(pairs: pd.DataFrame, annotations: Mapping[str, np.ndarray], people: int = 6,
                poses: int = 6) -> list[SheetRow]:
    """``people`` condition images of different identities, those with the most test-pair targets first
    (then by name), each with up to ``poses`` targets: its test pairs' targets in file order, then other
    annotated images of the same identity with a torso, by name."""
    targets_of: dict[str, list[str]] = {}
    for a, b in zip(pairs["from"], pairs["to"]):
        if b not in targets_of.setdefault(a, []):
            targets_of[a].append(b)
    by_identity: dict[str, list[str]] = {}
    for name in sorted(annotations):
        if has_torso(np.asarray(annotations[name])):
            by_identity.setdefault(_identity(name), []).append(name)
    rows: list[SheetRow] = []
    seen: set[str] = set()
    for condition in sorted(targets_of, key=lambda c: (-len(targets_of[c]), c)):
        identity = _identity(condition)
        if identity in seen:
            continue
        seen.add(identity)
        extra = [n for n in by_identity.get(identity, []) if n != condition and n not in targets_of[condition]]
        rows.append(SheetRow(condition, (targets_of[condition] + extra)[:poses]))
        if len(rows) == people:
            break
    return rows


def _verdict(margin: float) -> str:
    return "left out" if not np.isfinite(margin) else ("holds" if margin > 0 else "fails")


def generate_rows(model: LoadedGenerator, images: str | Path, annotations: Mapping[str, np.ndarray],
                  rows: list[SheetRow], oracle: OracleImage | None = None) -> list[dict[str, Any]]:
    """Per row: the condition image and, per target, the target, generated and oracle images (uint8 at the
    generator's size) with the pair's limb-region margin."""
    pairs = pd.DataFrame([(r.condition, t) for r in rows for t in r.targets], columns=["from", "to"])
    dataset = PairDataset(images, annotations, pairs, image_size=model.image_size)
    items = [dataset[i] for i in range(len(dataset))]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("condition", "target", "kp_condition", "kp_target")}
    with torch.inference_mode():
        generated = to_uint8(model.generate(batch["condition"], batch["kp_condition"], batch["kp_target"]))
    condition, target = to_uint8(batch["condition"]), to_uint8(batch["target"])
    margins = limb_margins(generated, target, condition, batch["kp_target"].numpy(), batch["kp_condition"].numpy())
    out, start = [], 0
    for row in rows:
        cells = []
        for i, name in enumerate(row.targets, start):
            margin = float(margins["margin"][i])
            cell = {"target": name, "target_image": target[i], "generated": generated[i],
                    "limb_margin": margin if np.isfinite(margin) else None, "limb_region": _verdict(margin)}
            if oracle is not None:
                cell["oracle"] = resize_rgb(oracle(name, row.condition), model.image_size)
            cells.append(cell)
        out.append({"condition": row.condition, "condition_image": condition[start], "cells": cells})
        start += len(row.targets)
    return out


def _text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str) -> None:
    draw.text(xy, text, fill=(0, 0, 0), font=ImageFont.load_default())


def compose(generated: list[dict[str, Any]], scale: int = 3, footer: str = "") -> np.ndarray:
    """The sheet as one uint8 image (layout in the module docstring), column titles on top, ``footer``
    below."""
    with_oracle = any("oracle" in c for row in generated for c in row["cells"])
    kinds = ("target_image", "generated", "oracle") if with_oracle else ("target_image", "generated")
    titles = {"target_image": "target", "generated": "generated", "oracle": "oracle"}
    h, w = generated[0]["condition_image"].shape[:2]
    ch, cw = h * scale, w * scale
    poses = max(len(row["cells"]) for row in generated)
    group = len(kinds) * cw + (len(kinds) - 1) * CELL_GAP
    width = cw + poses * (GROUP_GAP + group)
    row_height = ch + BAR + CELL_GAP
    height = HEADER + len(generated) * row_height + (HEADER if footer else 0)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    _text(draw, (2, 1), "condition")
    for k in range(poses):
        for j, kind in enumerate(kinds):
            _text(draw, (cw + GROUP_GAP + k * (GROUP_GAP + group) + j * (cw + CELL_GAP) + 2, 1), titles[kind])
    for r, row in enumerate(generated):
        top = HEADER + r * row_height
        sheet.paste(Image.fromarray(enlarge(row["condition_image"], scale)), (0, top))
        for k, cell in enumerate(row["cells"]):
            left = cw + GROUP_GAP + k * (GROUP_GAP + group)
            for j, kind in enumerate(kinds):
                x = left + j * (cw + CELL_GAP)
                if kind in cell:
                    sheet.paste(Image.fromarray(enlarge(cell[kind], scale)), (x, top))
                if kind == "generated":
                    draw.rectangle((x, top + ch + 1, x + cw - 1, top + ch + BAR - 1),
                                   fill=VERDICT_COLOURS[cell["limb_region"]])
    if footer:
        _text(draw, (2, height - HEADER + 1), footer)
    return np.asarray(sheet)


def sheet_info(model: LoadedGenerator, generated: list[dict[str, Any]], oracle: str) -> dict[str, Any]:
    """What the sheet shows, for the JSON beside it: the generator, the oracle, and per row the pairs with
    their limb-region margins."""
    return {
        "generator": {"checkpoint": str(model.checkpoint), "source": model.source, "sha256": model.sha256,
                      "iteration": model.iteration, "weights": model.weights, "image_size": list(model.image_size)},
        "oracle": oracle,
        "layout": "one row per person: condition | per target pose: target, generated, oracle (where the dataset "
                  "has a renderer); the bar under a generated image: green = closer to the target than to the "
                  "condition in the target's limb region, red = not, grey = pair left out (metrics.limbs)",
        "rows": [{"condition": row["condition"],
                  "targets": [{k: c[k] for k in ("target", "limb_margin", "limb_region")} for c in row["cells"]]}
                 for row in generated],
    }


def footer_line(model: LoadedGenerator) -> str:
    where = model.source if model.source != "path" else Path(model.checkpoint).name
    return (f"{where}, {model.weights}, sha256 {model.sha256[:12]}; bar: green = closer to the target "
            "in its limb region, red = closer to the condition")


def write_sheet(path: str | Path, model: LoadedGenerator, generated: list[dict[str, Any]], oracle: str,
                scale: int = 3) -> dict[str, Any]:
    """The sheet as PNG at ``path`` and its JSON beside it (``.json``); returns the JSON's content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(path, compose(generated, scale, footer_line(model)))
    info = sheet_info(model, generated, oracle)
    info["files"] = {"sheet": path.name}
    atomic_write_text(path.with_suffix(".json"), json.dumps(info, indent=2, allow_nan=False) + "\n")
    return info
