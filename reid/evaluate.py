"""Evaluate a re-ID checkpoint by the Market-1501 protocol: mAP and CMC rank-1/5/10.

Examples:
  python -m reid.evaluate checkpoint=runs/reid-synth/checkpoint.pt
  python -m reid.evaluate checkpoint=runs/reid/checkpoint.pt root=/data/Market-1501-v15.09.15 ap=trapezoid

Features of the query and gallery images (image + mirrored image, summed, L2-normalised) are
ranked by cosine distance; junk gallery images never count, same-identity same-camera matches are
dropped, distractors stay, and queries without a true match are skipped (counted and warned).
Results go to a JSON file (default: beside the checkpoint) and are printed as a small table.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reid.data import eval_loader, write_manifest
from reid.features import cosine_distance, extract_features
from reid.market_index import MarketLayoutError, index_market, resolve_root
from reid.metrics import AP_DEFINITIONS, EvaluationError, evaluate_rankings, format_table
from reid.model import build_model, classifier_classes
from reid.trainer import REID_FORMAT, config_from_checkpoint
from runtime.atomic import atomic_write_text
from runtime.checkpoint import file_sha256, load_checkpoint
from runtime.config import entry_point, param, parse_config
from runtime.device import PRECISIONS, precision_name, resolve_device, resolve_precision, torch_threads
from runtime.errors import CheckpointError

log = logging.getLogger(__name__)


@dataclass
class ReidEvaluateConfig:
    checkpoint: str = param("runs/reid/checkpoint.pt", "checkpoint written by python -m reid.train")
    root: str = param("", "Market-layout folder with query/ and bounding_box_test/; empty = the training "
                      "root recorded in the checkpoint")
    ap: str = param("torchreid", "average precision: torchreid (plain, the project's default) or trapezoid "
                    "(official Market-1501 / layumi code); both are reported", choices=AP_DEFINITIONS)
    flip: bool = param(True, "add the mirrored image's feature (the baseline's protocol)")
    batch_size: int = param(64, "images per feature batch")
    device: str = param("auto", "auto (cuda if available, else cpu), cpu, cuda, cuda:N, mps")
    precision: str = param("auto", "autocast precision of feature extraction: auto (bf16 on CUDA and on CPUs with "
                           "native bf16, else fp32), fp32 or bf16", choices=list(PRECISIONS))
    num_workers: int = param(2, "data-loading worker processes (0 = main process)")
    threads: int = param(0, "CPU threads for torch (0 = the training run's setting, else torch's default)")
    out: str = param("", "results JSON; empty = evaluation.json beside the checkpoint ('-' = none)")
    progress: bool = param(True, "progress bars")


def test_manifest(root: str | Path, out: str | Path) -> Path:
    """Index ``root``'s query and gallery splits into a manifest file ``out``."""
    table = index_market(root, splits=("query", "gallery"), progress=False)
    return write_manifest(table, out)


def evaluate_model(model: nn.Module, root: str | Path, image_size: Sequence[int], *, ap: str = "torchreid",
                   flip: bool = True, batch_size: int = 64, device: str | torch.device = "cpu",
                   precision: str = "fp32", channels_last: bool = False, num_workers: int = 0, progress: bool = True,
                   manifest: str | Path | None = None) -> dict[str, Any]:
    """Market-1501 evaluation of a model (feature in eval mode) on ``root``'s query / gallery.

    ``precision``: auto, fp32 or bf16 autocast (recorded in the result); ``channels_last``: NHWC
    convolutions. ``manifest``: where to write the test manifest (default: a temporary file)."""
    import tempfile

    dev = device if isinstance(device, torch.device) else resolve_device(device)
    dtype = resolve_precision(precision, dev)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(dev, memory_format=memory_format)
    with tempfile.TemporaryDirectory(prefix="reid-eval-") as tmp:
        path = test_manifest(root, manifest or Path(tmp) / "test_manifest.csv")
        loaders = {mode: eval_loader(path, mode, image_size, batch_size, num_workers, pin_memory=dev.type == "cuda")
                   for mode in ("query", "gallery")}
        t0 = time.perf_counter()
        qf, q_pids, q_cams, q_paths = extract_features(model, loaders["query"], dev, flip=flip, dtype=dtype,
                                                       memory_format=memory_format,
                                                       progress=progress, desc="query features")
        gf, g_pids, g_cams, _ = extract_features(model, loaders["gallery"], dev, flip=flip, dtype=dtype,
                                                 memory_format=memory_format,
                                                 progress=progress, desc="gallery features")
        t_features = time.perf_counter() - t0
    distmat = cosine_distance(qf, gf)
    t1 = time.perf_counter()
    result = evaluate_rankings(distmat, q_pids, g_pids, q_cams, g_cams, ap=ap,
                               query_names=[Path(p).name for p in q_paths])
    result.update({"n_query_images": len(q_pids), "n_gallery_images": len(g_pids), "feature_dim": int(qf.shape[1]),
                   "flip": flip, "precision": precision_name(dtype), "image_size": [int(image_size[0]), int(image_size[1])],
                   "seconds_features": round(t_features, 3), "seconds_ranking": round(time.perf_counter() - t1, 3)})
    return result


