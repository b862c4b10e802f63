"""Compute Engine driver (google-cloud-compute, REST): one labelled VM plus one SSH firewall rule.

GPUs are attached on N1 (T4, V100, P100, P4) and built in on A2/A3/G2, with on_host_maintenance
TERMINATE as GPUs require. Operations are waited on with our own Zone/GlobalOperationsClient from the
client factory (``ExtendedOperation.result()`` would poll the real Google host whatever the
endpoint), and the insert carries a requestId derived from the launch, so a retried call after a
lost answer is deduplicated by Compute Engine.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from provision.clouds import _clients, firstboot
from provision.clouds.base import (
    TAG_LAUNCH,
    TAG_NODE,
    TAG_OWNER,
    TAG_ROLE,
    AttemptError,
    FailureKind,
    Journal,
    Placement,
    Plan,
    Resource,
    is_launch_id,
    poll,
    translate_errors,
    unexpected,
)
from provision.errors import CredentialsError, ProvisionError
from provision.plan import role_of

#: catalog accelerator name -> Compute Engine accelerator type for N1 attachments.
#: source: cloud.google.com/compute/docs/gpus (GPU models for N1), as_of 2026-11
ATTACHED_GPUS = {
    "T4": "nvidia-tesla-t4",
    "V100": "nvidia-tesla-v100",
    "P100": "nvidia-tesla-p100",
    "P4": "nvidia-tesla-p4",
}
#: machine families whose GPUs come with the machine type (no guestAccelerators)
BUILT_IN_FAMILIES = ("a2-", "a3-", "a4-", "g2-", "g4-")

_CAPACITY = {
    "ZONE_RESOURCE_POOL_EXHAUSTED",
    "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
    "RESOURCE_POOL_EXHAUSTED",
    "STOCKOUT",
}
_QUOTA = {"QUOTA_EXCEEDED", "quotaExceeded"}
_THROTTLE = {"RESOURCE_OPERATION_RATE_EXCEEDED", "rateLimitExceeded", "userRateLimitExceeded"}
_UNSUPPORTED = {"UNSUPPORTED_OPERATION", "RESOURCE_NOT_FOUND", "notFound"}
QUOTA_HINT = (
    "see the region's quotas with `gcloud compute regions describe {region}` and ask for more at "
    "https://console.cloud.google.com/iam-admin/quotas"
)


def request_id(launch_id: str, what: str) -> str:
    """A stable UUID per launch and call: Compute Engine ignores a repeated requestId."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlrig:{launch_id}:{what}"))


def net_tag(launch_id: str) -> str:
    return f"mlrig-{launch_id}"


def firewall_name(launch_id: str) -> str:
    return f"mlrig-{launch_id}-ssh"


def nodes_firewall_name(launch_id: str) -> str:
    return f"mlrig-{launch_id}-nodes"


def policy_name(launch_id: str) -> str:
    return f"mlrig-{launch_id}-compact"


#: the instance metadata key a cluster's first boot reads its node list from (bootstrap.sh)
NODES_KEY = "mlrig-nodes"


def node_name(plan: Plan, index: int) -> str:
    """The head is called like the launch; worker K is NAME-K (GCE names are ids)."""
    return plan.name if index == 0 else f"{plan.name}-{index}"


_FW_DESCRIPTION = re.compile(r"^mlrig launch=(?P<launch>[0-9a-f]{12}) owner=(?P<owner>[a-z0-9_-]+) name=\S+$")


def firewall_description(plan: Plan) -> str:
    """Firewall rules have no labels: the owner and launch go into the description, checked on read."""
    return f"mlrig launch={plan.launch_id} owner={plan.owner} name={plan.name}"


def translate(exc: Exception, service: str = "Google Cloud") -> ProvisionError:
    """Any google-cloud failure (or a malformed answer) as the error to show; never raises."""
    try:
        from google.api_core import exceptions as gexc
    except ImportError:  # pragma: no cover - the driver could not have run without it
        return unexpected(service, exc)
    if isinstance(exc, gexc.GoogleAPICallError):
        code = int(getattr(exc, "code", 0) or 0)
        message = str(getattr(exc, "message", exc))
        if code == 401 or (code == 403 and "quota" not in message.lower()):
            return CredentialsError(f"{service} refused the call: {message}", hint=_clients.GCP_HINT)
        return ProvisionError(f"{service} answered HTTP {code}: {message}"[:400])
    if isinstance(exc, (gexc.RetryError, OSError, ConnectionError)):
        return ProvisionError(f"{service} did not answer: {exc}")
    if isinstance(exc, ValueError):  # JSON the client could not parse (json_format.ParseError is one)
        return ProvisionError(
            f"{service} answered with something that is not a valid API response",
            hint="run the command again; a proxy or endpoint override may be mangling answers",
        )
    return unexpected(service, exc)


