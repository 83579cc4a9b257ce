"""Generate the test pairs with a training checkpoint, then score them (the pipeline's evaluate stage)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pona_model.evaluation.folder import evaluate_folder
from pona_model.evaluation.selection import select_pairs
from pona_model.evaluation.settings import EvaluationError, MetricSettings
from poseformats.annotations import read_annotations, read_pairs
from runtime.atomic import atomic_write_text

# Where generated test images go when no folder is given: keyed by the generator's hash, so a rerun reuses them.
DEFAULT_GENERATED_ROOT = Path("runs") / "test-generated"


def evaluate_generator(checkpoint: str | Path, images: str | Path, annotations: str | Path, pairs: str | Path,
                       generated: str | Path | None = None, *, out: str | Path | None = None,
                       batch_size: int = 16, device: str = "auto", precision: str = "auto", num_workers: int = 0,
                       **kwargs: Any) -> dict[str, Any]:
    """Generate the pairs of ``pairs`` with a training checkpoint (those ``metrics.max_pairs`` selects; kept in
    ``generated``, default ``runs/test-generated/<sha256[:12]>`` under the working folder - never beside the
    checkpoint, which may be a committed release or a user's file; images already there are reused
    when ``generated/generator.json`` names the same checkpoint, an error otherwise) and score them with
    ``evaluate_folder`` (keyword arguments pass through); ``precision`` (auto|fp32|bf16) is the autocast
    dtype of the generation. The pipeline's evaluate_generator stage calls this.
    The result's ``provenance`` names the checkpoint, its SHA-256 and iteration."""
    from pona_model.generate import generate_pairs
    from pona_model.inference import load_generator
    from pona_model.pair_dataset import PairDataset

    model = load_generator(checkpoint, device, precision=precision)
    keypoints = read_annotations(annotations)
    settings = kwargs.get("settings") or MetricSettings()
    todo = select_pairs(read_pairs(pairs, known_names=keypoints), settings.max_pairs)
    dataset = PairDataset(images, keypoints, todo, image_size=model.image_size)
    generated = Path(generated) if generated else DEFAULT_GENERATED_ROOT / model.sha256[:12]
    marker = generated / "generator.json"  # existing images are reused only if this checkpoint made them
    if marker.is_file() and json.loads(marker.read_text()).get("sha256") != model.sha256:
        raise EvaluationError(f"{generated} holds images of another checkpoint ({marker}); pass another "
                              "generated= folder or empty this one")
    atomic_write_text(marker, json.dumps({"checkpoint": str(checkpoint), "sha256": model.sha256,
                                          "iteration": model.iteration, "weights": model.weights}, indent=2) + "\n")
    generate_pairs(model, dataset, generated, batch_size=batch_size, num_workers=num_workers)
    out = out if out is not None else generated / "metrics.json"
    provenance = {**(kwargs.pop("provenance", None) or {}), "checkpoint": str(checkpoint),
                  "sha256": model.sha256, "iteration": model.iteration, "weights": model.weights, "generator_size": list(model.image_size)}
    if not kwargs.get("label"):
        kwargs["label"] = f"{Path(checkpoint).parent.name} @ {model.weights}"
    return evaluate_folder(generated, keypoints, images=images, pairs=pairs, out=out, provenance=provenance,
                           **kwargs)

