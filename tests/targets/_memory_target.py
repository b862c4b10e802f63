"""An in-memory launch target: the Provider protocol over a dict, with faults to order.

It stands in for a real target's driver (by default aws-ec2's, whose instance ids the cloud
assigns: a lost create answer leaves the instance findable only by its tags), so the launch's
failover and cleanup policy run in milliseconds: no moto, no loopback server. Faults are keyed by
zone (``outcome``) or by call (``interrupt_after``), and look-alike resources that are not ours can
be planted (``plant``). ``leaks(owner)`` is the oracle: what carrying that owner is still alive.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from provision.clouds.base import (
    AttemptError,
    FailureKind,
    Journal,
    Placement,
    Resource,
)
from provision.plan import Plan


@dataclass
class Cloud:
    """What the fake cloud holds, shared by every ``fresh()`` copy of the driver."""

    regions: dict[str, list[str]] = field(
        default_factory=lambda: {
            "us-east-1": ["us-east-1a", "us-east-1b"],
            "us-east-2": ["us-east-2a"],
            "us-west-2": ["us-west-2a"],
        }
    )
    items: dict[tuple[str, str], Resource] = field(default_factory=dict)
    #: zone (or "zone/spot") -> how a create there fails
    outcome: dict[str, FailureKind] = field(default_factory=dict)
    #: zone -> machines it has capacity for (unlimited when absent)
    capacity: dict[str, int] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    #: call name -> raise Interrupted after that many more such calls (kept across ``fresh()``)
    interrupts: dict[str, int] = field(default_factory=dict)
    ids: Any = field(default_factory=lambda: itertools.count(1))
    #: the node list the last cluster launch announced
    announced: str | None = None

    def put(self, res: Resource) -> Resource:
        self.items[(res.kind, res.id)] = res
        return res

    def alive(self) -> list[Resource]:
        return [r for r in self.items.values() if r.alive]

    def leaks(self, owner: str) -> list[Resource]:
        return [r for r in self.alive() if r.owner == owner]


class Interrupted(KeyboardInterrupt):
    """The signal a fault raises (the CLI's handlers raise such a BaseException)."""


class MemoryProvider:
    """The Provider protocol in memory. ``interrupt_after(call_name, n)`` raises Interrupted once the
    n-th such call has done its work (a signal landing right after the cloud acted)."""

    def __init__(self, cloud: Cloud | None = None, name: str = "aws") -> None:
        self.mem = cloud or Cloud()
        self.cloud = name
        self._interrupt = self.mem.interrupts
        #: create calls whose answer is lost (the instance exists, the journal never hears)
        self.lose_answers = 0

    def interrupt_after(self, call: str, n: int = 1) -> None:
        self._interrupt[call] = n

    def _called(self, name: str) -> None:
        self.mem.calls.append(name)

    def _maybe_interrupt(self, name: str) -> None:
        if name in self._interrupt:
            self._interrupt[name] -= 1
            if self._interrupt[name] == 0:
                del self._interrupt[name]
                raise Interrupted(f"signal after {name}")

    # ------------------------------------------------------------------ Provider
    def fresh(self) -> MemoryProvider:
        return MemoryProvider(self.mem, self.cloud)

    def check_credentials(self) -> None:
        self._called("check_credentials")

    def all_regions(self) -> list[str]:
        return sorted(self.mem.regions)

    def zones(self, plan: Plan, region: str) -> list[str]:
        self._called("zones")
        return list(self.mem.regions.get(region, []))

    def _tagged(self, plan: Plan, kind: str, region: str, rid: str, **kw: Any) -> Resource:
        return Resource(
            self.cloud, kind, region, rid, launch_id=plan.launch_id, owner=plan.owner, state="exists", **kw
        )

    def prepare(self, plan: Plan, region: str, journal: Journal) -> None:
        self._called("prepare")
        for kind in ("key_pair", "security_group"):
            name = f"mlrig-{plan.name}-{plan.launch_id[:8]}-{kind}"
            if self.mem.items.get((kind, name), Resource("", "", "", "", state="gone")).alive:
                continue
            row = journal.intent(kind, region, None, name, None)
            self.mem.put(self._tagged(plan, kind, region, name, name=name))
            journal.created(row, name)
            self._maybe_interrupt(f"prepare:{kind}")

    def find(self, plan: Plan, region: str) -> list[Resource]:
        mine = [
            r
            for r in self.mem.alive()
            if r.kind == "instance" and r.region == region and r.owned_by(plan.owner or "", plan.launch_id)
        ]
        return sorted(mine, key=lambda r: r.node_index or 0)

    def create(self, plan: Plan, placement: Placement, attempt: int, journal: Journal) -> list[Resource]:
        """One machine at a time (as Compute Engine inserts go); capacity running out after some of
        them removes those before the refusal: a partial cluster is never returned or left."""
        made: list[Resource] = []
        for k in range(plan.nodes):
            left = self.mem.capacity.get(placement.zone)
            if left is not None and left <= 0:
                for res in made:
                    self.delete(res)
                raise AttemptError(FailureKind.CAPACITY, "FakeCapacity", f"{k} of {plan.nodes} fit")
            if left is not None:
                self.mem.capacity[placement.zone] = left - 1
            made.append(self._create_one(plan, placement, journal, k))
        return made

    def _create_one(self, plan: Plan, placement: Placement, journal: Journal, k: int) -> Resource:
        self._called("create")
        role = "head" if k == 0 else "worker"
        row = journal.intent(
            "instance", placement.region, placement.zone, plan.name, None, node_index=k, role=role
        )
        fault = self.mem.outcome.get(f"{placement.zone}/{'spot' if placement.spot else 'od'}")
        fault = fault or self.mem.outcome.get(placement.zone)
        if fault is not None:
            journal.failed(row, fault.value)
            raise AttemptError(fault, f"Fake{fault.value}", f"{fault.value} in {placement.zone}")
        rid = f"i-{next(self.mem.ids):08x}"
        res = self.mem.put(
            self._tagged(
                plan,
                "instance",
                placement.region,
                rid,
                zone=placement.zone,
                name=plan.name,
                instance_type=plan.instance_type,
                spot=placement.spot,
                public_ip=f"192.0.2.{len(self.mem.items) % 250 + 1}",
                node_index=k,
                role=role,
            )
        )
        if self.lose_answers:
            self.lose_answers -= 1
            self._maybe_interrupt("create")  # the answer never reached us
            found = [r for r in self.find(plan, placement.region) if r.node_index == k]
            if found:
                journal.created(row, found[0].id)
                return found[0]
        journal.created(row, rid)
        self._maybe_interrupt("create")
        return replace(res, state="pending")

    def wait_running(self, res: Resource, timeout: float) -> Resource:
        self._called("wait_running")
        cur = self.mem.items[(res.kind, res.id)]
        self._maybe_interrupt("wait_running")
        return self.mem.put(replace(cur, state="running"))

    def announce(self, plan: Plan, machines: list[Resource], node_list: str) -> bool:
        self._called("announce")
        self.mem.announced = node_list
        return True

    def delete(self, res: Resource) -> bool:
        self._called(f"delete:{res.kind}")
        cur = self.mem.items.get((res.kind, res.id))
        if cur is None or not cur.alive:
            return False
        self.mem.put(replace(cur, state="terminated" if res.kind == "instance" else "gone"))
        self._maybe_interrupt(f"delete:{res.kind}")
        return True

    def list_tagged(self, regions: list[str]) -> list[Resource]:
        self._called("list_tagged")
        return [r for r in self.mem.items.values() if r.launch_id and (not regions or r.region in regions)]

    def refresh(self, res: Resource) -> Resource:
        cur = self.mem.items.get((res.kind, res.id))
        if cur is None:  # a side resource recorded by the name given with its intent
            cur = next((r for r in self.mem.items.values() if r.kind == res.kind and r.name == res.id), None)
        if cur is None:
            return replace(res, state="gone")
        return cur


def plant(cloud: Cloud, res: Resource) -> Resource:
    """A resource somebody else made (another owner, maybe our launch id): must never be touched."""
    return cloud.put(res)


def run_with(fn: Callable[[], Any]) -> BaseException | None:
    """``fn()``'s exception, if any (signals included)."""
    try:
        fn()
    except BaseException as exc:
        return exc
    return None
