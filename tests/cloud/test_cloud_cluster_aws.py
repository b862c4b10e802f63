"""``provision up --nodes N`` on AWS against moto: one cluster placement group, one zone and subnet,
a self-referencing security-group rule, EFA where the type has it, MinCount = MaxCount = N.

moto 5.2.5 implements no placement-group action and ignores ``Placement.GroupName``: the requests
the client sends are asserted on (the fault layer records them), and the placement-group actions
are answered by the documented shim in conftest.py (``PlacementGroups``), never by product code
that swallows an error. Every test ends with the leak oracle (placement groups included).
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import parse_qs

import pytest

from provision import launch, planning
from provision import settings as settings_mod
from provision.clouds import _clients, provider_for_plan
from provision.state import LaunchStatus, Store

#: what a cluster launch creates besides its machines
SIDE = ["key_pair", "placement_group", "security_group"]


def _setup(**kw: Any) -> tuple[Any, Any, Store, Any]:
    s = settings_mod.load()
    kw.setdefault("instance_type", "p4d.24xlarge")
    kw.setdefault("region", "us-east-1")
    kw.setdefault("wait", "running")
    kw.setdefault("ssh_cidr", "203.0.113.7/32")
    kw.setdefault("nodes", 2)
    store = Store(s.db_path)
    plan = planning.make_plan(
        planning.Request(cloud="aws", **kw), planning.load_offers(s), s, owner=store.owner_id
    )
    return s, plan, store, provider_for_plan(plan, s)


def _sent(moto_server: Any, action: str) -> list[dict[str, str]]:
    return [
        {k: v[0] for k, v in parse_qs(body).items()} for a, body in moto_server.faults.requests if a == action
    ]


def _instances(ec2: Any, launch_id: str) -> list[dict[str, Any]]:
    resp = ec2.describe_instances(
        Filters=[
            {"Name": "tag:mlrig-launch", "Values": [launch_id]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )
    return [i for r in resp["Reservations"] for i in r["Instances"]]


def _tags(inst: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in inst.get("Tags", [])}


def test_up_nodes_2_is_one_placement_group_one_zone_reachable_only_from_each_other_and_the_cidr(
    cloud_env: Any, moto_server: Any, leaks: Any, ec2_client: Any
) -> None:
    s, plan, store, prov = _setup()
    result = launch.up(plan, prov, store, s)
    ec2 = ec2_client()
    insts = _instances(ec2, plan.launch_id)
    assert len(insts) == 2 and len(result.machines) == 2
    assert len({i["Placement"]["AvailabilityZone"] for i in insts}) == 1
    assert len({i["SubnetId"] for i in insts}) == 1
    by_node = {_tags(i)["mlrig-node"]: _tags(i) for i in insts}
    assert {k: t["mlrig-role"] for k, t in by_node.items()} == {"0": "head", "1": "worker"}
    assert all(
        t["mlrig-owner"] == store.owner_id and t["mlrig-launch"] == plan.launch_id for t in by_node.values()
    )
    # what the client asked EC2 for (moto ignores the placement and EFA parts)
    (pg,) = _sent(moto_server, "CreatePlacementGroup")
    assert pg["Strategy"] == "cluster"
    (run,) = _sent(moto_server, "RunInstances")
    assert run["MinCount"] == run["MaxCount"] == "2"
    assert run["Placement.GroupName"] == pg["GroupName"]
    assert run["NetworkInterface.1.InterfaceType"] == "efa"  # p4d.24xlarge has EFA
    # the node list, in tags every node reads from its own instance metadata (no SSH needed)
    assert run["MetadataOptions.InstanceMetadataTags"] == "enabled"
    ips = [m.private_ip for m in sorted(result.machines, key=lambda m: m.node_index or 0)]
    assert all(t["mlrig-nodes-n"] == "2" and t["mlrig-nodes-0"] == " ".join(ips) for t in by_node.values())
    # the security group: SSH from the CIDR, everything from the group itself, nothing from anywhere
    (sg,) = ec2.describe_security_groups(Filters=[{"Name": "tag:mlrig-launch", "Values": [plan.launch_id]}])[
        "SecurityGroups"
    ]
    perms = sg["IpPermissions"]
    cidrs = [r["CidrIp"] for p in perms for r in p.get("IpRanges", [])]
    assert cidrs == ["203.0.113.7/32"] and "0.0.0.0/0" not in str(perms)
    (nodes_rule,) = [p for p in perms if p.get("UserIdGroupPairs")]
    assert nodes_rule["IpProtocol"] == "-1" and nodes_rule["UserIdGroupPairs"][0]["GroupId"] == sg["GroupId"]
    rows = [r for r in store.resources(plan.launch_id) if r.kind == "instance"]
    assert sorted((r.node_index, r.role) for r in rows) == [(0, "head"), (1, "worker")]
    assert store.launch(plan.launch_id).nodes == 2
    row = store.launch(plan.launch_id)
    deleted = launch.down(row, prov, store, s)
    assert sorted(r.kind for r in deleted) == [
        "instance",
        "instance",
        "key_pair",
        "placement_group",
        "security_group",
    ]
    assert leaks() == []


def test_no_capacity_for_the_cluster_in_one_zone_moves_all_of_it(
    cloud_env: Any, moto_server: Any, leaks: Any, ec2_client: Any
) -> None:
    moto_server.faults.inject(action="RunInstances", code="InsufficientInstanceCapacity", match="us-east-1a")
    s, plan, store, prov = _setup()
    result = launch.up(plan, prov, store, s)
    zones = {m.zone for m in result.machines}
    assert len(zones) == 1 and "us-east-1a" not in zones
    assert len(_instances(ec2_client(), plan.launch_id)) == 2
    assert len(_sent(moto_server, "CreatePlacementGroup")) == 1  # the region's group is reused
    launch.down(store.launch(plan.launch_id), prov, store, s)
    assert leaks() == []


def _interrupt_on(monkeypatch: pytest.MonkeyPatch, event: str) -> None:
    orig = _clients.aws_client
    fired = {"n": 0}

    def handler(**_: Any) -> None:
        if not fired["n"]:
            fired["n"] += 1
            raise KeyboardInterrupt

    def wrapped(*a: Any, **k: Any) -> Any:
        client = orig(*a, **k)
        client.meta.events.register(event, handler)
        return client

    monkeypatch.setattr(_clients, "aws_client", wrapped)


@pytest.mark.parametrize(
    "event",
    [
        "after-call.ec2.CreatePlacementGroup",  # between the placement group and the instances
        "before-call.ec2.RunInstances",
        "after-call.ec2.RunInstances",  # the nodes exist; their answer never reaches the journal
        "after-call.ec2.CreateTags",  # after one node got its index, before the other
    ],
)
def test_ctrl_c_at_each_cluster_step_leaves_nothing(
    cloud_env: Any, monkeypatch: pytest.MonkeyPatch, leaks: Any, event: str
) -> None:
    _interrupt_on(monkeypatch, event)
    s, plan, store, prov = _setup()
    with pytest.raises(KeyboardInterrupt):
        launch.up(plan, prov, store, s)
    assert leaks() == []
    assert store.launch(plan.launch_id).status is LaunchStatus.FAILED


def test_a_crash_after_the_placement_group_is_finished_by_down_and_an_orphan_by_gc(
    cloud_env: Any, cli_here: Any, moto_server: Any, leaks: Any
) -> None:
    s, plan, store, prov = _setup(name="pgcrash")
    store.begin_launch(plan)
    launch.ensure_key(s, plan)
    prov.prepare(plan, "us-east-1", store.journal(plan.launch_id, plan.cloud))  # then kill -9
    assert [r for r in leaks() if "placement group" in r]
    down = cli_here(["down", "pgcrash", "--yes"])
    assert down.returncode == 0, down.stderr
    assert leaks() == []
    # the same, with the store's record lost: gc finds the group by its tags
    s, plan, store, prov = _setup(name="pgorphan")
    store.begin_launch(plan)
    launch.ensure_key(s, plan)
    prov.prepare(plan, "us-east-1", store.journal(plan.launch_id, plan.cloud))
    db = sqlite3.connect(s.db_path)
    db.execute("DELETE FROM resources WHERE launch_id = ?", (plan.launch_id,))
    db.execute("DELETE FROM launches WHERE launch_id = ?", (plan.launch_id,))
    db.commit()
    db.close()
    gc = cli_here(["gc", "--cloud", "aws", "--yes"])
    assert gc.returncode == 0, gc.stderr
    assert "placement_group" in gc.stdout
    assert leaks() == []


def test_cli_up_nodes_2_and_down(cloud_env: Any, cli_here: Any, moto_server: Any, leaks: Any) -> None:
    import json

    up = cli_here(
        [
            "up",
            "--cloud",
            "aws",
            "--instance-type",
            "p4d.24xlarge",
            "--region",
            "us-east-1",
            "--nodes",
            "2",
            "--wait",
            "running",
            "--name",
            "pair",
            "--yes",
            "--json",
        ]
    )
    assert up.returncode == 0, up.stderr
    out = json.loads(up.stdout)
    assert [(n["index"], n["role"]) for n in out["nodes"]] == [(0, "head"), (1, "worker")]
    assert len({n["zone"] for n in out["nodes"]}) == 1
    ls = json.loads(cli_here(["ls", "--json"]).stdout)
    (m,) = ls["machines"]
    assert m["name"] == "pair" and m["state"] == "running"
    assert m["nodes"] == 2 and [n["ssh"] for n in m["members"]] == ["pair", "pair.1"]
    table = cli_here(["ls"]).stdout
    assert "2x p4d.24xlarge" in table and f"${2 * m['price_per_hour']:,.2f}" in table  # every node billed
    down = cli_here(["down", "pair", "--yes", "--json"])
    assert down.returncode == 0, down.stderr
    kinds = sorted(d["kind"] for d in json.loads(down.stdout)["results"][0]["deleted"])
    assert kinds == ["instance", "instance", *SIDE]
    assert leaks() == []
