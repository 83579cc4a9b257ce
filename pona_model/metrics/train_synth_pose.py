"""Train the synth pose estimator on the auxiliary identities and release it (docs/model-card-pose-synth.md).

Trains ``pona_model.metrics.synth_pose.SynthPoseNet`` on the exact keypoints of the auxiliary renders
(people in neither SynthMarket split), minus ``held_out_ids`` identities kept aside to measure it on
unseen people. Seeded and deterministic on one thread, a fixed number of steps, sized to finish in
under 10 minutes on one CPU thread. Writes to OUT: the weights (fp16), ``train_log.jsonl`` and
``release.json`` (``runtime.releases.write_manifest``: command, config, seconds, and the PCKh
measured with the written weights on held-out auxiliary images and, when ``test_data`` exists, on
the real SynthMarket test targets: the ceiling).

    python -m pona_model.metrics.train_synth_pose --data data/synthmarket-aux --out releases/pose-synth
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pona_model.metrics.pose_ceiling import pckh_on_crops, real_targets
from pona_model.metrics.synth_pose import (
    INPUT_SIZE,
    RELEASE_NAME,
    NetConfig,
    SynthPoseEstimator,
    SynthPoseNet,
    load_weights,
    save_weights,
)
from pona_model.metrics.synth_pose_data import Augment, Crops, augment, load_crops, split_identities
from runtime.config import entry_point, param, parse_config, to_dict
from runtime.jsonl_log import append_record

PROG = "python -m pona_model.metrics.train_synth_pose"
WEIGHTS_FILE = "pose_synth.bin"
LOG_FILE = "train_log.jsonl"


@dataclass
class TrainPoseConfig:
    data: str = param("data/synthmarket-aux", "auxiliary renders: bounding_box_train + market-annotation-train.csv")
    out: str = param("", "folder for the weights, train_log.jsonl and release.json (e.g. releases/pose-synth)")
    test_data: str = param("data/synthmarket", "SynthMarket root whose real test targets give the ceiling, "
                           "measured once after training; '' = skip")
    seed: int = param(0, "seed of the split, the initialisation, the batches and the augmentation")
    threads: int = param(1, "torch CPU threads", run_only=True)
    steps: int = param(2000, "optimizer steps")
    batch_size: int = param(32, "crops per step")
    lr: float = param(2e-3, "AdamW peak learning rate (linear warm-up, cosine decay to 0)")
    warmup: int = param(100, "warm-up steps")
    weight_decay: float = param(1e-4, "AdamW weight decay")
    sigma: float = param(1.0, "target heatmap Gaussian, in pixels of the 64 x 32 input")
    visibility_weight: float = param(1.0, "weight of the visibility loss beside the heatmap loss")
    held_out_ids: int = param(40, "auxiliary identities never trained on, to measure unseen people")
    c1: int = param(16, "channels at 64 x 32")
    c2: int = param(48, "channels at 32 x 16")
    c3: int = param(96, "channels at 16 x 8")
    precision: str = param("auto", "training autocast: bf16 (about 1.7x faster on CPUs with native bf16), fp32, or "
                           "auto (bf16 where the CPU has it); the released estimator always runs in fp32",
                           choices=("auto", "bf16", "fp32"))
    eval_every: int = param(500, "steps between held-out measurements in the log")
    progress: bool = param(True, "show a progress bar", run_only=True)

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.c1, self.c2, self.c3, self.threads, self.eval_every) < 1:
            raise ValueError("steps, batch_size, c1, c2, c3, threads and eval_every must be >= 1")
        if self.sigma <= 0 or self.lr <= 0:
            raise ValueError(f"sigma and lr must be > 0, got {self.sigma} and {self.lr}")


def heatmap_targets(kp: torch.Tensor, vis: torch.Tensor, size: tuple[int, int], sigma: float) -> torch.Tensor:
    """Normalised Gaussian distributions (B, 18, H, W) around continuous pixel-centre keypoints; maps
    of invisible joints are zeros (they add nothing to the cross-entropy)."""
    h, w = size
    s2 = 2 * sigma ** 2
    gy = torch.exp(-((torch.arange(h).float() - kp[..., 0:1]) ** 2) / s2)
    gx = torch.exp(-((torch.arange(w).float() - kp[..., 1:2]) ** 2) / s2)
    maps = gy[..., :, None] * gx[..., None, :]
    maps = maps / maps.sum((-2, -1), keepdim=True).clamp_min(1e-12)
    return maps * vis[..., None, None]


def loss_terms(net: SynthPoseNet, x: torch.Tensor, kp: torch.Tensor, vis: torch.Tensor,
               cfg: TrainPoseConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmap cross-entropy against the target Gaussians (visible joints) and visibility BCE."""
    heat, vis_logits = net(x)
    heat, vis_logits = heat.float(), vis_logits.float()
    target = heatmap_targets(kp, vis, INPUT_SIZE, cfg.sigma)
    logp = heat.flatten(2).log_softmax(-1)
    ce = -(target.flatten(2) * logp).sum(-1)
    heat_loss = ce.sum() / vis.sum().clamp_min(1)
    vis_loss = torch.nn.functional.binary_cross_entropy_with_logits(vis_logits, vis.float())
    return heat_loss, vis_loss


def training_dtype(cfg: TrainPoseConfig) -> torch.dtype:
    """bf16 when asked, or under auto where the CPU computes it natively; else fp32."""
    from runtime.device import cpu_has_bf16

    if cfg.precision == "bf16" or (cfg.precision == "auto" and cpu_has_bf16()):
        return torch.bfloat16
    return torch.float32


