"""A contact sheet of SynthMarket: identities (rows) x cameras x poses, each image beside its
keypoints drawn over it - the picture for the README, and the quickest check that people look like
pedestrians and keypoints sit on them.

  python -m synthmarket.contact_sheet out=runs/synthmarket/contact_sheet.png seed=0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from poseformats.keypoints import overlay_skeleton
from runtime.atomic import atomic_path
from runtime.config import entry_point, param, parse_config
from synthmarket.config import SynthMarketConfig
from synthmarket.dataset import dataset_cameras, make_plan, track_of
from synthmarket.render import render
from synthmarket.shots import sample_shot
from synthmarket.skeleton import POSE_KINDS, VIEWS

BACKGROUND = (24, 24, 28)
TEXT = (230, 230, 230)
SHEET_TAG = 7777  # seeds of the sheet's own frames, apart from the dataset's


def contact_sheet(cfg: SynthMarketConfig, n_ids: int = 6, poses: int = 2) -> Image.Image:
    """The sheet for the training identities of ``cfg`` (its seed and look knobs), as an RGB image.
    Views and pose kinds rotate along a row so every identity is seen front, back and side."""
    plan = make_plan(dataclasses.replace(cfg, n_distractors=0, n_junk=0))
    cameras = dataset_cameras(cfg)
    h, w = cfg.height, cfg.width
    gap, label_w, header = 6, 44, 16
    cell_w = poses * 2 * w
    sheet = Image.new("RGB", (label_w + len(cameras) * (cell_w + gap), header + n_ids * (h + gap)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for c, camera in enumerate(cameras):
        draw.text((label_w + c * (cell_w + gap) + 2, 2), f"camera {camera.index}", fill=TEXT)
    for r, identity in enumerate(plan.train_ids[:n_ids]):
        top = header + r * (h + gap)
        draw.text((4, top + h // 2 - 6), f"{identity:04d}", fill=TEXT)
        for c, camera in enumerate(cameras):
            track = track_of(cfg.seed, identity, camera.index)
            for p in range(poses):
                step = r + c + 3 * p
                track_p = dataclasses.replace(track, view=VIEWS[step % len(VIEWS)],
                                              kind=POSE_KINDS[(c + p) % len(POSE_KINDS)])
                rng = np.random.default_rng([cfg.seed, SHEET_TAG, identity, camera.index, p])
                shot = sample_shot(track_p, p, rng, turn_prob=0.0, yaw_jitter=cfg.yaw_jitter * 0.5)
                out = render(plan.appearances[identity], camera, shot, rng, height=h, width=w,
                             supersample=cfg.supersample)
                left = label_w + c * (cell_w + gap) + p * 2 * w
                sheet.paste(Image.fromarray(out.image), (left, top))
                sheet.paste(Image.fromarray(overlay_skeleton(out.image, out.keypoints)), (left + w, top))
    return sheet


def write_contact_sheet(path: str, cfg: SynthMarketConfig, n_ids: int = 6, poses: int = 2, scale: int = 1) -> None:
    """Render the sheet and write it as a PNG, atomically."""
    sheet = contact_sheet(cfg, n_ids=n_ids, poses=poses)
    if scale > 1:
        sheet = sheet.resize((sheet.width * scale, sheet.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG", optimize=True)


@dataclass
class ContactSheetConfig:
    """Settings of the contact sheet command (the look follows SynthMarket's defaults)."""

    out: str = param("runs/synthmarket/contact_sheet.png", "PNG file to write")
    seed: int = param(0, "SynthMarket seed whose training identities are shown")
    n_ids: int = param(6, "identities (rows)")
    poses: int = param(2, "poses per identity and camera")
    scale: int = param(1, "integer enlargement of the whole sheet")
    height: int = param(128, "image height")
    width: int = param(64, "image width")


@entry_point("python -m synthmarket.contact_sheet")
def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_config(ContactSheetConfig, argv, prog="python -m synthmarket.contact_sheet", description=__doc__)
    data_cfg = SynthMarketConfig(seed=cfg.seed, height=cfg.height, width=cfg.width,
                                 n_train_ids=max(cfg.n_ids, SynthMarketConfig().n_train_ids))
    write_contact_sheet(cfg.out, data_cfg, n_ids=cfg.n_ids, poses=cfg.poses, scale=cfg.scale)
    print(f"contact sheet: {cfg.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
