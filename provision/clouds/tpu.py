"""Cloud TPU VM driver (google-cloud-tpu, tpu_v2): one labelled node plus the GCP SSH firewall rule.

The transport is configurable (gRPC by default, REST when the endpoint is overridden, as in tests);
long-running operations are polled through the same client, which keeps the endpoint. The node id
is the machine name, so a repeated create of the same launch answers 409 and is adopted.
"""

from __future__ import annotations

from functools import cached_property, partial
from pathlib import Path
from typing import Any

from provision.clouds import _clients, firstboot
from provision.clouds.base import (
    TAG_LAUNCH,
    TAG_OWNER,
    AttemptError,
    FailureKind,
    Journal,
    Placement,
    Plan,
    Resource,
    poll,
    translate_errors,
)
from provision.clouds.gcp import GcpProvider, adopt_on_conflict, call_api, launched, net_tag, translate
from provision.cluster.tpu import host_addresses
from provision.errors import CredentialsError, ProvisionError

_GONE = {"DELETING", "TERMINATED", "PREEMPTED", "HIDDEN"}


def classify(exc: Any, region: str) -> ProvisionError:
    """A create_node / operation error -> AttemptError (refused credentials: CredentialsError).
    TPU reports stockouts as RESOURCE_EXHAUSTED. Returns, never raises."""
    code = int(getattr(exc, "code", 0) or 0)
    message = str(getattr(exc, "message", exc))
    low = message.lower()
    if code == 401 or (code == 403 and "quota" not in low):
        return CredentialsError(f"Google Cloud refused the call: {message}", hint=_clients.GCP_HINT)
    if "quota" in low:
        return AttemptError(
            FailureKind.QUOTA,
            "QUOTA_EXCEEDED",
            message,
            hint=f"see Cloud TPU quotas for {region} at https://console.cloud.google.com/iam-admin/quotas",
        )
    if code in (429, 503) or "capacity" in low or "exhausted" in low:
        return AttemptError(FailureKind.CAPACITY, "RESOURCE_EXHAUSTED", message)
    if code == 404 or "not found" in low or "not supported" in low:
        return AttemptError(FailureKind.UNSUPPORTED, "NOT_FOUND", message)
    return AttemptError(FailureKind.FATAL, f"HTTP {code}", message)


