"""Aggregation is pure: hand-made node results in, the culprit named out. No engine anywhere."""

from __future__ import annotations

import json
import random
import re
from typing import Any

from envcheck.cluster import protocol
from envcheck.cluster.aggregate import aggregate, group_values
from envcheck.cluster.models import NodeResult, NodeRun, NodeStatus
from envcheck.cluster.render import print_cluster, to_markdown
from envcheck.models import (
    CpuInfo,
    CudaInfo,
    CudaLibrary,
    Finding,
    Framework,
    FrameworksInfo,
    Gpu,
    NvidiaInfo,
    Report,
    Severity,
    Snapshot,
    SystemInfo,
)


def snap(
    *,
    driver: str = "550.54.15",
    torch: str | None = "2.5.1+cu124",
    gpus: int = 8,
    nccl: str = "2.21.5",
    quota: float | None = None,
) -> Snapshot:
    fws = [
        Framework(name="torch", installed=torch is not None, version=torch, build="cuda", cuda_build="12.4")
    ]
    return Snapshot(
        system=SystemInfo(distro="Ubuntu 22.04", kernel="5.15.0", hostname="h"),
        cpu=CpuInfo(model="EPYC", usable_cpus=64, cgroup_cpu_quota=quota),
        nvidia=NvidiaInfo(
            driver_version=driver,
            cuda_driver_version=12040,
            gpus=[Gpu(index=i, name="NVIDIA H100 80GB HBM3") for i in range(gpus)],
        ),
        cuda=CudaInfo(runtime_version=12040, libraries=[CudaLibrary(name="nccl", version=nccl)]),
        frameworks=FrameworksInfo(frameworks=fws),
    )


def node(name: str, snapshot: Snapshot | None = None, **kw: Any) -> NodeResult:
    report = Report(tool_version="0.1.0", created_at="2026-12-07T00:00:00+00:00", snapshot=snapshot or snap())
    return NodeResult(name=name, status=NodeStatus.OK, report=report, **kw)


def bench(matmul: float, copy: float = 2000.0, h2d: float = 25.0) -> dict[str, Any]:
    figs = [
        {
            "device": f"gpu:{i}",
            "device_name": "H100",
            "metric": "matmul",
            "dtype": "bfloat16",
            "unit": "TFLOPS",
            "median": matmul if i == 3 else 700.0,
        }
        for i in range(8)
    ]
    figs += [
        {"device": "gpu:0", "device_name": "H100", "metric": "copy", "unit": "GB/s", "median": copy},
        {"device": "gpu:0", "device_name": "H100", "metric": "h2d", "unit": "GB/s", "median": h2d},
    ]
    return {"figures": figs}


def ids(report: Any) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for f in report.findings:
        out.setdefault(f.id, []).append(f.nodes)
    return out


def test_identical_cluster_has_no_findings_and_collapses_every_row() -> None:
    r = aggregate([node(f"n{i}") for i in range(4)], engine="ssh")
    assert r.findings == [] and not r.has_errors
    assert all(len(row.groups) == 1 for row in r.layers)


def test_drift_names_the_minority_with_severity_per_layer() -> None:
    nodes = [node("a"), node("b", snap(driver="535.104.05")), node("c"), node("d", snap(torch="2.4.0+cu121"))]
    r = aggregate(nodes, engine="ssh")
    found = ids(r)
    assert found["drift-driver"] == [["b"]]
    assert ["d"] in found["drift-framework"]
    sev = {f.id: f.severity for f in r.findings}
    assert sev["drift-driver"] is Severity.WARNING and sev["drift-framework"] is Severity.ERROR
    assert r.has_errors  # framework drift breaks jobs: exit 1


def test_missing_gpu_nccl_and_not_installed_are_drift() -> None:
    nodes = [node("a"), node("b", snap(gpus=7)), node("c", snap(nccl="2.18.1")), node("e", snap(torch=None))]
    found = ids(aggregate(nodes, engine="ray"))
    assert found["drift-gpu"] == [["b"]]
    assert found["drift-nccl"] == [["c"]]
    assert ["e"] in found["drift-framework"]  # "not installed" is a value


