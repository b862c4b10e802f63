"""provision up / down on AWS against moto's EC2 server on 127.0.0.1, with injected faults.

Every failure-path test ends with the leak oracle: nothing tagged as mlrig's is left on moto.
"""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest

from provision import launch, planning
from provision import settings as settings_mod
from provision.clouds import _clients, provider_for_plan
from provision.clouds.base import LaunchFailed
from provision.errors import CredentialsError, ProvisionError
from provision.state import Store


def _setup(**kw: Any) -> tuple[Any, Any, Store, Any]:
    s = settings_mod.load()
    kw.setdefault("gpu", "A10G:1")
    kw.setdefault("wait", "running")
    kw.setdefault("ssh_cidr", "203.0.113.7/32")
    req = planning.Request(cloud="aws", **kw)
    store = Store(s.db_path)
    plan = planning.make_plan(req, planning.load_offers(s), s, owner=store.owner_id)
    return s, plan, store, provider_for_plan(plan, s)


def _instances(ec2: Any, launch_id: str) -> list[dict[str, Any]]:
    resp = ec2.describe_instances(Filters=[{"Name": "tag:mlrig-launch", "Values": [launch_id]}])
    return [i for r in resp["Reservations"] for i in r["Instances"]]


def _interrupt_on(monkeypatch: pytest.MonkeyPatch, event: str, times: int = 1) -> dict[str, int]:
    """Raise KeyboardInterrupt inside botocore at ``event`` (as a Ctrl-C at that moment would)."""
    orig = _clients.aws_client
    fired = {"n": 0}

    def handler(**_: Any) -> None:
        if fired["n"] < times:
            fired["n"] += 1
            raise KeyboardInterrupt

    def wrapped(*a: Any, **k: Any) -> Any:
        client = orig(*a, **k)
        client.meta.events.register(event, handler)
        return client

    monkeypatch.setattr(_clients, "aws_client", wrapped)
    return fired


# --------------------------------------------------------------------------- happy path
def test_up_creates_tagged_locked_down_machine_and_down_removes_all(
    cloud_env: Any, leaks: Any, ec2_client: Any
) -> None:
    s, plan, store, prov = _setup(name="box1", autostop="90m", disk_gb=120)
    assert plan.instance_type == "g5.xlarge"  # cheapest A10G:1 in the fixture catalog
    result = launch.up(plan, prov, store, s)
    ec2 = ec2_client()
    (inst,) = _instances(ec2, plan.launch_id)
    assert inst["State"]["Name"] == "running" and inst["InstanceType"] == "g5.xlarge"
    assert inst["ClientToken"] == f"{plan.launch_id}-0"  # what makes a retried RunInstances idempotent on EC2
    assert inst["PublicIpAddress"] and inst["Placement"]["AvailabilityZone"] == "us-east-1a"
    tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
    assert tags["mlrig-owner"] == store.owner_id and tags["Name"] == "box1"
    assert int(tags["mlrig-expiry"]) == int(plan.created_at + 90 * 60)
    attr = ec2.describe_instance_attribute(
        InstanceId=inst["InstanceId"], Attribute="instanceInitiatedShutdownBehavior"
    )
    assert attr["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    udata = ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
    script = base64.b64decode(udata["UserData"]["Value"]).decode()
    assert "shutdown -h +90" in script and "envcheck --deep --json" in script
    (sg,) = ec2.describe_security_groups(Filters=[{"Name": "tag:mlrig-launch", "Values": [plan.launch_id]}])[
        "SecurityGroups"
    ]
    rules = [(p["FromPort"], r["CidrIp"]) for p in sg["IpPermissions"] for r in p["IpRanges"]]
    assert rules == [(22, "203.0.113.7/32")]
    key = Path(str(plan.key_path))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    (kp,) = ec2.describe_key_pairs(Filters=[{"Name": "tag:mlrig-launch", "Values": [plan.launch_id]}])[
        "KeyPairs"
    ]
    assert kp["KeyName"] == inst["KeyName"]
    vol = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [inst["InstanceId"]]}])
    assert vol["Volumes"][0]["Size"] == 120
    assert result.ssh_alias == "box1" and "Host box1" in s.ssh_include.read_text()
    row = store.active_by_name("box1")
    assert row and row.status == "running" and row.price_per_hour == pytest.approx(1.006)
    # the journal: intent then outcome for every create call
    assert {(r.kind, r.status) for r in store.resources(plan.launch_id)} == {
        ("key_pair", "created"),
        ("security_group", "created"),
        ("instance", "created"),
    }

    deleted = launch.down(row, prov, store, s)
    assert {r.kind for r in deleted} == {"instance", "security_group", "key_pair"}
    assert leaks() == []
    assert not key.exists() and "Host box1" not in s.ssh_include.read_text()
    assert store.active_by_name("box1") is None
    # safe to repeat: nothing left to delete, no error
    assert launch.down(row, prov, store, s) == []


