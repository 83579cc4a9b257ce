"""Score generated person images against their targets: the paper's Table I metrics, FID, KID and LPIPS.

Reads a folder of generated images named ``<from>___<to>.png`` (``pona_model.generate``'s output) or
PATN's 5-panel ``<from>___<to>_vis.jpg`` strips (condition | condition pose | target | target pose |
generated; the target is then taken from the strip, as PATN's scripts do), so other methods' results
are scored the same way. Writes a JSON with every metric and the details that move the numbers, a
per-pair CSV, a comparison grid and a same-person-many-poses sheet, and prints a table like Table I.

Metrics: SSIM and mask-SSIM (scikit-image with PATN's settings; body mask from the target keypoints),
PSNR (correct) and PSNR-wrap (``psnr_legacy_wrap``: the papers' uint8 wrap-around figure, only for
comparison with published tables), L1, IS and mask-IS, PCKh (the offline pose estimator on the generated
image against the estimator on the real target, and against the annotation keypoints), FID (real
statistics from ``train_images``, cached; IS and FID by torch-fidelity) and LPIPS (the lpips package).
Network weights cannot be downloaded: they come from local files (``metrics.*_weights``) or the torch hub
cache, and a metric whose weights are absent is reported as skipped with the reason. The protocol and
its deviations from the papers' scripts: docs/evaluation.md. The code: the other modules of this package.

Examples:
  python -m pona_model.evaluation generated=runs/pona-synth/generated \\
      images=data/synthmarket/bounding_box_test \\
      annotations=data/synthmarket/market-annotation-test.csv pairs=data/synthmarket/market-pairs-test.csv \\
      train_images=data/synthmarket/bounding_box_train
  python -m pona_model.evaluation checkpoint=runs/pona-synth/checkpoint.pt images=... annotations=... pairs=...
  python -m pona_model.evaluation baseline=identity metrics.size=[64,32] out=runs/identity/metrics.json \\
      images=... annotations=... pairs=...
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pona_model.evaluation.folder import evaluate_folder
from pona_model.evaluation.from_checkpoint import evaluate_generator
from pona_model.evaluation.report import PAPER_ROWS, format_table
from pona_model.evaluation.settings import EvaluationError, MetricSettings
from poseformats.annotations import FormatError
from runtime.config import entry_point, param, parse_config, to_dict
from runtime.errors import CheckpointError, MissingWeightsError


@dataclass
class EvaluateConfig:
    generated: str = param("", "folder of generated <from>___<to>.png images or PATN <from>___<to>_vis.jpg strips "
                           "(with checkpoint=: where to generate them; default runs/test-generated/<sha>, never beside the checkpoint)")
    images: str = param("", "folder of the real images (targets, and conditions for pictures and the baseline)")
    annotations: str = param("", "PATN annotation CSV of the target images (e.g. market-annotation-test.csv)")
    pairs: str = param("", "PATN pairs CSV: score exactly these pairs (all must be generated); empty = every "
                       "pair found in generated")
    train_images: str = param("", "folder of the training images: the real side of FID (FID is skipped without)")
    format: str = param("auto", "generated files: images (<name>.png/.jpg), vis (PATN strips) or auto",
                        choices=["auto", "images", "vis"])
    baseline: str = param("", "score a baseline instead of generated images: identity = the condition image "
                          "unchanged (needs images and pairs)", choices=["", "identity"])
    checkpoint: str = param("", "generate the pairs with this training checkpoint first (needs images, "
                            "annotations, pairs)")
    out: str = param("", "result JSON; empty = <generated>/metrics.json (required for a baseline)")
    label: str = param("", "row name in the printed table; empty = the folder, checkpoint or baseline name")
    paper_row: str = param("auto", "the paper's PoNA row printed above the results for scale: auto = the dataset "
                           "the annotation file's PATN name says (market-*, fasion-*), none, or a dataset",
                           choices=list(PAPER_ROWS))
    grid_pairs: int = param(8, "pairs in the comparison grid (0 = no grid)")
    sheet_conditions: int = param(3, "condition images in the same-person-many-poses sheet (0 = no sheet)")
    sheet_poses: int = param(6, "target poses per condition image in the sheet")
    progress: bool = param(True, "show progress bars")
    metrics: MetricSettings = param(default_factory=MetricSettings, help="metric settings")


@entry_point("python -m pona_model.evaluation")
def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    prog = "python -m pona_model.evaluation"
    cfg = parse_config(EvaluateConfig, argv, prog=prog, description=__doc__)
    need = ["annotations"] + (["images", "pairs"] if cfg.baseline or cfg.checkpoint else ["generated"]) + (
        ["out"] if cfg.baseline else [])
    missing = [k for k in need if not getattr(cfg, k)]
    if missing:
        print(f"{prog}: error: set {', '.join(k + '=...' for k in missing)} (see --help)", file=sys.stderr)
        return 2
    common = dict(train_images=cfg.train_images or None, settings=cfg.metrics, fmt=cfg.format, label=cfg.label,
                  grid_pairs=cfg.grid_pairs, sheet_conditions=cfg.sheet_conditions, sheet_poses=cfg.sheet_poses,
                  progress=cfg.progress, provenance={"command": to_dict(cfg)})
    try:
        if cfg.checkpoint:
            result = evaluate_generator(cfg.checkpoint, cfg.images, cfg.annotations, cfg.pairs,
                                        cfg.generated or None, out=cfg.out or None, device=cfg.metrics.device,
                                        **common)
        else:
            out = cfg.out or (Path(cfg.generated) / "metrics.json" if cfg.generated else None)
            result = evaluate_folder(None if cfg.baseline else cfg.generated, cfg.annotations,
                                     images=cfg.images or None, pairs=cfg.pairs or None, out=out,
                                     baseline=cfg.baseline, **common)
    except (EvaluationError, FormatError, CheckpointError, MissingWeightsError, OSError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(format_table([result], paper=cfg.paper_row))
    for key, path in result.get("files", {}).items():
        if isinstance(path, str) and key != "sheet_layout":
            print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
