"""A loopback fake of the Compute Engine v1 and Cloud TPU v2 REST APIs, only the routes mlrig calls.

JSON shapes follow the public REST references (Operation with a numeric id, ``status``,
``error.errors[].code``, ``httpErrorStatusCode``; TPU long-running operations with ``done`` and a
typed ``response``), as recorded in research/provisioning-anchors.md (d.b). Faults are scripted
per test: a capacity stockout or quota error in one zone, an HTTP error, a slow answer.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

ZONES = {
    "us-central1": ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"],
    "us-east1": ["us-east1-b", "us-east1-c", "us-east1-d"],
    "us-west4": ["us-west4-a", "us-west4-b"],
}
_COMPUTE = "/compute/v1/projects/"


@dataclass
class GFault:
    """``op`` is insert / delete / firewall_insert / tpu_create / tpu_delete, or one of the reads
    zones_list / instances_list / instance_get / firewall_list / firewall_get / tpu_list / tpu_get.

    kind "operation": the call is accepted, the operation ends DONE with ``error`` (how GCE reports
    ZONE_RESOURCE_POOL_EXHAUSTED and QUOTA_EXCEEDED); kind "http": the call itself fails with
    ``status``; kind "slow": answered after ``delay`` seconds (the resource is created); kind
    "hold": the request is logged, then held ``delay`` seconds BEFORE anything happens (a client
    killed meanwhile never reached the server); kind "malformed": 200 with a body that is not JSON.
    """

    op: str
    error: str = "ZONE_RESOURCE_POOL_EXHAUSTED"
    message: str = "injected"
    kind: str = "operation"
    status: int = 503
    zone: str | None = None
    times: int = 1
    delay: float = 0.0
    hits: int = 0


@dataclass
class State:
    instances: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    firewalls: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    ops: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_ids: dict[str, str] = field(default_factory=dict)
    log: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)
    faults: list[GFault] = field(default_factory=list)
    #: answer list calls as a server that ignores ``filter=`` (the client must re-check labels)
    ignore_filters: bool = False
    #: (zone, node id) -> the name of the operation that creates it
    node_ops: dict[tuple[str, str], str] = field(default_factory=dict)


class _QuietServer(ThreadingHTTPServer):
    """A client killed mid-request (the attack tests do that) is not an error worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class FakeGcp:
    """Threaded HTTP server on 127.0.0.1:0; ``url`` for api_endpoint overrides."""

    def __init__(self) -> None:
        self.state = State()
        self.lock = threading.RLock()
        self._ids = itertools.count(1000)
        #: set by reset(): requests still held by a "hold" fault are dropped, never acted on
        self.cancel = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _go(self) -> None:
                # the client may have given up (a timeout test): nothing to answer then
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    fake._handle(self)

            do_GET = do_POST = do_DELETE = do_PATCH = _go

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def reset(self) -> None:
        with self.lock:
            self.state = State()
            self.cancel.set()
            self.cancel = threading.Event()

    def inject(self, **kw: Any) -> GFault:
        fault = GFault(**kw)
        self.add(fault)
        return fault

    def add(self, *faults: GFault) -> None:
        with self.lock:
            self.state.faults.extend(faults)

    # ------------------------------------------------------------------ oracle helpers
    def ours(self) -> list[str]:
        """Everything labelled/named as mlrig's that still exists (the leak oracle)."""
        with self.lock:
            out = [
                f"instance {z}/{n}"
                for (z, n), i in self.state.instances.items()
                if "mlrig-launch" in i.get("labels", {})
            ]
            out += [f"firewall {n}" for n, fw in self.state.firewalls.items() if _fw_launch(fw)]
            out += [
                f"tpu {z}/{n}"
                for (z, n), node in self.state.nodes.items()
                if "mlrig-launch" in node.get("labels", {})
            ]
            return out

    def ours_by_launch(self) -> list[tuple[str, str]]:
        """(what, launch id) for everything of ours that still exists."""
        key = "mlrig-launch"
        with self.lock:
            s = self.state
            out = [
                (f"instance {z}/{n}", i["labels"][key])
                for (z, n), i in s.instances.items()
                if key in i.get("labels", {})
            ]
            out += [(f"firewall {n}", _fw_launch(fw)) for n, fw in s.firewalls.items() if _fw_launch(fw)]
            out += [
                (f"tpu {z}/{n}", node["labels"][key])
                for (z, n), node in s.nodes.items()
                if key in node.get("labels", {})
            ]
            return out

    def requests(
        self, method: str | None = None, contains: str = ""
    ) -> list[tuple[str, str, dict[str, list[str]], Any]]:
        with self.lock:
            return [r for r in self.state.log if (method is None or r[0] == method) and contains in r[1]]

    # ------------------------------------------------------------------ plumbing
    def _fault(self, op: str, zone: str | None) -> GFault | None:
        for f in self.state.faults:
            if f.op == op and f.hits < f.times and (f.zone is None or f.zone == zone):
                f.hits += 1
                return f
        return None

    def _fault_for(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        *,
        kinds: tuple[str, ...],
        reads_only: bool = False,
    ) -> GFault | None:
        """The first matching fault of ``kinds`` for this request (by the op name of its route)."""
        op = _op_name(method, path)
        if op is None or (reads_only and op not in _READS):
            return None
        zone = _zone_of(path, query)
        for f in self.state.faults:
            if f.kind in kinds and f.op == op and f.hits < f.times and (f.zone is None or f.zone == zone):
                f.hits += 1
                return f
        return None

    def _send_raw(self, h: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _op(
        self,
        project: str,
        scope: str,
        kind: str,
        target: str,
        *,
        error: GFault | None = None,
        done: bool = False,
    ) -> dict[str, Any]:
        op_id = next(self._ids)
        name = f"operation-{op_id}"
        base = f"https://www.googleapis.com/compute/v1/projects/{project}/{scope}"
        op: dict[str, Any] = {
            "kind": "compute#operation",
            "id": str(op_id),
            "name": name,
            "operationType": kind,
            "targetLink": f"{base}/{target}",
            "status": "DONE" if done else "RUNNING",
            "progress": 0,
            "selfLink": f"{base}/operations/{name}",
        }
        if scope.startswith("zones/"):
            op["zone"] = f"https://www.googleapis.com/compute/v1/projects/{project}/{scope}"
        if error is not None:
            op["error"] = {"errors": [{"code": error.error, "message": error.message}]}
            op["httpErrorStatusCode"] = 503 if "EXHAUSTED" in error.error else 403
            op["httpErrorMessage"] = "SERVICE UNAVAILABLE" if "EXHAUSTED" in error.error else "FORBIDDEN"
        self.state.ops[name] = op
        return op

    # ------------------------------------------------------------------ router
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parsed = urlparse(h.path)
        query = parse_qs(parsed.query)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = parsed.path
        delay = 0.0
        with self.lock:
            self.state.log.append((h.command, path, query, body))
            hold = self._fault_for(h.command, path, query, kinds=("hold",))
            cancel = self.cancel
        if hold is not None and cancel.wait(hold.delay):
            self._send_raw(h, 503, b"")  # the test moved on: this request never happened
            return
        with self.lock:
            early = self._fault_for(h.command, path, query, kinds=("http", "malformed"), reads_only=True)
            if early is not None:
                if early.kind == "malformed":
                    self._send_raw(h, 200, b'{"kind": "compute#broken", "items": [')
                else:
                    self._send(h, early.status, _error_body(early.status, early.message, early.error))
                return
            try:
                if path.startswith(_COMPUTE):
                    status, answer, delay = self._compute(h.command, path[len(_COMPUTE) :], query, body)
                elif path.startswith("/v2/projects/"):
                    status, answer, delay = self._tpu(h.command, path[len("/v2/") :], query, body)
                else:
                    status, answer = 404, _error_body(404, f"no route {path}")
            except KeyError as exc:
                status = 404
                answer = _error_body(404, f"The resource {exc} was not found", "notFound", "not found")
        if delay:
            time.sleep(delay)
        self._send(h, status, answer)

    # ------------------------------------------------------------------ Compute Engine
    def _compute(
        self, method: str, rest: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, float]:
        parts = rest.split("/")
        project = parts[0]
        tail = parts[1:]
        s = self.state
        if tail[:1] == ["zones"] and len(tail) == 1 and method == "GET":
            items = [
                {
                    "kind": "compute#zone",
                    "name": z,
                    "status": "UP",
                    "id": str(i),
                    "region": f"https://www.googleapis.com/compute/v1/projects/{project}/regions/{r}",
                }
                for i, (r, zs) in enumerate(ZONES.items())
                for z in zs
            ]
            return 200, {"kind": "compute#zoneList", "items": items}, 0.0
        if tail[:2] == ["aggregated", "instances"] and method == "GET":
            flt = (query.get("filter") or [""])[0]
            items: dict[str, Any] = {}
            for (zone, _n), inst in s.instances.items():
                if s.ignore_filters or _matches(inst, flt):
                    items.setdefault(f"zones/{zone}", {"instances": []})["instances"].append(inst)
            return 200, {"kind": "compute#instanceAggregatedList", "items": items}, 0.0
        if tail[:1] == ["global"]:
            return self._global(method, project, tail[1:], query, body)
        if tail[:1] == ["zones"] and len(tail) >= 3:
            zone = tail[1]
            kind = tail[2]
            if kind == "operations":
                op = s.ops[tail[3]]
                op["status"] = "DONE"
                return 200, op, 0.0
            if kind == "instances":
                return self._instances(method, project, zone, tail[3:], query, body)
        return 404, _error_body(404, f"no route {rest}"), 0.0

    def _instances(
        self, method: str, project: str, zone: str, tail: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, float]:
        s = self.state
        if method == "POST" and not tail:
            rid = (query.get("requestId") or [None])[0]
            if rid and rid in s.request_ids:  # same requestId: the same operation, nothing new
                return 200, s.ops[s.request_ids[rid]], 0.0
            name = body["name"]
            if (zone, name) in s.instances:
                return 409, _already_exists(name), 0.0
            fault = self._fault("insert", zone)
            if fault and fault.kind == "http":
                return fault.status, _error_body(fault.status, fault.message, fault.error), 0.0
            if fault and fault.kind == "operation":
                op = self._op(project, f"zones/{zone}", "insert", f"instances/{name}", error=fault)
            else:
                inst = dict(body)
                n = len(s.instances) + 10
                inst.update(
                    {
                        "kind": "compute#instance",
                        "id": str(next(self._ids)),
                        "status": "PROVISIONING",
                        "zone": f"https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}",
                        "creationTimestamp": "2026-11-22T00:00:00.000-08:00",
                    }
                )
                nics = inst.get("networkInterfaces") or [{}]
                nics[0]["networkIP"] = f"10.128.0.{n}"
                for ac in nics[0].get("accessConfigs", []):
                    ac["natIP"] = f"198.51.100.{n}"
                inst["networkInterfaces"] = nics
                s.instances[(zone, name)] = inst
                op = self._op(project, f"zones/{zone}", "insert", f"instances/{name}")
            if rid:
                s.request_ids[rid] = op["name"]
            return 200, op, (fault.delay if fault and fault.kind == "slow" else 0.0)
        if method == "GET" and not tail:
            flt = (query.get("filter") or [""])[0]
            items = [
                i
                for (z, _n), i in s.instances.items()
                if z == zone and (s.ignore_filters or _matches(i, flt))
            ]
            return 200, {"kind": "compute#instanceList", "items": items}, 0.0
        name = tail[0]
        if method == "GET":
            inst = s.instances[(zone, name)]
            if inst["status"] in ("PROVISIONING", "STAGING"):
                inst["status"] = {"PROVISIONING": "STAGING", "STAGING": "RUNNING"}[inst["status"]]
            return 200, inst, 0.0
        if method == "DELETE":
            fault = self._fault("delete", zone)
            if fault and fault.kind == "http":
                return fault.status, _error_body(fault.status, fault.message), 0.0
            del s.instances[(zone, name)]
            return 200, self._op(project, f"zones/{zone}", "delete", f"instances/{name}"), 0.0
        return 404, _error_body(404, "no route"), 0.0

    def _global(
        self, method: str, project: str, tail: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, float]:
        s = self.state
        if tail[:1] == ["operations"]:
            op = s.ops[tail[1]]
            op["status"] = "DONE"
            return 200, op, 0.0
        if tail[:2] == ["images", "family"]:
            return (
                200,
                {
                    "kind": "compute#image",
                    "id": "42",
                    "name": f"{tail[2]}-v20261101",
                    "family": tail[2],
                    "selfLink": f"https://www.googleapis.com/compute/v1/projects/{project}/global/images/"
                    f"{tail[2]}-v20261101",
                    "status": "READY",
                },
                0.0,
            )
        if tail[:1] == ["firewalls"]:
            if method == "POST":
                name = body["name"]
                if name in s.firewalls:
                    return 409, _already_exists(name), 0.0
                fault = self._fault("firewall_insert", None)
                if fault:
                    return fault.status, _error_body(fault.status, fault.message), 0.0
                fw = dict(body)
                fw.update({"kind": "compute#firewall", "id": str(next(self._ids))})
                s.firewalls[name] = fw
                return 200, self._op(project, "global", "insert", f"firewalls/{name}"), 0.0
            if method == "GET" and len(tail) == 1:
                return 200, {"kind": "compute#firewallList", "items": list(s.firewalls.values())}, 0.0
            if method == "GET":
                return 200, s.firewalls[tail[1]], 0.0
            if method == "DELETE":
                del s.firewalls[tail[1]]
                return 200, self._op(project, "global", "delete", f"firewalls/{tail[1]}"), 0.0
        return 404, _error_body(404, "no route"), 0.0

    def _creation_succeeds(self, zone: str, node_id: str) -> bool:
        """Whether the node's create operation ends well (polled or not yet)."""
        op = self.state.ops.get(self.state.node_ops.get((zone, node_id), ""))
        if op is None:
            return True
        pending = op.get("_result")
        return (pending["error"] is None) if pending is not None else "error" not in op

    # ------------------------------------------------------------------ Cloud TPU v2
    def _tpu_op(
        self, project: str, zone: str, node: dict[str, Any] | None, error: GFault | None = None
    ) -> dict[str, Any]:
        op_id = next(self._ids)
        name = f"projects/{project}/locations/{zone}/operations/operation-{op_id}"
        op: dict[str, Any] = {
            "name": name,
            "done": False,
            "metadata": {
                "@type": "type.googleapis.com/google.cloud.tpu.v2.OperationMetadata",
                "verb": "create" if node else "delete",
            },
        }
        op["_result"] = {"node": node, "error": error}
        self.state.ops[name] = op
        return _public(op)

    def _tpu(self, method: str, rest: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, float]:
        m = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/(nodes|operations)(?:/([^/]+))?", rest)
        if not m:
            return 404, _error_body(404, f"no route {rest}"), 0.0
        project, zone, coll, item = m.groups()
        s = self.state
        if coll == "operations":
            op = s.ops[rest]
            result = op.pop("_result", None)
            if result is not None:
                op["done"] = True
                if result["error"] is not None:
                    op["error"] = {"code": 8, "message": result["error"].message}
                elif result["node"] is not None:
                    node = result["node"]
                    node["state"] = "READY"
                    op["response"] = {"@type": "type.googleapis.com/google.cloud.tpu.v2.Node", **node}
                else:
                    op["response"] = {"@type": "type.googleapis.com/google.protobuf.Empty"}
            return 200, _public(op), 0.0
        if method == "POST" and item is None:
            node_id = query["nodeId"][0]
            if (zone, node_id) in s.nodes:
                return 409, _error_body(409, f"node {node_id} already exists", status="ALREADY_EXISTS"), 0.0
            fault = self._fault("tpu_create", zone)
            if fault and fault.kind == "http":
                return (
                    fault.status,
                    _error_body(fault.status, fault.message, status="RESOURCE_EXHAUSTED"),
                    0.0,
                )
            if fault and fault.kind == "operation":
                return 200, self._tpu_op(project, zone, None, error=fault), 0.0
            node = dict(body)
            n = len(s.nodes) + 20
            node.update(
                {
                    "name": f"projects/{project}/locations/{zone}/nodes/{node_id}",
                    "state": "CREATING",
                    "networkEndpoints": [
                        {"ipAddress": f"10.130.0.{n}", "accessConfig": {"externalIp": f"198.51.100.{n}"}}
                    ],
                }
            )
            s.nodes[(zone, node_id)] = node
            op = self._tpu_op(project, zone, node)
            s.node_ops[(zone, node_id)] = op["name"]
            return 200, op, 0.0
        if method == "GET" and item is None:
            nodes = [n for (z, _i), n in s.nodes.items() if zone in ("-", z)]
            return 200, {"nodes": nodes}, 0.0
        if method == "GET":
            node = s.nodes[(zone, item)]
            if node.get("state") == "CREATING" and self._creation_succeeds(zone, item):
                node["state"] = "READY"  # the node comes up whether or not its creator polls
            return 200, node, 0.0
        if method == "DELETE":
            node = s.nodes.pop((zone, item))
            node["state"] = "DELETING"
            op = self._tpu_op(project, zone, None)
            return 200, op, 0.0
        return 404, _error_body(404, "no route"), 0.0


def _error_body(
    code: int,
    message: str,
    reason: str | None = None,
    detail: str | None = None,
    *,
    status: str | None = None,
) -> dict[str, Any]:
    """Google's JSON error envelope: ``errors[].reason`` as Compute Engine has it, ``status`` as TPU."""
    err: dict[str, Any] = {"code": code, "message": message}
    if reason is not None:
        err["errors"] = [{"reason": reason, "message": detail or message}]
    if status is not None:
        err["status"] = status
    return {"error": err}


def _already_exists(name: str) -> dict[str, Any]:
    """Compute Engine's 409 for an insert whose name is taken."""
    return _error_body(409, f"The resource '{name}' already exists", "alreadyExists", "exists")


#: ops whose "http" and "malformed" faults are answered before routing (the writes with their
#: own fault handling, insert / delete / firewall_insert / tpu_create, are not among them)
_READS = {
    "firewall_delete",
    "tpu_delete",
    "zones_list",
    "instances_list",
    "instance_get",
    "firewall_list",
    "firewall_get",
    "tpu_list",
    "tpu_get",
}


def _op_name(method: str, path: str) -> str | None:
    """The fault name of a request: what a test calls it in GFault.op."""
    rules = [
        ("GET", r"/compute/v1/projects/[^/]+/zones", "zones_list"),
        ("GET", r"/compute/v1/projects/[^/]+/aggregated/instances", "instances_list"),
        ("GET", r"/compute/v1/projects/[^/]+/zones/[^/]+/instances", "instances_list"),
        ("GET", r"/compute/v1/projects/[^/]+/zones/[^/]+/instances/[^/]+", "instance_get"),
        ("POST", r"/compute/v1/projects/[^/]+/zones/[^/]+/instances", "insert"),
        ("DELETE", r"/compute/v1/projects/[^/]+/zones/[^/]+/instances/[^/]+", "delete"),
        ("GET", r"/compute/v1/projects/[^/]+/global/firewalls", "firewall_list"),
        ("GET", r"/compute/v1/projects/[^/]+/global/firewalls/[^/]+", "firewall_get"),
        ("POST", r"/compute/v1/projects/[^/]+/global/firewalls", "firewall_insert"),
        ("DELETE", r"/compute/v1/projects/[^/]+/global/firewalls/[^/]+", "firewall_delete"),
        ("GET", r"/v2/projects/[^/]+/locations/[^/]+/nodes", "tpu_list"),
        ("GET", r"/v2/projects/[^/]+/locations/[^/]+/nodes/[^/]+", "tpu_get"),
        ("POST", r"/v2/projects/[^/]+/locations/[^/]+/nodes", "tpu_create"),
        ("DELETE", r"/v2/projects/[^/]+/locations/[^/]+/nodes/[^/]+", "tpu_delete"),
    ]
    for m, pattern, name in rules:
        if method == m and re.fullmatch(pattern, path):
            return name
    return None


def _zone_of(path: str, query: dict[str, list[str]]) -> str | None:
    m = re.search(r"/(?:zones|locations)/([^/]+)", path)
    return m.group(1) if m else None


def _fw_launch(fw: dict[str, Any]) -> str:
    """The launch id an mlrig firewall rule names in its description ('' for anybody else's)."""
    m = re.search(r"\blaunch=([a-z0-9]+)", fw.get("description") or "")
    return m.group(1) if m and (fw.get("description") or "").startswith("mlrig ") else ""


def _public(op: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in op.items() if not k.startswith("_")}


def _matches(item: dict[str, Any], flt: str) -> bool:
    """Enough of the GCE filter language for label filters: ``labels.k = "v"`` and ``labels.k:*``."""
    if not flt:
        return True
    labels = item.get("labels", {})
    for key, value in re.findall(r'labels\.([a-z0-9_-]+)\s*(?:=\s*"?([^"\s)]*)"?|:\s*\*)', flt):
        if key not in labels or (value and labels[key] != value):
            return False
    return True