def classify_codes(codes: list[str], message: str, region: str) -> AttemptError:
    """Operation error codes (or HTTP error reasons) -> AttemptError."""
    first = codes[0] if codes else "UNKNOWN"
    if any(c in _CAPACITY for c in codes) or (
        "exhausted" in message.lower() and "quota" not in message.lower()
    ):
        return AttemptError(FailureKind.CAPACITY, first, message)
    if any(c in _QUOTA for c in codes) or "quota" in message.lower():
        return AttemptError(FailureKind.QUOTA, first, message, hint=QUOTA_HINT.format(region=region))
    if any(c in _THROTTLE for c in codes):
        return AttemptError(FailureKind.THROTTLE, first, message)
    if any(c in _UNSUPPORTED for c in codes) or "not available" in message or "not found" in message.lower():
        return AttemptError(FailureKind.UNSUPPORTED, first, message)
    return AttemptError(FailureKind.FATAL, first, message)


def classify_http(exc: Any, region: str) -> ProvisionError:
    """A google.api_core exception from a create call -> AttemptError (or CredentialsError).
    Returns, never raises."""
    code = int(getattr(exc, "code", 0) or 0)
    message = str(getattr(exc, "message", exc))
    reasons = [str(e.get("reason")) for e in (getattr(exc, "errors", None) or []) if isinstance(e, dict)]
    if code == 401 or (
        code == 403 and not any(r in _QUOTA for r in reasons) and "quota" not in message.lower()
    ):
        return CredentialsError(f"Google Cloud refused the call: {message}", hint=_clients.GCP_HINT)
    if code in (429, 503) and not reasons:
        reasons = ["rateLimitExceeded"] if "exhausted" not in message.lower() else ["RESOURCE_POOL_EXHAUSTED"]
    if code == 404:
        reasons = reasons or ["notFound"]
    return classify_codes(reasons or [f"HTTP {code}"], message, region)


def call_api(fn: Any, *args: Any, timeout: float, service: str, denied_is_auth: bool, **kw: Any) -> Any:
    """Call a google-cloud method with our timeout; refused credentials and silence become one-line errors.

    With ``denied_is_auth`` a 403 that is not about quota is a credentials problem too (Compute
    Engine); the TPU driver passes False and leaves 403s to its create-error classifier.
    """
    from google.api_core import exceptions as gexc

    refused = (gexc.Unauthenticated, gexc.PermissionDenied) if denied_is_auth else (gexc.Unauthenticated,)
    try:
        return fn(*args, timeout=timeout, **kw)
    except refused as exc:
        if denied_is_auth and "quota" in str(exc).lower():
            raise
        raise CredentialsError(
            f"Google Cloud refused the call: {exc.message}", hint=_clients.GCP_HINT
        ) from None
    except (gexc.RetryError, OSError, ConnectionError) as exc:
        raise ProvisionError(f"{service} did not answer: {exc}") from None


def launched(kind: str, plan: Plan, placement: Placement, state: str, index: int = 0) -> Resource:
    """Node ``index`` as a create call has just made it, before its first describe (Google ids are
    names)."""
    name = node_name(plan, index)
    return Resource(
        "gcp",
        kind,
        placement.region,
        name,
        zone=placement.zone,
        name=name,
        launch_id=plan.launch_id,
        state=state,
        instance_type=plan.instance_type,
        spot=placement.spot,
        node_index=index,
        role=role_of(index),
    )


def adopt_on_conflict(
    found: Resource | None, journal: Journal, row: int, refusal: AttemptError, note: str
) -> Resource:
    """A 409 on create: the launch's own machine (from an earlier attempt) is adopted.

    The name is the launch's, so a machine of that name that is not ours (``found`` is None) is
    fatal: ``note`` goes to the journal and ``refusal`` is raised.
    """
    if found is None:
        journal.failed(row, note)
        raise refusal from None
    journal.created(row, found.id)
    return found