def test_unknown_values_are_shown_but_never_drift() -> None:
    blind = snap()
    blind.nvidia = NvidiaInfo(error="NVML failed")  # this node could not look
    r = aggregate([node("a"), node("b"), node("c", blind)], engine="ssh")
    assert "drift-driver" not in ids(r)
    row = next(x for x in r.layers if x.fact == "driver")
    assert [g.value for g in row.groups] == ["550.54.15", "—"]


def test_tie_says_no_majority() -> None:
    r = aggregate([node("a"), node("b", snap(driver="535.1"))], engine="ssh")
    drift = next(f for f in r.findings if f.id == "drift-driver")
    assert "no majority" in drift.summary


def test_outliers_name_node_and_gpu_with_median_and_margin() -> None:
    nodes = [node(f"n{i}", bench=bench(700.0)) for i in range(4)]
    nodes.append(node("slow", bench=bench(400.0, copy=900.0, h2d=8.0)))
    r = aggregate(nodes, engine="slurm", margin=0.2)
    found = ids(r)
    assert found["outlier-matmul"] == [["slow"]]
    assert found["outlier-memory-bandwidth"] == [["slow"]]
    assert found["outlier-h2d"] == [["slow"]]
    mm = next(f for f in r.findings if f.id == "outlier-matmul")
    assert "slow/gpu:3" in mm.summary and "43% below" in mm.summary and "margin 20%" in mm.summary


def test_outliers_need_three_samples_and_ignore_nan_and_garbage() -> None:
    cpu = [{"metric": "matmul", "device": "cpu", "unit": "TFLOPS", "median": v} for v in (1.0, 0.1)]
    two = aggregate(
        [node("a", bench={"figures": cpu[:1]}), node("b", bench={"figures": cpu[1:]})], engine="ssh"
    )
    assert "outlier-matmul" not in ids(two)  # two samples: neither is "the odd one"
    # GPUs pool across nodes: one slow GPU among 16 is named even on a two-node cluster
    gpus = aggregate([node("a", bench=bench(700.0)), node("b", bench=bench(100.0))], engine="ssh")
    assert ids(gpus)["outlier-matmul"] == [["b"]]
    weird = [
        node("a", bench={"figures": [{"metric": "matmul", "device": "cpu", "median": float("nan")}]}),
        node("b", bench={"figures": [{"metric": "matmul", "device": "cpu", "median": "fast"}, "junk"]}),
        node("c", bench={"figures": None}),
    ]
    r = aggregate(weird, engine="ssh")  # must not raise
    assert "outlier-matmul" not in ids(r)


def test_node_faults_are_rows_with_reasons_and_errors() -> None:
    nodes = [
        node("a"),
        NodeResult(name="b", status=NodeStatus.UNREACHABLE, reason="connection refused"),
        NodeResult(name="c", status=NodeStatus.HUNG, reason="no answer within 20s"),
        NodeResult(name="d", status=NodeStatus.CRASHED, reason="killed by SIGSEGV"),
    ]
    r = aggregate(nodes, engine="ssh")
    assert ids(r)["node-unreachable"] == [["b"]] and ids(r)["node-hung"] == [["c"]]
    assert ids(r)["node-crashed"] == [["d"]]
    assert r.has_errors
    assert ids(r)["cluster-too-few"][0] == ["b", "c", "d"]


def test_nothing_answered_never_says_no_problems(capsys: Any) -> None:
    from rich.console import Console

    r = aggregate([NodeResult(name="x", status=NodeStatus.UNREACHABLE, reason="no route")], engine="ssh")
    print_cluster(r, Console(width=80, force_terminal=False))
    out = capsys.readouterr().out
    assert "no problems" not in out and "unreachable" in out


def test_node_findings_are_grouped_with_their_nodes() -> None:
    bad = Report(
        tool_version="0.1.0",
        created_at="x",
        snapshot=snap(),
        findings=[
            Finding(
                id="gpu-row-remap-pending", severity=Severity.ERROR, summary="GPU 3 has pending row remaps"
            )
        ],
    )
    nodes = [node("a"), NodeResult(name="b", status=NodeStatus.OK, report=bad), node("c")]
    r = aggregate(nodes, engine="ssh")
    f = next(x for x in r.findings if x.id == "gpu-row-remap-pending")
    assert f.nodes == ["b"] and "on b" in f.summary and r.has_errors