def test_spot_launch_is_spot_and_priced_as_spot(cloud_env: Any, leaks: Any, ec2_client: Any) -> None:
    s, plan, store, prov = _setup(spot=True)
    res = launch.up(plan, prov, store, s)
    (inst,) = _instances(ec2_client(), plan.launch_id)
    assert inst.get("InstanceLifecycle") == "spot" and res.machine.spot
    assert store.launch(plan.launch_id).price_per_hour == pytest.approx(0.397)  # type: ignore[union-attr]


def test_existing_key_pair_is_used_and_never_deleted(cloud_env: Any, leaks: Any, ec2_client: Any) -> None:
    ec2 = ec2_client()
    ec2.create_key_pair(KeyName="mine")
    s, plan, store, prov = _setup(key_name="mine")
    launch.up(plan, prov, store, s)
    (inst,) = _instances(ec2, plan.launch_id)
    assert inst["KeyName"] == "mine"
    launch.down(store.launch(plan.launch_id), prov, store, s)  # type: ignore[arg-type]
    assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == ["mine"]
    assert leaks() == []


# --------------------------------------------------------------------------- failover
def test_capacity_in_first_zone_moves_to_next_zone(cloud_env: Any, moto_server: Any, leaks: Any) -> None:
    moto_server.faults.inject(
        action="RunInstances", code="InsufficientInstanceCapacity", status=500, match="us-east-1a", times=5
    )
    s, plan, store, prov = _setup()
    res = launch.up(plan, prov, store, s)
    assert res.machine.zone == "us-east-1b"
    assert [str(a.placement) for a in res.attempts] == ["us-east-1a (on-demand)"]
    assert "InsufficientInstanceCapacity" in res.attempts[0].reason
    # retries off for launches: botocore did not silently retry the HTTP 500 in us-east-1a
    assert moto_server.faults.log.count("RunInstances") == 2


def test_whole_region_without_capacity_moves_to_next_region(
    cloud_env: Any, moto_server: Any, leaks: Any, ec2_client: Any
) -> None:
    moto_server.faults.inject(
        action="RunInstances", code="InsufficientInstanceCapacity", status=500, match="us-east-1", times=100
    )
    s, plan, store, prov = _setup()
    res = launch.up(plan, prov, store, s)
    assert res.machine.region == "us-west-2"
    assert len(res.attempts) >= 4 and all(a.placement.region == "us-east-1" for a in res.attempts)
    launch.down(store.launch(plan.launch_id), prov, store, s)  # type: ignore[arg-type]
    assert leaks() == []  # security groups and key pairs of both regions are gone


def test_spot_falls_back_to_on_demand_last(cloud_env: Any, moto_server: Any, leaks: Any) -> None:
    moto_server.faults.inject(
        action="RunInstances", code="SpotMaxPriceTooLow", match="MarketType=spot", times=100
    )
    s, plan, store, prov = _setup(spot=True)
    res = launch.up(plan, prov, store, s)
    assert res.machine.spot is False
    assert all(a.placement.spot and a.kind == "spot-price" for a in res.attempts)
    assert {a.placement.region for a in res.attempts} == {"us-east-1", "us-west-2"}  # every spot place first
    assert store.launch(plan.launch_id).price_per_hour == pytest.approx(1.006)  # type: ignore[union-attr]


def test_spot_quota_skips_spot_in_that_region_only(cloud_env: Any, moto_server: Any, leaks: Any) -> None:
    moto_server.faults.inject(
        action="RunInstances",
        code="MaxSpotInstanceCountExceeded",
        match="MarketType=spot",
        times=100,
        message="Max spot instance count exceeded",
    )
    s, plan, store, prov = _setup(spot=True)
    res = launch.up(plan, prov, store, s)
    # one spot try per region (the quota is regional), then on-demand in the first zone
    assert [(a.placement.region, a.kind) for a in res.attempts] == [
        ("us-east-1", "quota"),
        ("us-west-2", "quota"),
    ]
    assert res.machine.spot is False and res.machine.zone == "us-east-1a"
    assert "L-3819A6DF" in res.attempts[0].reason  # All G and VT Spot Instance Requests


