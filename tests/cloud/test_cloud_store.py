"""The state store: schema versions and the migration from 0.1.0, the owner id, the per-name lock,
file modes. A store written by 0.1.0 (tests/fixtures/cloud/state_v0.sql) must keep opening."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from provision.state import SCHEMA_VERSION, LaunchStatus, NameBusy, ResourceStatus, Store, StoreError

V0 = Path(__file__).parent.parent / "fixtures" / "cloud" / "state_v0.sql"
#: schema 1 (0.2): V0 upgraded by that release, plus an interrupted TPU launch of its own owner id
V1 = Path(__file__).parent.parent / "fixtures" / "cloud" / "state_v1.sql"
V1_OWNER = "edcd14e8378bb8f1"


def _v0_store(path: Path, fixture: Path = V0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(fixture.read_text())
    db.close()
    return path


def test_a_store_of_schema_1_opens_upgraded_with_targets_and_one_node_per_launch(tmp_path: Path) -> None:
    db = _v0_store(tmp_path / "state" / "state.db", V1)
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 1
    store = Store(db)
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert store.owner_id == V1_OWNER  # the owner id is kept: its resources stay provably ours
    rows = {r.name: r for r in store.launches(include_finished=True)}
    assert {n: (r.target, r.nodes) for n, r in rows.items()} == {
        "oldbox": ("aws-ec2", 1),
        "gone": ("aws-ec2", 1),
        "halfway": ("gcp-gce", 1),
        "tpubox": ("gcp-tpu", 1),
    }
    tpu = store.resources(rows["tpubox"].launch_id)
    assert [(r.kind, r.status, r.node_index, r.role, r.parent_id) for r in tpu] == [
        ("tpu_node", ResourceStatus.CREATED, None, None, None),
        ("firewall", ResourceStatus.INTENT, None, None, None),
    ]
    # the new columns are written from here on
    row = store.intent(
        "fedcba987654",
        "gcp",
        "tpu_host",
        "us-west4",
        zone="us-west4-a",
        name="h1",
        token=None,
        node_index=1,
        role="worker",
        parent_id=tpu[0].id,
    )
    last = store.resources("fedcba987654")[-1]
    assert (last.id, last.node_index, last.role, last.parent_id) == (row, 1, "worker", tpu[0].id)


def test_a_status_this_release_does_not_know_reads_as_unknown_and_is_held(tmp_path: Path) -> None:
    db = _v0_store(tmp_path / "state" / "state.db", V1)
    Store(db).close()
    c = sqlite3.connect(db)
    c.execute("UPDATE launches SET status = 'paused' WHERE name = 'gone'")
    c.execute(
        "UPDATE resources SET status = 'archived' WHERE launch_id = (SELECT launch_id FROM launches"
        " WHERE name = 'gone')"
    )
    c.commit()
    c.close()
    store = Store(db)
    gone = store.active_by_name("gone")  # an unknown status holds its resources: `down` still finds it
    assert gone is not None and gone.status is LaunchStatus.UNKNOWN
    assert {r.status for r in store.resources(gone.launch_id)} <= {ResourceStatus.UNKNOWN}
    assert all(r.status.may_exist for r in store.resources(gone.launch_id))


def test_a_store_of_0_1_0_opens_upgraded_with_its_launches_intact(tmp_path: Path) -> None:
    db = _v0_store(tmp_path / "state" / "state.db")
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 0
    store = Store(db)
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    rows = {r.name: r for r in store.launches(include_finished=True)}
    assert set(rows) == {"oldbox", "gone", "halfway"}
    old = rows["oldbox"]
    assert old.status is LaunchStatus.RUNNING and old.price_per_hour == pytest.approx(1.006)
    assert old.owner_tag == "tester"  # what 0.1.0 tagged: its resources stay provably this launch's
    assert [(r.kind, r.status) for r in store.resources(old.launch_id)] == [
        ("key_pair", ResourceStatus.CREATED),
        ("security_group", ResourceStatus.CREATED),
        ("instance", ResourceStatus.CREATED),
    ]
    half = store.active_by_name("halfway")
    assert half is not None and half.status is LaunchStatus.LAUNCHING
    assert {r.status for r in store.pending_resources(half.launch_id)} == {
        ResourceStatus.CREATED,
        ResourceStatus.INTENT,
    }
    assert store.active_by_name("gone") is None
    # the new store gets its own owner id, never the user name 0.1.0 used
    assert len(store.owner_id) == 16 and store.owner_id != "tester"
    store.close()
    again = Store(db)  # opening twice migrates once
    assert again.owner_id == store.owner_id and len(again.launches(include_finished=True)) == 3


def test_a_store_of_a_newer_release_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    Store(db).close()
    c = sqlite3.connect(db)
    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    c.close()
    with pytest.raises(StoreError, match="newer mlrig"):
        Store(db)


def test_owner_id_is_per_store_and_survives_a_lost_database(tmp_path: Path) -> None:
    a, b = Store(tmp_path / "a" / "state.db"), Store(tmp_path / "b" / "state.db")
    assert a.owner_id != b.owner_id and all(len(x) == 16 for x in (a.owner_id, b.owner_id))
    assert (tmp_path / "a" / "owner-id").read_text().strip() == a.owner_id
    assert stat.S_IMODE((tmp_path / "a" / "owner-id").stat().st_mode) == 0o600
    owner = a.owner_id
    a.close()
    for f in (tmp_path / "a").glob("state.db*"):
        f.unlink()
    assert Store(tmp_path / "a" / "state.db").owner_id == owner  # gc can still prove what was ours


def test_state_file_is_created_private_and_tightened_if_it_was_not(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = tmp_path / "s" / "state.db"
        Store(db).close()
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
        db.chmod(0o644)
        Store(db).close()
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_a_name_is_held_by_one_process_and_freed_when_it_dies(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = Store(db)
    with store.claim("twin", "provision up"):
        assert Store(db).is_claimed("twin") and not store.is_claimed("other")
        with pytest.raises(NameBusy) as info, Store(db).claim("twin", "provision down", wait=0.1):
            pass
        assert f"pid {os.getpid()}" in info.value.message and "provision up" in info.value.message
        assert "provision down twin" in (info.value.hint or "")
    assert not store.is_claimed("twin")
    holder = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path.cwd())!r})
        from provision.state import Store
        with Store(__import__("pathlib").Path({str(db)!r})).claim("twin", "provision up"):
            print("held", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert store.is_claimed("twin")
        proc.kill()  # kill -9: the OS drops the lock with the process
        proc.wait()
        assert not store.is_claimed("twin")
        with store.claim("twin", "provision up"):
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


_RACE = """
import multiprocessing as mp, sys, tempfile
sys.path.insert(0, sys.argv[1])
from provision.state import Store, StoreError

