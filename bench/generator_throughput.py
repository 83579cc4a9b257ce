"""Generator inference throughput (images/s), eval mode, fp32.

Default: the Market-1501 generator (3 PoNA blocks, 128 x 64, batch norm) on CPU with 2 threads, at
batch 1 and 8. The authors' code does about 5 images/s at batch 8 on the project's 2-core machine
(docs/architecture.md); this implementation must not be slower.

What was tried (2 threads, batch 8, interleaved runs, best of 6): the 3x3 convs run near the
CPU's fp32 peak (~70 % of the time); an authors'-style forward (NCHW, no_grad, bmm + softmax)
did 9.6 images/s, this one 10.1 with channels_last (kept: ~5 %, mostly fewer layout reorders
around the convs). SDPA and inference_mode change nothing measurable on CPU: with value width
(D) != key width (D/8) SDPA's CPU flash kernel does not apply and it runs the same math as bmm +
softmax; SDPA is kept for the fused CUDA kernels. The machine is shared, so expect +-10 % noise.

    python bench/generator_throughput.py [--device cpu] [--batch-sizes 1 8] [--iters 5] [--blocks 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pona_model.flops import generator_gflops
from pona_model.generator import IMAGE_CHANNELS, POSE_PAIR_CHANNELS, Generator, GeneratorConfig


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model: Generator, batch: int, iters: int, warmup: int, channels_last: bool) -> list[float]:
    """Seconds of each of ``iters`` timed forwards of random inputs at ``batch``."""
    device = next(model.parameters()).device
    h, w = model.config.image_size
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    image = (torch.rand(batch, IMAGE_CHANNELS, h, w, device=device) * 2 - 1).to(memory_format=fmt)
    pose = torch.rand(batch, POSE_PAIR_CHANNELS, h, w, device=device).to(memory_format=fmt)
    times = []
    with torch.inference_mode():
        for i in range(warmup + iters):
            _sync(device)
            start = time.perf_counter()
            model(image, pose)
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--iters", type=int, default=5, help="timed forwards per batch size (median taken)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed forwards first")
    parser.add_argument("--blocks", type=int, default=3, help="number of PoNA blocks")
    parser.add_argument("--contiguous", action="store_true",
                        help="keep the default NCHW layout instead of channels_last")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    config = GeneratorConfig(n_blocks=args.blocks)
    model = Generator(config).to(device).eval()
    channels_last = not args.contiguous
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    gflops = generator_gflops(config)
    print(f"generator: {config.n_blocks} blocks, {config.image_size[0]}x{config.image_size[1]}, "
          f"{gflops:.1f} GFLOP/image, device {device}, threads {torch.get_num_threads()}, "
          f"{'channels_last' if channels_last else 'NCHW'}")
    for batch in args.batch_sizes:
        times = measure(model, batch, args.iters, args.warmup, channels_last)
        ips, best = batch / statistics.median(times), batch / min(times)
        print(f"batch {batch:3d}: {ips:7.2f} images/s median, {best:7.2f} best  "
              f"({1000 / ips:7.1f} ms/image, {ips * gflops:6.1f} GFLOP/s)")


if __name__ == "__main__":
    main()
