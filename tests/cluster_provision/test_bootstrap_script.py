"""The first-boot script run by bash: ranks, the files it writes, node lists from elsewhere, failures.

These run the real script on this machine (its hostname and addresses are not in the test node
lists, so only the path under test can find a rank); the whole-cluster bring-up is test_bringup.py.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from provision.cluster import bootstrap, nodes
from provision.cluster.bootstrap import Metadata

SPECS = {
    "plain": nodes.make("c1", ["10.250.0.1", "10.250.0.2", "10.250.0.3"]),
    "full": nodes.make(
        "run.v2_x",
        ["10.250.1.10", "10.250.1.11", "10.250.1.12", "10.250.1.13"],
        ["h-0.zone.internal", None, "h-2", "H-3"],
        engine=nodes.Engine.RAY,
        master_port=12345,
        ray_port=6380,
        launch_id="abcdef012345",
    ),
}


def _run(
    workdir: Path,
    spec: nodes.ClusterSpec,
    env: dict[str, str] | None = None,
    *,
    timeout: float = 60,
    **kw: Any,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    script = workdir / "boot.sh"
    script.write_text(bootstrap.script(spec, **kw))
    etc = workdir / "etc"
    full = {k: v for k, v in os.environ.items() if k != "MLRIG_NODE_RANK"}
    full.update({"MLRIG_CLUSTER_DIR": str(etc), **(env or {})})
    proc = subprocess.run(
        ["bash", str(script)], env=full, capture_output=True, text=True, timeout=timeout, check=False
    )
    if spec.engine is nodes.Engine.RAY and (etc / "cluster.env").exists():
        # the engine starts in the background: let it finish before the test looks (or cleans up)
        status = etc / "engine.status"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not status.exists() or status.read_text() == "starting\n"):
            time.sleep(0.05)
    return proc, etc


@pytest.mark.parametrize("which", sorted(SPECS))
def test_every_rank_writes_what_python_renders(workdir: Path, which: str) -> None:
    spec = SPECS[which]
    for rank in range(spec.size):
        proc, etc = _run(workdir, spec, {"MLRIG_NODE_RANK": str(rank), "MLRIG_RAY": "/nonexistent/ray"})
        assert proc.returncode == 0, proc.stderr
        if spec.engine is nodes.Engine.RAY:
            assert (etc / "engine.status").read_text().startswith("failed: /nonexistent/ray")
        assert (etc / "cluster.env").read_text() == bootstrap.env_file(spec, rank)
        assert (etc / "cluster.json").read_text() == bootstrap.json_file(spec, rank)
        assert (etc / "nodes").read_text() == nodes.node_list(spec)
        assert not (etc / "cluster.error").exists()
        mode = (etc / "cluster.env").stat().st_mode & 0o777
        assert mode == 0o644
        assert not [p for p in etc.iterdir() if p.name.startswith(".")]  # no temp files left


def test_the_env_file_reads_in_bash_dash_and_as_an_environment_file(workdir: Path) -> None:
    spec = SPECS["full"]
    path = workdir / "cluster.env"
    path.write_text(bootstrap.env_file(spec, 2))
    shown = subprocess.run(
        ["bash", "-c", 'set -a; . "$0"; set +a; env', str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout
    env = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    assert env["MASTER_ADDR"] == "10.250.1.10"
    assert env["MASTER_PORT"] == "12345"
    assert env["NNODES"] == "4"
    assert env["NODE_RANK"] == "2"
    assert env["MLRIG_NODE_ADDR"] == "10.250.1.12"
    assert env["MLRIG_NODE_ADDRS"] == "10.250.1.10 10.250.1.11 10.250.1.12 10.250.1.13"
    assert env["MLRIG_NODE_HOSTNAMES"] == "h-0.zone.internal - h-2 H-3"
    assert env["RAY_ADDRESS"] == "10.250.1.10:6380"
    dash = subprocess.run(
        ["sh", "-c", '. "$0"; echo "$NNODES|$NODE_RANK|$MLRIG_NODE_ADDRS"', str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert dash.strip() == "4|2|10.250.1.10 10.250.1.11 10.250.1.12 10.250.1.13"
    # systemd's EnvironmentFile= grammar: comments, KEY=VALUE, double-quoted values
    for line in path.read_text().splitlines():
        assert line.startswith("#") or (line.split("=", 1)[0].isidentifier() and "=" in line)


@pytest.mark.parametrize("value", ["3", "-1", "1; touch INJECTED", "x", "01a"])
def test_a_bad_rank_override_is_refused(workdir: Path, value: str) -> None:
    proc, etc = _run(workdir, SPECS["plain"], {"MLRIG_NODE_RANK": value})
    assert proc.returncode == 1
    assert "not a node index 0-2" in (etc / "cluster.error").read_text()
    assert not (etc / "cluster.env").exists()
    assert not list(workdir.glob("INJECTED")) and not Path("INJECTED").exists()


def test_a_machine_that_is_not_in_the_list_writes_no_cluster_file(workdir: Path) -> None:
    proc, etc = _run(workdir, SPECS["plain"])
    assert proc.returncode == 1
    error = (etc / "cluster.error").read_text()
    assert "is not in the node list" in error
    assert socket.gethostname() in error
    assert not (etc / "cluster.env").exists()
    assert "bootstrap failed" in proc.stdout


def test_deferred_node_list_arrives_after_boot(workdir: Path, sim: Any) -> None:
    full = SPECS["full"]
    later = nodes.ClusterSpec(
        name=full.name,
        size=full.size,
        master_port=full.master_port,
        engine=full.engine,
        ray_port=full.ray_port,
        launch_id=full.launch_id,
    )
    script = workdir / "boot.sh"
    script.write_text(bootstrap.script(later, wait_seconds=30))
    etc = workdir / "etc"
    env = {**os.environ, "MLRIG_CLUSTER_DIR": str(etc), "MLRIG_NODE_RANK": "1", "MLRIG_RAY": "/nonexistent"}
    proc = subprocess.Popen(
        ["bash", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1.5)
        assert proc.poll() is None  # still waiting for its node list
        tmp = etc / ".push"
        tmp.write_text(nodes.node_list(full))
        tmp.rename(etc / "nodes")  # what the launcher's SSH push does: write, then rename
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "waiting for the node list" in err
    sim.wait_for(lambda: (etc / "engine.status").read_text().startswith("failed"), 10, "the engine")
    assert (etc / "cluster.env").read_text() == bootstrap.env_file(full, 1)


def test_no_node_list_within_the_wait_is_an_error(workdir: Path) -> None:
    spec = nodes.ClusterSpec(name="late", size=2)
    start = time.monotonic()
    proc, etc = _run(workdir, spec, {"MLRIG_NODE_RANK": "0"}, wait_seconds=1)
    assert proc.returncode == 1
    assert time.monotonic() - start < 15
    assert "no node list after 1s" in (etc / "cluster.error").read_text()


HOSTILE = {
    "command substitution": "0 head 10.0.0.1 $(touch${IFS}INJECTED)\n1 worker 10.0.0.2 -\n",
    "backticks": "0 head 10.0.0.1 `touch INJECTED`\n1 worker 10.0.0.2 -\n",
    "too few": "0 head 10.0.0.1 -\n",
    "too many": "0 head 10.0.0.1 -\n1 worker 10.0.0.2 -\n2 worker 10.0.0.3 -\n",
    "index gap": "0 head 10.0.0.1 -\n2 worker 10.0.0.2 -\n",
    "two heads": "0 head 10.0.0.1 -\n1 head 10.0.0.2 -\n",
    "extra field": "0 head 10.0.0.1 - x\n1 worker 10.0.0.2 -\n",
    "ipv6": "0 head fd00::1 -\n1 worker 10.0.0.2 -\n",
    "quote": "0 head 10.0.0.1 a'b\n1 worker 10.0.0.2 -\n",
    "empty hostname field": "0 head 10.0.0.1\n1 worker 10.0.0.2 -\n",
    "binary": "0 head 10.0.0.1 \x01\x02\n1 worker 10.0.0.2 -\n",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_malformed_node_list_is_refused_and_never_executed(workdir: Path, case: str) -> None:
    etc = workdir / "etc"
    etc.mkdir()
    (etc / "nodes").write_text(HOSTILE[case])
    proc, _ = _run(workdir, nodes.ClusterSpec(name="x", size=2), {"MLRIG_NODE_RANK": "0"}, wait_seconds=2)
    assert proc.returncode == 1, proc.stderr
    assert "node list" in (etc / "cluster.error").read_text()
    assert not (etc / "cluster.env").exists()
    assert not (workdir / "INJECTED").exists() and not Path("INJECTED").exists()


@pytest.fixture
def metadata(sim: Any) -> Any:
    servers: list[Any] = []

    def start(**kw: Any) -> Any:
        server = sim.MetadataServer(**kw)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_gce_metadata_gives_the_node_list_and_the_address(workdir: Path, metadata: Any) -> None:
    full = nodes.make("g", ["10.128.0.5", "10.128.0.6", "10.128.0.7"], ["g-0", "g-1", "g-2"])
    server = metadata(
        gce={
            "instance/attributes/mlrig-nodes": nodes.node_list(full),
            "instance/network-interfaces/0/ip": "10.128.0.7",
            "instance/hostname": "g-2.us-central1-a.c.proj.internal",
        }
    )
    spec = nodes.ClusterSpec(name="g", size=3)
    proc, etc = _run(
        workdir, spec, {"GCE_METADATA_HOST": server.hostport}, metadata=Metadata.GCE, wait_seconds=20
    )
    assert proc.returncode == 0, proc.stderr
    assert "found by GCE metadata address 10.128.0.7" in proc.stderr
    assert (etc / "cluster.env").read_text() == bootstrap.env_file(full, 2)


def test_gce_hostname_when_the_address_is_not_listed(workdir: Path, metadata: Any) -> None:
    spec = nodes.make("g", ["10.128.0.5", "10.128.0.6"], ["g-0", "g-1"])
    server = metadata(gce={"instance/hostname": "G-1.us-central1-a.c.proj.internal"})
    proc, etc = _run(workdir, spec, {"GCE_METADATA_HOST": server.hostport}, metadata=Metadata.GCE)
    assert proc.returncode == 0, proc.stderr
    assert "found by GCE metadata hostname" in proc.stderr
    assert json.loads((etc / "cluster.json").read_text())["node_rank"] == 1


def test_ec2_metadata_with_an_imdsv2_token(workdir: Path, metadata: Any) -> None:
    spec = nodes.make("a", ["172.31.5.1", "172.31.5.2", "172.31.5.3"])
    server = metadata(aws={"local-ipv4": "172.31.5.3", "local-hostname": "ip-172-31-5-3.ec2.internal"})
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://{server.hostport}/"}
    proc, etc = _run(workdir, spec, env, metadata=Metadata.AWS)
    assert proc.returncode == 0, proc.stderr
    assert "found by EC2 metadata address 172.31.5.3" in proc.stderr
    assert server.log[:2] == ["PUT /latest/api/token", "GET /latest/meta-data/local-ipv4"]
    assert json.loads((etc / "cluster.json").read_text())["node_rank"] == 2


def test_ec2_nodes_read_their_node_list_from_their_own_tags(workdir: Path, metadata: Any) -> None:
    """`provision up` tags every node with the list (deliver.as_tags); launched with instance tags
    in the metadata, each node reads it there and finds itself by its address: no SSH."""
    from provision.cluster import deliver

    addresses = [f"172.31.{k // 200}.{k % 200 + 10}" for k in range(40)]  # 40 nodes: the list needs parts
    full = nodes.make("a", addresses)
    tags = deliver.as_tags(nodes.node_list(full))
    assert tags["mlrig-nodes-n"] == "40" and len(tags) > 2
    assert all(len(v) <= 255 and "," not in v for v in tags.values())
    imds = {f"tags/instance/{k}": v for k, v in tags.items()}
    server = metadata(aws={**imds, "local-ipv4": addresses[33]})
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://{server.hostport}/"}
    proc, etc = _run(
        workdir, nodes.ClusterSpec(name="a", size=40), env, metadata=Metadata.AWS, wait_seconds=20
    )
    assert proc.returncode == 0, proc.stderr
    assert "found by EC2 metadata address" in proc.stderr
    assert (etc / "cluster.env").read_text() == bootstrap.env_file(full, 33)


def test_ec2_tags_still_being_written_are_waited_for_not_half_read(workdir: Path, metadata: Any) -> None:
    """The count tag says 3 nodes, the parts hold 2: the script waits (here: runs out of time)
    instead of writing a cluster of two."""
    server = metadata(
        aws={
            "tags/instance/mlrig-nodes-n": "3",
            "tags/instance/mlrig-nodes-0": "172.31.0.1 172.31.0.2",
            "local-ipv4": "172.31.0.2",
        }
    )
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://{server.hostport}/"}
    proc, etc = _run(workdir, nodes.ClusterSpec(name="a", size=3), env, metadata=Metadata.AWS, wait_seconds=3)
    assert proc.returncode != 0
    assert not (etc / "cluster.env").exists()


def test_a_tpu_slice_host_reads_its_worker_number_and_the_slice(workdir: Path, metadata: Any) -> None:
    # a v4-32 slice: four hosts, the endpoints in worker order as the TPU VM metadata lists them
    endpoints = ",".join(f"t1v-n-abc-w-{k}:{k + 17}:10.130.0.{k + 2}" for k in range(4))
    server = metadata(
        gce={
            "instance/attributes/worker-network-endpoints": endpoints,
            "instance/attributes/agent-worker-number": "3",
        }
    )
    spec = nodes.ClusterSpec(name="tpu", size=4, master_port=8476)
    proc, etc = _run(workdir, spec, {"GCE_METADATA_HOST": server.hostport}, metadata=Metadata.TPU)
    assert proc.returncode == 0, proc.stderr
    assert "found by TPU worker number 3" in proc.stderr
    data = json.loads((etc / "cluster.json").read_text())
    assert data["node_rank"] == 3
    assert data["master_addr"] == "10.130.0.2"
    assert [n["address"] for n in data["nodes"]] == [f"10.130.0.{k}" for k in range(2, 6)]


def test_a_metadata_server_that_hangs_costs_seconds_not_the_boot(workdir: Path, metadata: Any) -> None:
    me = socket.gethostname()
    spec = nodes.make("h", ["10.250.9.1", "10.250.9.2"], ["somebody-else", me])
    server = metadata(hang=30)
    start = time.monotonic()
    proc, _etc = _run(workdir, spec, {"GCE_METADATA_HOST": server.hostport}, metadata=Metadata.GCE)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start < 20
    assert f"found by hostname {me}" in proc.stderr


def test_ray_not_installed_and_a_head_that_never_comes(workdir: Path, sim: Any) -> None:
    spec = nodes.make("r", ["10.250.3.1", "10.250.3.2"], engine=nodes.Engine.RAY)
    proc, etc = _run(workdir, spec, {"MLRIG_NODE_RANK": "1", "MLRIG_RAY": "/nonexistent/ray"})
    assert proc.returncode == 0  # the cluster file is written; the engine reports separately
    time.sleep(0.5)
    assert (etc / "engine.status").read_text().startswith("failed: /nonexistent/ray is not installed")

    fake = workdir / "ray"
    fake.write_text('#!/bin/sh\necho "ray $*" >>"$(dirname "$0")/calls"\nexit 1\n')
    fake.chmod(0o755)
    proc, etc = _run(workdir, spec, {"MLRIG_NODE_RANK": "1", "MLRIG_RAY": str(fake)}, ray_wait_seconds=1)
    assert proc.returncode == 0
    sim.wait_for(lambda: (etc / "engine.status").read_text().startswith("failed"), 30, "the join to give up")
    status = (etc / "engine.status").read_text()
    assert "could not join the Ray head at 10.250.3.1:6379" in status
    calls = (workdir / "calls").read_text().splitlines()
    assert len(calls) >= 2
    assert (
        calls[0] == "ray start --address=10.250.3.1:6379 --node-ip-address=10.250.3.2 --disable-usage-stats"
    )


def test_a_worker_keeps_trying_until_the_head_answers(workdir: Path, sim: Any) -> None:
    spec = nodes.make("r", ["10.250.3.1", "10.250.3.2"], engine=nodes.Engine.RAY, ray_args=("--num-cpus=1",))
    fake = workdir / "ray"  # fails twice (no head yet), then joins
    fake.write_text(
        '#!/bin/sh\nd=$(dirname "$0"); echo "ray $*" >>"$d/calls"\n'
        '[ "$(wc -l <"$d/calls")" -ge 3 ] && exit 0; echo "no GCS" >&2; exit 1\n'
    )
    fake.chmod(0o755)
    proc, etc = _run(workdir, spec, {"MLRIG_NODE_RANK": "1", "MLRIG_RAY": str(fake)}, ray_wait_seconds=60)
    assert proc.returncode == 0
    sim.wait_for(lambda: (etc / "engine.status").read_text().strip() != "starting", 30, "the join")
    assert (etc / "engine.status").read_text() == "up\n"
    calls = (workdir / "calls").read_text().splitlines()
    join = "ray start --address=10.250.3.1:6379 --node-ip-address=10.250.3.2 --disable-usage-stats"
    assert calls == [f"{join} --num-cpus=1"] * 3
    log = (etc / "engine.log").read_text()
    assert "(try 3)" in log and log.count("no GCS") == 2


def test_the_cluster_dir_cannot_be_created(workdir: Path) -> None:
    blocker = workdir / "etc"
    blocker.write_text("a file where the directory should be")
    proc, _ = _run(workdir, SPECS["plain"], {"MLRIG_NODE_RANK": "0"})
    assert proc.returncode == 1
    assert "cannot create" in proc.stderr
    assert blocker.read_text() == "a file where the directory should be"


def test_the_snippet_inside_a_first_boot_script_keeps_its_failures_and_variables(workdir: Path) -> None:
    snippet = bootstrap.snippet(SPECS["plain"])
    boot = workdir / "firstboot.sh"
    boot.write_text(
        "#!/bin/bash\nset -u\nname=outer\n" + snippet + 'echo "after: $name rc=$mlrig_cluster_rc"\n'
    )
    proc = subprocess.run(
        ["bash", str(boot)],
        env={**os.environ, "MLRIG_CLUSTER_DIR": str(workdir / "etc")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert "after: outer rc=1" in proc.stdout  # the rest of the boot ran; nothing leaked out


def test_the_address_path_in_a_network_of_its_own(workdir: Path, namespaces: None) -> None:
    spec = nodes.make("n", ["127.0.0.2", "127.0.0.3", "127.0.0.4"], ["nobody-0", "nobody-1", "nobody-2"])
    script = workdir / "boot.sh"
    script.write_text(bootstrap.script(spec))

    def boot(*addresses: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        etc = workdir / f"etc-{len(addresses)}"
        adds = "; ".join(f"ip addr add {a}/32 dev lo" for a in addresses)
        inner = f'ip link set lo up; {adds}; hostname unrelated-host; exec bash "$0"'
        proc = subprocess.run(
            ["unshare", "--net", "--uts", "--", "bash", "-c", inner, str(script)],
            env={**os.environ, "MLRIG_CLUSTER_DIR": str(etc)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return proc, etc

    proc, etc = boot("127.0.0.3")
    assert proc.returncode == 0, proc.stderr
    assert "found by address 127.0.0.3" in proc.stderr
    assert (etc / "cluster.env").read_text() == bootstrap.env_file(spec, 1)

    proc, etc = boot("127.0.0.3", "127.0.0.4")
    assert proc.returncode == 1
    assert "addresses of nodes 1 2" in (etc / "cluster.error").read_text()


def test_killed_at_random_moments_it_leaves_whole_files_and_a_rerun_finishes(workdir: Path) -> None:
    spec = SPECS["full"]
    script = workdir / "boot.sh"
    script.write_text(bootstrap.script(spec))
    etc = workdir / "etc"
    env = {**os.environ, "MLRIG_CLUSTER_DIR": str(etc), "MLRIG_NODE_RANK": "3", "MLRIG_RAY": "/nonexistent"}
    rng = random.Random(7)
    for _ in range(25):
        proc = subprocess.Popen(
            ["bash", str(script)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(0, 0.06))
        os.killpg(proc.pid, signal.SIGKILL)  # the script and its subshells, like a power cut
        proc.wait()
        for name, expected in (
            ("cluster.env", bootstrap.env_file(spec, 3)),
            ("cluster.json", bootstrap.json_file(spec, 3)),
        ):
            if (etc / name).exists():  # a file is there whole, or not at all
                assert (etc / name).read_text() == expected
    proc2, _ = _run(workdir, spec, {"MLRIG_NODE_RANK": "3", "MLRIG_RAY": "/nonexistent"})
    assert proc2.returncode == 0
    time.sleep(0.3)  # the engine's status line is written in the background
    assert (etc / "cluster.env").read_text() == bootstrap.env_file(spec, 3)
    assert sorted(p.name for p in etc.iterdir() if p.name.startswith(".")) == []