def open_fresh(path, barrier, errors):
    barrier.wait()
    try:
        Store(__import__("pathlib").Path(path)).close()
    except StoreError as exc:
        errors.put(exc.message)

if __name__ == "__main__":
    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    for _ in range(int(sys.argv[3])):
        path = tempfile.mkdtemp(dir=sys.argv[2]) + "/state/state.db"
        barrier = ctx.Barrier(2)
        procs = [ctx.Process(target=open_fresh, args=(path, barrier, errors)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    failed = []
    while not errors.empty():
        failed.append(errors.get())
    print(len(failed), failed[:1])
"""


def test_two_processes_opening_a_new_state_file_together_both_get_it(tmp_path: Path) -> None:
    """Two `up` started together on a new machine: SQLite refused the loser's switch to WAL at once
    ("database is locked" without waiting, 1 open in 6 here), and that `up` failed with exit 3."""
    proc = subprocess.run(
        [sys.executable, "-c", _RACE, str(Path.cwd()), str(tmp_path), "150"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split(" ", 1)[0] == "0", proc.stdout


def test_a_locked_store_fails_writes_after_its_timeout_not_forever(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = Store(db, timeout=0.3)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match=r"stayed locked for 0\.3s"):
            store.update_launch("x", status=LaunchStatus.FAILED)
    finally:
        other.execute("ROLLBACK")
    store.update_launch("x", status=LaunchStatus.FAILED)  # and works again once it is free


def test_v0_launch_is_removed_by_down_through_its_old_owner_tag(
    cli_here: Any, cli: Any, cloud_env: dict[str, str], ec2_client: Any, amis: dict[str, str], leaks: Any
) -> None:
    """A machine launched by 0.1.0 (tagged with the user name) is still `down`-able after upgrade."""
    _v0_store(Path(cloud_env["PROVISION_STATE_DIR"]) / "state.db")
    ec2 = ec2_client()
    tags = [{"Key": "mlrig-launch", "Value": "0123456789ab"}, {"Key": "mlrig-owner", "Value": "tester"}]
    inst = ec2.run_instances(
        ImageId=amis["us-east-1"],
        InstanceType="g5.xlarge",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]["InstanceId"]
    ls = json.loads(cli(["ls", "--json"]).stdout)
    assert {m["name"]: m["state"] for m in ls["machines"]}["oldbox"] == "running"
    down = cli(["down", "oldbox", "--yes", "--json"])
    assert down.returncode == 0, down.stderr
    assert inst in {d["id"] for d in json.loads(down.stdout)["results"][0]["deleted"]}
    assert leaks() == []
    gcp_half = cli_here(["down", "halfway", "--yes"])  # the 0.1.0 GCP launch that never got its machine
    assert gcp_half.returncode == 0, gcp_half.stderr


def test_schema_1_tpu_launch_is_removed_by_down_after_the_upgrade(
    cli_here: Any, cloud_env: dict[str, str], leaks: Any
) -> None:
    """An interrupted TPU launch of a 0.2 store (its node already gone) is finished by `down`."""
    state = Path(cloud_env["PROVISION_STATE_DIR"])
    _v0_store(state / "state.db", V1)
    (state / "owner-id").unlink(missing_ok=True)
    down = cli_here(["down", "tpubox", "--yes"])
    assert down.returncode == 0, down.stderr
    store = Store(state / "state.db")
    assert store.active_by_name("tpubox") is None
    assert leaks() == []
