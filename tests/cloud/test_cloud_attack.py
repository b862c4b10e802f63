"""A randomized attack on ``provision up/down/gc``: the real CLI in child processes against moto and the
Google Cloud / Cloud TPU fake, signalled (kill -9, SIGINT, SIGTERM, SIGHUP, sometimes twice) at
random API calls of the launch, resumed or taken down afterwards, raced by same-name launches and by
``gc``, among look-alike resources that are not ours and machines of another store.

It ends with zero leaked and zero foreign resources deleted, checked by listing everything with the
real ``aws`` CLI and by the fake's own state. Seeded: the seed is printed, and
``MLRIG_ATTACK_SEED=N`` replays the same choices (the timing of a child is the machine's).
``MLRIG_ATTACK_LAUNCHES`` changes the number of launches (at least 50 by default).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _kit import (
    FOREIGN_LAUNCHES,
    aws_cli,
    ec2,
    finish,
    foreign_aws_alive,
    foreign_gcp_alive,
    plant_foreign_aws,
    plant_foreign_gcp,
    spawn_cli,
)

#: what a launch asks for, per lane: AWS on moto, Compute Engine and Cloud TPU on the fake
TARGETS = {
    "aws": [
        ["--gpu", "A10G:1"],
        ["--gpu", "L4:1"],
        ["--gpu", "A10G:1", "--spot"],
        # a cluster: placement group, self-referencing rule, EFA, two nodes in one call
        ["--instance-type", "p4d.24xlarge", "--region", "us-east-1", "--nodes", "2"],
    ],
    "gcp": [
        ["--cloud", "gcp", "--gpu", "T4:1"],
        ["--cloud", "gcp", "--tpu", "v5e-8", "--zone", "us-west4-a"],
        # a cluster: compact policy, a firewall rule between the nodes, two inserts
        ["--cloud", "gcp", "--gpu", "L4:1", "--nodes", "2"],
    ],
}
#: how many API calls a launch makes before it is done, about: kill points are drawn from 0..this
CALLS = {"aws": 12, "gcp": 8}
SIGNALS = [
    (signal.SIGKILL, 30),
    (signal.SIGINT, 20),
    (signal.SIGTERM, 20),
    (signal.SIGHUP, 15),
    (None, 15),
]
DELETES = ("TerminateInstances", "DeleteSecurityGroup", "DeleteKeyPair", "DELETE")


@dataclass
class Tally:
    launches: Counter[str] = field(default_factory=Counter)
    kills: Counter[str] = field(default_factory=Counter)
    points: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    failures: list[str] = field(default_factory=list)

    def add(self, counter: str, key: str) -> None:
        with self.lock:
            getattr(self, counter)[key] += 1

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)


def _count(moto: Any, fake: Any, lane: str) -> int:
    """How many API calls the servers of a lane have seen (cheap: polled while a launch runs)."""
    return len(moto.faults.log) if lane == "aws" else len(fake.state.log)


def _requests(moto: Any, fake: Any, lane: str, since: int) -> list[str]:
    """The API calls the servers of a lane have seen since call number ``since``."""
    if lane == "aws":
        with moto.faults.lock:
            return moto.faults.log[since:]
    with fake.lock:
        return [f"{m} {_short(p)}" for m, p, _q, _b in fake.state.log[since:]]


def _short(path: str) -> str:
    """/compute/v1/projects/proj/zones/z/instances/n -> instances; .../operations/x -> operations."""
    parts = [p for p in path.split("/") if p]
    kinds = [p for p in parts if p in ("zones", "instances", "firewalls", "operations", "nodes", "images")]
    return kinds[-1] if kinds else parts[-1]


def _point(calls: list[str]) -> str:
    """Where a kill landed: the last API call the launch made, or its start-up."""
    return calls[-1] if calls else "start-up (before any API call)"


def _finish_down(name: str, env: dict[str, str], tally: Tally, why: str) -> None:
    code, _, err = finish(spawn_cli(["down", name, "--yes"], env), timeout=120)
    if code == 2 and "no machine named" in err:  # killed before it recorded (or created) anything
        tally.add("outcomes", "nothing recorded, nothing to take down")
    elif code != 0 or "Traceback" in err:
        tally.fail(f"{name}: down ({why}) exited {code}\n{err[-2000:]}")


def _startup_death(code: int, sig: int | None, err: str) -> bool:
    """Killed while Python was still importing, before provision installed its handlers: the
    signal's default action (nothing was recorded or created yet)."""
    if sig is None or sig == signal.SIGKILL:
        return False
    return code == -sig or (sig == signal.SIGINT and err.rstrip().endswith("KeyboardInterrupt"))


