"""``envcheck cluster-allreduce``: one rank of the all-reduce, run on each node by the engine.

torch.distributed with NCCL when the node has CUDA GPUs, gloo otherwise; the rendezvous is a
TCPStore on rank 0's node. Rank 0 prints the figures: bus bandwidth per message size (the
nccl-tests definition, ``algbw * 2(n-1)/n``) and, with three ranks or more, each ring pair's
own all-reduce so a slow node or link shows. torch is imported here only, on the node.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from datetime import timedelta
from typing import Any, TextIO

from envcheck.cluster import protocol

#: environment variables that give this node's rank, by engine
RANK_VARS = ("ENVCHECK_NODE_INDEX", "SLURM_PROCID", "JOB_COMPLETION_INDEX", "RANK")


def pick_port(out: TextIO) -> int:
    """A free TCP port on this node for rank 0's store (the engine passes it to every rank)."""
    with socket.socket() as s:
        s.bind(("", 0))
        port = int(s.getsockname()[1])
    out.write(protocol.line("port", port=port, hostname=socket.gethostname()))
    out.flush()
    return 0


def _rank() -> int:
    for var in RANK_VARS:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    raise RuntimeError(f"no rank: none of {', '.join(RANK_VARS)} is set")


def busbw(nbytes: int, seconds: float, world: int) -> tuple[float, float]:
    """(algbw, busbw) in GB/s of an all-reduce of ``nbytes`` that took ``seconds`` on ``world`` ranks."""
    alg = nbytes / seconds / 1e9
    return alg, alg * 2 * (world - 1) / world


def _time_allreduce(dist: Any, torch: Any, tensor: Any, group: Any, budget: float) -> float:
    """Median seconds of one all-reduce, after a warm-up; the slowest rank's time counts."""
    dist.all_reduce(tensor, group=group)
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < 3 or (len(samples) < 20 and time.perf_counter() - start < budget):
        dist.barrier(group=group)
        t0 = time.perf_counter()
        dist.all_reduce(tensor, group=group)
        if tensor.is_cuda:
            torch.cuda.synchronize()
        elapsed = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX, group=group)
        samples.append(float(elapsed.item()))
        # every rank must agree on how many samples to take: share the decision
        go = torch.tensor(
            [
                1.0
                if (len(samples) < 3 or (len(samples) < 20 and time.perf_counter() - start < budget))
                else 0.0
            ]
        )
        dist.all_reduce(go, op=dist.ReduceOp.MIN, group=group)
        if go.item() == 0.0:
            break
    samples.sort()
    return samples[len(samples) // 2]


def run_rank(world: int, master: str, size_mib: float, timeout: float, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    rank = _rank()
    host, _, port = master.rpartition(":")
    out.write(protocol.line("hello", hostname=socket.gethostname(), rank=rank, pid=os.getpid()))
    out.flush()
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available() and dist.is_nccl_available()
    backend = "nccl" if cuda else "gloo"
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    store = dist.TCPStore(
        host, int(port), world, is_master=rank == 0, timeout=timedelta(seconds=timeout), wait_for_workers=True
    )
    dist.init_process_group(
        backend, store=store, rank=rank, world_size=world, timeout=timedelta(seconds=timeout)
    )
    try:
        full = max(4, int(size_mib * 2**20) // 4 * 4)
        sizes: dict[str, float] = {}
        headline: tuple[int, float, float] | None = None
        for nbytes in sorted({max(4, full // 64 // 4 * 4), max(4, full // 8 // 4 * 4), full}):
            tensor = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
            seconds = _time_allreduce(dist, torch, tensor, None, budget=2.0)
            alg, bus = busbw(nbytes, seconds, world)
            sizes[str(nbytes)] = round(bus, 4)
            headline = (nbytes, alg, bus)
        pairs: list[dict[str, Any]] = []
        if world >= 3:
            pair_bytes = max(4, full // 8 // 4 * 4)
            for i in range(world):
                a, b = i, (i + 1) % world
                group = dist.new_group(sorted((a, b)))  # every rank takes part in creating each group
                if rank in (a, b):
                    tensor = torch.ones(pair_bytes // 4, dtype=torch.float32, device=device)
                    seconds = _time_allreduce(dist, torch, tensor, group, budget=1.0)
                    pairs.append({"ranks": [a, b], "busbw_gbps": round(busbw(pair_bytes, seconds, 2)[1], 4)})
                dist.barrier()
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, pairs)
        if rank == 0 and headline is not None:
            seen: dict[tuple[int, ...], dict[str, Any]] = {}
            for rank_pairs in gathered:
                for p in rank_pairs or []:
                    seen.setdefault(tuple(p["ranks"]), p)
            out.write(
                protocol.line(
                    "allreduce",
                    backend=backend,
                    world=world,
                    size_bytes=headline[0],
                    algbw_gbps=round(headline[1], 4),
                    busbw_gbps=round(headline[2], 4),
                    sizes=sizes,
                    pairs=[seen[k] for k in sorted(seen)],
                    torch=torch.__version__,
                )
            )
        out.write(protocol.line("done", rank=rank))
        out.flush()
    finally:
        dist.destroy_process_group()
    return 0