def lr_at(step: int, cfg: TrainPoseConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


def train(cfg: TrainPoseConfig, train_crops: Crops, held_out: Crops | None,
          log: Path) -> tuple[SynthPoseNet, float, float]:
    """The trained network, and the wall-clock and CPU seconds its steps took (held-out measurements
    excluded): on a shared machine the wall clock also counts other jobs' turns on the core."""
    from tqdm.auto import tqdm

    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    net = SynthPoseNet(NetConfig(cfg.c1, cfg.c2, cfg.c3)).to(memory_format=torch.channels_last)
    bf16 = training_dtype(cfg) == torch.bfloat16
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    images = torch.from_numpy(train_crops.images)
    keypoints = torch.from_numpy(train_crops.keypoints)
    aug = Augment()
    order, cursor, seconds, cpu = torch.randperm(len(images), generator=g), 0, 0.0, 0.0
    bar = tqdm(range(cfg.steps), desc="pose-synth", unit="step", disable=not cfg.progress)
    for step in bar:
        start, start_cpu = time.perf_counter(), time.process_time()
        if cursor + cfg.batch_size > len(order):
            order, cursor = torch.randperm(len(images), generator=g), 0
        rows = order[cursor:cursor + cfg.batch_size]
        cursor += cfg.batch_size
        x, kp, vis = augment(images[rows], keypoints[rows], INPUT_SIZE, aug, g)
        x = x.contiguous(memory_format=torch.channels_last)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            heat_loss, vis_loss = loss_terms(net, x, kp, vis, cfg)
        loss = heat_loss + cfg.visibility_weight * vis_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seconds += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        record: dict[str, Any] = {"step": step + 1, "heat_ce": round(heat_loss.item(), 4),
                                  "visibility_bce": round(vis_loss.item(), 4), "lr": round(lr_at(step, cfg), 6),
                                  "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1)}
        if held_out is not None and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            net.eval()
            record["held_out_pckh"] = round(pckh_on_crops(SynthPoseEstimator(net), held_out)["value"], 4)
            net.train()
            bar.set_postfix(ce=f"{record['heat_ce']:.2f}", held_out=record["held_out_pckh"])
        append_record(log, record)
    return net.eval(), seconds, cpu


def _flags_to_keys(argv: Sequence[str]) -> list[str]:
    """Accept ``--key value`` and ``--key=value`` beside the project's ``key=value``."""
    out, args = [], list(argv)
    keep = {"--help", "-h", "--print-config", "--debug"}
    while args:
        arg = args.pop(0)
        if arg.startswith("--") and arg not in keep:
            key = arg[2:].replace("-", "_")
            if "=" in key:
                out.append(key)
            elif args and not args[0].startswith("--"):
                out.append(f"{key}={args.pop(0)}")
            else:
                out.append(f"{key}=true")
        else:
            out.append(arg)
    return out


@entry_point(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    args = _flags_to_keys(sys.argv[1:] if argv is None else argv)
    cfg = parse_config(TrainPoseConfig, args, prog=PROG, description=__doc__)
    if not cfg.out:
        print(f"{PROG}: error: out= is required (e.g. --out releases/pose-synth)", file=sys.stderr)
        return 2
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / LOG_FILE
    log.unlink(missing_ok=True)  # a fresh, deterministic run each time
    data = Path(cfg.data)
    crops = load_crops(data / "bounding_box_train", data / "market-annotation-train.csv")
    held = split_identities(crops.names, cfg.held_out_ids, cfg.seed)
    held_out = crops.subset(held).resized(INPUT_SIZE) if held.any() else None
    train_crops = crops.subset(~held)
    load_before = os.getloadavg()
    net, seconds, cpu = train(cfg, train_crops, held_out, log)
    load_after = os.getloadavg()
    save_weights(net, out / WEIGHTS_FILE)
    released = SynthPoseEstimator(load_weights(out / WEIGHTS_FILE))  # measure what is shipped (fp16)
    measured: dict[str, Any] = {}
    if held_out is not None:
        measured["held_out_auxiliary"] = {**pckh_on_crops(released, held_out), "identities": cfg.held_out_ids}
    if cfg.test_data and Path(cfg.test_data).is_dir():
        for key, pairs, every in (("real_test_pair_targets", 0, False), ("real_test_first_200_pairs", 200, False),
                                  ("real_test_images_all", 0, True)):
            measured[key] = pckh_on_crops(released, real_targets(cfg.test_data, INPUT_SIZE, pairs, every))
    facts = {"name": RELEASE_NAME, "kind": "synth pose estimator (pona_model.metrics.synth_pose)",
             "command": f"{PROG} --data {cfg.data} --out {cfg.out}" + (f" --seed {cfg.seed}" if cfg.seed else ""),
             "config": to_dict(cfg), "trained_on": {"data": cfg.data, "images": len(train_crops.names),
                                                    "identities": len({n.split('_')[0] for n in train_crops.names})},
             "input_size": list(INPUT_SIZE), "training_seconds": round(seconds, 1),
             "training_cpu_seconds": round(cpu, 1), "threads": cfg.threads,
             "load_average_1min": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
             "precision": str(training_dtype(cfg)).removeprefix("torch."),
             "torch": torch.__version__, "augment": dataclasses.asdict(Augment()),
             "ceiling": {k: v["value"] for k, v in measured.items()}, "measured": measured}
    from runtime.releases import write_manifest

    manifest = write_manifest(out, WEIGHTS_FILE, **facts)
    shown = ("file", "sha256", "bytes", "training_seconds", "training_cpu_seconds", "ceiling")
    print(json.dumps({k: manifest[k] for k in shown}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
