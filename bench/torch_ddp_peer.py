#!/usr/bin/env python3
"""PyTorch DDP on CPU (gloo): the peer of dtbench-ddp for bench/peers.sh.

Launched with mpirun (rank and size from OMPI_COMM_WORLD_*; torchrun's RANK/WORLD_SIZE also work).
Parameters have the shapes of a dtbench model CSV (name,shape,dtype,expert), the same bucket cap
(bucket_cap_mb; PyTorch's own 1 MiB first bucket, as dtbench-ddp --bucket-mb), fp32 grads.

Timed like dtbench (warm-up, then per iteration a barrier and one timed call; an iteration's time is
the maximum over ranks; median): prints on rank 0
  grad_sync,<us>        backward with DDP's bucketed all-reduce minus the same backward under no_sync()
  backward_sync,<us>    backward with DDP's all-reduce (includes the autograd work)
  backward_nosync,<us>  backward under no_sync() (autograd only)
  flat_all_reduce,<us>  one all_reduce of a flat fp32 tensor of all the grads (dtbench's flat_grad_sync)
"""
import argparse
import csv
import os
import statistics
import sys
import time


def env_int(*names, default=None):
    for n in names:
        if n in os.environ:
            return int(os.environ[n])
    return default


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-csv", required=True)
    ap.add_argument("--bucket-mb", type=float, default=25.0)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--port", type=int, default=29533)
    a = ap.parse_args()

    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    rank = env_int("OMPI_COMM_WORLD_RANK", "RANK", default=0)
    world = env_int("OMPI_COMM_WORLD_SIZE", "WORLD_SIZE", default=1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{a.port}", rank=rank, world_size=world)

    shapes = []
    with open(a.model_csv) as f:
        for row in csv.DictReader(line for line in f if not line.startswith("#")):
            shapes.append(tuple(int(x) for x in row["shape"].split("x")))

    class Params(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ps = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(s)) for s in shapes])

        def forward(self):
            # Every param gets a gradient of ones (cheap autograd, like dtbench's simulated backward of 0 ms).
            return sum(p.sum() for p in self.ps)

    model = torch.nn.parallel.DistributedDataParallel(Params(), bucket_cap_mb=a.bucket_mb)
    numel = sum(p.numel() for p in model.parameters())

    def timed(fn):
        for _ in range(a.warmup):
            fn()
        ts = []
        for _ in range(a.iters):
            dist.barrier()
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        t = torch.tensor(ts, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return statistics.median(t.tolist()) * 1e6

    def backward_sync():
        model.zero_grad(set_to_none=False)
        model().backward()

    def backward_nosync():
        model.zero_grad(set_to_none=False)
        with model.no_sync():
            model().backward()

    flat = torch.ones(numel)

    def flat_all_reduce():
        dist.all_reduce(flat)

    t_sync = timed(backward_sync)
    t_nosync = timed(backward_nosync)
    t_flat = timed(flat_all_reduce)
    if rank == 0:
        print(f"# torch {torch.__version__} gloo ranks={world} params={numel} tensors={len(shapes)} bucket_cap_mb={a.bucket_mb}")
        print(f"grad_sync,{max(t_sync - t_nosync, 0.0):.3f}")
        print(f"backward_sync,{t_sync:.3f}")
        print(f"backward_nosync,{t_nosync:.3f}")
        print(f"flat_all_reduce,{t_flat:.3f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
