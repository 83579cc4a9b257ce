"""Generator inference throughput, side by side in one run: an authors'-style fp32 reference, this
implementation in fp32 and in bf16 autocast, each as images/s and as a ratio to the reference,
plus the same run's fp32 and bf16 GEMM peak (a 2048 x 2048 matmul) to say how close the fp32 path
gets to what the CPU can do.

The reference is the authors' forward as their code runs it: NCHW, fp32, and the attention written
as bmm + softmax (``pona_model.attention.reference_attention``) instead of the fused kernel. The
variants are interleaved round by round (median over rounds), because the machine is shared and
noisy; only the ratios of one run are comparable.

Earlier findings (2 threads, batch 8): the 3x3 convs take ~70 % of the fp32 time; channels_last
saves ~5 % in fp32 (fewer layout reorders around the convs); SDPA runs the same math as bmm +
softmax on CPU when the value width differs from the key width, and is kept for CUDA's fused kernels.

    python bench/generator_throughput.py                              # Market generator, batch 1 and 8
    python bench/generator_throughput.py --device cuda --batch-sizes 32 128
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import torch
from bench_common import interleaved_medians, sync, write_csv

from pona_model.attention import DotProductAttention, reference_attention
from pona_model.flops import generator_gflops
from pona_model.generator import IMAGE_CHANNELS, POSE_PAIR_CHANNELS, Generator, GeneratorConfig
from runtime.device import autocast


class ReferenceAttention(DotProductAttention):
    """The authors' attention: explicit bmm + softmax."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return reference_attention(q, k, v)


def reference_model(model: Generator) -> Generator:
    ref = copy.deepcopy(model)
    for module in list(ref.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, DotProductAttention):
                setattr(module, child_name, ReferenceAttention())
    return ref.to(memory_format=torch.contiguous_format)



def forward(model: Generator, dtype: torch.dtype, fmt: torch.memory_format, image: torch.Tensor,
            pose: torch.Tensor, device: torch.device) -> Callable[[], object]:
    """One forward pass of ``model`` under ``dtype`` autocast, its inputs laid out in ``fmt`` beforehand."""
    x, p = image.contiguous(memory_format=fmt), pose.contiguous(memory_format=fmt)

    def call() -> object:
        with autocast(device, dtype):
            return model(x, p)
    return call


def gemm_gflops(device: torch.device, dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    times = []
    for _ in range(reps):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median taken)")
    parser.add_argument("--blocks", type=int, default=3, help="number of PoNA blocks")
    parser.add_argument("--csv", default="", help="also write the rows to this CSV")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    config = GeneratorConfig(n_blocks=args.blocks)
    ours = Generator(config).to(device).eval()
    variants = {
        "reference fp32 NCHW": (reference_model(ours), torch.float32, torch.contiguous_format),
        "ours fp32 channels_last": (copy.deepcopy(ours).to(memory_format=torch.channels_last), torch.float32,
                                    torch.channels_last),
        "ours bf16 NCHW": (ours, torch.bfloat16, torch.contiguous_format),
        "ours bf16 channels_last": (copy.deepcopy(ours).to(memory_format=torch.channels_last), torch.bfloat16,
                                    torch.channels_last),
    }
    gflops = generator_gflops(config)
    peak32, peak16 = gemm_gflops(device, torch.float32), gemm_gflops(device, torch.bfloat16)
    h, w = config.image_size
    print(f"generator: {config.n_blocks} blocks, {h}x{w}, {gflops:.1f} GFLOP/image, device {device}, "
          f"threads {torch.get_num_threads()}; GEMM peak this run: fp32 {peak32:.0f}, bf16 {peak16:.0f} GFLOP/s")
    rows = []
    for batch in args.batch_sizes:
        image = torch.rand(batch, IMAGE_CHANNELS, h, w, device=device) * 2 - 1
        pose = torch.rand(batch, POSE_PAIR_CHANNELS, h, w, device=device)
        forwards = {name: forward(*v, image, pose, device) for name, v in variants.items()}
        with torch.inference_mode():
            medians = interleaved_medians(forwards, args.rounds, device)
        ref = medians["reference fp32 NCHW"]
        for name in variants:
            med = medians[name]
            achieved = batch / med * gflops
            row = {"batch": batch, "variant": name, "images_per_s": round(batch / med, 2),
                   "ratio_to_reference": round(ref / med, 2), "gflop_per_s": round(achieved, 1),
                   "pct_of_fp32_gemm_peak": round(100 * achieved / peak32, 1),
                   "gemm_peak_fp32": round(peak32, 1), "gemm_peak_bf16": round(peak16, 1)}
            rows.append(row)
            print(f"batch {batch:3d}  {name:24s} {row['images_per_s']:8.2f} img/s  x{row['ratio_to_reference']:4.2f}  "
                  f"{achieved:7.1f} GFLOP/s = {row['pct_of_fp32_gemm_peak']:5.1f} % of the fp32 GEMM peak")
    if args.csv:
        write_csv(args.csv, rows)


if __name__ == "__main__":
    main()
