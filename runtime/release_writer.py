"""Writing a release folder (``releases/<name>/``, docs/releases.md), whatever the weights: a
generator (``pona_model.release``) or a re-ID trunk (``reid.release``). The folder is built in a
temporary folder beside the final one and renamed into place, so an interrupted command leaves no
half release; an existing release is replaced only when asked, and a folder that is not a release
never (nothing of a user's is overwritten)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

from runtime.errors import CheckpointError
from runtime.releases import MANIFEST, check_name, releases_root

FP16_MAX = torch.finfo(torch.float16).max


def half_weights(state: dict[str, torch.Tensor], source: Path, what: str = "generator") -> dict[str, torch.Tensor]:
    """Every floating tensor in fp16 (weights and batch-norm statistics; integer counters kept): half
    the bytes, a relative rounding of at most 2**-11 per value. A value fp16 cannot hold is refused."""
    out = {}
    for key, value in state.items():
        if value.is_floating_point():
            if not torch.isfinite(value).all() or value.abs().max().item() > FP16_MAX:
                raise CheckpointError(f"{source}: {what} tensor {key!r} holds values fp16 cannot store "
                                      f"(|x| > {FP16_MAX:g} or not finite); this checkpoint cannot be released")
            value = value.to(torch.float16)
        out[key] = value.detach().clone().contiguous()
    return out


def training_seconds(log: Path) -> float | None:
    """Training wall time from a trainer's train_log.jsonl: each ``start`` record opens a segment
    (a resumed run restarts its clock), and a segment lasts until its last ``seconds``."""
    total, last, seen = 0.0, 0.0, False
    for line in log.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if not isinstance(record, dict):
                continue
            if record.get("event") == "start":
                total, last = total + last, 0.0
            elif isinstance(record.get("seconds"), (int, float)):
                last, seen = float(record["seconds"]), True
    return round(total + last, 1) if seen else None


def target_folder(name: str, root: str | os.PathLike | None, replace: bool) -> Path:
    """The release folder to write, refused before any work when it exists (without ``replace``) or
    is not a release at all (never replaced)."""
    final = releases_root(root) / check_name(name)
    if final.exists() or final.is_symlink():
        if not (final / MANIFEST).is_file():
            raise FileExistsError(f"{final} exists and is not a release (no {MANIFEST}); move it away or choose "
                                  "another --name")
        if not replace:
            raise FileExistsError(f"release {final} exists; pass --replace to replace it, or choose another --name")
    return final


def _publish(tmp: Path, final: Path) -> None:
    """Rename the finished ``tmp`` folder onto ``final``; a replaced release is moved aside first and
    deleted only once the new one is in place."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except OSError:
        if old is not None:
            os.rename(old, final)
        raise
    if old is not None:
        shutil.rmtree(old)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged_release(final: Path) -> Iterator[Path]:
    """A temporary folder to write the release into; renamed onto ``final`` when the block ends
    normally, deleted when it raises."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
