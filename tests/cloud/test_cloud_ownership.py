"""Ownership, one launch per name, resume identity: the real CLI against moto and the Google fake.

Each test here reproduces a defect of issue 9 (its number is in the test's docstring): it failed on
the release that had the defect and passes now. Look-alike resources that are NOT ours are planted
first and must survive everything.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from _kit import (
    FOREIGN_LAUNCHES,
    finish,
    foreign_aws_alive,
    foreign_gcp_alive,
    plant_foreign_aws,
    plant_foreign_gcp,
    spawn_cli,
    wait_until,
)

UP = ["up", "--wait", "running", "--yes"]


@pytest.fixture
def foreign(moto_server: Any, gcp_server: Any, amis: dict[str, str], expect_leftover: set[str]) -> Any:
    """Plant the look-alikes; ``foreign()`` -> the labels of those that were deleted (must stay empty)."""
    expect_leftover.update(FOREIGN_LAUNCHES)
    aws = plant_foreign_aws(moto_server.url, amis)
    gcp = plant_foreign_gcp(gcp_server)

    def deleted() -> set[str]:
        gone_aws = set(aws) - foreign_aws_alive(moto_server.url, aws)
        return gone_aws | (gcp - foreign_gcp_alive(gcp_server, gcp))

    assert deleted() == set()
    return deleted


def _instances_of(ec2: Any, name: str) -> list[dict[str, Any]]:
    resp = ec2.describe_instances(Filters=[{"Name": "tag:mlrig-name", "Values": [name]}])
    return [i for r in resp["Reservations"] for i in r["Instances"] if i["State"]["Name"] != "terminated"]


# ----------------------------------------------------------------- 1: gc takes only what it can prove
def test_gc_spares_look_alikes_that_are_not_ours(cli: Any, foreign: Any, leaks: Any) -> None:
    """Defect 1: gc deleted anything with the mlrig-launch key and no owner, and mlrig-* firewalls."""
    listed = cli(["gc", "--json"])
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["untracked"] == []
    swept = cli(["gc", "--yes", "--json"])
    assert swept.returncode == 0, swept.stderr
    assert json.loads(swept.stdout)["deleted"] == []
    assert foreign() == set()


def test_a_second_store_never_touches_the_first_stores_machine(
    cli_here: Any, cli: Any, cloud_env: dict[str, str], tmp_path: Path, foreign: Any, ec2_client: Any
) -> None:
    """Defect 1: run from a second state dir with the same owner name, gc deleted a running machine."""
    first = cli_here([*UP, "--gpu", "A10G:1", "--name", "mine", "--json"])
    assert first.returncode == 0, first.stderr
    other = {**cloud_env, "PROVISION_STATE_DIR": str(tmp_path / "second-store")}
    swept = cli(["gc", "--yes", "--json"], env=other)
    assert swept.returncode == 0, swept.stderr
    assert json.loads(swept.stdout)["deleted"] == []
    (inst,) = _instances_of(ec2_client(), "mine")
    assert inst["State"]["Name"] == "running"
    assert foreign() == set()
    assert cli_here(["down", "mine", "--yes"]).returncode == 0


# --------------------------------------------------------------------------- 2: resume only the same launch
def _killed_mid_launch(cloud_env: dict[str, str], moto_server: Any, args: list[str], action: str) -> None:
    """Start ``up`` and kill -9 it while ``action`` is held at moto (never forwarded)."""
    moto_server.faults.inject(action=action, delay_before=30.0)
    proc = spawn_cli([*UP, *args], cloud_env)
    try:
        wait_until(lambda: action in moto_server.faults.log, what=action)
    finally:
        proc.kill()
        finish(proc)
    moto_server.faults.clear()


def test_resume_with_another_cloud_is_refused_with_the_down_command(
    cli_here: Any, cli: Any, cloud_env: dict[str, str], moto_server: Any, gcp_server: Any, leaks: Any
) -> None:
    """Defect 2: `up --cloud gcp` resumed an AWS launch and built a GCE VM under the AWS row."""
    _killed_mid_launch(cloud_env, moto_server, ["--gpu", "A10G:1", "--name", "twin"], "RunInstances")
    proc = cli([*UP, "--cloud", "gcp", "--gpu", "T4:1", "--name", "twin"])
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "provision down twin" in proc.stderr
    assert gcp_server.ours() == []
    down = cli_here(["down", "twin", "--yes"])
    assert down.returncode == 0, down.stderr
    assert leaks() == []


def test_resume_with_another_gpu_is_refused(
    cli_here: Any, cli: Any, cloud_env: dict[str, str], moto_server: Any, ec2_client: Any, leaks: Any
) -> None:
    """Defect 2: `--gpu L4:1` silently reused the interrupted g5.xlarge while the JSON said g6.xlarge."""
    _killed_mid_launch(cloud_env, moto_server, ["--gpu", "A10G:1", "--name", "gpuswap"], "DescribeInstances")
    proc = cli([*UP, "--gpu", "L4:1", "--name", "gpuswap", "--json"])
    assert proc.returncode != 0 and proc.stdout == ""
    assert "provision down gpuswap" in proc.stderr and "g5.xlarge" in proc.stderr
    assert {i["InstanceType"] for i in _instances_of(ec2_client(), "gpuswap")} <= {"g5.xlarge"}
    assert cli_here(["down", "gpuswap", "--yes"]).returncode == 0
    assert leaks() == []


def test_resume_with_the_same_arguments_finishes_the_launch_with_ssh_open(
    cli_here: Any, cli: Any, cloud_env: dict[str, str], moto_server: Any, ec2_client: Any, leaks: Any
) -> None:
    """Defect 2: a security group adopted after a kill between create and authorize had no SSH rule."""
    args = ["--gpu", "A10G:1", "--name", "again"]
    _killed_mid_launch(cloud_env, moto_server, args, "AuthorizeSecurityGroupIngress")
    proc = cli([*UP, *args, "--json"])
    assert proc.returncode == 0, proc.stderr
    assert "resuming" in proc.stderr
    out = json.loads(proc.stdout)
    ec2 = ec2_client()
    (sg,) = ec2.describe_security_groups(
        Filters=[{"Name": "tag:mlrig-launch", "Values": [out["launch_id"]]}]
    )["SecurityGroups"]
    ranges = [(p["FromPort"], r["CidrIp"]) for p in sg["IpPermissions"] for r in p["IpRanges"]]
    assert ranges == [(22, "203.0.113.7/32")]
    assert len(_instances_of(ec2, "again")) == 1
    assert cli_here(["down", "again", "--yes"]).returncode == 0
    assert leaks() == []


# --------------------------------------------------------------------------- 3: one launch per name at a time
def test_two_concurrent_ups_of_one_name_launch_one_machine(
    cli_here: Any, cli: Any, cloud_env: dict[str, str], moto_server: Any, ec2_client: Any, leaks: Any
) -> None:
    """Defect 3: two concurrent `up --name twin` launched two machines; `down twin` removed one."""
    moto_server.faults.inject(action="RunInstances", delay_before=1.5, times=5)
    procs = [spawn_cli([*UP, "--gpu", "A10G:1", "--name", "twin", "--json"], cloud_env) for _ in range(2)]
    results = [finish(p) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 3], results
    refused = next(err for code, _, err in results if code == 3)
    assert "being launched" in refused and "provision down twin" in refused and "Traceback" not in refused
    assert len(_instances_of(ec2_client(), "twin")) == 1
    down = cli_here(["down", "twin", "--yes"])
    assert down.returncode == 0, down.stderr
    assert leaks() == []


def test_down_during_up_of_the_same_name_refuses_instead_of_racing(
    cli_here: Any, cli: Any, cloud_env: dict[str, str], moto_server: Any, ec2_client: Any, leaks: Any
) -> None:
    """Defect 3: `down` printed ✓ while `up` of the same name went on to create the machine."""
    moto_server.faults.inject(action="ImportKeyPair", delay_before=2.0)
    up = spawn_cli([*UP, "--gpu", "A10G:1", "--name", "race", "--json"], cloud_env)
    wait_until(lambda: "ImportKeyPair" in moto_server.faults.log, what="ImportKeyPair")
    down = cli(["down", "race", "--yes"])
    assert down.returncode == 3, down.stderr
    assert "being launched" in down.stderr and "✓" not in down.stderr
    code, _, err = finish(up)
    assert code == 0, err
    assert len(_instances_of(ec2_client(), "race")) == 1  # the launch finished and is recorded
    assert cli_here(["down", "race", "--yes"]).returncode == 0
    assert leaks() == []


# --------------------------------------------------------------------------- 5: every region
def test_a_launch_in_an_unconfigured_region_is_found_after_the_store_is_lost(
    cli_here: Any, cli: Any, cloud_env: dict[str, str], ec2_client: Any, leaks: Any
) -> None:
    """Defect 5: a launch in --region eu-west-1 whose store was lost was invisible to ls and gc."""
    up = cli_here([*UP, "--instance-type", "g5.xlarge", "--region", "eu-west-1", "--name", "far", "--json"])
    assert up.returncode == 0, up.stderr
    instance_id = json.loads(up.stdout)["id"]
    state = Path(cloud_env["PROVISION_STATE_DIR"])
    for db in state.glob("state.db*"):
        db.unlink()  # the store is lost (the owner id kept next to it is not)
    ls = cli(["ls", "--all-regions", "--json"])
    assert ls.returncode == 0, ls.stderr
    assert instance_id in {u["id"] for u in json.loads(ls.stdout)["untracked"]}
    swept = cli(["gc", "--yes", "--json"])
    assert swept.returncode == 0, swept.stderr
    assert (instance_id, "deleted") in {(d["id"], d["outcome"]) for d in json.loads(swept.stdout)["deleted"]}
    assert leaks() == []


def test_gc_removes_private_keys_of_launches_lost_with_the_store(
    cli_here: Any, cli: Any, cloud_env: dict[str, str], leaks: Any
) -> None:
    """Defect 12: private keys of launches lost with the store stayed on disk."""
    assert cli_here([*UP, "--gpu", "A10G:1", "--name", "lost"]).returncode == 0
    state = Path(cloud_env["PROVISION_STATE_DIR"])
    keys = sorted(p.name for p in (state / "keys").iterdir())
    assert len(keys) == 2 and all(k.startswith("lost-") for k in keys)
    for db in state.glob("state.db*"):
        db.unlink()
    swept = cli(["gc", "--yes"])
    assert swept.returncode == 0, swept.stderr
    assert list((state / "keys").iterdir()) == []
    assert leaks() == []


# --------------------------------------------------------------------------- 7: names, labels re-checked
def test_tpu_down_deletes_the_node_by_its_recorded_name_when_listing_fails(
    cli_here: Any, cli: Any, gcp_server: Any, leaks: Any
) -> None:
    """Defect 7: a TPU `down` that could not list locations/- printed ✓ and left the node running."""
    up = cli_here([*UP, "--cloud", "gcp", "--tpu", "v5e-8", "--zone", "us-west4-a", "--name", "tpunode"])
    assert up.returncode == 0, up.stderr
    gcp_server.inject(op="tpu_list", kind="http", status=500, message="backend error", times=100)
    down = cli(["down", "tpunode", "--yes"])
    assert down.returncode == 0, down.stderr
    assert leaks() == []


def test_a_server_that_ignores_the_label_filter_gets_nothing_adopted_or_deleted(
    cli: Any, cloud_env: dict[str, str], gcp_server: Any, foreign: Any, leaks: Any
) -> None:
    """Defect 7: GCE find and list trusted filter= and adopted, then deleted, an unrelated VM."""
    with gcp_server.lock:
        gcp_server.state.ignore_filters = True
    up = cli([*UP, "--cloud", "gcp", "--gpu", "T4:1", "--name", "picky", "--json"])
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["id"] == "picky"
    swept = cli(["gc", "--yes", "--json"])
    assert swept.returncode == 0, swept.stderr
    assert json.loads(swept.stdout)["deleted"] == []
    down = cli(["down", "picky", "--yes", "--json"])
    assert down.returncode == 0, down.stderr
    assert foreign() == set()  # and the leak oracle checks that nothing of ours is left


def test_ls_after_kill_9_says_interrupted_and_how_to_recover(
    cli_here: Any, cli: Any, cloud_env: dict[str, str], moto_server: Any, leaks: Any
) -> None:
    """Defect 12: after kill -9, `ls` showed "launching" with no hint to run `down`."""
    _killed_mid_launch(cloud_env, moto_server, ["--gpu", "A10G:1", "--name", "orphan"], "RunInstances")
    ls = cli(["ls", "--json"])
    (m,) = json.loads(ls.stdout)["machines"]
    assert m["status"] == "launching" and "interrupted" in m["note"]
    assert "provision down orphan" in m["note"]
    assert cli_here(["down", "orphan", "--yes"]).returncode == 0
    assert leaks() == []


def test_sigkill_while_the_first_launch_holds_the_name_frees_it(
    cli_here: Any, cloud_env: dict[str, str], moto_server: Any, cli: Any, leaks: Any
) -> None:
    """Defect 3 (the other half): the per-name lock never outlives the process that held it."""
    moto_server.faults.inject(action="RunInstances", delay_before=30.0)
    proc = spawn_cli([*UP, "--gpu", "A10G:1", "--name", "heldname"], cloud_env)
    wait_until(lambda: "RunInstances" in moto_server.faults.log, what="RunInstances")
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    moto_server.faults.clear()
    again = cli([*UP, "--gpu", "A10G:1", "--name", "heldname"])
    assert again.returncode == 0, again.stderr
    assert cli_here(["down", "heldname", "--yes"]).returncode == 0
    assert leaks() == []
