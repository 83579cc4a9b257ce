"""Generate one image per pair of a PATN pairs CSV with a trained PoNA checkpoint.

Writes ``<from>___<to>.png`` per pair (at the generator's size) into ``out``; with ``vis=true`` also
PATN's 5-panel ``<from>___<to>_vis.jpg`` strips (condition | condition pose | target | target pose |
generated), so existing metric scripts can read the results. Existing outputs are kept, so an
interrupted run continues where it stopped.

Example:
  python -m pona_model.generate checkpoint=runs/pona/checkpoint.pt images=data/synthmarket/bounding_box_test \\
      annotations=data/synthmarket/market-annotation-test.csv pairs=data/synthmarket/market-pairs-test.csv \\
      out=runs/pona/generated
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from tqdm import tqdm

from pona_model.inference import LoadedGenerator, load_generator
from pona_model.pair_dataset import PairDataset
from pona_model.sample_grid import to_uint8
from poseformats.annotations import FormatError, read_annotations, read_pairs
from poseformats.keypoints import draw_skeleton
from runtime.atomic import atomic_path
from runtime.config import entry_point, param, parse_config
from runtime.device import PRECISIONS, loader_context
from runtime.errors import CheckpointError

log = logging.getLogger(__name__)


@dataclass
class GenerateConfig:
    checkpoint: str = param("", "training checkpoint (checkpoint.pt of a pona_model.train run)")
    images: str = param("", "folder with the condition (and, for vis, target) images")
    annotations: str = param("", "PATN annotation CSV covering every image named in the pairs")
    pairs: str = param("", "PATN pairs CSV (from,to)")
    out: str = param("", "output folder")
    vis: bool = param(False, "also write PATN 5-panel _vis.jpg strips (needs the target images)")
    batch_size: int = param(16, "pairs per forward pass")
    num_workers: int = param(2, "data-loading worker processes")
    device: str = param("auto", "auto, cpu, cuda, cuda:N, mps")
    precision: str = param("auto", "autocast dtype: auto (bf16 on CUDA and on CPUs with native bf16), fp32, bf16",
                           choices=list(PRECISIONS))


def output_name(source: str, target: str) -> str:
    """``<from>___<to>.png``: the pair naming PATN's and PoNA's evaluation scripts read."""
    return f"{Path(source).stem}___{Path(target).stem}"


def _save(path: Path, image: np.ndarray, fmt: str) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=fmt)


def generate_pairs(model: LoadedGenerator, dataset: PairDataset, out: str | Path, *, vis: bool = False,
                   batch_size: int = 16, num_workers: int = 0) -> int:
    """Generate every pair of ``dataset`` not yet in ``out``; returns the number written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [i for i, (a, b) in enumerate(zip(dataset.sources, dataset.targets))
            if not (out / f"{output_name(a, b)}.png").exists()]
    if not todo:
        return 0
    loader = DataLoader(torch.utils.data.Subset(dataset, todo), batch_size=batch_size, num_workers=num_workers,
                        multiprocessing_context=loader_context(num_workers))
    h, w = model.image_size
    written = 0
    for batch in tqdm(loader, desc="generating", unit="batch"):
        fake = to_uint8(model.generate(batch["condition"], batch["kp_condition"], batch["kp_target"]))
        conds, targets = to_uint8(batch["condition"]), to_uint8(batch["target"])
        for i in range(fake.shape[0]):
            name = output_name(batch["condition_name"][i], batch["target_name"][i])
            if vis:
                strip = np.concatenate([conds[i], draw_skeleton(batch["kp_condition"][i].numpy(), h, w), targets[i],
                                        draw_skeleton(batch["kp_target"][i].numpy(), h, w), fake[i]], axis=1)
                _save(out / f"{name}_vis.jpg", strip, "JPEG")
            _save(out / f"{name}.png", fake[i], "PNG")  # last: its presence marks the pair done
            written += 1
    return written


@entry_point("python -m pona_model.generate")
def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = parse_config(GenerateConfig, argv, prog="python -m pona_model.generate", description=__doc__)
    missing = [k for k in ("checkpoint", "images", "annotations", "pairs", "out") if not getattr(cfg, k)]
    if missing:
        print(f"python -m pona_model.generate: error: set {', '.join(k + '=...' for k in missing)}", file=sys.stderr)
        return 2
    try:
        model = load_generator(cfg.checkpoint, cfg.device, precision=cfg.precision)
        keypoints = read_annotations(cfg.annotations)
        dataset = PairDataset(cfg.images, keypoints, read_pairs(cfg.pairs, known_names=keypoints),
                              image_size=model.image_size)
        n = generate_pairs(model, dataset, cfg.out, vis=cfg.vis, batch_size=cfg.batch_size,
                           num_workers=cfg.num_workers)
    except (CheckpointError, FormatError, OSError, ValueError) as exc:
        print(f"python -m pona_model.generate: error: {exc}", file=sys.stderr)
        return 1
    log.info("wrote %d generated images to %s (%d pairs in total)", n, cfg.out, len(dataset))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
