"""The SynthMarket settings: sizes, the difficulty knobs, and how to run."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.config import content, param
from runtime.errors import ConfigError


@dataclass
class SynthMarketConfig:
    """Everything that determines a SynthMarket dataset (plus where and how to write it)."""

    out: str = param("data/synthmarket", "dataset root to write (Market-1501 layout)", run_only=True)
    seed: int = param(0, "seed: the same seed and settings give byte-identical files")
    # --- sizes
    n_train_ids: int = param(100, "identities in bounding_box_train")
    n_test_ids: int = param(100, "identities in query and bounding_box_test (disjoint from train)")
    min_cameras: int = param(2, "fewest cameras an identity appears in (>= 2: every query has a match "
                                "in another camera)")
    max_cameras: int = param(6, "most cameras an identity appears in (<= 6)")
    max_images_per_camera: int = param(5, "images of an identity in one camera: 1..this, consecutive "
                                          "frames of one walk")
    n_distractors: int = param(200, "0000_ images in bounding_box_test: other people and bad boxes, "
                                    "wrong matches for every query")
    n_junk: int = param(100, "-1_ images in bounding_box_test: background and body fragments "
                             "(never counted)")
    height: int = param(128, "image height in pixels")
    width: int = param(64, "image width in pixels")
    supersample: int = param(3, "drawing resolution factor before box-filtering down (anti-aliasing)")
    # --- difficulty knobs (defaults tuned so re-ID is clearly below perfect; see the README)
    palette_size: int = param(10, "named garment colours in use (of 16 upper / 12 lower): fewer means "
                                  "more identities dressed alike")
    shade_jitter: float = param(0.04, "per-identity shade offset within a named colour, as a fraction "
                                      "of 255")
    lookalike_group_size: int = param(3, "identities that share one base outfit; 1 draws every "
                                         "identity independently")
    lookalike_changes: int = param(1, "attributes (of 8: top colour, pattern, sleeves, bottom, shoes, "
                                      "bag, hair, skin) in which look-alikes differ; more is easier")
    camera_strength: float = param(1.0, "how different the six cameras' light, colour cast, blur, noise "
                                        "and JPEG quality are (0 = identical clean cameras)")
    occlusion_prob: float = param(0.08, "chance an image has an occluder (pole, low object, passer-by)")
    misalign_prob: float = param(0.08, "chance a gallery / train box is badly placed (shifted, cut, "
                                       "too loose)")
    turn_prob: float = param(0.15, "chance a frame shows another view than the rest of its track")
    yaw_jitter: float = param(0.3, "std of the body's turn away from the exact view, radians")
    # --- pairs
    train_pairs: int = param(0, "rows of market-pairs-train.csv; 0 keeps every pair")
    test_pairs: int = param(2000, "rows of market-pairs-test.csv (sampled)")
    # --- running
    workers: int = param(0, "render processes; 0 = one per available core (never changes the bytes)", run_only=True)
    progress: bool = param(True, "show a progress bar", run_only=True)
    sheet: str = param("", "also write a contact sheet PNG of the dataset's identities here", run_only=True)

    def __post_init__(self) -> None:
        checks = [
            (self.n_train_ids >= 1 and self.n_test_ids >= 1, "n_train_ids and n_test_ids must be >= 1"),
            (2 <= self.min_cameras <= self.max_cameras <= 6, "need 2 <= min_cameras <= max_cameras <= 6"),
            (self.max_images_per_camera >= 1, "max_images_per_camera must be >= 1"),
            (self.n_distractors >= 0 and self.n_junk >= 0, "n_distractors and n_junk must be >= 0"),
            (self.height >= 32 and self.width >= 16, "images must be at least 32 x 16"),
            (1 <= self.supersample <= 8, "supersample must be 1..8"),
            (self.palette_size >= 2, "palette_size must be >= 2"),
            (self.lookalike_group_size >= 1, "lookalike_group_size must be >= 1"),
            (1 <= self.lookalike_changes <= 8, "lookalike_changes must be 1..8"),
            (all(0.0 <= p <= 1.0 for p in (self.occlusion_prob, self.misalign_prob, self.turn_prob)),
             "probabilities must be in [0, 1]"),
            (self.shade_jitter >= 0 and self.camera_strength >= 0 and self.yaw_jitter >= 0,
             "shade_jitter, camera_strength and yaw_jitter must be >= 0"),
            (self.train_pairs >= 0 and self.test_pairs >= 0, "train_pairs and test_pairs must be >= 0"),
            (self.workers >= 0, "workers must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.n_train_ids + self.n_test_ids > 9999:
            raise ConfigError("at most 9999 identities fit Market's 4-digit names")

    def content(self) -> dict:
        """The settings that determine the dataset's bytes (what a finished root is checked against)."""
        return content(self)
