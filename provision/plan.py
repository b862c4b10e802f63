"""The Plan: everything ``provision up`` decided before anything acts, frozen.

Planning (provision/planning.py) builds it complete: the offer and its price, the places to try,
the SSH CIDR (the caller's address looked up while planning), the key path, the owner and launch
ids, the node count. Nothing writes into a Plan afterwards; drivers and the launch only read it.
Continuing an interrupted launch is a *new* Plan (``resuming``), never an edit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from provision.errors import ProvisionError

#: tag/label keys. AWS allows ':' in keys, GCE labels only [a-z0-9_-], so each cloud maps them.
TAG_LAUNCH = "mlrig-launch"
TAG_OWNER = "mlrig-owner"
TAG_NAME = "mlrig-name"
TAG_EXPIRY = "mlrig-expiry"
#: which machine of the launch (0 is the head) and its role, on every machine
TAG_NODE = "mlrig-node"
TAG_ROLE = "mlrig-role"

#: launch ids are 12 lowercase hex digits (what planning generates); anything else is not ours
_LAUNCH_ID_RE = re.compile(r"^[0-9a-f]{12}$")

#: the Plan fields that decide what a launch creates: an interrupted launch is resumed only by an
#: ``up`` whose plan agrees on all of them (``wait`` and prices decide nothing in the cloud)
RESUME_FIELDS = (
    "cloud",
    "kind",
    "instance_type",
    "regions",
    "zone",
    "spot",
    "on_demand_fallback",
    "disk_gb",
    "image",
    "tpu_runtime",
    "autostop_minutes",
    "setup_sha256",
    "ssh_cidr",
    "key_name",
    "nodes",
    "engine",
)
#: what a field missing from an older release's stored plan meant then
_RESUME_DEFAULTS: Mapping[str, Any] = {"nodes": 1, "engine": "none"}


def is_launch_id(value: str | None) -> bool:
    return bool(value) and bool(_LAUNCH_ID_RE.match(value or ""))


@dataclass(frozen=True)
class Plan:
    """Everything decided before spending: what to launch, where to try, at what price."""

    name: str
    launch_id: str
    cloud: str
    #: the launch target's id (provision.targets.TargetId value)
    target: str
    #: the offering kind (provision.models.OfferingKind value)
    kind: str
    instance_type: str
    accelerator: str
    accelerator_count: int
    region: str
    spot: bool
    disk_gb: int
    #: the owner id of the store that launches it (tagged on every resource); None in a dry run
    owner: str | None
    created_at: float
    #: regions to try in order (the first is ``region``)
    regions: tuple[str, ...]
    #: pinned zone: only this one is tried
    zone: str | None = None
    image: str | None = None
    autostop_minutes: int | None = None
    setup_script: str | None = None
    setup_path: str | None = None
    #: fingerprint of the setup script (the script itself is never stored: it may hold secrets)
    setup_sha256: str | None = None
    wait: str = "ssh"
    #: who may reach SSH; resolved while planning (the caller's address /32 unless given)
    ssh_cidr: str | None = None
    key_name: str | None = None
    #: the launch's own key pair (None with --key-name); generated after the launch is recorded
    key_path: str | None = None
    price_per_hour: float | None = None
    price_on_demand: float | None = None
    price_source: str | None = None
    price_as_of: str | None = None
    #: with spot: fall back to on-demand after every spot placement failed
    on_demand_fallback: bool = True
    tpu_runtime: str | None = None
    vcpus: int | None = None
    #: machines in the launch (a cluster when more than one)
    nodes: int = 1
    #: what the nodes start on first boot: "none" (the cluster file only) or "ray"
    engine: str = "none"
    dry_run: bool = False
    notes: tuple[str, ...] = ()

    @property
    def expires_at(self) -> float | None:
        return None if self.autostop_minutes is None else self.created_at + 60 * self.autostop_minutes

    def check_launchable(self) -> None:
        """Refuse a plan that is not complete: launching must never fill anything in."""
        missing = [f for f in ("owner", "ssh_cidr") if not getattr(self, f)]
        if not self.key_name and not self.key_path:
            missing.append("key_path")
        if self.dry_run or missing:
            raise ProvisionError(
                f"internal: the plan of {self.name} is not launchable "
                f"({'a dry run' if self.dry_run else 'no ' + ', '.join(missing)})"
            )

    def tags(self) -> dict[str, str]:
        """The labels every created resource carries (values valid for both AWS and GCE)."""
        if not self.owner:
            raise ProvisionError("internal: a plan without an owner id cannot be launched")
        expiry = "never" if self.expires_at is None else str(int(self.expires_at))
        return {
            TAG_LAUNCH: self.launch_id,
            TAG_OWNER: self.owner,
            TAG_NAME: self.name,
            TAG_EXPIRY: expiry,
        }

    def node_tags(self, index: int) -> dict[str, str]:
        """The tags of machine ``index``: the launch's, plus its index and role."""
        return {**self.tags(), TAG_NODE: str(index), TAG_ROLE: role_of(index)}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("setup_script", None)  # may hold secrets; only its path and fingerprint are kept
        data["regions"] = list(self.regions)
        data["notes"] = list(self.notes)
        return data

    def resume_identity(self) -> dict[str, Any]:
        """What this plan creates, comparable with the identity of an interrupted launch."""
        return resume_identity(self.to_dict())

    def resuming(self, launch_id: str, created_at: float, key_path: str | None, owner: str) -> Plan:
        """This plan continuing an interrupted launch: its id, start time, key and owner."""
        return replace(self, launch_id=launch_id, created_at=created_at, key_path=key_path, owner=owner)


def role_of(index: int) -> str:
    """Node 0 is the head (rendezvous, Ray head); the others are workers."""
    return "head" if index == 0 else "worker"


def resume_identity(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The RESUME_FIELDS of a stored plan (a field missing from an old store's plan reads as what
    it meant then, else None)."""
    out = {k: plan.get(k, _RESUME_DEFAULTS.get(k)) for k in RESUME_FIELDS}
    if isinstance(out["regions"], (list, tuple)):
        out["regions"] = list(out["regions"])
    return out


def setup_fingerprint(script: str | None) -> str | None:
    return None if script is None else hashlib.sha256(script.encode()).hexdigest()
