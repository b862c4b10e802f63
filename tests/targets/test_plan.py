"""The Plan is frozen and complete when planning returns; launching never fills anything in."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from provision import planning
from provision import settings as settings_mod
from provision.errors import ProvisionError, UsageError
from provision.plan import Plan, resume_identity

OWNER = "0123456789abcdef"


def _plan(tmp_path: Path, *, owner: str | None = OWNER, my_ip: Any = None, **kw: Any) -> Plan:
    s = settings_mod.load({"PROVISION_STATE_DIR": str(tmp_path)})
    kw.setdefault("cloud", "aws")
    kw.setdefault("instance_type", "g5.xlarge")
    return planning.make_plan(
        planning.Request(**kw),
        planning.load_offers(s),
        s,
        owner=owner,
        now=1_000_000.0,
        launch_id="abcdef123456",
        my_ip=my_ip,
    )


def test_a_plan_cannot_be_written_after_planning(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ssh_cidr="203.0.113.7")
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.ssh_cidr = "0.0.0.0/0"  # type: ignore[misc]
    assert isinstance(plan.regions, tuple) and isinstance(plan.notes, tuple)


def test_the_callers_address_is_resolved_while_planning(tmp_path: Path) -> None:
    asked: list[int] = []

    def my_ip() -> str:
        asked.append(1)
        return "198.51.100.9"

    plan = _plan(tmp_path, my_ip=my_ip)
    assert plan.ssh_cidr == "198.51.100.9/32" and asked == [1]
    assert plan.key_path and plan.key_path.endswith(f"{plan.name}-abcdef123456")
    plan.check_launchable()
    # an explicit CIDR is never overridden by the lookup
    assert _plan(tmp_path, my_ip=my_ip, ssh_cidr="203.0.113.0/24").ssh_cidr == "203.0.113.0/24"
    assert asked == [1]


def test_a_dry_run_plan_is_not_launchable(tmp_path: Path) -> None:
    plan = _plan(tmp_path, owner=None)
    assert plan.dry_run and plan.ssh_cidr is None
    with pytest.raises(ProvisionError, match="not launchable"):
        plan.check_launchable()
    with pytest.raises(ProvisionError, match="no ssh_cidr"):
        _plan(tmp_path).check_launchable()


def test_node_count_is_planned_and_refused_with_the_targets_reason(tmp_path: Path) -> None:
    assert _plan(tmp_path, ssh_cidr="203.0.113.7").nodes == 1
    with pytest.raises(UsageError, match="bad --nodes 0"):
        _plan(tmp_path, nodes=0)
    with pytest.raises(UsageError, match="--nodes 2: "):
        _plan(tmp_path, cloud="gcp", tpu="v5e-8", instance_type=None, nodes=2)


def test_resume_identity_reads_an_old_plan_as_one_node(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ssh_cidr="203.0.113.7")
    stored = plan.to_dict()
    del stored["nodes"]  # a plan stored by 0.1/0.2
    assert resume_identity(stored) == plan.resume_identity()
    assert plan.resume_identity()["regions"] == list(plan.regions)


def test_resuming_is_a_new_plan(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ssh_cidr="203.0.113.7")
    again = plan.resuming("0123456789ab", 5.0, None, OWNER)
    assert again.launch_id == "0123456789ab" and plan.launch_id == "abcdef123456"