def test_quota_error_names_the_quota_and_leaks_nothing(cloud_env: Any, moto_server: Any, leaks: Any) -> None:
    moto_server.faults.inject(
        action="RunInstances",
        code="VcpuLimitExceeded",
        times=100,
        message="You have requested more vCPU capacity than your current vCPU limit",
    )
    s, plan, store, prov = _setup()
    with pytest.raises(LaunchFailed) as info:
        launch.up(plan, prov, store, s)
    err = info.value
    assert "L-DB2E81BA" in err.message and "Running On-Demand G and VT instances" in err.message
    assert "request-service-quota-increase" in (err.hint or "") and "--desired-value 4" in (err.hint or "")
    # quota is regional: one attempt per region, not one per zone
    assert [a.placement.region for a in err.attempts] == ["us-east-1", "us-west-2"]
    assert leaks() == []
    assert store.launch(plan.launch_id).status == "failed"  # type: ignore[union-attr]


def test_unsupported_zone_is_skipped(cloud_env: Any, moto_server: Any, leaks: Any) -> None:
    moto_server.faults.inject(
        action="RunInstances",
        code="Unsupported",
        match="us-east-1a",
        message="Your requested instance type is not supported in us-east-1a",
    )
    s, plan, store, prov = _setup()
    res = launch.up(plan, prov, store, s)
    assert res.machine.zone == "us-east-1b" and res.attempts[0].kind == "unsupported"


def test_throttling_is_retried_in_place(cloud_env: Any, moto_server: Any, leaks: Any) -> None:
    moto_server.faults.inject(action="RunInstances", code="RequestLimitExceeded", status=503, times=1)
    s, plan, store, prov = _setup()
    res = launch.up(plan, prov, store, s)
    assert res.machine.zone == "us-east-1a" and res.attempts == []
    assert moto_server.faults.log.count("RunInstances") == 2


def test_fatal_error_after_security_group_cleans_up(cloud_env: Any, moto_server: Any, leaks: Any) -> None:
    moto_server.faults.inject(
        action="RunInstances", code="InvalidParameterCombination", message="bad combination"
    )
    s, plan, store, prov = _setup()
    with pytest.raises(LaunchFailed, match="refused"):
        launch.up(plan, prov, store, s)
    assert "CreateSecurityGroup" in moto_server.faults.log
    assert leaks() == []


def test_failure_while_opening_ssh_cleans_up_security_group(
    cloud_env: Any, moto_server: Any, leaks: Any
) -> None:
    moto_server.faults.inject(
        action="AuthorizeSecurityGroupIngress", code="InternalError", status=500, times=10
    )
    s, plan, store, prov = _setup()
    with pytest.raises(ProvisionError, match="could not open SSH"):
        launch.up(plan, prov, store, s)
    assert leaks() == []