@translate_errors(translate)
class GcpProvider:
    """Compute Engine VMs with GPUs."""

    cloud = "gcp"

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._clients: dict[str, Any] = {}
        self._cache: dict[str, Any] = {}
        self._firewall_done = False
        self._nodes_rule_done = False
        #: region -> the launch's placement policy there
        self._policy: dict[str, str] = {}

    def _c(self, kind: str) -> Any:
        if kind not in self._clients:
            self._clients[kind] = _clients.gcp_client(self.settings, kind)
        return self._clients[kind]

    @cached_property
    def project(self) -> str:
        return _clients.gcp_project(self.settings)

    def _api(self, fn: Any, *args: Any, **kw: Any) -> Any:
        return call_api(
            fn, *args, timeout=self.settings.api_timeout, service="Google Cloud", denied_is_auth=True, **kw
        )

    def _wait(self, op: Any, zone: str | None, region: str | None = None) -> Any:
        """Wait on a Compute operation with our own operations client (keeps the endpoint)."""
        from google.cloud import compute_v1

        deadline = time.monotonic() + self.settings.launch_timeout
        while op.status != compute_v1.Operation.Status.DONE:
            if time.monotonic() > deadline:
                raise ProvisionError(
                    f"operation {op.name} did not finish within {self.settings.launch_timeout:g}s"
                )
            if zone:
                op = self._api(
                    self._c("ZoneOperationsClient").wait, project=self.project, zone=zone, operation=op.name
                )
            elif region:
                op = self._api(
                    self._c("RegionOperationsClient").wait,
                    project=self.project,
                    region=region,
                    operation=op.name,
                )
            else:
                op = self._api(
                    self._c("GlobalOperationsClient").wait, project=self.project, operation=op.name
                )
        return op

    @staticmethod
    def _op_error(op: Any) -> tuple[list[str], str] | None:
        errors = list(op.error.errors) if op.error and op.error.errors else []
        if not errors:
            return None
        return [e.code for e in errors], "; ".join(e.message for e in errors)

    def _zones(self) -> dict[str, list[str]]:
        """region -> its zones that are up (asked once)."""
        if "zones" not in self._cache:
            out: dict[str, list[str]] = {}
            for z in self._api(self._c("ZonesClient").list, project=self.project):
                if z.status in ("UP", ""):
                    out.setdefault(z.region.rsplit("/", 1)[-1], []).append(z.name)
            self._cache["zones"] = {r: sorted(zs) for r, zs in out.items()}
        return dict(self._cache["zones"])

    # ------------------------------------------------------------------ Provider
    def fresh(self) -> GcpProvider:
        return type(self)(self.settings)

    def check_credentials(self) -> None:
        _clients.load_sdk("gcp")  # before anything is recorded: an interrupted import costs nothing
        _ = self.project

    def all_regions(self) -> list[str]:
        return sorted(self._zones())

    def zones(self, plan: Plan, region: str) -> list[str]:
        return self.region_zones(region)

    def region_zones(self, region: str) -> list[str]:
        return self._zones().get(region, [])

    def prepare(self, plan: Plan, region: str, journal: Journal) -> None:
        """A global firewall rule: tcp/22 from the caller only, to this launch's network tag. With
        more than one node, a second rule lets the nodes (that tag) reach each other on every port,
        and a compact placement policy in ``region`` keeps them close."""
        from google.cloud import compute_v1

        tag = net_tag(plan.launch_id)
        if not self._firewall_done:
            self._firewall_rule(
                plan,
                journal,
                firewall_name(plan.launch_id),
                "firewall rule for SSH",
                allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=["22"])],
                source_ranges=[plan.ssh_cidr or ""],
            )
            self._firewall_done = True
        if plan.nodes > 1 and not self._nodes_rule_done:
            self._firewall_rule(
                plan,
                journal,
                nodes_firewall_name(plan.launch_id),
                "firewall rule between the nodes",
                allowed=[compute_v1.Allowed(I_p_protocol="all")],
                source_tags=[tag],
            )
            self._nodes_rule_done = True
        if plan.nodes > 1 and region not in self._policy:
            self._placement_policy(plan, region, journal)

    def _create_side(
        self, plan: Plan, journal: Journal, where: Resource, *, what: str, rid: str, insert: Callable[[], Any]
    ) -> None:
        """A journalled create of a launch's side resource (``where`` names it): the intent first,
        ``insert()`` (which sends the request and waits for its operation), then the outcome. A 409
        is adopted only when the existing resource is provably this launch's."""
        from google.api_core import exceptions as gexc

        row = journal.intent(where.kind, where.region, None, where.id, rid)
        try:
            op = insert()
        except gexc.Conflict:
            # created by an earlier attempt of this same launch, or somebody else's of that name
            if not self.refresh(where).owned_by(plan.owner or "", plan.launch_id):
                journal.failed(row, f"name taken by a {what} that is not ours")
                raise ProvisionError(f"a {what} named {where.id} exists and is not this launch's") from None
            op = None
        except gexc.GoogleAPICallError as exc:
            journal.failed(row, str(exc))
            raise ProvisionError(f"could not create the {what} {where.id}: {exc.message}") from None
        err = self._op_error(op) if op is not None else None
        if err:
            journal.failed(row, err[1])
            raise ProvisionError(f"could not create the {what} {where.id}: {err[1]}")
        journal.created(row, where.id)

    def _firewall_rule(self, plan: Plan, journal: Journal, name: str, what: str, **fields: Any) -> None:
        """One described firewall rule to the launch's network tag."""
        from google.cloud import compute_v1

        fw = compute_v1.Firewall(
            name=name,
            network="global/networks/default",
            direction="INGRESS",
            priority=1000,
            target_tags=[net_tag(plan.launch_id)],
            description=firewall_description(plan),
            **fields,
        )
        rid = request_id(plan.launch_id, "firewall" if name == firewall_name(plan.launch_id) else name)

        def insert() -> Any:
            request = compute_v1.InsertFirewallRequest(
                project=self.project, firewall_resource=fw, request_id=rid
            )
            return self._wait(self._api(self._c("FirewallsClient").insert_unary, request=request), None)

        where = Resource("gcp", "firewall", "global", name, name=name)
        self._create_side(plan, journal, where, what=what, rid=rid, insert=insert)

    def _placement_policy(self, plan: Plan, region: str, journal: Journal) -> None:
        """A compact (COLLOCATED) group placement policy for the launch's nodes in ``region``."""
        from google.cloud import compute_v1

        name = policy_name(plan.launch_id)
        body = compute_v1.ResourcePolicy(
            name=name,
            description=firewall_description(plan),
            group_placement_policy=compute_v1.ResourcePolicyGroupPlacementPolicy(
                collocation="COLLOCATED", vm_count=plan.nodes
            ),
        )
        rid = request_id(plan.launch_id, f"policy:{region}")

        def insert() -> Any:
            request = compute_v1.InsertResourcePolicyRequest(
                project=self.project, region=region, resource_policy_resource=body, request_id=rid
            )
            op = self._api(self._c("ResourcePoliciesClient").insert_unary, request=request)
            return self._wait(op, None, region=region)

        where = Resource("gcp", "resource_policy", region, name, name=name)
        self._create_side(plan, journal, where, what="placement policy", rid=rid, insert=insert)
        self._policy[region] = f"projects/{self.project}/regions/{region}/resourcePolicies/{name}"

    def _image(self, plan: Plan) -> str:
        if plan.image:
            return plan.image
        img = self._api(
            self._c("ImagesClient").get_from_family,
            project=self.settings.gcp_image_project,
            family=self.settings.gcp_image_family,
        )
        return str(img.self_link)

    def find(self, plan: Plan, region: str) -> list[Resource]:
        out = []
        for res in self._list_instances(f'labels.{TAG_LAUNCH} = "{plan.launch_id}"'):
            # the server's filter= is a hint: labels are re-checked here on every item
            mine = res.owned_by(plan.owner or "", plan.launch_id) and res.region == region
            if mine and res.alive and res.state not in ("STOPPING", "TERMINATED"):
                out.append(res)
        return sorted(out, key=lambda r: r.node_index or 0)

    def instance_body(self, plan: Plan, placement: Placement, image: str, index: int = 0) -> Any:
        """The Instance resource of node ``index`` of ``plan`` in ``placement`` (pure but for the
        image URL and the region's placement policy)."""
        from google.cloud import compute_v1

        zone = placement.zone
        labels = plan.node_tags(index)
        pub = Path(f"{plan.key_path}.pub").read_text().strip() if plan.key_path else None
        items = [
            compute_v1.Items(
                key="startup-script",
                value=firstboot.render(plan, self.settings.envcheck_spec, self.settings.gcp_ssh_user),
            )
        ]
        if pub:
            items.append(compute_v1.Items(key="ssh-keys", value=f"{self.settings.gcp_ssh_user}:{pub}"))
        sched = compute_v1.Scheduling(
            on_host_maintenance="TERMINATE",
            automatic_restart=not placement.spot,
            provisioning_model="SPOT" if placement.spot else "STANDARD",
        )
        if placement.spot or plan.autostop_minutes:
            sched.instance_termination_action = "DELETE"
        if plan.autostop_minutes:
            sched.max_run_duration = compute_v1.Duration(seconds=60 * plan.autostop_minutes)
        inst = compute_v1.Instance(
            name=node_name(plan, index),
            machine_type=f"zones/{zone}/machineTypes/{plan.instance_type}",
            labels=labels,
            tags=compute_v1.Tags(items=[net_tag(plan.launch_id)]),
            disks=[
                compute_v1.AttachedDisk(
                    boot=True,
                    auto_delete=True,
                    initialize_params=compute_v1.AttachedDiskInitializeParams(
                        source_image=image,
                        disk_size_gb=plan.disk_gb,
                        labels=labels,
                        disk_type=f"zones/{zone}/diskTypes/pd-balanced",
                    ),
                )
            ],
            network_interfaces=[
                compute_v1.NetworkInterface(
                    network="global/networks/default",
                    access_configs=[compute_v1.AccessConfig(name="External NAT", type_="ONE_TO_ONE_NAT")],
                )
            ],
            metadata=compute_v1.Metadata(items=items),
            scheduling=sched,
        )
        if placement.region in self._policy:
            inst.resource_policies = [self._policy[placement.region]]
        if not plan.instance_type.startswith(BUILT_IN_FAMILIES):
            gpu = ATTACHED_GPUS.get(plan.accelerator.split()[0].upper())
            if gpu is None:
                raise ProvisionError(f"{plan.accelerator} cannot be attached to {plan.instance_type}")
            inst.guest_accelerators = [
                compute_v1.AcceleratorConfig(
                    accelerator_type=f"zones/{zone}/acceleratorTypes/{gpu}",
                    accelerator_count=plan.accelerator_count,
                )
            ]
        return inst

    def create(self, plan: Plan, placement: Placement, attempt: int, journal: Journal) -> list[Resource]:
        """The nodes one insert at a time, all in ``placement``'s zone under the launch's compact
        policy; when one is refused, those already made are deleted before the refusal leaves (all
        or none: a partial cluster is never returned)."""
        image = self._image(plan)
        made: list[Resource] = []
        try:
            for k in range(plan.nodes):
                made.append(self._create_one(plan, placement, attempt, journal, image=image, k=k))
        except ProvisionError:
            for res in reversed(made):
                self.delete(res)
            raise
        return made

    def _create_one(
        self, plan: Plan, placement: Placement, attempt: int, journal: Journal, *, image: str, k: int
    ) -> Resource:
        from google.api_core import exceptions as gexc
        from google.cloud import compute_v1

        zone = placement.zone
        name = node_name(plan, k)
        body = self.instance_body(plan, placement, image, k)
        rid = request_id(plan.launch_id, f"insert:{attempt}" if k == 0 else f"insert:{attempt}:{k}")
        row = journal.intent("instance", placement.region, zone, name, rid, node_index=k, role=role_of(k))
        try:
            op = self._c("InstancesClient").insert_unary(
                request=compute_v1.InsertInstanceRequest(
                    project=self.project, zone=zone, instance_resource=body, request_id=rid
                ),
                timeout=self.settings.api_timeout,
            )
        except (OSError, gexc.DeadlineExceeded) as exc:
            # the answer was lost; the insert may have happened: look before deciding
            found = [r for r in self.find(plan, placement.region) if r.id == name]
            if found:
                journal.created(row, found[0].id)
                return found[0]
            journal.failed(row, f"no answer: {exc}")
            raise AttemptError(FailureKind.UNKNOWN_OUTCOME, "Timeout", str(exc)) from None
        except gexc.Conflict:
            return adopt_on_conflict(
                next((r for r in self.find(plan, placement.region) if r.id == name), None),
                journal,
                row,
                AttemptError(
                    FailureKind.FATAL,
                    "alreadyExists",
                    f"an instance named {name} already exists in {zone}",
                ),
                note="name taken by a machine that is not ours",
            )
        except gexc.GoogleAPICallError as exc:
            journal.failed(row, str(exc)[:300])
            raise classify_http(exc, placement.region) from None
        op = self._wait(op, zone)
        err = self._op_error(op)
        if err:
            journal.failed(row, f"{err[0][0]}: {err[1]}")
            raise classify_codes(err[0], err[1], placement.region)
        journal.created(row, name)
        return launched("instance", plan, placement, "PROVISIONING", index=k)

    def _get(self, res: Resource) -> Any | None:
        from google.api_core import exceptions as gexc

        try:
            return self._api(
                self._c("InstancesClient").get, project=self.project, zone=res.zone, instance=res.id
            )
        except gexc.NotFound:
            return None

    def wait_running(self, res: Resource, timeout: float) -> Resource:
        def check() -> Resource | None:
            inst = self._get(res)
            if inst is None:
                raise ProvisionError(f"instance {res.id} disappeared while starting (preempted or deleted)")
            if inst.status in ("STOPPING", "STOPPED", "TERMINATED", "SUSPENDED"):
                raise ProvisionError(f"instance {res.id} is {inst.status} while starting")
            return _instance(inst) if inst.status == "RUNNING" else None

        return poll(check, timeout=timeout, interval=self.settings.poll_interval, what=f"{res.id} to run")

    def announce(self, plan: Plan, machines: list[Resource], node_list: str) -> bool:
        """The ``mlrig-nodes`` metadata key on every node (the first boot reads it from the metadata
        server), set with the instance's current fingerprint as Compute Engine requires."""
        from google.cloud import compute_v1

        for m in machines:
            inst = self._get(m)
            if inst is None:
                raise ProvisionError(f"instance {m.id} disappeared before it was told about the others")
            items = [i for i in inst.metadata.items if i.key != NODES_KEY]
            items.append(compute_v1.Items(key=NODES_KEY, value=node_list))
            op = self._api(
                self._c("InstancesClient").set_metadata_unary,
                project=self.project,
                zone=m.zone,
                instance=m.id,
                metadata_resource=compute_v1.Metadata(fingerprint=inst.metadata.fingerprint, items=items),
            )
            err = self._op_error(self._wait(op, m.zone))
            if err:
                raise ProvisionError(f"could not set the node list on {m.id}: {err[1]}")
        return True

    def delete(self, res: Resource) -> bool:
        from google.api_core import exceptions as gexc

        try:
            if res.kind == "instance":
                from google.cloud import compute_v1

                op = self._api(
                    self._c("InstancesClient").delete_unary,
                    request=compute_v1.DeleteInstanceRequest(
                        project=self.project,
                        zone=res.zone,
                        instance=res.id,
                        request_id=request_id(res.launch_id or res.id, f"delete:{res.zone}/{res.id}"),
                    ),
                )
                self._wait(op, res.zone)
                return True
            if res.kind == "firewall":
                op = self._api(self._c("FirewallsClient").delete_unary, project=self.project, firewall=res.id)
                self._wait(op, None)
                return True
            if res.kind == "resource_policy":
                op = self._api(
                    self._c("ResourcePoliciesClient").delete_unary,
                    project=self.project,
                    region=res.region,
                    resource_policy=res.id,
                )
                self._wait(op, None, region=res.region)
                return True
        except gexc.NotFound:
            return False
        except gexc.GoogleAPICallError as exc:
            raise ProvisionError(f"could not delete {res.kind} {res.id}: {exc.message}") from None
        raise ProvisionError(f"gcp cannot delete a {res.kind}")

    def _list_instances(self, flt: str) -> list[Resource]:
        from google.cloud import compute_v1

        pager = self._api(
            self._c("InstancesClient").aggregated_list,
            request=compute_v1.AggregatedListInstancesRequest(project=self.project, filter=flt),
        )
        out = []
        for _scope, scoped in pager:
            out += [_instance(i) for i in scoped.instances]
        return out

    def list_firewalls(self) -> list[Resource]:
        """Firewall rules that carry an mlrig description (a name prefix proves nothing)."""
        rules = [_firewall(fw) for fw in self._api(self._c("FirewallsClient").list, project=self.project)]
        return [r for r in rules if r is not None]

    def list_tagged(self, regions: list[str]) -> list[Resource]:
        # aggregated: every zone at once; the label filter is re-checked on each item
        wanted = set(regions)
        instances = [
            r
            for r in self._list_instances(f"labels.{TAG_LAUNCH}:*")
            if r.launch_id is not None and (not wanted or r.region in wanted)
        ]
        return instances + self.list_firewalls() + self.list_policies(regions)

    def list_policies(self, regions: list[str]) -> list[Resource]:
        """Placement policies that carry an mlrig description, in ``regions`` (all when empty)."""
        out = []
        for region in regions or self.all_regions():
            listed = self._api(self._c("ResourcePoliciesClient").list, project=self.project, region=region)
            out += [r for r in (_policy(p, region) for p in listed) if r is not None]
        return out

    def refresh(self, res: Resource) -> Resource:
        from google.api_core import exceptions as gexc

        gone = Resource(res.cloud, res.kind, res.region, res.id, zone=res.zone, name=res.name, state="gone")
        if res.kind == "instance":
            inst = self._get(res)
            return gone if inst is None else _instance(inst)
        if res.kind == "resource_policy":
            try:
                pol = self._api(
                    self._c("ResourcePoliciesClient").get,
                    project=self.project,
                    region=res.region,
                    resource_policy=res.id,
                )
            except gexc.NotFound:
                return gone
            return _policy(pol, res.region) or Resource(
                "gcp", "resource_policy", res.region, pol.name, name=pol.name, state="exists"
            )
        if res.kind == "firewall":
            try:
                fw = self._api(self._c("FirewallsClient").get, project=self.project, firewall=res.id)
            except gexc.NotFound:
                return gone
            # a rule without our description is somebody else's: shown with no owner
            return _firewall(fw) or Resource(
                "gcp", "firewall", "global", fw.name, name=fw.name, state="exists"
            )
        return res


