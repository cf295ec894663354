"""What data-parallel training costs on this machine, apart from the learning itself: collective latency and whether
the cores scale.

    python -m torch.distributed.run --nproc_per_node=2 --standalone scripts/benchmark_collectives.py [--numel 10000]

Every process uses one torch thread on the CPU (Gloo), as ``train.py`` does. Prints, per rank:

* the time of one all-reduce of ``--numel`` floats (about the size of the point-control PPO gradient), back to back;
* its cost between compute bursts (``--bursts`` rounds of 20 matrix products of a PPO-minibatch-sized layer, each
  followed by one all-reduce, minus the same rounds without it), which is what PPO pays twice per minibatch
  (gradients, and the KL of the adaptive learning rate);
* a single-threaded forward/backward loop alone on rank 0, then on every rank at once: equal times mean the cores
  scale, longer ones mean the processes share a core's resources.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.distributed as dist


def compute(x: torch.Tensor, w: torch.Tensor, rounds: int) -> None:
    """``rounds`` forward/backward passes of a two-layer ELU network (a PPO minibatch on a [64, 64] MLP)."""
    for _ in range(rounds):
        y = torch.nn.functional.elu(x @ w) @ w
        y.sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numel", type=int, default=10_000, help="Floats per all-reduce.")
    parser.add_argument("--repeats", type=int, default=500, help="Back-to-back all-reduces timed.")
    parser.add_argument("--bursts", type=int, default=200, help="Compute bursts, each followed by an all-reduce.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    grad = torch.randn(args.numel)
    layer, batch = torch.randn(64, 64, requires_grad=True), torch.randn(3072, 64)

    for _ in range(50):  # warm-up: connections, allocator
        dist.all_reduce(grad)
    start = time.perf_counter()
    for _ in range(args.repeats):
        dist.all_reduce(grad)
    alone = (time.perf_counter() - start) / args.repeats

    def bursts(with_collective: bool) -> float:
        dist.barrier()
        t = time.perf_counter()
        for _ in range(args.bursts):
            for _ in range(20):
                batch @ layer.detach()
            if with_collective:
                dist.all_reduce(grad)
        return (time.perf_counter() - t) / args.bursts

    between = bursts(True) - bursts(False)

    dist.barrier()
    single = None
    if rank == 0:
        t = time.perf_counter()
        compute(batch, layer, 400)
        single = time.perf_counter() - t
    dist.barrier()
    t = time.perf_counter()
    compute(batch, layer, 400)
    together = time.perf_counter() - t
    dist.barrier()
    print(f"rank {rank}/{world}: all-reduce of {args.numel} floats {alone * 1e3:.2f} ms back to back, "
          f"{between * 1e3:.2f} ms between compute bursts; forward/backward loop "
          + (f"{single:.2f} s alone, " if single is not None else "")
          + f"{together:.2f} s with every rank at once", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
