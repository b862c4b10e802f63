"""Fixtures for the cluster tests: simulated machines in namespaces, sshd nodes, metadata servers.

A suite whose engine cannot run here (not root, no sshd, no ray) is skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


_sim = _load("cluster_provision_sim", HERE / "_sim.py")
#: the Google Cloud fake with clusters (it loads tests/cloud/_gcp_fake.py, which it extends)
gcp_fakes = _load("_gcp_fake_cluster", HERE.parent / "cloud" / "_gcp_fake_cluster.py")


@pytest.fixture(scope="session")
def sim() -> Any:
    """The simulation helpers (tests/cluster_provision/_sim.py)."""
    return _sim


@pytest.fixture(scope="module")
def gcp_fake() -> Iterator[Any]:
    """The loopback Compute Engine / Cloud TPU fake with resource policies and TPU slices."""
    server = gcp_fakes.ClusterFakeGcp()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def namespaces() -> None:
    why = _sim.namespaces_work()
    if why:
        pytest.skip(f"simulated nodes need Linux namespaces: {why}")


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = _sim.tempdir("mlc")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def ssh_nodes() -> Iterator[Any]:
    """sshd on 127.0.0.2-127.0.0.4 (ephemeral ports), one client key."""
    if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
        pytest.skip("openssh-server is not installed (scripts/test.sh installs it)")
    with warnings.catch_warnings():  # asyncssh imports cryptography's deprecated DSA support
        warnings.simplefilter("ignore")
        pytest.importorskip("asyncssh", reason="asyncssh is not installed (pip install 'mlrig[cluster]')")
    root = _sim.tempdir("mls")
    nodes = _sim.SshNodes(["127.0.0.2", "127.0.0.3", "127.0.0.4"], root)
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()
        shutil.rmtree(root, ignore_errors=True)
