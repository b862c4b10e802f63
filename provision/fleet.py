"""``provision ls`` and ``provision gc``: the state store reconciled with what the clouds report.

The clouds are the truth for *what exists*; the store is the truth for *what we meant* (name,
price at launch, when it started) and for *who we are* (its owner id). A resource counts as ours
only when the owner id and a launch id we tagged on it are re-checked here, item by item, whatever
the cloud's filter returned; a name prefix or a bare ``mlrig-launch`` key proves nothing.

``ls`` shows the store's launches with their cloud state, plus resources of ours the store does not
hold (untracked). ``gc`` lists every region of every cloud it can reach, and deletes only those
untracked resources of ours, plus the private keys of launches the store no longer holds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provision import sshconfig, targets
from provision.clouds.base import DELETE_ORDER, MACHINE_KINDS, Provider, Resource
from provision.errors import CredentialsError, MissingDependencyError, ProvisionError
from provision.settings import Settings
from provision.state import LaunchRow, LaunchStatus, Store


def target_keys(clouds: Iterable[str] | None = None) -> list[str]:
    """Driver keys (launch target ids) of ``clouds`` (all when None), in registry order."""
    wanted = None if clouds is None else set(clouds)
    return [t.id.value for t in targets.TARGETS.values() if wanted is None or t.cloud in wanted]


_KEY_FILE = re.compile(r"^[a-z][a-z0-9-]*-(?P<launch>[0-9a-f]{12})(?:\.pub)?$")


@dataclass
class MachineView:
    """One row of ``provision ls``."""

    name: str
    cloud: str
    instance_type: str
    zone: str | None
    spot: bool
    state: str
    status: str
    price_per_hour: float | None
    cost_so_far: float | None
    hours: float | None
    ssh: str | None
    launch_id: str
    note: str | None = None
    #: machines billed (a cluster's nodes; a TPU slice is one)
    nodes: int = 1
    #: every node and slice host: index, role, id, zone, address, ssh alias
    members: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Scan:
    """What listing the clouds gave: resources per driver, and what could not be looked at."""

    found: dict[str, list[Resource]] = field(default_factory=dict)
    #: driver key -> why it could not be listed (a failure: the answer is incomplete)
    problems: dict[str, str] = field(default_factory=dict)
    #: driver key -> why it was not asked (no SDK or credentials, and nothing of ours known there)
    skipped: dict[str, str] = field(default_factory=dict)
    regions: dict[str, int] = field(default_factory=dict)
    #: the first error per distinct message, for the one-line refusal when nothing could be listed
    errors: list[ProvisionError] = field(default_factory=list)

    def resources(self) -> list[Resource]:
        unique = {(r.cloud, r.kind, r.region, r.id): r for rs in self.found.values() for r in rs}
        return list(unique.values())  # gcp VM and TPU drivers both list the firewall rules

    def note(self, key: str, exc: ProvisionError, *, problem: bool) -> None:
        why = exc.message + (f" ({exc.hint})" if exc.hint else "")
        (self.problems if problem else self.skipped)[key] = why
        if all(e.message != exc.message for e in self.errors):
            self.errors.append(exc)

    def nothing_checked(self) -> ProvisionError:
        """One error for "no cloud could be looked at", keeping the first cause's kind and hint."""
        first = self.errors[0] if self.errors else ProvisionError("no cloud to check")
        text = "; ".join(e.message for e in self.errors) or first.message
        return type(first)(f"no cloud could be checked: {text}", hint=first.hint)


def driver_key(row: LaunchRow) -> str:
    return targets.for_launch(row).id.value


def key_of(res: Resource) -> str:
    return targets.for_resource(res).id.value


def regions_for(settings: Settings, store: Store, key: str) -> list[str]:
    """Regions to list by default: the configured ones plus every region the store has used."""
    target = targets.get(key)
    used = {
        r.region for r in store.launches(include_finished=True) if targets.for_launch(r).cloud == target.cloud
    }
    base = list(target.default_regions(settings))
    return base + sorted(used - set(base))


def scan(
    keys: Iterable[str],
    get_provider: Callable[[str], Provider],
    regions: Callable[[str, Provider], list[str]],
    required: set[str],
) -> Scan:
    """List every driver of ``keys``. A driver whose SDK or credentials are missing is a problem
    when it is ``required`` (asked for, or the store has launches there), else it is skipped."""
    out = Scan()
    for key in keys:
        try:
            provider = get_provider(key)
            provider.check_credentials()
        except (MissingDependencyError, CredentialsError) as exc:
            out.note(key, exc, problem=key in required)
            continue
        except ProvisionError as exc:
            out.note(key, exc, problem=True)
            continue
        try:
            where = regions(key, provider)
            out.found[key] = provider.list_tagged(where)
            out.regions[key] = len(where)
        except ProvisionError as exc:
            out.note(key, exc, problem=True)
    return out


def _launching_note(store: Store, row: LaunchRow) -> str:
    if store.is_claimed(row.name):
        holder = store.holder(row.name)
        if holder is None:
            return "being launched by another provision command"
        return f"being launched ({holder.describe()})"
    return (
        f"interrupted: `provision down {row.name}` removes what it left "
        "(or `up` again with the same arguments finishes it)"
    )


