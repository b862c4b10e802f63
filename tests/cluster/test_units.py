"""Pure pieces of the adapters: host lists, srun's task ends, the collective's analysis, the K8s Job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envcheck.cluster.collective import build, locate
from envcheck.cluster.driver import ClusterOptions, node_args
from envcheck.cluster.engine_files import load_nodes
from envcheck.cluster.engine_k8s import manifest, render_manifest
from envcheck.cluster.engine_slurm import task_ends
from envcheck.cluster.interconnect import detect, from_name
from envcheck.cluster.models import LinkFigure, NetFacts, NodeResult, NodeStatus
from envcheck.cluster.netprobe import probe_net
from envcheck.cluster.sshhosts import config_aliases, expand_hosts, split_target
from envcheck.errors import UsageError


def test_ssh_aliases_through_includes_and_globs(tmp_path: Path) -> None:
    inc = tmp_path / "mlrig_config"
    inc.write_text(
        "Host train-0\n  HostName 10.0.0.1\nHost train-1 train-2\nHost *\n  User x\nHost !bad other\n"
    )
    cfg = tmp_path / "config"
    cfg.write_text(f'Include "{inc}"\nHost = laptop\nHost train-1\n')
    assert config_aliases(cfg) == ["train-0", "train-1", "train-2", "other", "laptop"]
    assert expand_hosts(["train-*"], cfg) == ["train-0", "train-1", "train-2"]
    assert expand_hosts(["a,b", "b c"], cfg) == ["a", "b", "c"]
    hostfile = tmp_path / "hosts"
    hostfile.write_text("# nodes\nnode1 slots=8\n\nnode2\n")
    assert expand_hosts([f"@{hostfile}"], cfg) == ["node1", "node2"]
    with pytest.raises(UsageError):
        expand_hosts(["gpu-*"], cfg)
    loop = tmp_path / "loop"
    loop.write_text(f"Include {loop}\nHost x\n")  # an Include cycle ends
    assert config_aliases(loop) == ["x"]


def test_split_target() -> None:
    assert split_target("root@10.0.0.1:2222") == ("root", "10.0.0.1", 2222)
    assert split_target("[fe80::1]:22") == (None, "fe80::1", 22)
    assert split_target("node-1") == (None, "node-1", None)


def test_srun_task_ends() -> None:
    err = (
        "srun: error: n5: task 4: Segmentation fault (core dumped)\n"
        "srun: error: n2: tasks 1-2: Exited with exit code 3\n"
        "srun: error: n9: task 7: Killed\n"
    )
    ends = task_ends(err)
    assert ends[4] == ("n5", "SEGV", None)
    assert ends[1] == ("n2", None, 3) and ends[2] == ("n2", None, 3)
    assert ends[7] == ("n9", "KILL", None)


def test_locate_slow_node_and_slow_link() -> None:
    def ring(bw: list[float]) -> list[LinkFigure]:
        n = len(bw)
        return [
            LinkFigure(ranks=[i, (i + 1) % n], nodes=[f"n{i}", f"n{(i + 1) % n}"], busbw_gbps=b)
            for i, b in enumerate(bw)
        ]

    assert locate(ring([10, 10, 10, 10])) == ([], [])
    # n2 is in pairs 1-2 and 2-3: both slow -> the node
    assert locate(ring([10, 3, 3, 10])) == (["n2"], [])
    # only the pair 0-1 is slow -> the link
    assert locate(ring([3, 10, 10, 10])) == ([], [["n0", "n1"]])
    assert locate(ring([10, 9])) == ([], [])  # two pairs say nothing


def test_collective_report_against_interconnect() -> None:
    ranks = [NodeResult(name=n, status=NodeStatus.OK) for n in ("a", "b", "c")]
    raw = {
        "backend": "nccl",
        "busbw_gbps": 20.0,
        "size_bytes": 64 << 20,
        "pairs": [
            {"ranks": [0, 1], "busbw_gbps": 45.0},
            {"ranks": [1, 2], "busbw_gbps": 44.0},
            {"ranks": [0, 2], "busbw_gbps": 46.0},
        ],
    }
    rep = build(ranks, raw, ["a", "b", "c"], 0.2, from_name("ib-ndr"))
    assert rep.achieved_pct == 40.0 and rep.interconnect and rep.interconnect.expected_gbps == 50.0
    from envcheck.cluster.collective import collective_findings

    assert [f.id for f in collective_findings(rep, 0.2)] == ["collective-low"]
    failed = build([NodeResult(name="a", status=NodeStatus.HUNG, reason="no answer")], None, ["a"], 0.2, None)
    assert failed.error and "a hung" in failed.error
    assert [f.id for f in collective_findings(failed, 0.2)] == ["collective-failed"]
    with pytest.raises(UsageError):
        from_name("token-ring")


def test_detect_interconnect_from_sys(tmp_path: Path) -> None:
    port = tmp_path / "sys/class/infiniband/mlx5_0/ports/1"
    port.mkdir(parents=True)
    (port / "rate").write_text("400 Gb/sec (4X NDR)\n")
    (port / "state").write_text("4: ACTIVE\n")
    eth = tmp_path / "sys/class/net/eth0"
    (eth / "device").mkdir(parents=True)
    (eth / "operstate").write_text("up\n")
    (eth / "speed").write_text("100000\n")
    lo = tmp_path / "sys/class/net/lo"
    lo.mkdir(parents=True)
    (lo / "operstate").write_text("unknown\n")
    facts = probe_net(tmp_path)
    assert facts.rdma_ports == {"mlx5_0/1": 400.0} and facts.ethernet == {"eth0": 100000}
    ic = detect([facts, NetFacts(ethernet={"eth0": 25000})])
    assert ic.kind == "Ethernet" and ic.expected_gbps == pytest.approx(25 / 8)
    assert detect([NetFacts(), None]).expected_gbps is None


def test_k8s_manifest_validates_against_the_kubernetes_schema(tmp_path: Path) -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    import yaml  # kubernetes-validate's own dependency

    opts = ClusterOptions(bench=True)
    text = render_manifest(opts=opts, nodes=16, image="ghcr.io/me/train:1", gpus=8, namespace="ml")
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert len(docs) == 1
    job = docs[0]
    for version in ("1.29", kv.utils.latest_version()):
        kv.validate(job, version, strict=True)  # raises ValidationError on any schema problem
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 16
    pod = spec["template"]["spec"]
    term = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == {
        "envcheck.mlrig.dev/run": job["metadata"]["labels"]["envcheck.mlrig.dev/run"]
    }
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert c["command"][:2] == ["envcheck", "cluster-node"] and "--bench" in c["command"]
    # a manifest that is not one: the validator must say so (it is not a rubber stamp)
    broken = manifest(opts=opts, nodes=2, image=None, gpus=0, namespace="x")
    broken["spec"]["completionMode"] = 5
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, kv.utils.latest_version(), strict=True)


def test_node_args_follow_options() -> None:
    args = node_args(
        ClusterOptions(smoke=True, smoke_frameworks=["torch"], bench=True, quick=False, timeout=30)
    )
    assert args == [
        "cluster-node",
        "--deadline",
        "30",
        "--smoke",
        "--framework",
        "torch",
        "--bench",
        "--full",
        "--backend",
        "auto",
    ]
    assert ClusterOptions(smoke=True, bench=True).node_timeout() == 60 + 180 + 120


def test_from_files_mixes_reports_logs_and_garbage(tmp_path: Path) -> None:
    from envcheck.cluster import protocol
    from envcheck.models import Report, Snapshot

    rep = Report(tool_version="0.1.0", created_at="x", snapshot=Snapshot())
    (tmp_path / "n1.json").write_text(rep.model_dump_json())
    log = (
        protocol.line("hello")
        + protocol.line("report", data=rep.model_dump())
        + protocol.line("done", seconds=1)
    )
    (tmp_path / "n2.log").write_text("pip noise\n" + log)
    (tmp_path / "n3.json").write_bytes(b"\xff\xfe{garbage")
    nodes: list[Any] = load_nodes([str(tmp_path)])
    assert [(n.name, n.status.value) for n in nodes] == [("n1", "ok"), ("n2", "ok"), ("n3", "failed")]
    with pytest.raises(UsageError):
        load_nodes([str(tmp_path / "nope")])