def _launch(
    i: int, lane: str, rng: random.Random, env: dict[str, str], moto: Any, fake: Any, tally: Tally
) -> str | None:
    """One attacked launch and its recovery; returns the name if it may still hold a machine."""
    name = f"atk{lane}-{i}"
    base_args = ["up", "--yes", "--name", name, *rng.choice(TARGETS[lane])]
    ssh_wait = rng.random() < 0.1  # SSH never answers on moto/fake addresses: a failed launch
    args = base_args + (["--wait", "ssh", "--ssh-timeout", "1"] if ssh_wait else ["--wait", "running"])
    sig = rng.choices([s for s, _ in SIGNALS], weights=[w for _, w in SIGNALS])[0]
    k = rng.randint(0, CALLS[lane])
    early = rng.uniform(0.2, 1.5)
    twice = sig not in (None, signal.SIGKILL) and rng.random() < 0.3
    recover = rng.choice(["resume", "down"])
    tally.add("launches", lane)
    base = _count(moto, fake, lane)
    proc = spawn_cli(args, env)
    label = "none" if sig is None else signal.Signals(sig).name
    point = "not signalled"
    if sig is not None:
        deadline = time.monotonic() + (early if k == 0 else 90)
        while proc.poll() is None and time.monotonic() < deadline:
            if k and _count(moto, fake, lane) - base >= k:
                break
            time.sleep(0.01)
        if proc.poll() is None:
            point = _point(_requests(moto, fake, lane, base))
            tally.add("points", point)
            proc.send_signal(sig)
            tally.add("kills", label)
            if twice:
                mark = _count(moto, fake, lane)
                until = time.monotonic() + 30
                while proc.poll() is None and time.monotonic() < until:
                    if any(d in c for c in _requests(moto, fake, lane, mark) for d in DELETES):
                        proc.send_signal(sig)
                        tally.add("kills", f"second {label}")
                        break
                    time.sleep(0.01)
        else:
            tally.add("kills", f"{label}: too late, it had exited")
    code, _out, err = finish(proc, timeout=120)
    if _startup_death(code, sig, err):
        tally.add("outcomes", "killed while Python started, before acting")
        return name  # it acted on nothing; down --all at the end checks the store agrees
    if "Traceback" in err:
        tally.fail(f"{name}: traceback\n{err[-2000:]}")
    if code == 0:
        tally.add("outcomes", "launched")
        return name
    if sig == signal.SIGKILL and code == -signal.SIGKILL:
        tally.add("outcomes", f"killed -9, then {recover}")
        if recover == "down":
            _finish_down(name, env, tally, "after kill -9")
            return None
        rc, _, err2 = finish(spawn_cli([*base_args, "--wait", "running"], env), timeout=120)
        if rc == 0:
            return name
        if rc == 2 and "provision down" in err2 and "already exists" in err2:  # killed in cleanup or after
            tally.add("outcomes", "resume refused (not an interrupted launch), then down")
            _finish_down(name, env, tally, "after a refused resume")
            return None
        tally.fail(f"{name}: resume after kill -9 exited {rc}\n{err2[-2000:]}")
        return name
    interrupted = sig is not None and code == 128 + int(sig)
    if interrupted and "second" in err:
        if "provision down" not in err:
            tally.fail(f"{name}: a second signal did not say how to finish\n{err[-2000:]}")
        tally.add("outcomes", "second signal: record left, then down")
        _finish_down(name, env, tally, "after a second signal")
        return None
    if interrupted:
        tally.add("outcomes", "interrupted and cleaned up")
        if "interrupted" not in err and not point.startswith("start-up"):
            tally.fail(f"{name}: interrupted at {point} without a word\n{err[-2000:]}")
        return name  # a signal after the launch completed leaves it running (and recorded)
    if code == 3 and ssh_wait and "did not answer" in err:
        tally.add("outcomes", "ssh wait failed, cleaned up")
        return None
    tally.fail(f"{name}: exit {code} after {label} at call {k}\n{err[-2000:]}")
    return name


