"""The SynthMarket settings: sizes, the difficulty knobs, and how to run."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.config import Bounded, content, param
from runtime.errors import ConfigError
from synthmarket.appearance import JACKET_PATTERNS


@dataclass
class SynthMarketConfig(Bounded):
    """Everything that determines a SynthMarket dataset (plus where and how to write it)."""

    out: str = param("data/synthmarket", "dataset root to write (Market-1501 layout)", run_only=True)
    seed: int = param(0, "seed: the same seed and settings give byte-identical files")
    # --- sizes
    n_train_ids: int = param(100, "identities in bounding_box_train", at_least=1)
    n_test_ids: int = param(100, "identities in query and bounding_box_test (disjoint from train)", at_least=1)
    min_cameras: int = param(2, "fewest cameras an identity appears in (>= 2: every query has a match "
                                "in another camera)", at_least=2)
    max_cameras: int = param(6, "most cameras an identity appears in (<= 6)", at_most=6)
    max_images_per_camera: int = param(5, "images of an identity in one camera: 1..this, consecutive "
                                          "frames of one walk", at_least=1)
    n_distractors: int = param(200, "0000_ images in bounding_box_test: other people and bad boxes, "
                                    "wrong matches for every query", at_least=0)
    n_junk: int = param(100, "-1_ images in bounding_box_test: background and body fragments "
                             "(never counted)", at_least=0)
    height: int = param(128, "image height in pixels", at_least=32)
    width: int = param(64, "image width in pixels", at_least=16)
    supersample: int = param(3, "drawing resolution factor before box-filtering down (anti-aliasing)",
                             at_least=1, at_most=8)
    # --- difficulty knobs (defaults tuned so re-ID is clearly below perfect; see the README)
    palette_size: int = param(10, "named garment colours in use (of 16 upper / 12 lower): fewer means "
                                  "more identities dressed alike", at_least=2)
    shade_jitter: float = param(0.04, "per-identity shade offset within a named colour, as a fraction "
                                      "of 255", at_least=0.0)
    lookalike_group_size: int = param(3, "identities that share one base outfit; 1 draws every "
                                         "identity independently", at_least=1)
    lookalike_changes: int = param(1, "attributes (of 8: top colour, pattern, sleeves, bottom, shoes, "
                                      "bag, hair, skin) in which look-alikes differ; more is easier",
                                   at_least=1, at_most=8)
    lookalike_cue: str = param("outfit", "what tells look-alikes apart: 'outfit' (lookalike_changes attributes, "
                                         "colours included) or 'jacket_pattern' (the same colours to the shade, "
                                         "each member's jacket in its own two-colour layout, which colour "
                                         "histograms cannot read and only the back and sleeves show; needs "
                                         "jacket_prob=1 and lookalike_group_size <= 4; why: docs/reid-protocol.md)",
                               choices=("outfit", "jacket_pattern"), added=True)
    jacket_pattern_scale: float = param(0.08, "period of the jacket's layout as a fraction of stature "
                                              "(lookalike_cue=jacket_pattern)", at_least=0.01, added=True)
    camera_strength: float = param(1.0, "how different the six cameras' light, colour cast, blur, noise "
                                        "and JPEG quality are (0 = identical clean cameras)", at_least=0.0)
    jacket_prob: float = param(0.0, "chance an identity wears an open jacket over its top: the front shows the "
                                    "top, the back and the sleeves the jacket, so a person looks different from "
                                    "behind (0 = nobody, the default; why: docs/reid-protocol.md, the regime "
                                    "search)", at_least=0.0, at_most=1.0)
    shared_scenes: bool = param(False, "each person's walk in a camera takes its background from one of the six "
                                       "cameras' scenes at random instead of its own camera's, so a background no "
                                       "longer tells the camera (off: the default; why: docs/reid-protocol.md)")
    occlusion_prob: float = param(0.08, "chance an image has an occluder (pole, low object, passer-by)",
                                  at_least=0.0, at_most=1.0)
    misalign_prob: float = param(0.08, "chance a gallery / train box is badly placed (shifted, cut, "
                                       "too loose)", at_least=0.0, at_most=1.0)
    turn_prob: float = param(0.15, "chance a frame shows another view than the rest of its track",
                             at_least=0.0, at_most=1.0)
    yaw_jitter: float = param(0.3, "std of the body's turn away from the exact view, radians", at_least=0.0)
    # --- pairs
    train_pairs: int = param(0, "rows of market-pairs-train.csv; 0 keeps every pair", at_least=0)
    test_pairs: int = param(2000, "rows of market-pairs-test.csv (sampled)", at_least=0)
    # --- running
    workers: int = param(0, "render processes; 0 = one per available core (never changes the bytes)", run_only=True,
                         at_least=0)
    progress: bool = param(True, "show a progress bar", run_only=True)
    sheet: str = param("", "also write a contact sheet PNG of the dataset's identities here", run_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()  # the ranges declared above
        if self.min_cameras > self.max_cameras:
            raise ConfigError(f"need min_cameras <= max_cameras, got {self.min_cameras} > {self.max_cameras}")
        if self.lookalike_cue == "jacket_pattern":
            if self.jacket_prob != 1.0:
                raise ConfigError("lookalike_cue=jacket_pattern puts the look-alikes' difference on their jackets: "
                                  f"set jacket_prob=1.0 (got {self.jacket_prob})")
            if self.lookalike_group_size > len(JACKET_PATTERNS):
                raise ConfigError(f"lookalike_cue=jacket_pattern has {len(JACKET_PATTERNS)} layouts: set "
                                  f"lookalike_group_size <= {len(JACKET_PATTERNS)} (got {self.lookalike_group_size})")
        if self.n_train_ids + self.n_test_ids > 9999:
            raise ConfigError("at most 9999 identities fit Market's 4-digit names")

    def content(self) -> dict:
        """The settings that determine the dataset's bytes (what a finished root is checked against)."""
        return content(self)
