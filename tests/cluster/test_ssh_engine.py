"""envcheck cluster --ssh against real sshd daemons on 127.0.0.2.. with real per-node differences."""

from __future__ import annotations

from typing import Any

import pytest
from cluster_helpers import by_name, findings, run_cli  # loaded by conftest

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def faults(ssh_nodes: Any) -> tuple[int, dict[str, Any], str]:
    """One run over every node (run once: several tests read it)."""
    return run_cli(
        "cluster", "--ssh", "node-*", "--ssh-config", str(ssh_nodes.config), "--timeout", "8", "--json"
    )


def test_every_fault_is_named_for_what_it_is(faults: tuple[int, dict[str, Any], str]) -> None:
    code, report, err = faults
    assert code == 1, err
    assert report["schema_version"] == "1.0" and report["engine"] == "ssh"
    nodes = by_name(report)
    assert list(nodes) == [f"node-{i}" for i in range(1, 8)]  # the glob reached every alias
    status = {n: v["status"] for n, v in nodes.items()}
    assert status == {
        "node-1": "ok",
        "node-2": "ok",
        "node-3": "ok",
        "node-4": "ok",
        "node-5": "hung",
        "node-6": "crashed",
        "node-7": "unreachable",
    }, {n: (v["status"], v["reason"]) for n, v in nodes.items()}
    assert "connection refused" in nodes["node-7"]["reason"]
    assert "SIGSEGV" in nodes["node-6"]["reason"] and "mid-run" in nodes["node-6"]["reason"]
    # the hung node sent its report before it stopped: partial results, and its own deadline fired
    assert "deadline" in nodes["node-5"]["reason"] and "report" in nodes["node-5"]["reason"]
    assert nodes["node-5"]["report"] is not None
    for fid, node in (("node-hung", "node-5"), ("node-crashed", "node-6"), ("node-unreachable", "node-7")):
        assert [f["nodes"] for f in findings(report, fid)] == [[node]]


def test_drift_names_the_odd_nodes(ssh_nodes: Any, faults: tuple[int, dict[str, Any], str]) -> None:
    _, report, _ = faults
    torch = [f for f in findings(report, "drift-framework") if f["subject"] == "torch"]
    assert len(torch) == 1 and torch[0]["severity"] == "error"
    assert torch[0]["nodes"] == ["node-3"]
    assert "2.12.0+cpu" in torch[0]["summary"]
    # the CPU-quota node: its quota differs, and it is named
    if ssh_nodes.notes:
        pytest.skip(f"no CPU quota on this machine ({'; '.join(ssh_nodes.notes)}): slow-node checks skipped")
    cpu = findings(report, "drift-cpu")
    assert cpu and all(f["nodes"] == ["node-4"] for f in cpu), cpu
    # the layer table collapses what is equal and splits what differs
    rows = {(r["layer"], r["fact"]): r for r in report["layers"]}
    assert len(rows[("system", "kernel")]["groups"]) == 1
    torch_row = rows[("frameworks", "torch")]["groups"]
    assert [g["nodes"] for g in torch_row][1] == ["node-3"]


def test_bench_outlier_is_the_cpu_limited_node(ssh_nodes: Any) -> None:
    if ssh_nodes.notes:
        pytest.skip(f"no CPU quota on this machine ({'; '.join(ssh_nodes.notes)}): no slow node to find")
    _, report, err = run_cli(
        "cluster",
        "--ssh",
        "node-1,node-2,node-3,node-4",
        "--ssh-config",
        str(ssh_nodes.config),
        "--bench",
        "--backend",
        "numpy",
        "--timeout",
        "60",
        "--json",
    )
    assert isinstance(report, dict), err
    outliers = findings(report, "outlier-matmul")
    figures = {
        (r["fact"], g["nodes"][0]): g["value"]
        for r in report["layers"]
        if r["layer"] == "bench"
        for g in r["groups"]
    }
    assert outliers and outliers[0]["nodes"] == ["node-4"], (
        figures,
        [f["summary"] for f in report["findings"]],
    )
    assert "below" in outliers[0]["summary"] and "20%" in outliers[0]["summary"]
    bench_rows = [r for r in report["layers"] if r["layer"] == "bench"]
    assert bench_rows and all(r["median"] > 0 for r in bench_rows)


def test_human_and_markdown_output(ssh_nodes: Any) -> None:
    code, text, _ = run_cli("cluster", "--ssh", "node-1,node-3,node-7", "--ssh-config", str(ssh_nodes.config))
    assert code == 1
    assert "node-7" in text and "unreachable" in text and "2.12.0+cpu" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    code, md, _ = run_cli(
        "cluster", "--ssh", "node-1,node-3", "--ssh-config", str(ssh_nodes.config), "--markdown"
    )
    assert code == 1 and "| node-3 | ok |" in md and "drift-framework" in md