def _lane(lane: str, n: int, seed: int, env: dict[str, str], moto: Any, fake: Any, tally: Tally) -> list[str]:
    rng = random.Random(f"{seed}-{lane}")
    return [name for i in range(n) if (name := _launch(i, lane, rng, env, moto, fake, tally))]


def _launches_named(moto: Any, fake: Any, name: str) -> int:
    """How many launches called ``name`` have a machine alive on moto or in the fake (a name is one
    launch at a time; a cluster launch is several machines of one name and one launch id)."""
    launches: set[str] = set()
    for region in ("us-east-1", "us-west-2"):
        resp = ec2(moto.url, region).describe_instances(
            Filters=[{"Name": "tag:mlrig-name", "Values": [name]}]
        )
        for r in resp["Reservations"]:
            for i in r["Instances"]:
                if i["State"]["Name"] not in ("terminated", "shutting-down"):
                    tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
                    launches.add(tags.get("mlrig-launch", f"untagged {i['InstanceId']}"))
    with fake.lock:
        for (_zone, machine), body in [*fake.state.instances.items(), *fake.state.nodes.items()]:
            labels = body.get("labels", {})
            if labels.get("mlrig-name") == name or machine == name:
                launches.add(labels.get("mlrig-launch", f"unlabelled {machine}"))
    return len(launches)


def _same_name_rounds(
    rounds: int, seed: int, env: dict[str, str], moto: Any, fake: Any, tally: Tally
) -> list[str]:
    """Two or three `up` of one name at once, sometimes with a `down` of it thrown in. An `up` that
    starts after another finished and a `down` removed it may launch again: the rule is one
    machine per name at any time, checked on the clouds after each round."""
    rng = random.Random(f"{seed}-twins")
    names = []
    for r in range(rounds):
        name = f"twin-{r}"
        target = rng.choice(TARGETS["aws"] + TARGETS["gcp"])
        ups = [
            spawn_cli(["up", "--yes", "--wait", "running", "--name", name, *target], env)
            for _ in range(rng.choice([2, 3]))
        ]
        downs = []
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0.0, 1.5))
            downs.append(spawn_cli(["down", name, "--yes"], env))
        results = [finish(p, timeout=90) for p in ups]
        winners = [c for c, _, _ in results if c == 0]
        tally.add("outcomes", f"same-name round: {len(ups)} ups, {len(winners)} launched")
        for code, _, err in results:
            if code != 0:
                ok = ("being launched" in err and code == 3) or ("already exists" in err and code == 2)
                if not ok:
                    tally.fail(f"{name}: a concurrent up exited {code}\n{err[-1500:]}")
                tally.add("outcomes", "same-name up refused")
        removed = 0
        for d in downs:
            code, _, err = finish(d, timeout=90)
            removed += code == 0 and "removed" in err
            if code not in (0, 2, 3) or "Traceback" in err or (code == 3 and "being launched" not in err):
                tally.fail(f"{name}: a concurrent down exited {code}\n{err[-1500:]}")
        if len(winners) > 1 + removed:
            tally.fail(f"{name}: {len(winners)} launches of one name succeeded, {removed} removed between")
        if _launches_named(moto, fake, name) > 1:
            tally.fail(f"{name}: machines of more than one launch of that name are alive")
        names.append(name)
    return names