def load_model_for_evaluation(checkpoint: str | Path, device: str | torch.device = "cpu"
                              ) -> tuple[nn.Module, dict[str, Any]]:
    """The model of a training checkpoint, in eval mode, and the checkpoint's metadata. Any number
    of classes is fine: the classifier is built to the checkpoint's size and unused for evaluation."""
    state = load_checkpoint(checkpoint, REID_FORMAT, map_location="cpu")
    config = config_from_checkpoint(state)
    n_classes = classifier_classes(state["model"])
    with torch.random.fork_rng(devices=[]):  # the initialisation is overwritten; keep the caller's RNG as it was
        model, _ = build_model(config.model, n_classes, load_weights=False)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{checkpoint} does not match its own model config: {str(exc).splitlines()[0]}") from exc
    model.eval().to(device)
    meta = {k: state[k] for k in ("epoch", "epochs", "finished", "weights_init", "n_classes", "train_images")}
    meta["config"] = state["config"]
    meta["train_precision"] = state.get("precision", "fp32")  # checkpoints before the key trained in fp32 on CPUs
    return model, meta


@torch_threads()  # restores the thread count the evaluation sets
def evaluate_checkpoint(checkpoint: str | Path, root: str | Path | None = None, *, ap: str = "torchreid",
                        flip: bool = True, batch_size: int = 64, device: str = "auto", precision: str = "auto",
                        num_workers: int = 0, threads: int | None = None, progress: bool = True,
                        out: str | Path | None = None) -> dict[str, Any]:
    """Evaluate a training checkpoint on ``root`` (default: its training root). Returns a dict with
    ``mAP``, ``rank1``, ``rank5``, ``rank10`` (percent), ``ap_definition``, ``n_queries`` (evaluated),
    ``n_queries_skipped``, ``weights_init`` and more; written as JSON to ``out`` when given.
    ``threads``: torch CPU threads (None: leave as is; 0: the training run's ``threads`` setting)."""
    checkpoint = Path(checkpoint)
    dev = resolve_device(device)
    t0 = time.perf_counter()
    model, meta = load_model_for_evaluation(checkpoint, dev)
    train_cfg = meta["config"]
    if threads == 0:
        threads = int(train_cfg.get("threads", 0))
    if threads:
        torch.set_num_threads(threads)
    data_root = root or train_cfg["data"]["root"]
    if not data_root:
        raise MarketLayoutError(f"{checkpoint} records no training root (trained from a manifest): pass root=")
    notes = []
    market = resolve_root(data_root)
    if (market / "bounding_box_train").is_dir():
        n_ids = int(index_market(market, splits=("train",), progress=False).query("identity > 0")["identity"].nunique())
        if n_ids != meta["n_classes"]:
            notes.append(f"the checkpoint has {meta['n_classes']} classes and {market}'s bounding_box_train has "
                         f"{n_ids} identities: fine for evaluation, which drops the classifier")
    for note in notes:
        log.info("%s", note)
    if not meta["finished"]:
        notes.append(f"the checkpoint is from epoch {meta['epoch']} of {meta['epochs']} (training not finished)")
    result = evaluate_model(model, market, train_cfg["data"]["image_size"], ap=ap, flip=flip,
                            batch_size=batch_size, device=dev, precision=precision,
                            channels_last=bool(train_cfg.get("channels_last", False)), num_workers=num_workers,
                            progress=progress)
    result.update({
        "checkpoint": str(checkpoint), "checkpoint_sha256": file_sha256(checkpoint), "root": str(market),
        "epoch": meta["epoch"], "epochs": meta["epochs"], "weights_init": meta["weights_init"],
        "train_precision": meta["train_precision"],
        "n_classes": meta["n_classes"], "model": f"{train_cfg['model']['backbone']}/{train_cfg['model']['head']}",
        "device": str(dev), "notes": notes, "seconds": round(time.perf_counter() - t0, 3),
    })
    if out is not None and str(out) != "-":
        atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    return result


@entry_point("python -m reid.evaluate")
def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = parse_config(ReidEvaluateConfig, argv, prog="python -m reid.evaluate", description=__doc__)
    out = cfg.out or str(Path(cfg.checkpoint).parent / "evaluation.json")
    try:
        result = evaluate_checkpoint(cfg.checkpoint, cfg.root or None, ap=cfg.ap, flip=cfg.flip,
                                     batch_size=cfg.batch_size, device=cfg.device, precision=cfg.precision,
                                     num_workers=cfg.num_workers, threads=cfg.threads, progress=cfg.progress,
                                     out=out)
    except (OSError, CheckpointError, MarketLayoutError, EvaluationError, ValueError) as exc:
        print(f"python -m reid.evaluate: error: {exc}", file=sys.stderr)
        return 1
    print(f"{result['checkpoint']} (epoch {result['epoch']}, {result['model']}, init {result['weights_init']}) "
          f"on {result['root']}:")
    print(format_table(result))
    for note in result["notes"]:
        print(f"note: {note}")
    if out != "-":
        print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