def test_unknown_host_key_is_unreachable_not_trusted(ssh_nodes: Any, tmp_path: Any) -> None:
    cfg = ssh_nodes.config.read_text().replace(str(ssh_nodes.root / "known_hosts"), str(tmp_path / "empty"))
    (tmp_path / "empty").write_text("")
    (tmp_path / "cfg").write_text(cfg)
    code, report, _ = run_cli("cluster", "--ssh", "node-1", "--ssh-config", str(tmp_path / "cfg"), "--json")
    assert code == 1
    node = report["nodes"][0]
    assert node["status"] == "unreachable" and "host key" in node["reason"]


def test_glob_that_matches_nothing_is_a_usage_error(ssh_nodes: Any) -> None:
    code, _, err = run_cli("cluster", "--ssh", "gpu-*", "--ssh-config", str(ssh_nodes.config))
    assert code == 2 and "matches no Host alias" in err and "Traceback" not in err


def test_collective_all_reduce_across_ssh_nodes_reports_bandwidth(ssh_nodes: Any) -> None:
    pytest.importorskip("torch.distributed", reason="torch is not installed: no all-reduce to run")
    _, report, err = run_cli(
        "cluster",
        "--ssh",
        "node-1,node-2,node-4",
        "--ssh-config",
        str(ssh_nodes.config),
        "--collective",
        "--collective-size",
        "4",
        "--timeout",
        "30",
        "--json",
    )
    assert isinstance(report, dict), err
    c = report["collective"]
    assert c["error"] is None, c
    assert c["backend"] == "gloo" and c["world_size"] == 3
    assert c["busbw_gbps"] > 0 and len(c["sizes"]) == 3
    assert sorted(tuple(sorted(p["nodes"])) for p in c["pairs"]) == [
        ("node-1", "node-2"),
        ("node-1", "node-4"),
        ("node-2", "node-4"),
    ]
    assert all(p["busbw_gbps"] > 0 for p in c["pairs"])
    assert c["interconnect"]["kind"] == "unknown"  # loopback: no NIC speed to hold it against
    print(f"all-reduce over 3 SSH nodes (gloo, 4 MiB): bus bandwidth {c['busbw_gbps']:.3f} GB/s")


def test_smoke_runs_on_every_node(ssh_nodes: Any) -> None:
    pytest.importorskip("torch", reason="torch is not installed: nothing to smoke-test")
    _, report, err = run_cli(
        "cluster",
        "--ssh",
        "node-1,node-2",
        "--ssh-config",
        str(ssh_nodes.config),
        "--smoke",
        "--framework",
        "torch",
        "--timeout",
        "120",
        "--json",
    )
    assert isinstance(report, dict), err
    for node in report["nodes"]:
        assert node["status"] == "ok" and node["smoke"] is not None, node["missing"]
        assert {r["framework"] for r in node["smoke"]["results"]} == {"torch"}
    assert not findings(report, "smoke-failed") and not findings(report, "smoke-not-run")


def test_accept_new_in_the_config_trusts_a_new_host_once_then_checks_it(
    ssh_nodes: Any, tmp_path: Any
) -> None:
    """provision writes `StrictHostKeyChecking accept-new` with a known_hosts file of its own: envcheck
    reaches such a host the first time, records its key as ssh would, and refuses a changed key."""
    known = tmp_path / "provision" / "known_hosts"  # not there yet, nor its directory
    cfg = ssh_nodes.config.read_text().replace(str(ssh_nodes.root / "known_hosts"), str(known))
    cfg = cfg.replace("Host node-1\n", "Host node-1\n    StrictHostKeyChecking accept-new\n")
    (tmp_path / "cfg").write_text(cfg)
    _, report, err = run_cli("cluster", "--ssh", "node-1", "--ssh-config", str(tmp_path / "cfg"), "--json")
    assert report["nodes"][0]["status"] == "ok", (report["nodes"][0], err)
    recorded = known.read_text().split()
    assert recorded[0].startswith("[127.0.0.2]:") and recorded[1] == "ssh-ed25519"
    assert oct(known.stat().st_mode & 0o777) == "0o600"
    # a second run checks against the recorded key: still reachable, nothing appended
    run_cli("cluster", "--ssh", "node-1", "--ssh-config", str(tmp_path / "cfg"), "--json")
    assert len(known.read_text().splitlines()) == 1
    # the key changes (another machine on a reused address): refused, never re-accepted
    other = (ssh_nodes.root / "node-2" / "host_key.pub").read_text().split()
    known.write_text(f"{recorded[0]} {other[0]} {other[1]}\n")
    _, report, _ = run_cli("cluster", "--ssh", "node-1", "--ssh-config", str(tmp_path / "cfg"), "--json")
    node = report["nodes"][0]
    assert node["status"] == "unreachable" and "host key" in node["reason"]
    # a host without accept-new stays strict: unknown is unreachable
    _, report, _ = run_cli("cluster", "--ssh", "node-2", "--ssh-config", str(tmp_path / "cfg"), "--json")
    assert report["nodes"][0]["status"] == "unreachable" and "host key" in report["nodes"][0]["reason"]