def _aws_everything(url: str, regions: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Every instance (not terminated), security group, key pair and volume in ``regions``, by the
    real aws CLI: id -> {tag: value}."""
    calls = [
        (r, what)
        for r in regions
        for what in (
            "describe-instances",
            "describe-security-groups",
            "describe-key-pairs",
            "describe-volumes",
            "describe-placement-groups",  # answered by the fault layer's placement-group shim
        )
    ]
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda c: (c, aws_cli(url, c[0], "ec2", c[1])), calls))
    found: dict[str, dict[str, str]] = {}
    for (_region, what), data in answers:
        if what == "describe-instances":
            items = [
                (i["InstanceId"], i.get("Tags"))
                for r in data["Reservations"]
                for i in r["Instances"]
                if i["State"]["Name"] not in ("terminated", "shutting-down")
            ]
        elif what == "describe-security-groups":
            items = [
                (g["GroupId"], g.get("Tags")) for g in data["SecurityGroups"] if g["GroupName"] != "default"
            ]
        elif what == "describe-key-pairs":
            items = [(k["KeyName"], k.get("Tags")) for k in data["KeyPairs"]]
        elif what == "describe-placement-groups":
            items = [(g["GroupName"], g.get("Tags")) for g in data["PlacementGroups"]]
        else:
            items = [(v["VolumeId"], v.get("Tags")) for v in data["Volumes"] if v["State"] == "available"]
        for rid, tags in items:
            found[rid] = {t["Key"]: t["Value"] for t in tags or []}
    return found


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_randomized_attack_leaks_nothing_and_touches_nothing_foreign(
    cloud_env: dict[str, str],
    moto_server: Any,
    gcp_server: Any,
    amis: dict[str, str],
    expect_leftover: set[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed = int(os.environ.get("MLRIG_ATTACK_SEED") or random.SystemRandom().randrange(2**31))
    total = int(os.environ.get("MLRIG_ATTACK_LAUNCHES") or 56)
    with capsys.disabled():
        print(f"\nattack seed {seed} (replay: MLRIG_ATTACK_SEED={seed})", flush=True)
    start = time.monotonic()
    debug = os.environ.get("PROVISION_DEBUG", "")  # a failure then carries the child's traceback
    env = {**cloud_env, "PROVISION_STORE_TIMEOUT": "5", "PROVISION_DEBUG": debug}
    regions = ("us-east-1", "us-west-2")  # where launches fail over and look-alikes live

    # --- not ours: look-alikes, and two machines of another store (same user, other state dir)
    expect_leftover.update(FOREIGN_LAUNCHES)
    planted_aws = plant_foreign_aws(moto_server.url, amis)
    planted_gcp = plant_foreign_gcp(gcp_server)
    other = {**env, "PROVISION_STATE_DIR": str(tmp_path / "another-store")}
    theirs = {}
    for name, target in (("theirs-a", TARGETS["aws"][0]), ("theirs-g", TARGETS["gcp"][0])):
        proc = finish(
            spawn_cli(["up", "--yes", "--wait", "running", "--name", name, *target, "--json"], other)
        )
        assert proc[0] == 0, proc[2]
        theirs[name] = json.loads(proc[1])
    expect_leftover.update(t["launch_id"] for t in theirs.values())

    # --- the attack: an AWS lane and a Google lane at once, gc racing them, then same-name rounds
    tally = Tally()
    n_aws = round(total * 0.6)  # a Google launch costs twice the CPU (google-cloud-compute imports ~1.5 s)
    gc_runs: list[tuple[int, str, str]] = []

    def gc_racer() -> None:
        rng = random.Random(f"{seed}-gc")
        for _ in range(2):
            time.sleep(rng.uniform(3, 15))
            gc_runs.append(finish(spawn_cli(["gc", "--yes", "--json"], env), timeout=120))

    phases = {"setup": time.monotonic() - start}
    with ThreadPoolExecutor(max_workers=3) as pool:
        lanes = [
            pool.submit(_lane, "aws", n_aws, seed, env, moto_server, gcp_server, tally),
            pool.submit(_lane, "gcp", total - n_aws, seed, env, moto_server, gcp_server, tally),
            pool.submit(gc_racer),
        ]
        held = [n for f in lanes[:2] for n in f.result()]
        lanes[2].result()
    phases["launches"] = time.monotonic() - start - sum(phases.values())
    twins = _same_name_rounds(3, seed, env, moto_server, gcp_server, tally)
    phases["same-name"] = time.monotonic() - start - sum(phases.values())
    assert tally.failures == [], "\n\n".join(tally.failures)
    for code, _out, err in gc_runs:  # gc raced the launches: a machine it took would show below
        assert code == 0, err
    before = finish(spawn_cli(["ls", "--json"], env), timeout=120)
    assert before[0] == 0, before[2]
    for m in json.loads(before[1])["machines"]:  # every launch that completed is still there
        if m["status"] == "running":
            assert m["state"] in ("running", "RUNNING", "READY"), m
        else:
            assert m["status"] == "launching" and "interrupted" in (m["note"] or ""), m

    # --- recovery: everything down, then gc finds nothing of ours anywhere
    down = finish(spawn_cli(["down", "--all", "--yes", "--json"], env), timeout=300)
    assert down[0] == 0, down[2]
    swept = finish(spawn_cli(["gc", "--yes", "--json"], env), timeout=120)
    assert swept[0] == 0, swept[2]
    assert json.loads(swept[1])["deleted"] == [] and json.loads(swept[1])["keys"] == []
    ls = finish(spawn_cli(["ls", "--json"], env), timeout=120)
    assert ls[0] == 0, ls[2]
    listing = json.loads(ls[1])
    owner = listing["owner_id"]
    assert listing["machines"] == [] and listing["untracked"] == []
    keys = Path(env["PROVISION_STATE_DIR"]) / "keys"
    assert not keys.exists() or list(keys.iterdir()) == []

    # --- the independent check: the real aws CLI and the fake's own state
    everything = _aws_everything(moto_server.url, regions)
    leaked = sorted(rid for rid, tags in everything.items() if tags.get("mlrig-owner") == owner)
    with gcp_server.lock:
        s = gcp_server.state
        leaked += [
            f"gce {z}/{n}"
            for (z, n), i in s.instances.items()
            if i.get("labels", {}).get("mlrig-owner") == owner
        ]
        leaked += [
            f"tpu {z}/{n}" for (z, n), i in s.nodes.items() if i.get("labels", {}).get("mlrig-owner") == owner
        ]
        leaked += [
            f"firewall {n}"
            for n, fw in s.firewalls.items()
            if f"owner={owner}" in (fw.get("description") or "")
        ]
        leaked += [
            f"resource policy {r}/{n}"
            for (r, n), p in gcp_server.cluster.policies.items()
            if f"owner={owner}" in (p.get("description") or "")
        ]
        their_gce = {n for (_z, n) in s.instances}
    foreign_gone = sorted(set(planted_aws) - foreign_aws_alive(moto_server.url, planted_aws))
    foreign_gone += sorted(planted_gcp - foreign_gcp_alive(gcp_server, planted_gcp))
    aws_planted_ids = {rid for _region, rid in planted_aws.values()}
    foreign_gone += sorted(rid for rid in aws_planted_ids if rid not in everything)  # the aws CLI agrees
    if theirs["theirs-a"]["id"] not in everything:
        foreign_gone.append("another store's AWS machine")
    if "theirs-g" not in their_gce:
        foreign_gone.append("another store's GCE machine")
    wall = time.monotonic() - start
    phases["checks"] = wall - sum(phases.values())
    with capsys.disabled():
        print(
            f"attack seed {seed}: {sum(tally.launches.values())} launches {dict(tally.launches)}, "
            f"{len(twins)} same-name rounds, {len(gc_runs)} racing gc runs, wall {wall:.0f}s "
            f"({', '.join(f'{k} {v:.0f}s' for k, v in phases.items())})\n"
            f"  kills by signal: {dict(sorted(tally.kills.items()))}\n"
            f"  kill points: {dict(tally.points.most_common())}\n"
            f"  outcomes: {dict(sorted(tally.outcomes.items()))}\n"
            f"  leaked: {len(leaked)}; foreign deleted: {len(foreign_gone)} "
            f"(of {len(planted_aws) + len(planted_gcp)} look-alikes and 2 machines of another store)",
            flush=True,
        )
    assert leaked == [], leaked
    assert foreign_gone == [], foreign_gone
    assert sum(tally.launches.values()) >= min(total, 50)
    assert set(held) >= {m["name"] for m in json.loads(before[1])["machines"]} - set(twins)
    for name in theirs:
        assert finish(spawn_cli(["down", name, "--yes"], other), timeout=120)[0] == 0
