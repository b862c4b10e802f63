"""``provision ls`` and ``provision gc``: the state store reconciled with what the clouds report.

The clouds are the truth for *what exists* (found by our launch-id tag); the store is the truth
for *what we meant* (name, price at launch, when it started). ``ls`` shows both side by side, so a
machine terminated in the console shows as gone and a machine the store never heard of shows as
untracked; ``gc`` removes the latter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from provision.clouds.base import DELETE_ORDER, MACHINE_KINDS, Provider, Resource, owner_label
from provision.errors import CredentialsError, ProvisionError
from provision.settings import Settings
from provision.state import LaunchRow, Store

#: provider keys: gcp VMs and Cloud TPU are separate drivers of the same cloud
DRIVERS = {"aws": ("aws",), "gcp": ("gcp", "gcp-tpu")}


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

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def driver_key(row: LaunchRow) -> str:
    return "gcp-tpu" if row.kind == "tpu-vm" else row.cloud


def regions_for(settings: Settings, store: Store, key: str) -> list[str]:
    """Regions to list: the configured ones plus every region the store has used for that cloud."""
    cloud = key.split("-", maxsplit=1)[0]
    used = {r.region for r in store.launches(include_finished=True) if r.cloud == cloud}
    base = list(settings.aws_regions) if cloud == "aws" else []
    return base + sorted(used - set(base))


def _list(provider: Provider, regions: list[str]) -> tuple[list[Resource] | None, str | None]:
    try:
        return provider.list_ours(regions), None
    except CredentialsError as exc:
        return None, f"unknown: {exc.message}"
    except ProvisionError as exc:
        return None, f"unknown: {exc.message}"


def inventory(
    store: Store,
    settings: Settings,
    get_provider: Callable[[str], Provider],
    refresh: bool = True,
    now: float | None = None,
) -> tuple[list[MachineView], list[Resource], list[str]]:
    """(machines in the store with their cloud state, tagged resources the store lacks, warnings)."""
    now = time.time() if now is None else now
    launches = store.launches()
    keys = sorted({driver_key(r) for r in launches})
    seen: dict[str, list[Resource]] = {}
    problems: dict[str, str] = {}
    warnings: list[str] = []
    if refresh:
        for key in keys:
            found, why = _list(get_provider(key), regions_for(settings, store, key))
            if found is None:
                problems[key] = why or "unknown"
                warnings.append(f"{key}: {why}")
            else:
                seen[key] = found
    views: list[MachineView] = []
    for row in launches:
        key = driver_key(row)
        state, note = row.status, None
        if key in problems:
            state = problems[key]
        elif key in seen:
            mine = [r for r in seen[key] if r.launch_id == row.launch_id and r.kind in MACHINE_KINDS]
            alive = [r for r in mine if r.alive]
            if alive:
                state = alive[0].state or "?"
            elif row.status == "running":
                state, note = "gone", "terminated outside mlrig (autostop, spot preemption or console)"
            else:
                state = "none"
            leftovers = [r for r in seen[key] if r.launch_id == row.launch_id and r.kind not in MACHINE_KINDS]
            if row.status in ("cleanup-incomplete", "cleaning", "failed") and (alive or leftovers):
                note = f"cleanup incomplete: run `provision down {row.name}`"
        hours = None
        if row.running_at:
            hours = round(max(0.0, (row.ended_at or now) - row.running_at) / 3600.0, 3)
        views.append(
            MachineView(
                name=row.name,
                cloud=row.cloud,
                instance_type=row.instance_type,
                zone=row.zone or row.region,
                spot=row.spot,
                state=state,
                status=row.status,
                price_per_hour=row.price_per_hour,
                cost_so_far=row.cost_so_far(now),
                hours=hours,
                ssh=row.ssh_host and row.name,
                launch_id=row.launch_id,
                note=note,
            )
        )
    known = store.known_launch_ids()
    untracked = {
        (r.kind, r.id): r for found in seen.values() for r in found if r.alive and r.launch_id not in known
    }
    return views, list(untracked.values()), warnings


def untracked(
    store: Store,
    settings: Settings,
    get_provider: Callable[[str], Provider],
    clouds: list[str],
    all_owners: bool = False,
) -> tuple[list[Resource], list[str]]:
    """Resources tagged as mlrig's (by this owner unless ``all_owners``) that the store doesn't know.

    A resource of a launch the store has finished (terminated/failed) but that still exists counts
    too: it is a leak by definition.
    """
    me = owner_label(settings.owner)
    out: list[Resource] = []
    warnings: list[str] = []
    finished = {
        r.launch_id
        for r in store.launches(include_finished=True)
        if r.status in ("terminated", "failed") and not store.pending_resources(r.launch_id)
    }
    known = store.known_launch_ids() - finished
    for cloud in clouds:
        for key in DRIVERS[cloud]:
            found, why = _list(get_provider(key), regions_for(settings, store, key))
            if found is None:
                warnings.append(f"{key}: {why}")
                continue
            for res in found:
                if not res.alive or res.launch_id in known:
                    continue
                if not all_owners and res.owner not in (None, me):
                    continue
                out.append(res)
    unique = {(r.cloud, r.kind, r.id): r for r in out}  # gcp VM and TPU drivers both list firewalls
    return sorted(unique.values(), key=lambda r: (DELETE_ORDER.get(r.kind, 9), r.region, r.id)), warnings


def collect(
    resources: list[Resource],
    get_provider: Callable[[str], Provider],
    on_delete: Callable[[Resource], None] | None = None,
) -> list[tuple[Resource, str]]:
    """Delete ``resources`` (machines first); returns (resource, outcome) for each."""
    results: list[tuple[Resource, str]] = []
    for res in sorted(resources, key=lambda r: DELETE_ORDER.get(r.kind, 9)):
        key = "gcp-tpu" if res.kind == "tpu_node" else res.cloud
        if on_delete:
            on_delete(res)
        try:
            outcome = "deleted" if get_provider(key).delete(res) else "already gone"
        except ProvisionError as exc:
            outcome = f"failed: {exc.message}"
        results.append((res, outcome))
    return results
