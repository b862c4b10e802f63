"""The loopback Google Cloud fake, taught clusters: compact placement policies and multi-host TPU slices.

A subclass of ``_gcp_fake.FakeGcp`` (that file is not changed) adding, in the REST shapes of the
public references (compute v1 ``resourcePolicies``; Cloud TPU v2 ``Node.networkEndpoints``):

* ``regions/{r}/resourcePolicies``: insert (409 when the name is taken, a regional Operation
  otherwise), get, list, delete; a policy still used by an instance cannot be deleted (400
  ``resourceInUseByAnotherResource``); ``regions/{r}/operations/{op}`` get and wait.
* instances whose ``resourcePolicies`` name a policy: it must exist in the instance's region, and
  a group placement policy's ``vmCount`` caps how many instances use it (both answered 400; the
  exact wording of Google's message is not reproduced).
* TPU slices with one ``networkEndpoints`` entry per worker host (``v4-32``: 4 hosts), each with
  its own private and external address, and the TPU VM metadata those hosts would read
  (``worker-network-endpoints``, ``agent-worker-number``).
* a fault ``op="tpu_create_partial"``: the slice is created with only ``hosts`` of its hosts, then
  the create operation fails; the half-made node stays (state CREATING) until someone deletes it.

Resource policies have no labels; like firewall rules, an mlrig policy says so in its description
(``mlrig launch=<id> owner=<owner> name=<name>``), and the leak oracle reads it from there.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


def _base() -> Any:
    name = "_gcp_fake"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _HERE / "_gcp_fake.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


base = _base()
GFault = base.GFault

#: worker hosts per TPU accelerator type, as the fake's own fact (not the product's):
#: v2/v3/v4/v5p sizes count TensorCores (8 per host); v5e/v6e count chips (8 on one host, else 4
#: per host). source: cloud.google.com/tpu/docs/v4 ("each v4 chip contains two TensorCores",
#: four chips per host), cloud.google.com/tpu/docs/v5e, as_of 2026-12
_PER_HOST = {"v2": 8, "v3": 8, "v4": 8, "v5p": 8}


def tpu_hosts(accelerator_type: str) -> int:
    m = re.fullmatch(r"(v\d+[a-z]*|v5litepod)-(\d+)", accelerator_type)
    if not m:
        return 1
    family, size = m.group(1), int(m.group(2))
    if family in _PER_HOST:
        return max(1, size // _PER_HOST[family])
    return 1 if size <= 8 else size // 4  # v5litepod, v6e: chips


@dataclass
class PartialSlice(GFault):
    """A slice that fails while being created, after ``hosts`` of its hosts exist."""

    op: str = "tpu_create_partial"
    hosts: int = 1
    message: str = "Internal error: a TPU host failed to start"
    kind: str = "operation"


@dataclass
class ClusterState:
    #: (region, name) -> ResourcePolicy JSON
    policies: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: region operations by name
    ops: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: zone -> instances it has room for; an insert beyond that fails ZONE_RESOURCE_POOL_EXHAUSTED
    capacity: dict[str, int] = field(default_factory=dict)


class ClusterFakeGcp(base.FakeGcp):
    """FakeGcp with compact placement policies and multi-host TPU slices."""

    def __init__(self) -> None:
        super().__init__()
        self.cluster = ClusterState()

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.cluster = ClusterState()

    def fail_slice(self, hosts: int, zone: str | None = None, times: int = 1) -> Any:
        """The next TPU slice created (in ``zone``) fails after ``hosts`` of its hosts exist."""
        fault = PartialSlice(hosts=hosts, zone=zone, times=times)
        self.add(fault)
        return fault

    # ------------------------------------------------------------------ oracle
    def ours(self) -> list[str]:
        with self.lock:
            extra = [f"resource-policy {r}/{n}" for (r, n), p in self.cluster.policies.items() if _launch(p)]
        return [*super().ours(), *extra]

    def ours_by_launch(self) -> list[tuple[str, str]]:
        with self.lock:
            extra = [
                (f"resource-policy {r}/{n}", _launch(p))
                for (r, n), p in self.cluster.policies.items()
                if _launch(p)
            ]
        return [*super().ours_by_launch(), *extra]

    def tpu_metadata(self, zone: str, node_id: str, worker: int) -> dict[str, str]:
        """What TPU worker host ``worker`` of a slice reads from its metadata server (instance/attributes)."""
        with self.lock:
            node = self.state.nodes[(zone, node_id)]
            endpoints = node.get("networkEndpoints", [])
            listing = ",".join(f"{node_id}-w-{k}:{k + 1}:{ep['ipAddress']}" for k, ep in enumerate(endpoints))
            return {"worker-network-endpoints": listing, "agent-worker-number": str(worker)}

    # ------------------------------------------------------------------ Compute Engine additions
    def _compute(
        self, method: str, rest: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, float]:
        parts = rest.split("/")
        project, tail = parts[0], parts[1:]
        if tail[:1] == ["regions"] and len(tail) >= 3 and tail[2] == "resourcePolicies":
            return self._policies(method, project, tail[1], tail[3:], query, body)
        if tail[:1] == ["regions"] and len(tail) >= 4 and tail[2] == "operations":
            op = self.cluster.ops[tail[3]]
            op["status"] = "DONE"
            return 200, op, 0.0
        if tail[:1] == ["zones"] and len(tail) == 5 and tail[4] == "setMetadata" and method == "POST":
            return self._set_metadata(project, tail[1], tail[3], body or {})
        if tail[:1] == ["zones"] and len(tail) == 3 and tail[2] == "instances" and method == "POST":
            refused = self._check_policies(project, tail[1], body or {})
            if refused is not None:
                return 400, refused, 0.0
            room = self.cluster.capacity.get(tail[1])
            if room is not None:
                used = sum(1 for (z, _n) in self.state.instances if z == tail[1])
                if used >= room:  # the zone is full: the insert's operation ends with a stockout
                    self.state.faults.append(base.GFault(op="insert", zone=tail[1]))
        return super()._compute(method, rest, query, body)

    def _set_metadata(
        self, project: str, zone: str, name: str, body: dict[str, Any]
    ) -> tuple[int, Any, float]:
        """instances.setMetadata: the fingerprint must be the current one (412 otherwise), as on GCE."""
        inst = self.state.instances.get((zone, name))
        if inst is None:
            return 404, base._error_body(404, f"The resource '{name}' was not found", "notFound"), 0.0
        meta = inst.setdefault("metadata", {})
        current = meta.get("fingerprint", "")
        if body.get("fingerprint", "") != current:
            return (
                412,
                base._error_body(
                    412,
                    "Supplied fingerprint does not match current metadata fingerprint.",
                    "conditionNotMet",
                ),
                0.0,
            )
        meta["items"] = body.get("items", [])
        meta["fingerprint"] = f"fp{next(self._ids)}"
        return 200, self._op(project, f"zones/{zone}", "setMetadata", f"instances/{name}"), 0.0

    def _region_op(self, project: str, region: str, kind: str, target: str) -> dict[str, Any]:
        op_id = next(self._ids)
        name = f"operation-{op_id}"
        base_url = f"https://www.googleapis.com/compute/v1/projects/{project}/regions/{region}"
        op = {
            "kind": "compute#operation",
            "id": str(op_id),
            "name": name,
            "operationType": kind,
            "targetLink": f"{base_url}/{target}",
            "status": "RUNNING",
            "progress": 0,
            "region": base_url,
            "selfLink": f"{base_url}/operations/{name}",
        }
        self.cluster.ops[name] = op
        return op

    def _policies(
        self, method: str, project: str, region: str, tail: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, float]:
        policies = self.cluster.policies
        if method == "POST" and not tail:
            name = body.get("name", "")
            if (region, name) in policies:
                return 409, base._already_exists(name), 0.0
            fault = self._fault("policy_insert", None)
            if fault is not None:
                return fault.status, base._error_body(fault.status, fault.message, fault.error), 0.0
            policy = dict(body)
            url = f"https://www.googleapis.com/compute/v1/projects/{project}/regions/{region}"
            policy.update(
                {
                    "kind": "compute#resourcePolicy",
                    "id": str(next(self._ids)),
                    "region": url,
                    "selfLink": f"{url}/resourcePolicies/{name}",
                    "status": "READY",
                    "creationTimestamp": "2026-12-07T00:00:00.000-08:00",
                }
            )
            policies[(region, name)] = policy
            return 200, self._region_op(project, region, "insert", f"resourcePolicies/{name}"), 0.0
        if method == "GET" and not tail:
            items = [p for (r, _n), p in policies.items() if r == region]
            return 200, {"kind": "compute#resourcePolicyList", "items": items}, 0.0
        name = tail[0]
        if (region, name) not in policies:
            return 404, base._error_body(404, f"The resource '{name}' was not found", "notFound"), 0.0
        if method == "GET":
            return 200, policies[(region, name)], 0.0
        if method == "DELETE":
            users = self._users(policies[(region, name)]["selfLink"])
            if users:
                message = f"The resource_policy resource '{name}' is already being used by '{users[0]}'"
                return 400, base._error_body(400, message, "resourceInUseByAnotherResource"), 0.0
            del policies[(region, name)]
            return 200, self._region_op(project, region, "delete", f"resourcePolicies/{name}"), 0.0
        return 404, base._error_body(404, "no route"), 0.0

    def _users(self, link: str) -> list[str]:
        """Instances that name the policy ``link`` (full URL or the regions/... suffix)."""
        suffix = link.split("/compute/v1/", 1)[-1]
        return [
            f"projects/{suffix.split('/')[1]}/zones/{z}/instances/{n}"
            for (z, n), inst in self.state.instances.items()
            if any(ref.endswith(suffix) for ref in inst.get("resourcePolicies", []))
        ]

    def _check_policies(self, project: str, zone: str, body: dict[str, Any]) -> dict[str, Any] | None:
        region = zone.rsplit("-", 1)[0]
        for k, ref in enumerate(body.get("resourcePolicies") or []):
            m = re.search(r"projects/([^/]+)/regions/([^/]+)/resourcePolicies/([^/]+)$", ref)
            field_name = f"resource.resourcePolicies[{k}]"
            if not m:
                return base._error_body(400, f"Invalid value for field '{field_name}': '{ref}'", "invalid")
            if m.group(2) != region:
                return base._error_body(
                    400,
                    f"Invalid value for field '{field_name}': '{ref}'. "
                    f"Resource policy must be in the same region as the instance ({region}).",
                    "invalid",
                )
            policy = self.cluster.policies.get((m.group(2), m.group(3)))
            if policy is None:
                return base._error_body(
                    400, f"The resource '{ref}' was not found", "notFound", f"{field_name} not found"
                )
            cap = (policy.get("groupPlacementPolicy") or {}).get("vmCount")
            if cap is not None and len(self._users(policy["selfLink"])) >= int(cap):
                return base._error_body(
                    400,
                    f"Invalid value for field '{field_name}': '{ref}'. "
                    f"The placement policy already has its vmCount of {cap} instances.",
                    "invalid",
                )
        return None

    # ------------------------------------------------------------------ Cloud TPU additions
    def _tpu(self, method: str, rest: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, float]:
        m = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/nodes", rest)
        if not (m and method == "POST"):
            return super()._tpu(method, rest, query, body)
        zone, node_id = m.group(2), query.get("nodeId", [""])[0]
        partial = self._fault("tpu_create_partial", zone)
        existed = (zone, node_id) in self.state.nodes
        status, answer, delay = super()._tpu(method, rest, query, body)
        if status != 200 or existed or (zone, node_id) not in self.state.nodes:
            return status, answer, delay
        node = self.state.nodes[(zone, node_id)]
        hosts = tpu_hosts(node.get("acceleratorType", ""))
        seed = len(self.state.nodes) * 8 + 20
        node["networkEndpoints"] = [
            {
                "ipAddress": f"10.130.{seed // 250}.{seed % 250 + k}",
                "port": 8470,
                "accessConfig": {"externalIp": f"203.0.113.{(seed + k) % 250 + 1}"},
            }
            for k in range(hosts)
        ]
        if partial is not None:
            node["networkEndpoints"] = node["networkEndpoints"][: partial.hosts]
            op = self.state.ops[answer["name"]]
            op["_result"] = {"node": None, "error": partial}
        return status, answer, delay


def _launch(policy: dict[str, Any]) -> str:
    """The launch id an mlrig resource policy names in its description ('' for anybody else's)."""
    description = policy.get("description") or ""
    m = re.search(r"\blaunch=([a-z0-9]+)", description)
    return m.group(1) if m and description.startswith("mlrig ") else ""
