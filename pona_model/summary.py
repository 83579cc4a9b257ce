"""Print the generator's and discriminators' trainable parameter counts and the generator's forward
GFLOPs per image (the paper's Table II).

Examples:
  python -m pona_model.summary preset=market1501
  python -m pona_model.summary preset=market1501 generator.n_blocks=2 --json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from torch import nn

from pona_model.cli import parse_config
from pona_model.discriminator import Discriminator
from pona_model.flops import generator_gflops
from pona_model.generator import Generator
from pona_model.train_config import PRESETS_DIR, TrainConfig


def trainable_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def summarize(config: TrainConfig) -> dict[str, float | int]:
    g, d = config.generator, config.discriminator
    return {
        "generator_params": trainable_parameters(Generator(g)),
        "d_pose_params": trainable_parameters(Discriminator(3 + 18, d.ndf, d.n_res_blocks, g.norm)),
        "d_appearance_params": trainable_parameters(Discriminator(3 + 3, d.ndf, d.n_res_blocks, g.norm)),
        "generator_gflops": round(generator_gflops(g), 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    config = parse_config(TrainConfig, [a for a in args if a != "--json"], prog="python -m pona_model.summary",
                          description=__doc__, presets_dir=PRESETS_DIR)
    s = summarize(config)
    if as_json:
        print(json.dumps(s))
        return 0
    g = config.generator
    print(f"PoNA, {g.n_blocks} block(s), {g.image_size[0]} x {g.image_size[1]}, ngf {g.ngf}, {g.norm} norm, "
          f"fusion {g.fusion}, self-attention {'on' if g.self_attention else 'off'}, cross-modal attention "
          f"{'on' if g.cross_attention else 'off'}")
    print(f"  generator             {s['generator_params']:>12,d} parameters  ({s['generator_params'] / 1e6:.2f} M)")
    print(f"  D_P (pose)            {s['d_pose_params']:>12,d} parameters")
    print(f"  D_A (appearance)      {s['d_appearance_params']:>12,d} parameters")
    print(f"  generator forward     {s['generator_gflops']:>12.2f} GFLOPs per image")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