def test_timeout_after_create_adopts_the_instance_instead_of_launching_twice(
    cloud_env: Any, moto_server: Any, leaks: Any, ec2_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVISION_API_TIMEOUT", "1")
    moto_server.faults.inject(action="RunInstances", delay_after=2.0)
    s, plan, store, prov = _setup()
    res = launch.up(plan, prov, store, s)
    assert len(_instances(ec2_client(), plan.launch_id)) == 1
    assert res.machine.state == "running"
    launch.down(store.launch(plan.launch_id), prov, store, s)  # type: ignore[arg-type]
    assert leaks() == []


def test_instance_dying_while_starting_is_cleaned_up(
    cloud_env: Any, leaks: Any, ec2_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, plan, store, prov = _setup()
    orig = prov.create

    def create_then_preempt(*a: Any, **k: Any) -> Any:
        res = orig(*a, **k)
        ec2_client().terminate_instances(InstanceIds=[m.id for m in res])  # e.g. spot reclaimed at once
        return res

    monkeypatch.setattr(prov, "create", create_then_preempt)
    with pytest.raises(ProvisionError, match="while starting"):
        launch.up(plan, prov, store, s)
    assert leaks() == []


# --------------------------------------------------------------------------- Ctrl-C
@pytest.mark.parametrize(
    "event",
    [
        "before-call.ec2.ImportKeyPair",
        "after-call.ec2.ImportKeyPair",
        "before-call.ec2.CreateSecurityGroup",
        "after-call.ec2.CreateSecurityGroup",
        "before-call.ec2.AuthorizeSecurityGroupIngress",
        "before-call.ec2.RunInstances",
        "after-call.ec2.RunInstances",
        "after-call.ec2.DescribeInstances",
    ],
)
def test_ctrl_c_at_each_call_leaves_nothing(
    event: str, cloud_env: Any, leaks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fired = _interrupt_on(monkeypatch, event)
    s, plan, store, prov = _setup()
    with pytest.raises(KeyboardInterrupt):
        launch.up(plan, prov, store, s)
    assert fired["n"] == 1
    assert leaks() == []
    row = store.launch(plan.launch_id)
    assert row and row.status == "failed" and row.error == "interrupted (SIGINT)"
    assert store.pending_resources(plan.launch_id) == []


class _InterruptAt:
    """A Progress that presses Ctrl-C at its n-th step."""

    def __init__(self, n: int) -> None:
        self.n, self.steps = n, []  # type: ignore[var-annotated]

    def step(self, message: str) -> None:
        self.steps.append(message)
        if len(self.steps) == self.n:
            raise KeyboardInterrupt

    def note(self, message: str) -> None:
        pass


@pytest.mark.parametrize("n", [1, 2, 3])
def test_ctrl_c_at_each_step_leaves_nothing(n: int, cloud_env: Any, leaks: Any) -> None:
    s, plan, store, prov = _setup()
    progress = _InterruptAt(n)
    with pytest.raises(KeyboardInterrupt):
        launch.up(plan, prov, store, s, progress)
    assert leaks() == []


def test_cleanup_after_a_signal_never_reuses_the_interrupted_clients(
    cloud_env: Any, leaks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack found it: a signal that lands while urllib3's pool takes its queue lock leaves the
    lock held (Condition.__enter__ is Python code), and the cleanup's next request through that
    client waited for ever. Cleanup after a signal runs on fresh clients."""
    s, plan, store, prov = _setup()

    def poisoned(*_: Any, **__: Any) -> Any:
        raise AssertionError("cleanup reused the client the signal interrupted")

    class CtrlCThenPoison(_InterruptAt):
        def step(self, message: str) -> None:
            if len(self.steps) + 1 == self.n:  # from now on the old driver's clients are unusable
                for name in ("refresh", "delete", "list_tagged", "find", "wait_running"):
                    monkeypatch.setattr(prov, name, poisoned)
            super().step(message)

    with pytest.raises(KeyboardInterrupt):
        launch.up(plan, prov, store, s, CtrlCThenPoison(3))  # Ctrl-C while waiting for the instance
    row = store.launch(plan.launch_id)
    assert row and row.status == "failed" and row.error == "interrupted (SIGINT)"
    assert leaks() == []


def test_interrupted_cleanup_is_finished_by_down(
    cloud_env: Any, leaks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    orig = _clients.aws_client
    pressed = {"run": 0, "terminate": 0}

    def after_run(**_: Any) -> None:
        if not pressed["run"]:
            pressed["run"] = 1
            raise KeyboardInterrupt

    def before_terminate(**_: Any) -> None:
        if not pressed["terminate"]:
            pressed["terminate"] = 1
            raise KeyboardInterrupt  # the user presses Ctrl-C again during cleanup

    def wrapped(*a: Any, **k: Any) -> Any:
        c = orig(*a, **k)
        c.meta.events.register("after-call.ec2.RunInstances", after_run)
        c.meta.events.register("before-call.ec2.TerminateInstances", before_terminate)
        return c

    monkeypatch.setattr(_clients, "aws_client", wrapped)
    s, plan, store, prov = _setup(name="half")
    with pytest.raises(ProvisionError) as info:
        launch.up(plan, prov, store, s)
    assert "provision down half" in (info.value.hint or "")
    assert len(leaks()) == 3  # expected: the instance, its security group and key pair remain
    row = store.active_by_name("half")
    assert row and row.status == "cleanup-incomplete"
    launch.down(row, prov, store, s)
    assert leaks() == []
    assert launch.down(row, prov, store, s) == []  # and again: nothing to do


def _crash_after_create(s: Any, plan: Any, store: Store, prov: Any) -> None:
    """dstack #3453: the process dies after RunInstances, before the outcome is written.

    Drives the driver the way ``launch.up`` does, with a journal that loses the instance's outcome,
    which is exactly what a kill -9 between the API answer and the state write leaves behind.
    """
    launch.ensure_key(s, plan)
    store.begin_launch(plan)
    journal = store.journal(plan.launch_id, plan.cloud)
    journal.created = lambda row, rid: (
        None
        if store.resources(plan.launch_id)[-1].kind == "instance"
        else (Store.set_resource(store, row, "created", resource_id=rid))
    )
    prov.prepare(plan, plan.region, journal)
    prov.create(plan, planning.Placement(plan.region, "us-east-1a", False), 0, journal)


def test_crash_between_create_and_record_then_down_finds_it_by_tag(
    cloud_env: Any, leaks: Any, ec2_client: Any
) -> None:
    s, plan, store, prov = _setup(name="crashy")
    _crash_after_create(s, plan, store, prov)
    (intent,) = [r for r in store.resources(plan.launch_id) if r.kind == "instance"]
    assert intent.status == "intent" and intent.resource_id is None
    assert len(_instances(ec2_client(), plan.launch_id)) == 1
    fresh = Store(s.db_path)
    row = fresh.active_by_name("crashy")
    assert row is not None
    deleted = launch.down(row, provider_for_plan(plan, s), fresh, s)
    assert "instance" in {r.kind for r in deleted}
    assert leaks() == []


def test_crash_between_create_and_record_then_up_again_adopts_it(
    cloud_env: Any, leaks: Any, ec2_client: Any
) -> None:
    s, plan, store, prov = _setup(name="crashy")
    _crash_after_create(s, plan, store, prov)
    res = launch.up(plan, provider_for_plan(plan, s), Store(s.db_path), s)
    assert len(_instances(ec2_client(), plan.launch_id)) == 1 and res.attempts == []
    assert res.machine.state == "running"
    launch.down(store.launch(plan.launch_id), prov, store, s)  # type: ignore[arg-type]
    assert leaks() == []


def test_down_when_everything_was_deleted_out_of_band(cloud_env: Any, leaks: Any, ec2_client: Any) -> None:
    s, plan, store, prov = _setup()
    res = launch.up(plan, prov, store, s)
    ec2 = ec2_client()
    ec2.terminate_instances(InstanceIds=[res.machine.id])
    for r in store.resources(plan.launch_id):
        if r.kind == "security_group":
            ec2.delete_security_group(GroupId=r.resource_id)
        if r.kind == "key_pair":
            ec2.delete_key_pair(KeyName=r.name)
    assert leaks() == []
    assert launch.down(store.launch(plan.launch_id), prov, store, s) == []  # type: ignore[arg-type]
    assert store.launch(plan.launch_id).status == "terminated"  # type: ignore[union-attr]


def test_missing_credentials_is_one_clear_error(cloud_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    s, plan, store, prov = _setup()
    with pytest.raises(CredentialsError) as info:
        launch.up(plan, prov, store, s)
    assert "aws configure" in (info.value.hint or "")
    assert store.launch(plan.launch_id) is None  # nothing recorded, nothing created


def test_type_not_offered_anywhere_fails_before_creating_anything(cloud_env: Any, moto_server: Any) -> None:
    # p3.2xlarge: in the catalog, but moto's EC2 (like a region that retired it) offers it in no zone
    s, plan, store, prov = _setup(gpu=None, instance_type="p3.2xlarge", region="us-east-1")
    with pytest.raises(LaunchFailed, match="0 place") as info:
        launch.up(plan, prov, store, s)
    assert "p3.2xlarge is not offered in us-east-1" in info.value.message
    assert not {"ImportKeyPair", "CreateSecurityGroup", "RunInstances"} & set(moto_server.faults.log)


def test_security_group_still_in_use_is_retried(cloud_env: Any, moto_server: Any, leaks: Any) -> None:
    # real EC2 keeps a group "in use" for a while after the instance terminates; moto frees it at once
    s, plan, store, prov = _setup()
    launch.up(plan, prov, store, s)
    moto_server.faults.inject(
        action="DeleteSecurityGroup",
        code="DependencyViolation",
        times=2,
        message="resource sg-x has a dependent object",
    )
    launch.down(store.launch(plan.launch_id), prov, store, s)  # type: ignore[arg-type]
    assert moto_server.faults.log.count("DeleteSecurityGroup") == 3
    assert leaks() == []
