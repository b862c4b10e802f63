"""envcheck cluster --ray against a real multi-raylet Ray cluster (ray.cluster_utils.Cluster).

Five live raylets, each with its own environment (another torch, a crash, a hang), and one that
was added and then killed (Ray marks it dead): one task per node, pinned by node id.
"""

from __future__ import annotations

from typing import Any

import pytest
from cluster_helpers import findings, run_cli  # loaded by conftest

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def ray_run(ray_cluster: Any) -> tuple[int, dict[str, Any], str]:
    return run_cli("cluster", "--ray", ray_cluster.address, "--timeout", "8", "--json")


def _kind(ray_cluster: Any, name: str) -> str:
    """Node names on one host are ADDRESS#node-id-prefix: map them back to the fixture's kinds."""
    prefix = name.rsplit("#", 1)[-1]
    if ray_cluster.head_id.startswith(prefix):
        return "head"
    return next(k for nid, k in ray_cluster.kinds.items() if nid.startswith(prefix))


def test_one_task_per_node_and_each_fault_named(
    ray_cluster: Any, ray_run: tuple[int, dict[str, Any], str]
) -> None:
    code, report, err = ray_run
    assert code == 1, err
    assert report["engine"] == "ray"
    got = {_kind(ray_cluster, n["name"]): (n["status"], n["reason"]) for n in report["nodes"]}
    assert {k: s for k, (s, _) in got.items()} == {
        "head": "ok",
        "ok": "ok",
        "old-torch": "ok",
        "crash": "crashed",
        "hang": "hung",
        "dead": "unreachable",
    }, got
    assert "SIGSEGV" in got["crash"][1]
    assert "Ray marks the node dead" in got["dead"][1]
    # each ok node answered from its own raylet: distinct node ids, one task each
    assert len({n["name"] for n in report["nodes"]}) == 6


def test_drift_names_the_ray_node_with_another_torch(
    ray_cluster: Any, ray_run: tuple[int, dict[str, Any], str]
) -> None:
    _, report, _ = ray_run
    drift = [f for f in findings(report, "drift-framework") if f["subject"] == "torch"]
    assert len(drift) == 1
    assert [_kind(ray_cluster, n) for n in drift[0]["nodes"]] == ["old-torch"]


def test_ray_auto_finds_the_cluster_from_ray_address(ray_cluster: Any) -> None:
    _, report, err = run_cli(
        "cluster", "--ray", "auto", "--timeout", "8", "--json", env={"RAY_ADDRESS": ray_cluster.address}
    )
    assert isinstance(report, dict), err
    assert len(report["nodes"]) == 6


def test_no_ray_cluster_is_one_clear_error() -> None:
    pytest.importorskip("ray")
    code, _, err = run_cli("cluster", "--ray", "127.0.0.1:1", "--timeout", "5", timeout=60)
    assert code == 3, err
    assert "cannot connect to the Ray cluster" in err and "Traceback" not in err
