"""Release a re-ID start (``releases/<name>/``, docs/releases.md): the trunk of a finished re-ID
training, in fp16, so that a run can start from it (``reid.model.weights=released:<name>``) instead of
pretraining one, on any machine, from the same weights.

Example (the regime's view start, from the pipeline's pretrain_reid stage):
  python -m reid.release --checkpoint runs/cache/pretrain_reid/<fingerprint>/train/checkpoint.pt \\
      --name view-start-synth --command "python -m pipelines.run preset=regime methods=none"

The folder holds ``trunk.pt`` (the ResNet trunk under torchvision's names, every floating tensor in
fp16; no classifier, optimiser or RNG state: a fine-tune builds its own head), a copy of the training
log, and ``release.json`` (sha256, size, the command, the training config, its last epoch's loss and
accuracy, and the pipeline stage's fingerprint inputs when the checkpoint came from the stage cache).
Only a finished training is released.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from reid.model import trunk_state
from reid.trainer import REID_FORMAT
from runtime.atomic import atomic_write_bytes
from runtime.checkpoint import FORMAT_VERSION, file_sha256, load_checkpoint
from runtime.config import entry_point
from runtime.errors import CheckpointError
from runtime.release_writer import half_weights, staged_release, target_folder
from runtime.releases import TRUNK_RELEASE_FORMAT, Release, verify_release, write_manifest

PROG = "python -m reid.release"
WEIGHTS = "trunk.pt"
LOG = "train_log.jsonl"
STAGE_RECORD = "done.json"  # the pipeline's stage record, one folder above the training's


def epoch_records(log: Path) -> dict[int, dict[str, Any]]:
    """The training log's ``epoch`` records by epoch (the last one of an epoch redone after a resume)."""
    epochs = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "epoch" and isinstance(record.get("epoch"), int):
            epochs[record["epoch"]] = record
    return epochs


def training_seconds(log: Path) -> float | None:
    """Training wall time: the sum of the epochs' own durations (a re-ID log's step records count
    from each start, its epoch records per epoch)."""
    times = [r["seconds"] for r in epoch_records(log).values() if isinstance(r.get("seconds"), (int, float))]
    return round(sum(times), 1) if times else None


def _last(epochs: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    return epochs[max(epochs)] if epochs else None


def stage_inputs(ckpt: Path) -> dict[str, Any] | None:
    """What the pipeline's stage cache recorded as the training's inputs (its fingerprint's content),
    when the checkpoint sits in a stage folder (``<stage>/<fingerprint>/train/checkpoint.pt``)."""
    record = ckpt.parent.parent / STAGE_RECORD
    if not record.is_file():
        return None
    try:
        done = json.loads(record.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return {k: done.get(k) for k in ("stage", "fingerprint", "inputs")} if isinstance(done, dict) else None


def make_release(checkpoint: str | Path, name: str, root: str | Path | None = None, *,
                 log: str | Path | None = None, command: str | None = None, replace: bool = False,
                 release_command: str | None = None) -> Release:
    """Write release ``name`` under ``root`` (default: ``runtime.releases.releases_root``) from a
    finished re-ID training checkpoint, and return it verified. ``log`` defaults to the
    train_log.jsonl beside the checkpoint; ``command`` is how the checkpoint was trained."""
    ckpt = Path(checkpoint)
    final = target_folder(name, root, replace)
    if not ckpt.is_file():
        raise FileNotFoundError(f"--checkpoint {ckpt} does not exist; give a checkpoint.pt written by python -m "
                                "reid.train (or the pipeline's pretrain_reid stage)")
    log_path = Path(log) if log is not None else ckpt.parent / LOG
    if log is not None and not log_path.is_file():
        raise FileNotFoundError(f"--log {log_path} is not a file; give the training's train_log.jsonl or leave --log out")
    state = load_checkpoint(ckpt, REID_FORMAT)
    if not state.get("finished"):
        raise CheckpointError(f"{ckpt} is an unfinished training (epoch {state.get('epoch')} of "
                              f"{state.get('epochs')}); finish it (rerun its command, which resumes) before releasing")
    config = state.get("config", {})
    backbone = config.get("model", {}).get("backbone", "resnet50")
    trunk = half_weights(trunk_state(state["model"]), ckpt, what="trunk")
    trunk = {k: v for k, v in trunk.items() if not k.startswith("fc.")}
    released = {"format": TRUNK_RELEASE_FORMAT, "version": FORMAT_VERSION, "backbone": backbone,
                "dtype": "float16", "trunk": trunk}
    buffer = io.BytesIO()  # saved through a buffer: torch names the archive after the file otherwise
    torch.save(released, buffer)
    has_log = log_path.is_file()
    with staged_release(final) as tmp:
        atomic_write_bytes(tmp / WEIGHTS, buffer.getvalue())
        files = {}
        if has_log:
            shutil.copyfile(log_path, tmp / LOG)
            files[LOG] = {"sha256": file_sha256(tmp / LOG), "bytes": (tmp / LOG).stat().st_size, "from": str(log_path)}
        write_manifest(
            tmp, WEIGHTS, name=name, format=TRUNK_RELEASE_FORMAT, dtype="float16", backbone=backbone,
            image_size=list(config.get("data", {}).get("image_size", [])), epochs=state.get("epochs"),
            optimizer_steps=state.get("optimizer_steps"), n_classes=state.get("n_classes"),
            train_images=state.get("train_images"), weights_init=state.get("weights_init"),
            precision=state.get("precision"), seconds=training_seconds(log_path) if has_log else None,
            last_epoch=_last(epoch_records(log_path)) if has_log else None, command=command,
            release_command=release_command, files=files,
            checkpoint={"from": str(ckpt), "sha256": file_sha256(ckpt), "bytes": ckpt.stat().st_size},
            stage=stage_inputs(ckpt), torch=torch.__version__, made=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            config=config)
    return verify_release(name, final.parent)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a finished re-ID training checkpoint (checkpoint.pt)")
    p.add_argument("--name", required=True, help="release name: the folder releases/<name>/ (e.g. view-start-synth)")
    p.add_argument("--root", default=None, help="releases folder (default: $PONA_RELEASES, else the repository's "
                   "releases/)")
    p.add_argument("--log", default=None, help="training log to copy (default: train_log.jsonl beside the checkpoint)")
    p.add_argument("--command", default=None, help="the command that trained the checkpoint (how to retrain it)")
    p.add_argument("--replace", action="store_true", help="replace an existing release of that name")
    return p


@entry_point(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    release = make_release(args.checkpoint, args.name, args.root, log=args.log, command=args.command,
                           replace=args.replace, release_command=shlex.join([*PROG.split(), *(argv or [])]))
    m = release.manifest
    print(f"wrote {release.path.parent}/: {m['file']} ({m['bytes'] / 1e6:.2f} MB, fp16 {m['backbone']} trunk, "
          f"{m['optimizer_steps']} optimiser steps), sha256 {release.sha256}")
    print(f"start from it with reid.model.weights=released:{release.name}; commit it with "
          f"git add {release.path.parent} && git commit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