def _policy(pol: Any, region: str) -> Resource | None:
    """An mlrig placement policy: description and name must agree, else None (somebody else's)."""
    m = _FW_DESCRIPTION.match(pol.description or "")
    if m is None or not is_launch_id(m["launch"]) or pol.name != policy_name(m["launch"]):
        return None
    return Resource(
        "gcp",
        "resource_policy",
        region,
        pol.name,
        name=pol.name,
        launch_id=m["launch"],
        owner=m["owner"],
        state="exists",
    )


def _int(text: str | None) -> int | None:
    """A node index as tagged (anything else is no index)."""
    return int(text) if text is not None and text.isdigit() and len(text) < 6 else None


def _firewall(fw: Any) -> Resource | None:
    """An mlrig firewall rule: description, name and target tag must all agree, else None."""
    m = _FW_DESCRIPTION.match(fw.description or "")
    if m is None or not is_launch_id(m["launch"]):
        return None
    launch = m["launch"]
    names = (firewall_name(launch), nodes_firewall_name(launch))
    if fw.name not in names or list(fw.target_tags) != [net_tag(launch)]:
        return None
    return Resource(
        "gcp", "firewall", "global", fw.name, name=fw.name, launch_id=launch, owner=m["owner"], state="exists"
    )


def _instance(inst: Any) -> Resource:
    zone = inst.zone.rsplit("/", 1)[-1]
    nics = list(inst.network_interfaces)
    public = None
    private = None
    if nics:
        private = nics[0].network_i_p or None
        acs = list(nics[0].access_configs)
        public = (acs[0].nat_i_p or None) if acs else None
    labels = dict(inst.labels)
    return Resource(
        cloud="gcp",
        kind="instance",
        region=zone.rsplit("-", 1)[0],
        id=inst.name,
        zone=zone,
        name=inst.name,
        launch_id=labels.get(TAG_LAUNCH),
        node_index=_int(labels.get(TAG_NODE)),
        role=labels.get(TAG_ROLE),
        owner=labels.get(TAG_OWNER),
        # a TERMINATED instance is stopped, not gone: its disk still exists and bills
        state="STOPPED" if inst.status == "TERMINATED" else inst.status,
        instance_type=inst.machine_type.rsplit("/", 1)[-1],
        spot=inst.scheduling.provisioning_model == "SPOT",
        public_ip=public,
        private_ip=private,
    )