@translate_errors(partial(translate, service="Cloud TPU"))
class TpuProvider:
    """Cloud TPU VMs (tpu_v2)."""

    cloud = "gcp"

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.gcp = GcpProvider(settings)  # zones and the SSH firewall rule are Compute Engine's
        self._client: Any = None

    @property
    def tpu(self) -> Any:
        if self._client is None:
            self._client = _clients.tpu_client(self.settings)
        return self._client

    @cached_property
    def project(self) -> str:
        return _clients.tpu_project(self.settings)

    def _api(self, fn: Any, *args: Any, **kw: Any) -> Any:
        return call_api(
            fn, *args, timeout=self.settings.api_timeout, service="Cloud TPU", denied_is_auth=False, **kw
        )

    def _node_name(self, zone: str, node_id: str) -> str:
        return f"projects/{self.project}/locations/{zone}/nodes/{node_id}"

    # ------------------------------------------------------------------ Provider
    def fresh(self) -> TpuProvider:
        return type(self)(self.settings)

    def check_credentials(self) -> None:
        _clients.load_sdk("tpu")  # before anything is recorded: an interrupted import costs nothing
        _ = self.project
        self.gcp.check_credentials()

    def all_regions(self) -> list[str]:
        return self.gcp.all_regions()

    def zones(self, plan: Plan, region: str) -> list[str]:
        return self.gcp.zones(plan, region)

    def prepare(self, plan: Plan, region: str, journal: Journal) -> None:
        self.gcp.prepare(plan, region, journal)

    def find(self, plan: Plan, region: str) -> list[Resource]:
        """The node id is the machine name: looked up directly in each zone of ``region``."""
        zones = [plan.zone] if plan.zone else self.gcp.region_zones(region)
        for zone in zones:
            node = self.refresh(Resource("gcp", "tpu_node", region, plan.name, zone=zone, name=plan.name))
            if node.alive and node.owned_by(plan.owner or "", plan.launch_id):
                return [node]
        return []

    def node_body(self, plan: Plan, placement: Placement) -> Any:
        from google.cloud import tpu_v2

        metadata = {
            "startup-script": firstboot.render(plan, self.settings.envcheck_spec, self.settings.gcp_ssh_user)
        }
        if plan.key_path:
            pub = Path(f"{plan.key_path}.pub").read_text().strip()
            metadata["ssh-keys"] = f"{self.settings.gcp_ssh_user}:{pub}"
        return tpu_v2.Node(
            accelerator_type=plan.instance_type,
            runtime_version=plan.tpu_runtime or "",
            network_config=tpu_v2.NetworkConfig(enable_external_ips=True),
            scheduling_config=tpu_v2.SchedulingConfig(spot=placement.spot),
            labels=plan.node_tags(0),
            tags=[net_tag(plan.launch_id)],
            metadata=metadata,
        )

    def create(self, plan: Plan, placement: Placement, attempt: int, journal: Journal) -> list[Resource]:
        return [self._create_one(plan, placement, journal)]

    def _create_one(self, plan: Plan, placement: Placement, journal: Journal) -> Resource:
        from google.api_core import exceptions as gexc
        from google.cloud import tpu_v2

        zone = placement.zone
        row = journal.intent("tpu_node", placement.region, zone, plan.name, None, node_index=0, role="head")
        try:
            op = self._api(
                self.tpu.create_node,
                request=tpu_v2.CreateNodeRequest(
                    parent=f"projects/{self.project}/locations/{zone}",
                    node_id=plan.name,
                    node=self.node_body(plan, placement),
                ),
            )
        except gexc.Conflict:
            return adopt_on_conflict(
                next(iter(self.find(plan, placement.region)), None),
                journal,
                row,
                AttemptError(
                    FailureKind.FATAL,
                    "ALREADY_EXISTS",
                    f"a TPU node named {plan.name} already exists in {zone}",
                ),
                note="node id taken by a node that is not ours",
            )
        except gexc.GoogleAPICallError as exc:
            journal.failed(row, str(exc)[:300])
            raise classify(exc, placement.region) from None
        # the node exists from here on (CREATING), even if the operation later fails
        journal.created(row, plan.name)
        res = launched("tpu_node", plan, placement, "CREATING")
        try:
            op.result(timeout=self.settings.launch_timeout)
        except gexc.GoogleAPICallError as exc:
            self.delete(res)  # a failed create may leave a node behind; never keep it
            raise classify(exc, placement.region) from None
        return res

    def _get(self, res: Resource) -> Any | None:
        from google.api_core import exceptions as gexc

        try:
            return self._api(self.tpu.get_node, name=self._node_name(res.zone or "", res.id))
        except gexc.NotFound:
            return None

    def wait_running(self, res: Resource, timeout: float) -> Resource:
        def check() -> Resource | None:
            node = self._get(res)
            if node is None:
                raise ProvisionError(f"TPU node {res.id} disappeared while starting")
            state = node.state.name
            if state in _GONE or state == "STOPPED":
                raise ProvisionError(f"TPU node {res.id} is {state} while starting")
            return _node(node) if state == "READY" else None

        return poll(
            check, timeout=timeout, interval=self.settings.poll_interval, what=f"{res.id} to be READY"
        )

    def announce(self, plan: Plan, machines: list[Resource], node_list: str) -> bool:
        return False  # a slice's hosts read each other from worker-network-endpoints themselves

    def delete(self, res: Resource) -> bool:
        from google.api_core import exceptions as gexc

        if res.kind != "tpu_node":
            return self.gcp.delete(res)
        try:
            op = self._api(self.tpu.delete_node, name=self._node_name(res.zone or "", res.id))
            op.result(timeout=self.settings.launch_timeout)
            return True
        except gexc.NotFound:
            return False
        except gexc.GoogleAPICallError as exc:
            raise ProvisionError(f"could not delete TPU node {res.id}: {exc.message}") from None

    def _list(self, parent: str) -> list[Resource]:
        pager = self._api(self.tpu.list_nodes, parent=f"projects/{self.project}/locations/{parent}")
        return [_node(n) for n in pager if TAG_LAUNCH in n.labels]

    def list_tagged(self, regions: list[str]) -> list[Resource]:
        """Nodes of every zone (``locations/-``); zone by zone if that wildcard is refused."""
        from google.api_core import exceptions as gexc

        try:
            nodes = self._list("-")
        except (ProvisionError, gexc.GoogleAPICallError):
            zones = [z for r in (regions or self.all_regions()) for z in self.gcp.region_zones(r)]
            nodes = [n for z in zones for n in self._list(z)]
        if regions:
            nodes = [n for n in nodes if n.region in regions]
        return nodes + self.gcp.list_firewalls()

    def refresh(self, res: Resource) -> Resource:
        if res.kind != "tpu_node":
            return self.gcp.refresh(res)
        node = self._get(res)
        if node is None:
            return Resource(
                res.cloud, res.kind, res.region, res.id, zone=res.zone, name=res.name, state="gone"
            )
        return _node(node)


def _node(node: Any) -> Resource:
    parts = node.name.split("/")
    zone, node_id = parts[3], parts[5]
    hosts = host_addresses(list(node.network_endpoints))
    public, private = hosts[0] if hosts else (None, None)
    labels = dict(node.labels)
    state = node.state.name
    return Resource(
        cloud="gcp",
        kind="tpu_node",
        region=zone.rsplit("-", 1)[0],
        id=node_id,
        zone=zone,
        name=node_id,
        launch_id=labels.get(TAG_LAUNCH),
        node_index=0,
        role="head",
        owner=labels.get(TAG_OWNER),
        state="gone" if state in _GONE else state,
        instance_type=node.accelerator_type,
        spot=bool(node.scheduling_config.spot),
        public_ip=public,
        private_ip=private,
        hosts=hosts,
    )