def test_json_has_string_schema_version_and_round_trips() -> None:
    r = aggregate([node("a"), node("b", snap(driver="1"))], engine="ssh")
    data = json.loads(r.model_dump_json())
    assert data["schema_version"] == "1.0" and isinstance(data["schema_version"], str)
    assert {"nodes", "layers", "findings", "engine", "margin"} <= set(data)


def test_markdown_cells_cannot_break_the_table() -> None:
    r = aggregate(
        [node("a|b"), NodeResult(name="c\nd", status=NodeStatus.FAILED, reason="x | y")], engine="ssh"
    )
    md = to_markdown(r)
    for line in md.splitlines():
        if line.startswith("| c"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 5


def test_group_values_random_orders_keep_the_largest_group_first() -> None:
    rng = random.Random(7)
    for _ in range(200):
        values = [(f"n{i}", rng.choice("aab")) for i in range(rng.randint(1, 12))]
        groups = group_values(values)
        assert sorted(n for g in groups for n in g.nodes) == sorted(n for n, _ in values)
        sizes = [len(g.nodes) for g in groups]
        assert sizes == sorted(sizes, reverse=True)


def test_interpret_statuses_from_raw_runs() -> None:
    full = protocol.line("hello", hostname="h") + protocol.line("report", data=node("x").report.model_dump())
    done = protocol.line("done", seconds=1.0)
    ok = protocol.interpret(NodeRun(name="a", stdout=full + done, exit_code=0))
    assert ok.status is NodeStatus.OK and ok.report is not None and ok.node_seconds == 1.0
    hung = protocol.interpret(NodeRun(name="a", stdout=full, timed_out=True, seconds=20))
    assert hung.status is NodeStatus.HUNG and "report" in (hung.reason or "") and hung.report is not None
    cut = full[: len(full) - 40]  # the report line cut by a crash: not a part
    crashed = protocol.interpret(NodeRun(name="a", stdout=cut, signal="SEGV"))
    assert crashed.status is NodeStatus.CRASHED and "SIGSEGV mid-run" in (crashed.reason or "")
    assert crashed.report is None
    shell = protocol.interpret(NodeRun(name="a", stdout=protocol.line("hello"), exit_code=137))
    assert shell.status is NodeStatus.CRASHED and "SIGKILL" in (shell.reason or "")
    missing = protocol.interpret(NodeRun(name="a", stderr="sh: 1: envcheck: not found", exit_code=127))
    assert missing.status is NodeStatus.FAILED and "not found" in (missing.reason or "")
    noise = protocol.interpret(NodeRun(name="a", stdout="Welcome to Ubuntu\n", exit_code=0))
    assert noise.status is NodeStatus.FAILED
    lie = protocol.line("hello") + protocol.line("report", data={"snapshot": 5}) + done
    bad = protocol.interpret(NodeRun(name="a", stdout=lie, exit_code=0))
    assert bad.status is NodeStatus.FAILED and "unreadable report" in (bad.reason or "")


def test_protocol_lines_split_anywhere_are_joined_back() -> None:
    text = protocol.line("hello", hostname="h") + protocol.line("report", data={"x": "y" * 5000}) + "tail\n"
    inside_marker = {
        i for m in re.finditer(re.escape(protocol.MARKER), text) for i in range(m.start() + 1, m.end())
    }
    allowed = [i for i in range(1, len(text) - 1) if i not in inside_marker]
    rng = random.Random(1)
    for _ in range(200):
        cuts = sorted(rng.sample(allowed, 6))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        # a transport that breaks lines (srun --label every 1024 bytes) inserts newlines, drops nothing
        parts = protocol.parse("\n".join(pieces))
        assert parts["report"]["data"]["x"] == "y" * 5000
        assert parts["hello"]["hostname"] == "h"
