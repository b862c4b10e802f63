"""Real engines for the cluster tests, each started once: sshd nodes, a Ray cluster, a Slurm cluster.

Ray and Slurm live for their module only (one module uses each), so their daemons do not take
CPU from the other suites' measurements on a 2-core machine.

Each suite is skipped only when its engine cannot be installed here, and the skip says so.
Every daemon is stopped by its PID at the end of the session, also when a test failed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "cluster"


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


sim = _load("mlrig_cluster_sim", FIXTURES / "sim.py")
helpers = _load("cluster_helpers", HERE / "_helpers.py")
SSH_NODES = helpers.SSH_NODES


@pytest.fixture(scope="session")
def ssh_nodes() -> Iterator[Any]:
    if not sim.which("sshd"):
        pytest.skip(
            "openssh-server is not installed (scripts/cluster-engines.sh installs it): SSH suite skipped"
        )
    pytest.importorskip("asyncssh", reason="asyncssh is not installed (pip install 'mlrig[cluster]')")
    nodes = sim.SshNodes([sim.NodeSpec(n, k, cpu_quota=0.15) for n, k in SSH_NODES])
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A head and four worker raylets, each with its node's environment; one more added and killed."""
    pytest.importorskip(
        "ray", reason="ray is not installed (pip install 'mlrig[cluster]'): Ray suite skipped"
    )
    tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    old = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = tmp
    from ray.cluster_utils import Cluster

    roots = Path(tempfile.mkdtemp(prefix="mlrig-ray-"))
    tag = os.urandom(5).hex()
    specs = [("head", "ok"), ("w1", "ok"), ("w2", "old-torch"), ("w3", "crash"), ("w4", "hang")]

    def env_of(name: str, kind: str) -> dict[str, str]:
        return sim.node_env(roots / name, sim.NodeSpec(name, kind), tag)

    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 1, "include_dashboard": False, "env_vars": env_of(*specs[0])},
        )
        kinds = {}
        for name, kind in specs[1:]:
            node = cluster.add_node(num_cpus=1, env_vars=env_of(name, kind))
            kinds[node.node_id] = kind
        doomed = cluster.add_node(num_cpus=1, env_vars=env_of("w5", "ok"))
        kinds[doomed.node_id] = "dead"
        cluster.remove_node(doomed)
        cluster.kinds = kinds  # type: ignore[attr-defined]
        cluster.head_id = cluster.head_node.node_id  # type: ignore[attr-defined]
        yield cluster
    finally:
        if cluster is not None:
            cluster.shutdown()
        sim.kill_tagged(tag)
        if old is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = old
        import shutil

        shutil.rmtree(roots, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


SLURM_NODES = [
    ("n1", "ok"),
    ("n2", "ok"),
    ("n3", "old-torch"),
    ("n4", "slow"),
    ("n5", "crash"),
    ("n6", "hang"),
]


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[Any]:
    missing = [t for t in ("slurmctld", "slurmd", "munged", "srun") if not sim.which(t)]
    if missing:
        pytest.skip(
            f"Slurm is not installed ({', '.join(missing)} missing; scripts/cluster-engines.sh installs it): "
            "Slurm suite skipped"
        )
    cluster = sim.SlurmCluster([sim.NodeSpec(n, k, cpu_quota=0.25) for n, k in SLURM_NODES])
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
