"""envcheck cluster --slurm inside a real allocation: Debian's slurmctld and one slurmd per node.

Per-node differences come through a TaskProlog (another torch, a crash, a hang) and a CPU-quota
cgroup around one slurmd (its tasks inherit it).
"""

from __future__ import annotations

from typing import Any

import pytest
from cluster_helpers import by_name, findings, run_cli, sim  # loaded by conftest

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster: Any) -> tuple[int, dict[str, Any], str]:
    salloc = sim.which("salloc")
    n = len(slurm_cluster.specs)
    return run_cli(
        "cluster",
        "--slurm",
        "--timeout",
        "10",
        "--json",
        env={"SLURM_CONF": str(slurm_cluster.conf)},
        prefix=[salloc, f"-N{n}", "--time=5"],
    )


def test_srun_one_task_per_node_and_faults_named(slurm_run: tuple[int, dict[str, Any], str]) -> None:
    code, report, err = slurm_run
    assert isinstance(report, dict), err
    assert code == 1 and report["engine"] == "slurm"
    nodes = by_name(report)
    status = {n: v["status"] for n, v in nodes.items()}
    assert status == {"n1": "ok", "n2": "ok", "n3": "ok", "n4": "ok", "n5": "crashed", "n6": "hung"}, {
        n: v["reason"] for n, v in nodes.items()
    }
    assert "SIGSEGV" in nodes["n5"]["reason"]
    assert "deadline" in nodes["n6"]["reason"] and nodes["n6"]["report"] is not None  # partial result
    # every ok node answered as itself (SLURMD_NODENAME), not as some other task
    assert all(nodes[n]["report"] for n in ("n1", "n2", "n3", "n4"))


def test_slurm_drift_and_cpu_quota_named(
    slurm_cluster: Any, slurm_run: tuple[int, dict[str, Any], str]
) -> None:
    _, report, _ = slurm_run
    torch = [f for f in findings(report, "drift-framework") if f["subject"] == "torch"]
    assert [f["nodes"] for f in torch] == [["n3"]]
    if slurm_cluster.notes:
        pytest.skip(f"no CPU quota on this machine ({'; '.join(slurm_cluster.notes)})")
    assert findings(report, "drift-cpu") and all(f["nodes"] == ["n4"] for f in findings(report, "drift-cpu"))


def test_outside_an_allocation_is_a_usage_error() -> None:
    code, _, err = run_cli("cluster", "--slurm", env={"SLURM_JOB_ID": "", "SLURM_JOB_NODELIST": ""})
    assert code == 2 and "not in one" in err and "salloc" in err


def test_collective_through_srun(slurm_cluster: Any) -> None:
    pytest.importorskip("torch.distributed", reason="torch is not installed: no all-reduce to run")
    code, report, err = run_cli(
        "cluster",
        "--slurm",
        "--collective",
        "--collective-size",
        "4",
        "--timeout",
        "30",
        "--json",
        env={"SLURM_CONF": str(slurm_cluster.conf)},
        prefix=[sim.which("salloc"), "-N2", "-w", "n1,n2", "--time=5"],
    )
    assert isinstance(report, dict), err
    c = report["collective"]
    assert c["error"] is None and c["world_size"] == 2 and c["busbw_gbps"] > 0, c
    assert code == 0, [f["summary"] for f in report["findings"]]
