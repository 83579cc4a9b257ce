"""What an evaluation computes and with which settings: the metric names, the metric settings (the
``metrics.*`` keys of ``python -m pona_model.evaluation``) and the error for inputs that cannot be scored."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.config import param

# /2: psnr_legacy_wrap and kid added; IS / FID by torch-fidelity, LPIPS by lpips, SSIM / PSNR by scikit-image.
# /3: limb_region added.
RESULT_FORMAT = "pona-generator-metrics/3"
ALL_METRICS = ("ssim", "mask_ssim", "psnr", "psnr_legacy_wrap", "l1", "is", "mask_is", "pckh", "pckh_gt", "fid",
               "kid", "lpips", "limb_region")
POSE_ESTIMATORS = ("auto", "synth", "photo")
# The metrics with a value per pair (the _pairs.csv); limb_margin and limb_margin_plain are limb_region's.
PER_PAIR = ("ssim", "mask_ssim", "psnr", "psnr_legacy_wrap", "l1", "lpips", "limb_margin", "limb_margin_plain")


class EvaluationError(ValueError):
    """Inputs that cannot be scored as given; the message says what is wrong and how to fix it."""


@dataclass
class MetricSettings:
    """The ``metrics.*`` keys: which metrics, at which size, on how many pairs, with which weights."""

    include: list[str] = param(list(ALL_METRICS), "metrics to compute (any of: " + ", ".join(ALL_METRICS) + ")")
    size: list[int] = param([], "compare at [H, W]: generated and real images resized to it (PIL bicubic); "
                            "[] = the generated images' own size")
    max_pairs: int = param(0, "score at most this many pairs (a seeded random subset); 0 = all")
    batch_size: int = param(32, "images per network forward pass")
    device: str = param("auto", "device of the Inception / LPIPS networks: auto, cpu, cuda, cuda:N, mps")
    is_splits: int = param(10, "Inception Score splits")
    inception_weights: str = param("", "Inception-v3 state dict (pt_inception-2015-12-05-6726825d.pth or "
                                   "torchvision's inception_v3_google-0cc3c7bd.pth); empty = torch hub cache")
    fid_stats: str = param("", "cache file of the real FID statistics; empty = ~/.cache/pona/fid-stats/<key>.npz")
    kid_subsets: int = param(100, "KID: random subsets averaged (torch-fidelity's default)")
    kid_subset_size: int = param(1000, "KID: images per subset (torch-fidelity's default), capped by the smaller "
                                 "of the generated and the real set")
    fid_max_train_images: int = param(0, "real images for the FID statistics (seeded random subset); 0 = all")
    alexnet_weights: str = param("", "torchvision AlexNet state dict for LPIPS; empty = torch hub cache")
    lpips_weights: str = param("", "LPIPS v0.1 AlexNet heads (the lpips package's alex.pth); empty = hub cache "
                               "or an installed lpips package")
    pose_max_pairs: int = param(0, "pairs whose images go through the pose estimator for PCKh (seeded random "
                                "subset, about 70 ms per image on a CPU); 0 = all")
    pose_visibility: float = param(0.5, "pose estimator: joints below this visibility count as missing")
    pose_estimator: str = param("auto", "PCKh's pose estimator: synth (releases/pose-synth, a CNN for 64 x 32 "
                                "SynthMarket crops), photo (mediapipe BlazePose, for real photographs), auto (synth "
                                "for SynthMarket images, photo otherwise)", choices=POSE_ESTIMATORS)

    def __post_init__(self) -> None:
        unknown = [m for m in self.include if m not in ALL_METRICS]
        if unknown:
            raise ValueError(f"include: unknown metric(s) {unknown}; choose from {list(ALL_METRICS)}")
        if self.size and (len(self.size) != 2 or min(self.size) < 1):
            raise ValueError(f"size must be [] or [H, W] with positive values, got {self.size}")
        if min(self.max_pairs, self.fid_max_train_images, self.pose_max_pairs) < 0:
            raise ValueError("max_pairs, fid_max_train_images and pose_max_pairs must be >= 0")
        if self.batch_size < 1 or self.is_splits < 1 or self.kid_subsets < 1:
            raise ValueError("batch_size, is_splits and kid_subsets must be >= 1")
        if self.pose_estimator not in POSE_ESTIMATORS:
            raise ValueError(f"pose_estimator must be one of {list(POSE_ESTIMATORS)}, got {self.pose_estimator!r}")
        if self.kid_subset_size < 2:
            raise ValueError("kid_subset_size must be >= 2")

