"""provision up / down on Compute Engine and Cloud TPU against the loopback REST fake, with faults.

The fake logs every request, so these tests assert on what the official clients actually sent
(requestId, labels, scheduling, accelerators) and on where operations were polled.
"""

from __future__ import annotations

from typing import Any

import pytest

from provision import launch, planning
from provision import settings as settings_mod
from provision.clouds import provider_for_plan
from provision.clouds.base import LaunchFailed
from provision.errors import ProvisionError
from provision.state import Store


def _setup(**kw: Any) -> tuple[Any, Any, Store, Any]:
    s = settings_mod.load()
    kw.setdefault("wait", "running")
    kw.setdefault("ssh_cidr", "203.0.113.7/32")
    if "tpu" not in kw:
        kw.setdefault("gpu", "T4:1")
    req = planning.Request(cloud="gcp", **kw)
    store = Store(s.db_path)
    plan = planning.make_plan(req, planning.load_offers(s), s, owner=store.owner_id)
    return s, plan, store, provider_for_plan(plan, s)


def _inserts(fake: Any) -> list[tuple[str, str, dict[str, list[str]], Any]]:
    return [r for r in fake.requests("POST") if r[1].endswith("/instances")]


def test_gpu_vm_up_sends_what_gpus_need_and_down_removes_all(
    cloud_env: Any, gcp_server: Any, leaks: Any
) -> None:
    s, plan, store, prov = _setup(name="t4box", autostop="2h")
    assert plan.instance_type == "n1-standard-8"
    res = launch.up(plan, prov, store, s)
    assert res.machine.state == "RUNNING" and res.machine.public_ip
    ((_, path, query, body),) = _inserts(gcp_server)
    assert "/zones/us-central1-a/" in path and query["requestId"]
    assert body["guestAccelerators"][0]["acceleratorType"].endswith("acceleratorTypes/nvidia-tesla-t4")
    assert body["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert body["scheduling"]["provisioningModel"] == "STANDARD"
    assert body["scheduling"]["maxRunDuration"]["seconds"] == str(2 * 3600)
    assert body["scheduling"]["instanceTerminationAction"] == "DELETE"
    assert (
        body["labels"]["mlrig-launch"] == plan.launch_id and body["labels"]["mlrig-owner"] == store.owner_id
    )
    meta = {i["key"]: i["value"] for i in body["metadata"]["items"]}
    assert "envcheck" in meta["startup-script"] and meta["ssh-keys"].startswith("mlrig:ssh-ed25519 ")
    assert body["tags"]["items"] == [f"mlrig-{plan.launch_id}"]
    assert (
        "deeplearning-platform-release/global/images/" in body["disks"][0]["initializeParams"]["sourceImage"]
    )
    ((_, _, _, fw),) = [r for r in gcp_server.requests("POST") if r[1].endswith("/firewalls")]
    assert fw["sourceRanges"] == ["203.0.113.7/32"] and fw["targetTags"] == [f"mlrig-{plan.launch_id}"]
    assert fw["allowed"] == [{"IPProtocol": "tcp", "ports": ["22"]}]
    # operations were waited on through OUR client, on the fake (not the real Google host)
    assert gcp_server.requests("POST", "/operations/")
    assert len(leaks()) == 2

    launch.down(store.launch(plan.launch_id), prov, store, s)  # type: ignore[arg-type]
    assert leaks() == []
    assert launch.down(store.launch(plan.launch_id), prov, store, s) == []  # type: ignore[arg-type]


def test_built_in_gpu_machine_has_no_attached_accelerators_and_spot(cloud_env: Any, gcp_server: Any) -> None:
    s, plan, store, prov = _setup(gpu="L4:1", spot=True)
    assert plan.instance_type == "g2-standard-4"
    res = launch.up(plan, prov, store, s)
    ((_, _, _, body),) = _inserts(gcp_server)
    assert "guestAccelerators" not in body
    assert body["scheduling"]["provisioningModel"] == "SPOT" and res.machine.spot
    assert body["scheduling"]["instanceTerminationAction"] == "DELETE"


def test_stockout_in_zone_fails_over_to_next_zone(cloud_env: Any, gcp_server: Any, leaks: Any) -> None:
    gcp_server.inject(op="insert", zone="us-central1-a", error="ZONE_RESOURCE_POOL_EXHAUSTED")
    s, plan, store, prov = _setup()
    res = launch.up(plan, prov, store, s)
    assert res.machine.zone == "us-central1-b"
    (tried,) = res.attempts
    assert (
        str(tried.placement) == "us-central1-a (on-demand)" and "ZONE_RESOURCE_POOL_EXHAUSTED" in tried.reason
    )
    # each insert had its own requestId
    ids = [q["requestId"][0] for _, _, q, _ in _inserts(gcp_server)]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_stockout_with_details_everywhere_then_spot_falls_back(
    cloud_env: Any, gcp_server: Any, leaks: Any
) -> None:
    for z in ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"):
        gcp_server.inject(op="insert", zone=z, error="ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS")
    s, plan, store, prov = _setup(spot=True)
    res = launch.up(plan, prov, store, s)
    assert res.machine.spot is False and res.machine.zone == "us-central1-a"
    assert len(res.attempts) == 4 and all(a.kind == "capacity" for a in res.attempts)


def test_quota_everywhere_fails_with_a_hint_and_no_leak(cloud_env: Any, gcp_server: Any, leaks: Any) -> None:
    gcp_server.inject(
        op="insert",
        error="QUOTA_EXCEEDED",
        times=50,
        message="Quota 'NVIDIA_T4_GPUS' exceeded.  Limit: 0.0 in region us-central1.",
    )
    s, plan, store, prov = _setup()
    with pytest.raises(LaunchFailed) as info:
        launch.up(plan, prov, store, s)
    assert "NVIDIA_T4_GPUS" in info.value.message and "regions describe us-central1" in (
        info.value.hint or ""
    )
    assert len(info.value.attempts) == 1  # quota is regional: the other zones are not tried
    assert leaks() == []


def test_synchronous_403_quota_is_a_quota_error(cloud_env: Any, gcp_server: Any, leaks: Any) -> None:
    gcp_server.inject(
        op="insert",
        kind="http",
        status=403,
        error="quotaExceeded",
        times=50,
        message="Quota 'GPUS_ALL_REGIONS' exceeded. Limit: 0.0 globally.",
    )
    s, plan, store, prov = _setup()
    with pytest.raises(LaunchFailed, match="GPUS_ALL_REGIONS"):
        launch.up(plan, prov, store, s)
    assert leaks() == []


def test_fatal_insert_after_firewall_removes_the_firewall(
    cloud_env: Any, gcp_server: Any, leaks: Any
) -> None:
    gcp_server.inject(
        op="insert",
        kind="http",
        status=400,
        error="invalid",
        message="Invalid value for field 'resource.machineType'",
    )
    s, plan, store, prov = _setup()
    with pytest.raises(LaunchFailed, match="refused"):
        launch.up(plan, prov, store, s)
    assert gcp_server.requests("POST", "/global/firewalls")
    assert leaks() == []


def test_lost_answer_to_insert_is_adopted_not_duplicated(
    cloud_env: Any, gcp_server: Any, leaks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVISION_API_TIMEOUT", "1")
    gcp_server.inject(op="insert", kind="slow", delay=2.0)
    s, plan, store, prov = _setup()
    res = launch.up(plan, prov, store, s)
    assert [k for k in gcp_server.ours() if k.startswith("instance")] == [
        f"instance {res.machine.zone}/{plan.name}"
    ]
    launch.down(store.launch(plan.launch_id), prov, store, s)  # type: ignore[arg-type]
    assert leaks() == []


def test_ctrl_c_while_waiting_on_the_insert_operation(
    cloud_env: Any, gcp_server: Any, leaks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, plan, store, prov = _setup()
    orig = prov._wait
    pressed = []

    def wait(op: Any, zone: str | None) -> Any:
        if zone is not None and not pressed:  # Ctrl-C once, while the insert is being waited on
            pressed.append(op.name)
            raise KeyboardInterrupt
        return orig(op, zone)

    monkeypatch.setattr(prov, "_wait", wait)
    with pytest.raises(KeyboardInterrupt):
        launch.up(plan, prov, store, s)
    monkeypatch.undo()
    assert leaks() == []
    assert store.pending_resources(plan.launch_id) == []


class _InterruptAt:
    def __init__(self, n: int) -> None:
        self.n, self.count = n, 0

    def step(self, message: str) -> None:
        self.count += 1
        if self.count == self.n:
            raise KeyboardInterrupt

    def note(self, message: str) -> None:
        pass


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("kind", ["gpu", "tpu"])
def test_ctrl_c_at_each_step_leaves_nothing(n: int, kind: str, cloud_env: Any, leaks: Any) -> None:
    s, plan, store, prov = _setup(tpu="v5e-8") if kind == "tpu" else _setup()
    with pytest.raises(KeyboardInterrupt):
        launch.up(plan, prov, store, s, _InterruptAt(n))
    assert leaks() == []


def test_down_finishes_when_cleanup_was_interrupted(
    cloud_env: Any, gcp_server: Any, leaks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, plan, store, prov = _setup(name="half")
    driver = type(prov)  # cleanup after a signal runs on a fresh driver of the same class
    orig_delete = driver.delete
    calls = {"n": 0}

    def delete_interrupted(self: Any, res: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return orig_delete(self, res)

    monkeypatch.setattr(driver, "delete", delete_interrupted)
    with pytest.raises(ProvisionError, match="cleanup stopped by a second SIGINT"):  # Ctrl-C, then again
        launch.up(plan, prov, store, s, _InterruptAt(3))
    assert leaks()  # expected: the VM and firewall are still there
    launch.down(store.active_by_name("half"), prov, store, s)  # type: ignore[arg-type]
    assert leaks() == []


# --------------------------------------------------------------------------- Cloud TPU
def test_tpu_up_and_down(cloud_env: Any, gcp_server: Any, leaks: Any) -> None:
    s, plan, store, prov = _setup(tpu="v5e-8", spot=True, zone="us-west4-a")
    assert plan.instance_type == "v5litepod-8" and plan.tpu_runtime == "v2-alpha-tpuv5-lite"
    res = launch.up(plan, prov, store, s)
    assert res.machine.kind == "tpu_node" and res.machine.state == "READY" and res.machine.public_ip
    ((_, path, query, body),) = [r for r in gcp_server.requests("POST") if r[1].endswith("/nodes")]
    assert path == "/v2/projects/proj/locations/us-west4-a/nodes" and query["nodeId"] == [plan.name]
    assert body["acceleratorType"] == "v5litepod-8" and body["runtimeVersion"] == "v2-alpha-tpuv5-lite"
    assert body["schedulingConfig"]["spot"] is True and body["labels"]["mlrig-launch"] == plan.launch_id
    assert "startup-script" in body["metadata"] and body["tags"] == [f"mlrig-{plan.launch_id}"]
    assert gcp_server.requests("GET", "/operations/")  # LRO polled on the fake through REST
    launch.down(store.launch(plan.launch_id), prov, store, s)  # type: ignore[arg-type]
    assert leaks() == []


def test_tpu_capacity_errors_fail_over_to_next_zone(cloud_env: Any, gcp_server: Any, leaks: Any) -> None:
    gcp_server.inject(
        op="tpu_create",
        zone="us-central1-a",
        kind="http",
        status=429,
        message="There is no more capacity in the zone",
    )
    gcp_server.inject(
        op="tpu_create",
        zone="us-central1-b",
        kind="operation",
        message="Insufficient capacity for v5litepod-8 in us-central1-b",
    )
    s, plan, store, prov = _setup(tpu="v5e-8")
    res = launch.up(plan, prov, store, s)
    assert res.machine.zone == "us-central1-c"
    assert [(a.placement.zone, a.kind) for a in res.attempts] == [
        ("us-central1-a", "capacity"),
        ("us-central1-b", "capacity"),
    ]
    launch.down(store.launch(plan.launch_id), prov, store, s)  # type: ignore[arg-type]
    assert leaks() == []


def test_tpu_quota_is_reported(cloud_env: Any, gcp_server: Any, leaks: Any) -> None:
    gcp_server.inject(
        op="tpu_create",
        kind="http",
        status=429,
        times=50,
        message="Quota limit 'TPUV5sLitepodPerProjectPerZone' has been exceeded",
    )
    s, plan, store, prov = _setup(tpu="v5e-8", region="us-central1")
    with pytest.raises(LaunchFailed, match="TPUV5sLitepod") as info:
        launch.up(plan, prov, store, s)
    assert "quotas" in (info.value.hint or "")
    assert leaks() == []


def _squat(gcp_server: Any, prov: Any, plan: Any, table: str, body: dict[str, Any]) -> None:
    """Someone else's machine (no mlrig labels) holding the plan's name in every zone of its region."""
    zones = prov.zones(plan, plan.regions[0])
    with gcp_server.lock:
        for zone in zones:
            getattr(gcp_server.state, table)[(zone, plan.name)] = dict(body)


def test_instance_name_taken_by_a_stranger_is_fatal_and_journalled(
    cloud_env: Any, gcp_server: Any, leaks: Any
) -> None:
    s, plan, store, prov = _setup()
    _squat(gcp_server, prov, plan, "instances", {"name": plan.name, "status": "RUNNING"})
    with pytest.raises(LaunchFailed, match="alreadyExists") as info:
        launch.up(plan, prov, store, s)
    assert len(info.value.attempts) == 1  # fatal: another zone would not free the name
    rows = [(r.status, r.error) for r in store.resources(plan.launch_id) if r.kind == "instance"]
    assert rows == [("failed", "name taken by a machine that is not ours")]
    assert leaks() == []


def test_tpu_node_id_taken_by_a_stranger_is_fatal_and_journalled(
    cloud_env: Any, gcp_server: Any, leaks: Any
) -> None:
    s, plan, store, prov = _setup(tpu="v5e-8", region="us-central1")
    _squat(gcp_server, prov, plan, "nodes", {"name": f"projects/p/locations/z/nodes/{plan.name}"})
    with pytest.raises(LaunchFailed, match="ALREADY_EXISTS") as info:
        launch.up(plan, prov, store, s)
    assert len(info.value.attempts) == 1
    rows = [(r.status, r.error) for r in store.resources(plan.launch_id) if r.kind == "tpu_node"]
    assert rows == [("failed", "node id taken by a node that is not ours")]
    assert leaks() == []
