"""The bring-up for real: simulated nodes run the first-boot script, then train and form a Ray cluster.

Three machines (own hostname, own process tree, one loopback network of their own) boot the same
script. Each finds its rank by its hostname and writes the cluster file; then torchrun, given only
what that file says, runs a gloo all-reduce across the three; and Ray's head on node 0 sees the
other two join (they start first and retry until the head is up).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provision.cluster import bootstrap, nodes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cluster_provision"
BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("namespaces")]

ADDRS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
HOSTS = ["train-0", "train-1", "train-2"]
ENV = {"PATH": f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
# one CPU and the smallest object store per node: three Ray nodes on a 2-core test machine
RAY_ARGS = ("--num-cpus=1", "--object-store-memory=78643200")


def _machines(sim: Any, root: Path, spec: nodes.ClusterSpec, **kw: Any) -> tuple[Any, list[Any]]:
    script = root / "boot.sh"
    script.write_text(bootstrap.script(spec, **kw))
    netns = sim.Netns()
    netns.start()
    machines = []
    for host in HOSTS[: spec.size]:
        ray_tmp = sim.tempdir("r")  # Ray's sockets live here: a short path
        env = {**ENV, "RAY_TMPDIR": str(ray_tmp), "MLRIG_TEST_RAY_TMP": str(ray_tmp)}
        machines.append(sim.SimNode(host, root / host, env=env))
    return netns, machines


def _wait_booted(machines: list[Any], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for m in machines:
        while m.booted() is None:
            assert time.monotonic() < deadline, f"{m.hostname} did not finish its first boot"
            time.sleep(0.1)
        log = (m.disk / "boot.log").read_text()
        assert m.booted() == 0, f"{m.hostname} first boot failed:\n{log}"


@pytest.fixture(scope="module")
def cluster(sim: Any) -> Iterator[tuple[nodes.ClusterSpec, list[Any]]]:
    """Three nodes with the Ray engine; the workers boot first, the head 4 s later."""
    root = sim.tempdir("mlb")
    spec = nodes.make(
        "train",
        ADDRS,
        list(HOSTS),
        engine=nodes.Engine.RAY,
        master_port=29411,
        ray_port=26411,
        launch_id="t0launch",
        ray_args=RAY_ARGS,
    )
    netns, machines = _machines(sim, root, spec)
    script = root / "boot.sh"
    try:
        for m in machines[1:]:
            m.boot(netns, script)
        # the workers are up and trying to join a head that does not exist yet
        sim.wait_for(
            lambda: all((m.disk / "etc" / "engine.log").exists() for m in machines[1:]), 60, "workers"
        )
        time.sleep(4)
        machines[0].boot(netns, script)
        _wait_booted(machines)
        yield spec, machines
    finally:
        left = sim.stop_all(machines, netns)
        for m in machines:
            ray_tmp = Path(m.env["MLRIG_TEST_RAY_TMP"])
            shutil.rmtree(ray_tmp, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"processes of the simulated nodes still alive: {left}"


def test_every_node_found_itself_and_wrote_the_cluster_file(cluster: Any) -> None:
    spec, machines = cluster
    for rank, m in enumerate(machines):
        assert m.file("cluster.env") == bootstrap.env_file(spec, rank)
        assert m.file("cluster.json") == bootstrap.json_file(spec, rank)
        assert json.loads(m.file("cluster.json"))["node_rank"] == rank
        assert f"this is node {rank}" in (m.disk / "boot.log").read_text()
        assert f"found by hostname {HOSTS[rank]}" in (m.disk / "boot.log").read_text()


def test_torchrun_allreduce_across_the_nodes_from_the_cluster_file_alone(cluster: Any) -> None:
    pytest.importorskip("torch", reason="torch is not installed (scripts/test-frameworks.txt)")
    spec, machines = cluster
    out = machines[0].disk.parent / "allreduce"
    out.mkdir(exist_ok=True)
    # every flag comes from the cluster file; nothing else tells torchrun where the others are
    command = (
        'set -a; . "$MLRIG_CLUSTER_DIR/cluster.env"; set +a; '
        'exec torchrun --nnodes "$NNODES" --node-rank "$NODE_RANK" --nproc-per-node 1 '
        '--master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" "$0" "$1"'
    )
    procs = [
        m.popen(
            ["bash", "-c", command, str(FIXTURES / "allreduce.py"), str(out)], env={"OMP_NUM_THREADS": "1"}
        )
        for m in machines
    ]
    try:
        outputs = [p.communicate(timeout=150)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, text in zip(procs, outputs, strict=True):
        assert p.returncode == 0, text[-3000:]
    results = [json.loads((out / f"allreduce-{r}.json").read_text()) for r in range(3)]
    for r in results:
        assert r["world_size"] == 3
        assert r["sum"] == 6.0  # 1 + 2 + 3
        assert r["master"] == f"{ADDRS[0]}:{spec.master_port}"
        assert r["group_rank"] == HOSTS.index(r["hostname"])  # torchrun's node rank is the file's rank
        assert r["hostnames"] == HOSTS  # rank k ran on node k: three machines, not one


def test_ray_head_and_workers_form_one_cluster(cluster: Any, sim: Any) -> None:
    pytest.importorskip("ray", reason="ray is not installed (pip install 'mlrig[cluster]')")
    _spec, machines = cluster
    for m in machines:
        sim.wait_for(lambda m=m: m.file("engine.status").strip() != "starting", 120, "ray", interval=0.5)
        assert m.file("engine.status").strip() == "up", m.file("engine.log")[-3000:]
    # the workers were trying to join before the head existed (the fixture booted it after their
    # first try had started), and joined once it came up: `ray start` waits a while by itself,
    # the script's loop tries again after that (test_bootstrap_script checks the loop)
    for m in machines[1:]:
        assert "joining the Ray head at 127.0.0.2:26411 (try 1)" in m.file("engine.log")
    head = machines[0]
    listing = None
    for _try in range(60):  # a raylet takes a moment to register with the head after `ray start` returns
        cmd = 'set -a; . "$MLRIG_CLUSTER_DIR/cluster.env"; set +a; exec python "$0"'
        proc = head.run(["bash", "-c", cmd, str(FIXTURES / "ray_nodes.py")], timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        listing = json.loads(proc.stdout.strip().splitlines()[-1])
        if len(listing) == 3:
            break
        time.sleep(1)
    assert listing == ADDRS
    for _try in range(60):  # the autoscaler's view lags the GCS node table by a report period
        status = head.run(
            ["bash", "-c", 'set -a; . "$MLRIG_CLUSTER_DIR/cluster.env"; set +a; exec ray status'], timeout=120
        )
        active = status.stdout.split("Active:")[1].split("Pending:")[0]
        if active.count("node_") == 3:
            break
        time.sleep(1)
    assert active.count("node_") == 3, status.stdout
