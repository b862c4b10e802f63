"""``provision exec NAME -- CMD`` and ``provision ssh NAME --node K`` against real sshd nodes on
loopback addresses: the nodes come from the state store as ``up`` recorded them."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from provision import planning
from provision import settings as settings_mod
from provision.models import Offering
from provision.state import LaunchStatus, ResourceStatus, Store

OFFER = Offering(
    cloud="aws",
    instance_type="g5.xlarge",
    accelerator="A10G",
    accelerator_count=1,
    region="us-east-1",
    price_on_demand=1.0,
    source="test",
    as_of="2026-11-01",
)


@pytest.fixture
def cluster_store(ssh_nodes: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A running three-node launch ``trio`` whose nodes are the sshd nodes (address:port)."""
    for k in ("PROVISION_STATE_DIR", "PROVISION_SSH_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("PROVISION_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PROVISION_SSH_CONFIG", str(tmp_path / "ssh" / "config"))
    s = settings_mod.load()
    store = Store(s.db_path)
    req = planning.Request(
        cloud="aws", gpu="A10G:1", nodes=3, name="trio", ssh_cidr="127.0.0.1", key_name="k"
    )
    plan = planning.make_plan(req, [OFFER], s, owner=store.owner_id)
    store.begin_launch(plan)
    for k, node in enumerate(ssh_nodes.nodes):
        role = "head" if k == 0 else "worker"
        row = store.intent(
            plan.launch_id,
            "aws",
            "instance",
            "us-east-1",
            zone="us-east-1a",
            name="trio",
            token=None,
            node_index=k,
            role=role,
        )
        address = f"{node.address}:{node.port}"
        store.set_resource(row, ResourceStatus.CREATED, resource_id=f"i-{k}", address=address)
    store.update_launch(
        plan.launch_id,
        status=LaunchStatus.RUNNING,
        ssh_user=ssh_nodes.user,
        ssh_host=ssh_nodes.nodes[0].address,
        key_path=str(ssh_nodes.key),
        running_at=1.0,
    )
    return plan


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    from envcheck.clirun import outcome
    from provision.cli import app
    from provision.errors import ProvisionError

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = outcome(app, args, prog="provision", errors=(ProvisionError,), debug_var="PROVISION_DEBUG")
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_exec_runs_on_every_node_with_per_node_output_and_exit_codes(
    cluster_store: Any, ssh_nodes: Any
) -> None:
    failing = ssh_nodes.nodes[1].address
    cmd = (
        'echo on $(echo $SSH_CONNECTION | cut -d" " -f3); '
        f'case "$SSH_CONNECTION" in *" {failing} "*) exit 7;; esac'
    )
    res = _cli(["exec", "trio", "--json", "--", cmd])
    assert res.returncode == 1, res.stderr  # failed somewhere
    doc = json.loads(res.stdout)
    assert doc["schema_version"] == "1.0" and doc["exit_code"] == 1 and doc["counts"]["failed"] == 1
    results = doc["nodes"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert [r["exit_status"] for r in results] == [0, 7, 0]
    assert [r["stdout"].strip() for r in results] == [f"on {n.address}" for n in ssh_nodes.nodes]
    ok = _cli(["exec", "trio", "--", "true"])
    assert ok.returncode == 0, ok.stderr
    assert "node 2 (127.0.0.4): exit 0" in ok.stderr
    assert ok.stderr.rstrip().endswith("3 nodes: 3 ok")


def test_exec_group_shows_each_distinct_output_once_with_its_nodes(
    cluster_store: Any, ssh_nodes: Any
) -> None:
    """--group (dshbak -c): nodes 0 and 2 print the same and are one block; node 1 differs."""
    odd = ssh_nodes.nodes[1].address
    cmd = f'case "$SSH_CONNECTION" in *" {odd} "*) echo odd; exit 7;; *) echo same;; esac'
    res = _cli(["exec", "trio", "--group", "--", cmd])
    assert res.returncode == 1, res.stderr
    lines = res.stdout.splitlines()
    assert not [ln for ln in lines if ln.startswith("[")]  # no live lines: one view at the end
    headers = [ln for ln in lines if ln.startswith("─") or "·" in ln]
    assert len(headers) == 2, res.stdout
    assert "nodes 0,2 (2)" in headers[0] and "node 1" in headers[1] and "exit 7" in headers[1], res.stdout
    assert lines.count("same") == 1 and lines.count("odd") == 1
    assert lines[-1] == "3 nodes: 2 ok, 1 failed (node 1)"
    assert all(len(ln) <= 80 for ln in lines)


def test_ssh_node_k_names_that_nodes_alias(cluster_store: Any, ssh_nodes: Any) -> None:
    res = _cli(["ssh", "trio", "--node", "2", "--json"])
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["argv"][-1] == "trio.2" and out["host"] == ssh_nodes.nodes[2].address and out["node"] == 2
    missing = _cli(["ssh", "trio", "--node", "5"])
    assert missing.returncode == 2 and "no node 5" in missing.stderr


def test_the_node_list_is_delivered_to_every_node_atomically(ssh_nodes: Any, tmp_path: Path) -> None:
    from provision.cluster import deliver
    from provision.cluster.nodes import parse_node_list
    from provision.cluster.remote import Target

    text = "0 head 10.0.0.1 -\n1 worker 10.0.0.2 -\n2 worker 10.0.0.3 -\n"
    targets = [
        Target(
            k,
            n.address,
            ssh_nodes.user,
            port=n.port,
            key_path=str(ssh_nodes.key),
            known_hosts=str(tmp_path / "kh"),
        )
        for k, n in enumerate(ssh_nodes.nodes)
    ]
    where = tmp_path / "etc-mlrig"
    results = deliver.push(targets, text, cluster_dir=str(where))
    assert [r.outcome.value for r in results] == ["ok", "ok", "ok"], [r.error for r in results]
    assert (where / "nodes").read_text() == text and not (where / ".nodes.push").exists()
    assert [n.address for n in parse_node_list(text)] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_a_clusters_first_boot_waits_for_the_node_list_and_asks_its_clouds_metadata() -> None:
    from provision.clouds import firstboot

    s = settings_mod.load({})
    one = planning.make_plan(
        planning.Request(cloud="aws", gpu="A10G:1", ssh_cidr="127.0.0.1"), [OFFER], s, owner="0" * 16
    )
    assert "cluster.env" not in firstboot.render(one, "mlrig==0", "ubuntu")
    req = planning.Request(cloud="aws", gpu="A10G:1", nodes=2, engine="ray", ssh_cidr="127.0.0.1")
    two = planning.make_plan(req, [OFFER], s, owner="0" * 16)
    text = firstboot.render(two, "mlrig==0", "ubuntu")
    assert "cluster.env" in text and "/etc/mlrig" in text
    assert firstboot.cluster(two, "ubuntu") in text
    with pytest.raises(Exception, match="--engine ray needs a cluster"):
        planning.make_plan(planning.Request(cloud="aws", gpu="A10G:1", engine="ray"), [OFFER], s)
    with pytest.raises(Exception, match="bad --engine"):
        planning.make_plan(planning.Request(cloud="aws", gpu="A10G:1", nodes=2, engine="slurm"), [OFFER], s)


def test_a_multi_host_slices_hosts_find_each_other_in_the_slice_metadata() -> None:
    from provision.clouds import firstboot

    s = settings_mod.load({})

    def script(tpu: str) -> str:
        req = planning.Request(cloud="gcp", tpu=tpu, zone="us-central1-a", ssh_cidr="127.0.0.1")
        return firstboot.render(planning.make_plan(req, [], s, owner="0" * 16), "mlrig==0", "mlrig")

    four = script("v4-32")
    assert "4 node(s)" in four and "worker-network-endpoints" in four and "cluster.env" in four
    assert "cluster.env" not in script("v5e-8")  # one host: no cluster
