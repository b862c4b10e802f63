"""Failover and cleanup policy of ``provision up``/``down``, on the in-memory target: milliseconds
per case, so the policy is tested case by case before the moto and loopback suites run it for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _memory_target import Cloud, Interrupted, MemoryProvider, plant, run_with

from provision import launch, planning
from provision import settings as settings_mod
from provision.clouds.base import FailureKind, LaunchFailed, Resource
from provision.errors import UsageError
from provision.models import Offering
from provision.state import LaunchStatus, ResourceStatus, Store

OWNER_OFFER = Offering(
    cloud="aws",
    instance_type="g5.xlarge",
    accelerator="A10G",
    accelerator_count=1,
    region="us-east-1",
    price_on_demand=1.006,
    price_spot=0.4,
    source="test",
    as_of="2026-11-01",
)


@pytest.fixture
def world(tmp_path: Path) -> Any:
    s = settings_mod.load(
        {
            "PROVISION_STATE_DIR": str(tmp_path / "state"),
            "PROVISION_SSH_CONFIG": str(tmp_path / "ssh" / "config"),
            "PROVISION_AWS_REGIONS": "us-east-1,us-east-2,us-west-2",
        }
    )
    store = Store(s.db_path)
    cloud = Cloud()

    class World:
        settings, mem = s, cloud
        provider = MemoryProvider(cloud)

        def plan(self, **kw: Any) -> Any:
            kw.setdefault("cloud", "aws")
            kw.setdefault("gpu", "A10G:1")
            kw.setdefault("wait", "running")
            kw.setdefault("ssh_cidr", "203.0.113.7")
            kw.setdefault("key_name", "mine")  # no ssh-keygen: the policy is what is tested
            return planning.make_plan(planning.Request(**kw), [OWNER_OFFER], s, owner=store.owner_id)

        def up(self, plan: Any) -> Any:
            return launch.up(plan, self.provider, store, s)

        def provider_placement(self, plan: Any) -> Any:
            from provision.clouds.base import Placement

            return Placement("us-east-1", "us-east-1a", False)

        def leaks(self) -> list[Resource]:
            return cloud.leaks(store.owner_id)

    w = World()
    w.store = store  # type: ignore[attr-defined]
    return w


def test_capacity_moves_to_the_next_zone_then_the_next_region(world: Any) -> None:
    world.mem.outcome.update({"us-east-1a": FailureKind.CAPACITY, "us-east-1b": FailureKind.CAPACITY})
    result = world.up(world.plan())
    assert result.machine.zone == "us-east-2a"
    assert [a.kind for a in result.attempts] == ["capacity", "capacity"]
    machines = [r for r in world.leaks() if r.kind == "instance"]
    assert [m.zone for m in machines] == ["us-east-2a"]  # the failed places left no machine


def test_quota_skips_the_rest_of_the_region(world: Any) -> None:
    world.mem.outcome["us-east-1a"] = FailureKind.QUOTA
    result = world.up(world.plan())
    assert result.machine.region == "us-east-2"
    assert world.mem.calls.count("create") == 2  # us-east-1b was never tried


def test_spot_falls_back_to_on_demand_only_after_every_spot_place(world: Any) -> None:
    for zone in ("us-east-1a", "us-east-1b", "us-east-2a", "us-west-2a"):
        world.mem.outcome[f"{zone}/spot"] = FailureKind.CAPACITY
    result = world.up(world.plan(spot=True))
    assert result.machine.spot is False and result.machine.zone == "us-east-1a"
    assert len(result.attempts) == 4
    row = world.store.launch(result.plan.launch_id)
    assert row.price_per_hour == pytest.approx(1.006)  # billed as on-demand, not the spot price


def test_a_fatal_refusal_stops_and_removes_everything(world: Any) -> None:
    world.mem.outcome["us-east-1a"] = FailureKind.FATAL
    plan = world.plan()
    with pytest.raises(LaunchFailed, match="refused the launch"):
        world.up(plan)
    assert world.leaks() == []
    assert world.mem.calls.count("create") == 1
    assert world.store.launch(plan.launch_id).status is LaunchStatus.FAILED


def test_every_place_failing_leaves_nothing(world: Any) -> None:
    world.mem.outcome.update(
        dict.fromkeys(("us-east-1a", "us-east-1b", "us-east-2a", "us-west-2a"), FailureKind.CAPACITY)
    )
    with pytest.raises(LaunchFailed, match="4 place"):
        world.up(world.plan())
    assert world.leaks() == []


@pytest.mark.parametrize("point", ["prepare:key_pair", "prepare:security_group", "create", "wait_running"])
def test_a_signal_at_each_step_removes_what_was_created(world: Any, point: str) -> None:
    world.provider.interrupt_after(point)
    plan = world.plan()
    exc = run_with(lambda: world.up(plan))
    assert isinstance(exc, Interrupted)
    assert world.leaks() == []
    assert world.store.active_by_name(plan.name) is None
    assert {r.status for r in world.store.resources(plan.launch_id)} <= {
        ResourceStatus.DELETED,
        ResourceStatus.FAILED,
    }


def test_a_lost_create_answer_is_found_by_its_tags_and_removed(world: Any) -> None:
    world.provider.lose_answers = 1
    world.provider.interrupt_after("create")  # the signal lands before the answer is journalled
    plan = world.plan()
    assert isinstance(run_with(lambda: world.up(plan)), Interrupted)
    assert world.leaks() == []
    assert "list_tagged" in world.mem.calls  # only the tag could find it (EC2 assigns instance ids)


def test_cleanup_never_touches_a_look_alike_of_another_owner(world: Any) -> None:
    plan = world.plan()
    foreign = plant(
        world.mem,
        Resource(
            "aws",
            "instance",
            "us-east-1",
            "i-foreign",
            launch_id=plan.launch_id,
            owner="f" * 16,
            state="running",
            zone="us-east-1a",
        ),
    )
    untagged = plant(world.mem, Resource("aws", "security_group", "us-east-1", "sg-x", state="exists"))
    world.mem.outcome["us-east-1a"] = FailureKind.FATAL
    with pytest.raises(LaunchFailed):
        world.up(plan)
    assert world.leaks() == []
    assert world.mem.items[("instance", "i-foreign")].alive and foreign.alive
    assert world.mem.items[("security_group", "sg-x")].alive and untagged.alive
    assert "delete:instance" not in world.mem.calls  # our own launch made no machine


def test_down_removes_machines_before_what_they_hold(world: Any) -> None:
    result = world.up(world.plan())
    row = world.store.launch(result.plan.launch_id)
    deleted = launch.down(row, world.provider, world.store, world.settings)
    assert [r.kind for r in deleted] == ["instance", "security_group", "key_pair"]
    assert world.leaks() == []
    assert launch.down(row, world.provider, world.store, world.settings) == []  # safe to repeat


def test_an_interrupted_cleanup_is_finished_by_down_not_by_up(world: Any) -> None:
    plan = world.plan()
    world.provider.interrupt_after("delete:instance")  # a second signal stops the cleanup
    world.provider.interrupt_after("wait_running")
    assert run_with(lambda: world.up(plan)) is not None
    row = world.store.active_by_name(plan.name)
    assert row is not None and row.status is LaunchStatus.CLEANUP_INCOMPLETE
    with pytest.raises(UsageError, match="already exists"):
        world.up(world.plan(name=plan.name))
    launch.down(row, world.provider, world.store, world.settings)
    assert world.leaks() == [] and world.store.active_by_name(plan.name) is None


def test_a_killed_launch_is_resumed_only_by_the_same_plan(world: Any) -> None:
    plan = world.plan()
    world.store.begin_launch(plan)  # what a kill -9 right after recording leaves: no cleanup ran
    with pytest.raises(UsageError, match="does not match: disk_gb 200 -> 300"):
        world.up(world.plan(name=plan.name, disk_gb=300))
    again = world.up(world.plan(name=plan.name))
    assert again.plan.launch_id == plan.launch_id
    assert [r.id for r in world.leaks() if r.kind == "instance"] == [again.machine.id]


# --------------------------------------------------------------------------- clusters
def test_a_cluster_is_launched_whole_with_a_head_and_workers(world: Any) -> None:
    result = world.up(world.plan(nodes=3))
    assert [(m.node_index, m.role) for m in result.machines] == [(0, "head"), (1, "worker"), (2, "worker")]
    assert len({m.zone for m in result.machines}) == 1
    rows = [r for r in world.store.resources(result.plan.launch_id) if r.kind == "instance"]
    assert [(r.node_index, r.role, r.status) for r in rows] == [
        (0, "head", ResourceStatus.CREATED),
        (1, "worker", ResourceStatus.CREATED),
        (2, "worker", ResourceStatus.CREATED),
    ]
    row = world.store.launch(result.plan.launch_id)
    assert row.nodes == 3
    assert row.cost_so_far(row.running_at + 3600) == pytest.approx(3 * 1.006)  # every node is billed


def test_capacity_for_n_minus_1_moves_the_whole_cluster_and_leaves_no_part(world: Any) -> None:
    world.mem.capacity["us-east-1a"] = 2
    result = world.up(world.plan(nodes=3))
    assert {m.zone for m in result.machines} == {"us-east-1b"}
    assert sorted(r.zone for r in world.leaks() if r.kind == "instance") == ["us-east-1b"] * 3
    assert world.mem.calls.count("delete:instance") == 2  # the two that fit in us-east-1a


@pytest.mark.parametrize("k", [1, 2])
def test_a_signal_after_k_of_n_nodes_leaves_nothing(world: Any, k: int) -> None:
    world.provider.interrupt_after("create", k)
    plan = world.plan(nodes=3)
    assert isinstance(run_with(lambda: world.up(plan)), Interrupted)
    assert world.leaks() == []
    assert world.store.active_by_name(plan.name) is None


def test_a_killed_cluster_launch_keeps_a_whole_cluster_and_replaces_a_partial_one(world: Any) -> None:
    plan = world.plan(nodes=2)
    world.store.begin_launch(plan)  # killed after recording; the cloud got one of two machines
    journal = world.store.journal(plan.launch_id, "aws")
    world.provider.prepare(plan, "us-east-1", journal)
    world.provider._create_one(plan, world.provider_placement(plan), journal, 0)
    again = world.up(world.plan(name=plan.name, nodes=2))
    assert again.plan.launch_id == plan.launch_id and len(again.machines) == 2
    assert len([r for r in world.leaks() if r.kind == "instance"]) == 2  # the orphan half was removed


def test_ls_shows_one_row_per_cluster_billed_for_every_node_and_a_missing_node(world: Any) -> None:
    from dataclasses import replace

    from provision import fleet

    result = world.up(world.plan(nodes=2))
    (view,), untracked, _scan = fleet.inventory(
        world.store,
        world.settings,
        lambda _key: world.provider,
        now=world.store.launch(result.plan.launch_id).running_at + 3600,
    )
    assert untracked == [] and view.nodes == 2 and view.note is None
    assert view.cost_so_far == pytest.approx(2 * 1.006)
    assert [(m["index"], m["role"], m["ssh"]) for m in view.members] == [
        (0, "head", view.name),
        (1, "worker", f"{view.name}.1"),
    ]
    gone = result.machines[1]
    world.mem.put(replace(world.mem.items[("instance", gone.id)], state="terminated"))  # preempted
    (view,), _u, _s = fleet.inventory(world.store, world.settings, lambda _key: world.provider)
    assert view.state == "running" and "only 1 of 2 nodes" in (view.note or "")
