"""Make a release (``releases/<name>/``, docs/releases.md) from a training checkpoint, so that the
weights a long training produced can be committed and loaded by default (``released:<name>``).

Examples:
  python -m pona_model.release --checkpoint runs/pona-synth/checkpoint.pt --name pona-synth \\
      --curve-csv runs/curves/cpu/curve.csv --curve-png runs/curves/cpu/curve.png \\
      --command "python -m pona_model.train preset=synth data.root=data/synthmarket-aux"
  python -m pona_model.release --checkpoint runs/patn-synth/checkpoint.pt --name patn-synth --replace
  python -m pona_model.release --checkpoint RUN/train/checkpoint.pt --name NAME \\
      --average-snapshots RUN/snapshots/generator_00{18000,18500,19000,19500,20000}.pt

The folder holds ``generator.pt`` (the generator's weights only, in fp16: no discriminators, no
optimiser or RNG states; the generator config and training facts that rebuild it), copies of the
training log and learning curve when given, and ``release.json`` (sha256, size, command, config,
metrics). It is built in a temporary folder beside the final one and renamed into place, so an
interrupted command leaves no half release; an existing release is replaced only with ``--replace``,
and a folder that is not a release never. With ``--average-snapshots`` the released weights are the
average of those snapshots of the same training (``pona_model.weight_average``), and release.json
names each snapshot with its iteration and sha256.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shlex
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pona_model.checkpoint_tags import GENERATOR_FORMAT, GENERATOR_RELEASE_FORMAT
from pona_model.weight_average import average_states, check_alike, load_snapshots, snapshot_iteration
from runtime.atomic import atomic_write_bytes
from runtime.checkpoint import FORMAT_VERSION, file_sha256, load_checkpoint
from runtime.config import entry_point
from runtime.errors import CheckpointError
from runtime.release_writer import half_weights, staged_release, target_folder, training_seconds
from runtime.releases import Release, verify_release, write_manifest

PROG = "python -m pona_model.release"
WEIGHTS = "generator.pt"
LOG, CURVE_CSV, CURVE_PNG = "train_log.jsonl", "learning_curve.csv", "learning_curve.png"
# Training facts copied from the checkpoint into the release file and its manifest.
FACTS = ("iteration", "total_iterations", "precision", "perceptual")


def release_state(state: dict[str, Any], source: Path, seconds: float | None) -> dict[str, Any]:
    """The release file's content from a training checkpoint's: the generator and what rebuilds it."""
    out: dict[str, Any] = {"format": GENERATOR_RELEASE_FORMAT, "version": FORMAT_VERSION,
                           "config": state["config"], "dtype": "float16", "seconds": seconds,
                           "generator": half_weights(state["generator"], source)}
    out.update({k: state[k] for k in (*FACTS, "averaged_iterations", "init") if k in state})
    if "imported" in state:
        out["imported"] = state["imported"]
    return out


def last_metrics(curve_csv: Path) -> dict[str, Any] | None:
    """The learning curve's last row (the scores at its last evaluation), numbers parsed."""
    with open(curve_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    parsed: dict[str, Any] = {}
    for key, value in rows[-1].items():
        try:
            parsed[key] = float(value) if value not in ("", None) else None
        except ValueError:
            parsed[key] = value
    return parsed


def _input_file(flag: str, value: str | os.PathLike | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {path} is not a file; give an existing file or leave {flag} out")
    return path


def averaged_generator(state: dict[str, Any], ckpt: Path, snapshots: Sequence[str | os.PathLike]
                       ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``state`` with its generator replaced by the average of ``snapshots`` (of this training: same
    tensors, no iteration past the checkpoint's), and what release.json says of each snapshot."""
    files, states = load_snapshots(snapshots)
    iteration = int(state.get("iteration", 0))
    late = [str(p) for p in files if snapshot_iteration(p) > iteration]
    if late:
        raise ValueError(f"--average-snapshots {late[0]} is past the checkpoint's iteration {iteration}; "
                         "average snapshots up to the checkpoint of the same training")
    names = [str(p) for p in files]
    check_alike([*states, state["generator"]], [*names, str(ckpt)])  # snapshots of this training's generator
    out = {**state, "generator": average_states(states, names),
           "averaged_iterations": [snapshot_iteration(p) for p in files]}
    return out, [{"file": str(p), "iteration": snapshot_iteration(p), "sha256": file_sha256(p)} for p in files]


def make_release(checkpoint: str | os.PathLike, name: str, root: str | os.PathLike | None = None, *,
                 log: str | os.PathLike | None = None, curve_csv: str | os.PathLike | None = None,
                 curve_png: str | os.PathLike | None = None, command: str | None = None,
                 replace: bool = False, release_command: str | None = None,
                 average_snapshots: Sequence[str | os.PathLike] | None = None) -> Release:
    """Write release ``name`` under ``root`` (default: ``runtime.releases.releases_root``) from a
    training checkpoint, and return it verified. ``log`` defaults to the train_log.jsonl beside the
    checkpoint when there is one; ``command`` is how the checkpoint was trained (the retraining hint
    of a damaged release), ``release_command`` how this release was made; ``average_snapshots``
    releases the average of those snapshots' weights instead of the checkpoint's."""
    ckpt = Path(checkpoint)
    final = target_folder(name, root, replace)
    if not ckpt.is_file():
        raise FileNotFoundError(f"--checkpoint {ckpt} does not exist; give a checkpoint.pt written by "
                                "python -m pona_model.train (or the pipeline's train_generator stage)")
    if log is None and (ckpt.parent / LOG).is_file():
        log = ckpt.parent / LOG
    extras = {LOG: _input_file("--log", log), CURVE_CSV: _input_file("--curve-csv", curve_csv),
              CURVE_PNG: _input_file("--curve-png", curve_png)}
    state = load_checkpoint(ckpt, GENERATOR_FORMAT)
    if "generator" not in state or "generator" not in state.get("config", {}):
        raise CheckpointError(f"{ckpt} has no generator weights or config; give a generator training checkpoint")
    averaged = None
    if average_snapshots:
        state, averaged = averaged_generator(state, ckpt, average_snapshots)
    seconds = training_seconds(extras[LOG]) if extras[LOG] is not None else None
    released = release_state(state, ckpt, seconds)
    buffer = io.BytesIO()  # saved through a buffer: torch names the archive after the file otherwise
    torch.save(released, buffer)

    with staged_release(final) as tmp:
        atomic_write_bytes(tmp / WEIGHTS, buffer.getvalue())
        files = {}
        for target, src in extras.items():
            if src is not None:
                shutil.copyfile(src, tmp / target)
                files[target] = {"sha256": file_sha256(tmp / target), "bytes": (tmp / target).stat().st_size,
                                 "from": str(src)}
        generator = state["config"]["generator"]
        iteration = int(state.get("iteration", 0))
        total = state.get("total_iterations")
        write_manifest(
            tmp, WEIGHTS, name=name, format=GENERATOR_RELEASE_FORMAT, dtype="float16",
            arch=generator.get("arch", "pona"), image_size=list(generator.get("image_size", [])),
            iterations=iteration, total_iterations=total,
            finished=None if total is None else iteration >= int(total),
            precision=state.get("precision"), perceptual=state.get("perceptual"), seconds=seconds,
            command=command, release_command=release_command,
            # the curve scores the live iterates: its last row describes an averaged release's last snapshot only
            **{"metrics" if averaged is None else "last_iterate_metrics":
               last_metrics(extras[CURVE_CSV]) if extras[CURVE_CSV] is not None else None},
            files=files, checkpoint={"from": str(ckpt), "sha256": file_sha256(ckpt), "bytes": ckpt.stat().st_size},
            imported=state.get("imported"), fine_tuned_from=state.get("init"), averaged_snapshots=averaged, torch=torch.__version__,
            made=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            config=state["config"])
    return verify_release(name, final.parent)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a generator training checkpoint (checkpoint.pt)")
    p.add_argument("--name", required=True, help="release name: the folder releases/<name>/ (e.g. pona-synth)")
    p.add_argument("--root", default=None, help="releases folder (default: $PONA_RELEASES, else the "
                   "repository's releases/)")
    p.add_argument("--log", default=None, help="training log to copy (default: train_log.jsonl beside the "
                   "checkpoint, when present); its timings give the training seconds")
    p.add_argument("--curve-csv", default=None, help="learning curve CSV (bench/generator_learning_curve.py); "
                   "its last row becomes release.json's metrics")
    p.add_argument("--curve-png", default=None, help="learning curve plot to copy")
    p.add_argument("--command", default=None, help="the command that trained the checkpoint (how to retrain it)")
    p.add_argument("--replace", action="store_true", help="replace an existing release of that name")
    p.add_argument("--average-snapshots", nargs="+", default=None, metavar="SNAPSHOT",
                   help="release the average of these generator snapshots of the same training "
                   "(generator_<iteration>.pt from bench/generator_learning_curve.py --snapshots) instead of the "
                   "checkpoint's weights; choose them by iteration (e.g. the last five), never by test scores")
    return p


@entry_point(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    release = make_release(args.checkpoint, args.name, args.root, log=args.log, curve_csv=args.curve_csv,
                           curve_png=args.curve_png, command=args.command, replace=args.replace,
                           release_command=shlex.join([*PROG.split(), *(argv or [])]),
                           average_snapshots=args.average_snapshots)
    m = release.manifest
    print(f"wrote {release.path.parent}/: {m['file']} ({m['bytes'] / 1e6:.2f} MB, fp16, {m['iterations']} "
          f"iterations), sha256 {release.sha256}")
    print(f"load it with generator.checkpoint=released:{release.name}; commit it with "
          f"git add {release.path.parent} && git commit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
