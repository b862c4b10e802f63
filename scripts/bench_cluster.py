#!/usr/bin/env python3
"""How much does ``envcheck cluster`` add on top of envcheck itself? Prints the figures.

Starts N simulated nodes (Debian's sshd on 127.0.0.2..; or a Ray cluster with --engine ray), then
times, in the same run and interleaved so machine load hits both alike:

- ``envcheck --json`` on this machine (one node, no fan-out);
- ``envcheck cluster --ssh 'node-*' --json`` over 1 node and over N nodes.

The fan-out's own cost is the 1-node cluster run minus the single envcheck (driver start,
the SSH library, one connection). Over N nodes the rest is the nodes' own work: on a real cluster
each node has its own CPUs and that part does not grow with N; here all N share this machine's
cores, so the script also prints the CPU seconds the nodes needed and the floor that puts on wall
time (CPU seconds / cores). The acceptance: N-node wall time close to that floor plus the
1-node cost, i.e. a small constant, not N times a node.

    python scripts/bench_cluster.py [--nodes 8] [--repeat 5] [--engine ssh|ray]

Needs openssh-server (scripts/cluster-engines.sh) and mlrig[cluster]; run as root (sshd on
loopback addresses). Every daemon it starts is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _sim() -> Any:
    spec = importlib.util.spec_from_file_location("mlrig_cluster_sim", REPO / "tests/fixtures/cluster/sim.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["mlrig_cluster_sim"] = mod
    spec.loader.exec_module(mod)
    return mod


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of the child and everything it waited for, parsed JSON)."""
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
    wall = time.perf_counter() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        sys.exit(f"{' '.join(argv[:4])} printed no JSON (exit {proc.returncode}): {proc.stderr[-500:]}")
    return wall, cpu, data


class NodeCpu:
    """CPU seconds used by the nodes' processes (not our children: sshd started them), from a
    cpuacct cgroup holding the node daemons; None when cgroup v1 cpuacct is not writable here."""

    def __init__(self, pids: list[int]) -> None:
        self.path: Path | None = Path("/sys/fs/cgroup/cpuacct") / f"mlrig-bench-{os.getpid()}"
        if not pids:  # nothing to meter (Ray's raylets are started by Ray): estimate instead
            self.path = None
            return
        try:
            self.path.mkdir()
            for pid in pids:
                (self.path / "cgroup.procs").write_text(str(pid))
        except OSError:
            self.path = None

    def seconds(self) -> float | None:
        if self.path is None:
            return None
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def remove(self) -> None:
        if self.path is not None:
            for pid in (self.path / "cgroup.procs").read_text().split():  # back to the root group
                with contextlib.suppress(OSError):
                    (self.path.parent / "cgroup.procs").write_text(pid)
            with contextlib.suppress(OSError):
                self.path.rmdir()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--engine", choices=("ssh", "ray"), default="ssh")
    args = ap.parse_args()
    sim = _sim()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    py = sys.executable
    cleanup: list[Any] = []
    try:
        if args.engine == "ssh":
            nodes = sim.SshNodes([sim.NodeSpec(f"node-{i + 1}") for i in range(args.nodes)]).start()
            cleanup.append(nodes.stop)
            engine_all = ["--ssh", "node-*", "--ssh-config", str(nodes.config)]
            engine_one = ["--ssh", "node-1", "--ssh-config", str(nodes.config)]
            meter = NodeCpu([p.pid for p in nodes.procs])
            cleanup.append(meter.remove)
        else:
            os.environ["RAY_TMPDIR"] = ray_tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")
            cleanup.append(lambda: shutil.rmtree(ray_tmp, ignore_errors=True))
            from ray.cluster_utils import Cluster

            cluster = Cluster(
                initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
            )
            for _ in range(args.nodes - 1):
                cluster.add_node(num_cpus=1)
            cleanup.append(cluster.shutdown)
            engine_all = ["--ray", cluster.address]
            engine_one = None  # Ray has no one-node subset: the N-node run alone
            meter = NodeCpu([])
        single = [py, "-m", "envcheck", "--json"]
        many = [py, "-m", "envcheck", "cluster", *engine_all, "--json"]
        one = [py, "-m", "envcheck", "cluster", *engine_one, "--json"] if engine_one else None
        _timed(single, env)  # warm the page cache: every figure below is a warm start
        rows: dict[str, list[tuple[float, float]]] = {"single": [], "one": [], "many": []}
        node_seconds: list[float] = []
        node_cpu: list[float] = []
        for _ in range(args.repeat):
            w, c, _ = _timed(single, env)
            rows["single"].append((w, c))
            if one:
                w, c, _ = _timed(one, env)
                rows["one"].append((w, c))
            used = meter.seconds()
            w, c, data = _timed(many, env)
            after = meter.seconds()
            rows["many"].append((w, c))
            if used is not None and after is not None:
                node_cpu.append(after - used)
            bad = [n["name"] for n in data["nodes"] if n["status"] != "ok"]
            if bad:
                sys.exit(f"nodes did not answer: {bad}")
            node_seconds += [n["seconds"] for n in data["nodes"]]
        med = {
            k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
            for k, v in rows.items()
            if v
        }
        cores = os.cpu_count() or 1
        print(
            f"envcheck cluster benchmark: {args.engine}, {args.nodes} simulated nodes on {cores} cores, "
            f"median of {args.repeat} interleaved runs"
        )
        print(f"  envcheck --json (this machine, no fan-out)      {med['single'][0]:6.2f} s wall")
        if "one" in med:
            print(
                f"  envcheck cluster, 1 node                        {med['one'][0]:6.2f} s wall"
                f"   (fan-out cost: +{med['one'][0] - med['single'][0]:.2f} s)"
            )
        # the nodes are not our children (sshd / raylet started them): their CPU comes from the cgroup
        # (sshd, login shell and envcheck on each node), else is taken as N x one envcheck's
        wall, driver_cpu = med["many"]
        nodes_cpu = statistics.median(node_cpu) if node_cpu else args.nodes * med["single"][1]
        cpu = driver_cpu + nodes_cpu
        floor = cpu / cores
        print(
            f"  envcheck cluster, {args.nodes} nodes                       {wall:6.2f} s wall"
            f"   ({wall / med['single'][0]:.1f}x one envcheck)"
        )
        how = "measured (cgroup)" if node_cpu else f"estimated as {args.nodes} x one envcheck"
        print(f"  CPU: driver {driver_cpu:.2f} s + nodes {nodes_cpu:.2f} s ({how}) = {cpu:.2f} s")
        print(f"  -> wall-time floor on {cores} shared cores              {floor:6.2f} s")
        print(
            f"  wall above that floor                           {wall - floor:6.2f} s"
            "   (the fan-out's constant: compare the 1-node run; it does not grow N x a node)"
        )
        per_node = f"median {statistics.median(node_seconds):.2f} s, max {max(node_seconds):.2f} s"
        print(f"  per-node time as the driver saw it              {per_node}")
    finally:
        for stop in reversed(cleanup):
            stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
