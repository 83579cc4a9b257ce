"""Print the generator's and discriminators' trainable parameter counts and the generator's forward
GFLOPs per image (the paper's Table II).

Examples:
  python -m pona_model.summary preset=market1501
  python -m pona_model.summary preset=market1501 generator.n_blocks=2 --json
  python -m pona_model.summary preset=patn-market1501        # PATN, Table VI's comparison generator
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from torch import nn

from pona_model.flops import generator_gflops
from pona_model.models import build_discriminators, build_generator
from pona_model.train_config import PRESETS_DIR, TrainConfig
from runtime.config import entry_point, parse_config


def trainable_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def summarize(config: TrainConfig) -> dict[str, float | int | str]:
    g = config.generator
    d_pose, d_app = build_discriminators(g, config.discriminator)
    return {
        "arch": g.arch,
        "generator_params": trainable_parameters(build_generator(g)),
        "d_pose_params": trainable_parameters(d_pose),
        "d_appearance_params": trainable_parameters(d_app),
        "generator_gflops": round(generator_gflops(g), 2),
    }


@entry_point("python -m pona_model.summary")
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
    if g.arch == "patn":
        print(f"PATN, {g.n_blocks} PAT block(s), {g.image_size[0]} x {g.image_size[1]}, ngf {g.ngf}, {g.norm} norm; "
              "discriminators without spectral norm")
    else:
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
