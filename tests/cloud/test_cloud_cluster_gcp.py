"""``provision up --nodes N`` on Compute Engine against the loopback fake: a compact placement
policy, a firewall rule for traffic between the nodes' network tag, one zone, all or none."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provision import launch, planning
from provision import settings as settings_mod
from provision.clouds import provider_for_plan
from provision.state import LaunchStatus, Store


def _setup(**kw: Any) -> tuple[Any, Any, Store, Any]:
    s = settings_mod.load()
    kw.setdefault("gpu", "L4:1")
    kw.setdefault("wait", "running")
    kw.setdefault("ssh_cidr", "203.0.113.7/32")
    kw.setdefault("nodes", 2)
    store = Store(s.db_path)
    plan = planning.make_plan(
        planning.Request(cloud="gcp", **kw), planning.load_offers(s), s, owner=store.owner_id
    )
    return s, plan, store, provider_for_plan(plan, s)


def test_up_nodes_2_is_one_compact_policy_one_zone_and_nodes_reach_each_other(
    cloud_env: Any, gcp_server: Any, leaks: Any
) -> None:
    s, plan, store, prov = _setup(name="duo")
    result = launch.up(plan, prov, store, s)
    assert [(m.id, m.node_index, m.role) for m in result.machines] == [
        ("duo", 0, "head"),
        ("duo-1", 1, "worker"),
    ]
    with gcp_server.lock:
        insts = {n: i for (z, n), i in gcp_server.state.instances.items()}
        zones = {z for (z, n) in gcp_server.state.instances}
        policies = dict(gcp_server.cluster.policies)
        firewalls = dict(gcp_server.state.firewalls)
    assert set(insts) == {"duo", "duo-1"} and len(zones) == 1
    ((region, pname), policy) = next(iter(policies.items()))
    assert policy["groupPlacementPolicy"] == {"collocation": "COLLOCATED", "vmCount": 2}
    for inst in insts.values():
        assert inst["resourcePolicies"][0].endswith(f"regions/{region}/resourcePolicies/{pname}")
        assert inst["labels"]["mlrig-owner"] == store.owner_id
    assert {i["labels"]["mlrig-role"] for i in insts.values()} == {"head", "worker"}
    tag = f"mlrig-{plan.launch_id}"
    ssh, nodes = firewalls[f"{tag}-ssh"], firewalls[f"{tag}-nodes"]
    assert ssh["sourceRanges"] == ["203.0.113.7/32"] and ssh["targetTags"] == [tag]
    assert nodes["sourceTags"] == [tag] and nodes["targetTags"] == [tag] and "sourceRanges" not in nodes
    assert nodes["allowed"] == [{"IPProtocol": "all"}]
    # the node list, where each node's first boot reads it (instance metadata, no SSH needed)
    for name, inst in insts.items():
        items = {i["key"]: i["value"] for i in inst["metadata"]["items"]}
        listed = [line.split() for line in items["mlrig-nodes"].splitlines()]
        assert [(n[0], n[1]) for n in listed] == [("0", "head"), ("1", "worker")], name
        assert [n[2] for n in listed] == [m.private_ip for m in result.machines]
        assert "cluster.env" in items["startup-script"]
    deleted = launch.down(store.launch(plan.launch_id), prov, store, s)
    assert sorted(r.kind for r in deleted) == [
        "firewall",
        "firewall",
        "instance",
        "instance",
        "resource_policy",
    ]
    assert leaks() == []


def test_capacity_for_n_minus_1_moves_the_whole_cluster(cloud_env: Any, gcp_server: Any, leaks: Any) -> None:
    s, plan, store, prov = _setup(nodes=3)
    first = prov.zones(plan, plan.region)[0]
    gcp_server.cluster.capacity[first] = 2
    result = launch.up(plan, prov, store, s)
    assert {m.zone for m in result.machines} != {first} and len({m.zone for m in result.machines}) == 1
    with gcp_server.lock:
        assert not [n for (z, n) in gcp_server.state.instances if z == first]  # the two that fit: gone
    launch.down(store.launch(plan.launch_id), prov, store, s)
    assert leaks() == []


def test_ctrl_c_after_k_of_n_nodes_leaves_nothing(
    cloud_env: Any, gcp_server: Any, leaks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provision.clouds import gcp

    s, plan, store, prov = _setup(nodes=3)
    made = {"n": 0}
    orig = gcp.GcpProvider._create_one

    def counted(self: Any, *a: Any, **k: Any) -> Any:
        res = orig(self, *a, **k)
        made["n"] += 1
        if made["n"] == 2:
            raise KeyboardInterrupt
        return res

    monkeypatch.setattr(gcp.GcpProvider, "_create_one", counted)
    with pytest.raises(KeyboardInterrupt):
        launch.up(plan, prov, store, s)
    assert leaks() == []
    assert store.launch(plan.launch_id).status is LaunchStatus.FAILED


def test_cli_up_nodes_2_then_ls_and_down(cloud_env: Any, cli_here: Any, leaks: Any) -> None:
    up = cli_here(
        [
            "up",
            "--cloud",
            "gcp",
            "--gpu",
            "L4:1",
            "--nodes",
            "2",
            "--wait",
            "running",
            "--name",
            "gduo",
            "--yes",
            "--json",
        ]
    )
    assert up.returncode == 0, up.stderr
    assert [n["role"] for n in json.loads(up.stdout)["nodes"]] == ["head", "worker"]
    down = cli_here(["down", "gduo", "--yes"])
    assert down.returncode == 0, down.stderr
    assert leaks() == []


# --------------------------------------------------------------------------- multi-host TPU slices
def test_a_v4_32_slice_records_four_reachable_hosts_and_down_removes_all(
    cloud_env: Any, cli_here: Any, gcp_server: Any, leaks: Any
) -> None:
    from pathlib import Path

    up = cli_here(
        [
            "up",
            "--cloud",
            "gcp",
            "--tpu",
            "v4-32",
            "--zone",
            "us-central1-a",
            "--name",
            "slice",
            "--wait",
            "running",
            "--yes",
            "--json",
        ]
    )
    assert up.returncode == 0, up.stderr
    ls = json.loads(cli_here(["ls", "--json"]).stdout)
    (m,) = ls["machines"]
    hosts = m["members"]
    assert [h["index"] for h in hosts] == [0, 1, 2, 3]
    assert [h["role"] for h in hosts] == ["head", "worker", "worker", "worker"]
    assert len({h["address"] for h in hosts}) == 4 and all(hosts[k]["address"] for k in range(4))
    assert [h["ssh"] for h in hosts] == ["slice", "slice.1", "slice.2", "slice.3"]
    assert m["nodes"] == 1  # billed as one slice
    include = Path(cloud_env["PROVISION_SSH_CONFIG"]).parent / "mlrig_config"
    text = include.read_text()
    assert all(f"Host {a}\n" in text for a in ("slice", "slice.1", "slice.2", "slice.3"))
    table = cli_here(["ls", "--nodes"])
    assert "slice node 3 (worker)" in table.stdout and "ssh slice.3" in table.stdout
    down = cli_here(["down", "slice", "--yes"])
    assert down.returncode == 0, down.stderr
    assert "Host slice" not in include.read_text()
    assert leaks() == []


def test_a_slice_failing_after_some_hosts_leaves_nothing(cloud_env: Any, gcp_server: Any, leaks: Any) -> None:
    from provision.clouds.base import LaunchFailed

    s = settings_mod.load()
    store = Store(s.db_path)
    req = planning.Request(
        cloud="gcp", tpu="v4-32", zone="us-central1-a", wait="running", ssh_cidr="203.0.113.7"
    )
    plan = planning.make_plan(req, planning.load_offers(s), s, owner=store.owner_id)
    gcp_server.fail_slice(hosts=2, zone="us-central1-a")
    with pytest.raises(LaunchFailed):
        launch.up(plan, provider_for_plan(plan, s), store, s)
    assert leaks() == []
    assert store.active_by_name(plan.name) is None


def test_gc_finds_an_orphaned_placement_policy_and_firewall_rules_by_their_descriptions(
    cloud_env: Any, cli_here: Any, gcp_server: Any, leaks: Any
) -> None:
    import sqlite3

    s, plan, store, prov = _setup(name="lost")
    store.begin_launch(plan)
    launch.ensure_key(s, plan)
    region = plan.region
    prov.prepare(plan, region, store.journal(plan.launch_id, plan.cloud))  # then the record is lost
    assert any("resource-policy" in r for r in leaks())
    db = sqlite3.connect(s.db_path)
    db.execute("DELETE FROM resources WHERE launch_id = ?", (plan.launch_id,))
    db.execute("DELETE FROM launches WHERE launch_id = ?", (plan.launch_id,))
    db.commit()
    db.close()
    gc = cli_here(["gc", "--cloud", "gcp", "--yes", "--json"])
    assert gc.returncode == 0, gc.stderr
    kinds = sorted(d["kind"] for d in json.loads(gc.stdout)["deleted"])
    assert kinds == ["firewall", "firewall", "resource_policy"]
    assert leaks() == []