def inventory(
    store: Store,
    settings: Settings,
    get_provider: Callable[[str], Provider],
    *,
    refresh: bool = True,
    all_regions: bool = False,
    now: float | None = None,
) -> tuple[list[MachineView], list[Resource], Scan]:
    """(machines in the store with their cloud state, resources of ours the store lacks, the scan)."""
    now = time.time() if now is None else now
    launches = store.launches()
    held = {driver_key(r) for r in launches}
    keys = target_keys() if all_regions else sorted(held)
    result = Scan()
    if refresh:

        def where(key: str, provider: Provider) -> list[str]:
            return provider.all_regions() if all_regions else regions_for(settings, store, key)

        result = scan(keys, get_provider, where, required=held)
        if all_regions and not result.found:
            raise result.nothing_checked()
    # read after listing: a launch that began meanwhile is already recorded before it creates anything
    launches = store.launches()
    views = [_view(store, row, result, now) for row in launches]
    active = {r.launch_id for r in launches}
    untracked = [
        r for r in result.resources() if r.alive and r.owned_by(store.owner_id) and r.launch_id not in active
    ]
    return views, sorted(untracked, key=_order), result


def _view(store: Store, row: LaunchRow, result: Scan, now: float) -> MachineView:
    key = driver_key(row)
    state, note = row.status.value, None
    if key in result.problems:
        state = "unknown"
    elif key in result.found:
        mine = [r for r in result.found[key] if r.owned_by(row.owner_tag, row.launch_id)]
        alive = [r for r in mine if r.alive and r.kind in MACHINE_KINDS]
        leftovers = [r for r in mine if r.alive and r.kind not in MACHINE_KINDS]
        if alive:
            state = alive[0].state or "?"
            if row.status == LaunchStatus.RUNNING and len(alive) < row.nodes:
                note = f"only {len(alive)} of {row.nodes} nodes exist (preempted or removed outside mlrig)"
        elif row.status == LaunchStatus.RUNNING:
            state, note = "gone", "terminated outside mlrig (autostop, spot preemption or console)"
        else:
            state = "none"
        if row.status not in (LaunchStatus.RUNNING, LaunchStatus.LAUNCHING) and (alive or leftovers):
            note = f"cleanup incomplete: run `provision down {row.name}`"
    if row.status == LaunchStatus.LAUNCHING:
        note = _launching_note(store, row)
    elif row.status in (LaunchStatus.CLEANUP_INCOMPLETE, LaunchStatus.CLEANING) and note is None:
        note = f"cleanup incomplete: run `provision down {row.name}`"
    members: list[dict[str, Any]] = [
        {
            "index": r.node_index if r.node_index is not None else 0,
            "role": r.role or "head",
            "kind": r.kind,
            "id": r.resource_id or r.name,
            "zone": r.zone,
            "address": r.address,
            "ssh": sshconfig.node_alias(row.name, r.node_index or 0) if r.address else None,
        }
        for r in store.nodes(row.launch_id)
    ]
    hours = None
    if row.running_at:
        hours = round(max(0.0, (row.ended_at or now) - row.running_at) / 3600.0, 3)
    return MachineView(
        name=row.name,
        cloud=row.cloud,
        instance_type=row.instance_type,
        zone=row.zone or row.region,
        spot=row.spot,
        state=state,
        status=row.status.value,
        price_per_hour=row.price_per_hour,
        cost_so_far=row.cost_so_far(now),
        hours=hours,
        ssh=row.ssh_host and row.name,
        launch_id=row.launch_id,
        note=note,
        nodes=row.nodes,
        members=members,
    )


def _order(r: Resource) -> tuple[int, str, str]:
    return (DELETE_ORDER.get(r.kind, 9), r.region, r.id)


def untracked(
    store: Store,
    get_provider: Callable[[str], Provider],
    clouds: list[str],
    *,
    explicit: bool,
    owners: Iterable[str] = (),
) -> tuple[list[Resource], Scan]:
    """Resources of ours (the store's owner id, or one of ``owners`` claimed on the command line)
    in every region of ``clouds`` that no launch of the store holds: leaks by definition.

    ``explicit``: the clouds were asked for by name, so one that cannot be checked is a failure.
    """
    required = set(target_keys(clouds)) if explicit else set()
    required |= {driver_key(r) for r in store.launches()}
    keys = target_keys(clouds)
    result = scan(keys, get_provider, lambda _key, provider: provider.all_regions(), required)
    if not result.found:
        raise result.nothing_checked()
    mine = {store.owner_id, *owners}
    # read after listing: a launch that began meanwhile is recorded before it creates anything
    active = {r.launch_id for r in store.launches()}
    out = [
        r
        for r in result.resources()
        if r.alive and any(r.owned_by(o) for o in mine) and r.launch_id not in active
    ]
    return sorted(out, key=_order), result


def orphan_keys(store: Store, settings: Settings) -> list[Path]:
    """Private/public key files of launches the store no longer holds (lost with it, or left by a
    crash before 0.2): only files named ``NAME-LAUNCHID`` in our own key directory."""
    try:
        files = sorted(p for p in settings.key_dir.iterdir() if _KEY_FILE.match(p.name) and p.is_file())
    except OSError:
        return []
    active = {r.launch_id for r in store.launches()}  # read after listing the files
    out = []
    for path in files:
        m = _KEY_FILE.match(path.name)
        if m and m["launch"] not in active:
            out.append(path)
    return out


def collect(
    resources: list[Resource],
    get_provider: Callable[[str], Provider],
    on_delete: Callable[[Resource], None] | None = None,
) -> list[tuple[Resource, str]]:
    """Delete ``resources`` (machines first); returns (resource, outcome) for each."""
    results: list[tuple[Resource, str]] = []
    for res in sorted(resources, key=_order):
        if on_delete:
            on_delete(res)
        try:
            outcome = "deleted" if get_provider(key_of(res)).delete(res) else "already gone"
        except ProvisionError as exc:
            outcome = f"failed: {exc.message}"
        results.append((res, outcome))
    return results
