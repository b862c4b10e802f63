"""AWS driver (boto3): key pair, security group and one EC2 instance per launch, all tagged.

Only this module (and the client factory) touches boto3. Every create call is journalled before
it is sent; launches use a retry-free client and a ClientToken derived from the launch id. Every
method raises only ProvisionError (``translate`` maps what boto3 raises, malformed answers too),
and nothing found by a tag filter is used before its owner tag is re-checked here.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

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
    poll,
    translate_errors,
    translating,
    unexpected,
)
from provision.errors import CredentialsError, ProvisionError, UsageError
from provision.plan import role_of
from provision.settings import Settings

_T = TypeVar("_T")

#: EC2 vCPU quotas by instance family letter and market, as named in Service Quotas.
#: source: AWS Service Quotas console, service "Amazon Elastic Compute Cloud (Amazon EC2)",
#: as_of 2026-11 (the same codes SkyPilot's catalog uses).
_QUOTAS = {
    ("g", False): ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("g", True): ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("p", False): ("L-417A185B", "Running On-Demand P instances"),
    ("p", True): ("L-7212CCBC", "All P Spot Instance Requests"),
    ("std", False): ("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"),
    ("std", True): ("L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests"),
}

_CAPACITY = {
    "InsufficientInstanceCapacity",
    "InsufficientHostCapacity",
    "InsufficientCapacity",
    "InsufficientReservedInstanceCapacity",
    "InsufficientFreeAddressesInSubnet",
}
_UNSUPPORTED = {"Unsupported"}
_QUOTA = {"VcpuLimitExceeded", "InstanceLimitExceeded", "MaxSpotInstanceCountExceeded"}
_SPOT_PRICE = {"SpotMaxPriceTooLow"}
_THROTTLE = {
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ServiceUnavailable",
    "InternalError",
    "Unavailable",
}
_AUTH = {
    "AuthFailure",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "SignatureDoesNotMatch",
    "UnauthorizedOperation",
}


def quota_for(instance_type: str, spot: bool) -> tuple[str, str]:
    """(quota code, quota name) limiting ``instance_type`` in that market."""
    family = instance_type[:1].lower()
    key = family if family in ("g", "p") else "std"
    return _QUOTAS[(key, spot)]


def _code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__))


def _msg(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Message", exc))


class AwsApiError(ProvisionError):
    """EC2 refused a call; ``code`` is its error code (callers that expect one test it)."""

    def __init__(self, action: str, code: str, message: str) -> None:
        super().__init__(f"AWS refused {action}: {code}: {message}")
        self.code = code


def translate(exc: Exception) -> ProvisionError:
    """Any boto3/botocore failure (or a malformed answer) as the error to show; never raises."""
    try:
        import botocore.exceptions as bce
        from botocore.parsers import ResponseParserError
    except ImportError:  # pragma: no cover - the driver could not have run without it
        return unexpected("AWS", exc)
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        return CredentialsError("no usable AWS credentials found", hint=_clients.AWS_HINT)
    if isinstance(exc, bce.ClientError):
        code, msg = _code(exc), _msg(exc)
        if code in _AUTH:
            return CredentialsError(f"AWS refused the credentials: {code}: {msg}", hint=_clients.AWS_HINT)
        return AwsApiError(str(getattr(exc, "operation_name", "") or "the call"), code, msg)
    offline = (
        bce.EndpointConnectionError,
        bce.ConnectTimeoutError,
        bce.ReadTimeoutError,
        bce.ConnectionClosedError,
    )
    if isinstance(exc, offline):
        return ProvisionError(f"AWS did not answer: {exc}", hint="check the network or AWS_ENDPOINT_URL")
    if isinstance(exc, ResponseParserError):
        return ProvisionError(
            "AWS answered with something that is not a valid API response",
            hint="run the command again; a proxy or endpoint override may be mangling answers",
        )
    return unexpected("AWS", exc)


def classify(exc: Exception, plan: Plan, placement: Placement, vcpus: int | None = None) -> ProvisionError:
    """A RunInstances refusal as an AttemptError whose kind drives failover (refused credentials as
    CredentialsError, which stops the launch). Returns, never raises."""
    code, msg = _code(exc), _msg(exc)
    if code in _CAPACITY:
        return AttemptError(FailureKind.CAPACITY, code, msg)
    if code in _UNSUPPORTED or (code == "InvalidParameterValue" and "Availability Zone" in msg):
        return AttemptError(FailureKind.UNSUPPORTED, code, msg)
    if code in _QUOTA:
        qcode, qname = quota_for(plan.instance_type, placement.spot)
        want = f" --desired-value {vcpus}" if vcpus else " --desired-value N"
        return AttemptError(
            FailureKind.QUOTA,
            code,
            f"{msg} (quota {qcode} '{qname}' in {placement.region})",
            hint=(
                f"ask for more: aws service-quotas request-service-quota-increase --service-code ec2 "
                f"--quota-code {qcode}{want} --region {placement.region}"
            ),
        )
    if code in _SPOT_PRICE:
        return AttemptError(FailureKind.SPOT_PRICE, code, msg)
    if code in _THROTTLE:
        return AttemptError(FailureKind.THROTTLE, code, msg)
    if code in _AUTH:
        return CredentialsError(f"AWS refused the credentials: {code}: {msg}", hint=_clients.AWS_HINT)
    return AttemptError(FailureKind.FATAL, code, msg)


def _nodes_rule(group_id: str) -> dict[str, Any]:
    """Every protocol and port from members of the same security group: the launch's nodes reach
    each other (NCCL, Gloo, Ray, EFA need all ports), and nothing else does."""
    return {
        "IpProtocol": "-1",
        "UserIdGroupPairs": [{"GroupId": group_id, "Description": "mlrig nodes of this launch"}],
    }


def _ssh_rule(cidr: str) -> dict[str, Any]:
    """The tcp/22 ingress permission for ``cidr`` (IPv4 or IPv6)."""
    rule: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}
    if ipaddress.ip_network(cidr, strict=False).version == 6:
        rule["Ipv6Ranges"] = [{"CidrIpv6": cidr, "Description": "mlrig ssh"}]
    else:
        rule["IpRanges"] = [{"CidrIp": cidr, "Description": "mlrig ssh"}]
    return rule


@translate_errors(translate)
class AwsProvider:
    """EC2 through boto3."""

    cloud = "aws"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[tuple[str, str, bool], Any] = {}
        self._lock = threading.Lock()
        self._sg: dict[str, str] = {}
        self._key: dict[str, str] = {}
        self._pg: dict[str, str] = {}

    # ------------------------------------------------------------------ plumbing
    def _c(self, region: str, service: str = "ec2", launch: bool = False) -> Any:
        key = (region, service, launch)
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            client = _clients.aws_client(self.settings, service, region, launch=launch)
            with self._lock:
                client = self._clients.setdefault(key, client)
        return client

    def _call(self, fn: Any, **kw: Any) -> Any:
        """Call boto3; every failure leaves as a ProvisionError (a refusal as AwsApiError with its code)."""
        with translating(translate):
            return fn(**kw)

    @staticmethod
    def _per_region(regions: list[str], fn: Callable[[str], list[_T]]) -> list[_T]:
        """``fn`` for every region, a few at a time (``gc`` scans every region of the account)."""
        if len(regions) <= 2:
            return [x for region in regions for x in fn(region)]
        with ThreadPoolExecutor(max_workers=min(8, len(regions))) as pool:
            return [x for chunk in pool.map(fn, regions) for x in chunk]

    def _create(
        self,
        journal: Journal,
        fn: Any,
        params: dict[str, Any],
        *,
        kind: str,
        region: str,
        name: str,
        id_field: str,
        action: str,
    ) -> Any:
        """A journalled create of a launch's side resource: the intent is recorded before it is sent.

        The journal gets the answer's ``id_field`` (or ``name``); a refusal is journalled and raised
        as "could not ``action`` in REGION". Any other failure leaves the intent row open: the
        resource may exist, and its name (recorded with the intent) finds it.
        """
        row = journal.intent(kind, region, None, name, None)
        try:
            resp = self._call(fn, **params)
        except AwsApiError as exc:
            journal.failed(row, exc.code)
            raise ProvisionError(f"could not {action} in {region}: {exc.message}") from None
        journal.created(row, resp.get(id_field) or name)
        return resp

    def _tags(self, plan: Plan, resource_type: str) -> list[dict[str, Any]]:
        tags = [{"Key": k, "Value": v} for k, v in plan.tags().items()]
        tags.append({"Key": "Name", "Value": plan.name})
        return [{"ResourceType": resource_type, "Tags": tags}]

    @staticmethod
    def _names(plan: Plan) -> str:
        return f"mlrig-{plan.name}-{plan.launch_id[:8]}"

    @staticmethod
    def _ours(tags: list[dict[str, str]] | None, plan: Plan) -> bool:
        """A side resource found by the launch tag is adopted only with the owner tag re-checked."""
        return _tag(tags, TAG_LAUNCH) == plan.launch_id and _tag(tags, TAG_OWNER) == plan.owner

    # ------------------------------------------------------------------ Provider
    def fresh(self) -> AwsProvider:
        return type(self)(self.settings)

    def check_credentials(self) -> None:
        _clients.load_sdk("aws")  # before anything is recorded: an interrupted import costs nothing
        _clients.aws_check_credentials(self.settings)

    def all_regions(self) -> list[str]:
        resp = self._call(self._c(self.settings.aws_regions[0]).describe_regions)
        return sorted(r["RegionName"] for r in resp.get("Regions", []))

    def zones(self, plan: Plan, region: str) -> list[str]:
        ec2 = self._c(region)
        resp = self._call(
            ec2.describe_instance_type_offerings,
            LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": [plan.instance_type]}],
        )
        offered = {o["Location"] for o in resp.get("InstanceTypeOfferings", [])}
        azs = self._call(
            ec2.describe_availability_zones, Filters=[{"Name": "state", "Values": ["available"]}]
        )
        ordered = [z["ZoneName"] for z in azs.get("AvailabilityZones", [])]
        return [z for z in ordered if z in offered]

    def prepare(self, plan: Plan, region: str, journal: Journal) -> None:
        ec2 = self._c(region)
        name = self._names(plan)
        # --- key pair: the user's, or our public key imported under a tagged name
        if region not in self._key:
            if plan.key_name:
                try:
                    self._call(ec2.describe_key_pairs, KeyNames=[plan.key_name])
                except AwsApiError:
                    raise UsageError(f"key pair {plan.key_name!r} does not exist in {region}") from None
                self._key[region] = plan.key_name
            else:
                found = [
                    kp
                    for kp in self._call(
                        ec2.describe_key_pairs,
                        Filters=[{"Name": f"tag:{TAG_LAUNCH}", "Values": [plan.launch_id]}],
                    ).get("KeyPairs", [])
                    if self._ours(kp.get("Tags"), plan)
                ]
                if found:
                    self._key[region] = found[0]["KeyName"]
                else:
                    public = Path(str(plan.key_path) + ".pub").read_bytes()
                    self._create(
                        journal,
                        ec2.import_key_pair,
                        {
                            "KeyName": name,
                            "PublicKeyMaterial": public,
                            "TagSpecifications": self._tags(plan, "key-pair"),
                        },
                        kind="key_pair",
                        region=region,
                        name=name,
                        id_field="KeyPairId",
                        action="import the key pair",
                    )
                    self._key[region] = name
        # --- security group: SSH from one CIDR, in the default VPC
        if region in self._sg:
            return
        found = [
            sg
            for sg in self._call(
                ec2.describe_security_groups,
                Filters=[{"Name": f"tag:{TAG_LAUNCH}", "Values": [plan.launch_id]}],
            ).get("SecurityGroups", [])
            if self._ours(sg.get("Tags"), plan)
        ]
        if found:  # an earlier run of this launch made it, and may have died before opening SSH
            group_id = str(found[0]["GroupId"])
        else:
            vpcs = self._call(ec2.describe_vpcs, Filters=[{"Name": "is-default", "Values": ["true"]}])
            if not vpcs.get("Vpcs"):
                raise ProvisionError(
                    f"no default VPC in {region}",
                    hint=f"create one with `aws ec2 create-default-vpc --region {region}`",
                )
            resp = self._create(
                journal,
                ec2.create_security_group,
                {
                    "GroupName": name,
                    "VpcId": vpcs["Vpcs"][0]["VpcId"],
                    "Description": f"mlrig {plan.name}: SSH from {plan.ssh_cidr}",
                    "TagSpecifications": self._tags(plan, "security-group"),
                },
                kind="security_group",
                region=region,
                name=name,
                id_field="GroupId",
                action="create the security group",
            )
            group_id = str(resp["GroupId"])
        if not plan.ssh_cidr:
            raise ProvisionError("internal: the plan has no SSH CIDR")
        try:
            self._call(
                ec2.authorize_security_group_ingress,
                GroupId=group_id,
                IpPermissions=[_ssh_rule(plan.ssh_cidr)],
            )
        except AwsApiError as exc:
            if exc.code != "InvalidPermission.Duplicate":
                raise ProvisionError(f"could not open SSH in {group_id}: {exc.message}") from None
        if plan.nodes > 1:
            try:
                self._call(
                    ec2.authorize_security_group_ingress,
                    GroupId=group_id,
                    IpPermissions=[_nodes_rule(group_id)],
                )
            except AwsApiError as exc:
                if exc.code != "InvalidPermission.Duplicate":
                    raise ProvisionError(
                        f"could not let the nodes reach each other in {group_id}: {exc.message}"
                    ) from None
            self._placement_group(plan, region, journal)
        self._sg[region] = group_id

    def _placement_group(self, plan: Plan, region: str, journal: Journal) -> None:
        """A cluster placement group for the launch's nodes in ``region`` (journalled, tagged)."""
        from provision.cluster import capabilities

        if capabilities.cluster_placement(plan.instance_type).supported is False:
            return  # the table says this type cannot be placed in a cluster group: launch without
        ec2 = self._c(region)
        name = self._names(plan)
        current = self.refresh(Resource("aws", "placement_group", region, name, name=name))
        if current.alive:
            if not current.owned_by(plan.owner or "", plan.launch_id):
                raise ProvisionError(f"a placement group named {name} exists in {region} and is not ours")
            self._pg[region] = name
            return
        self._create(
            journal,
            ec2.create_placement_group,
            {
                "GroupName": name,
                "Strategy": "cluster",
                "TagSpecifications": self._tags(plan, "placement-group"),
            },
            kind="placement_group",
            region=region,
            name=name,
            id_field="GroupName",
            action="create the cluster placement group",
        )
        self._pg[region] = name

    def _image(self, plan: Plan, region: str) -> tuple[str, str]:
        """(AMI id, root device name): --image, or the DLAMI published in SSM."""
        ec2 = self._c(region)
        image = plan.image
        if not image:
            try:
                resp = self._call(self._c(region, "ssm").get_parameter, Name=self.settings.aws_ami_param)
            except AwsApiError as exc:
                raise ProvisionError(
                    f"cannot read the Deep Learning AMI id from SSM {self.settings.aws_ami_param} "
                    f"in {region}: {exc.code}",
                    hint="pass --image ami-... or set PROVISION_AWS_AMI_PARAM",
                ) from None
            image = resp["Parameter"]["Value"]
        try:
            imgs = self._call(ec2.describe_images, ImageIds=[image]).get("Images", [])
        except AwsApiError as exc:
            raise UsageError(f"AMI {image} is not usable in {region}: {exc.code}") from None
        if not imgs:
            raise UsageError(f"AMI {image} not found in {region}")
        return image, imgs[0].get("RootDeviceName") or "/dev/sda1"

    def _subnet(self, region: str, zone: str) -> str:
        """The default subnet of ``zone`` (the AZ of the launch follows from it)."""
        resp = self._call(
            self._c(region).describe_subnets,
            Filters=[
                {"Name": "availability-zone", "Values": [zone]},
                {"Name": "default-for-az", "Values": ["true"]},
            ],
        )
        subnets = resp.get("Subnets", [])
        if not subnets:
            raise AttemptError(FailureKind.UNSUPPORTED, "NoDefaultSubnet", f"no default subnet in {zone}")
        return str(subnets[0]["SubnetId"])

    def find(self, plan: Plan, region: str) -> list[Resource]:
        resp = self._call(
            self._c(region).describe_instances,
            Filters=[
                {"Name": f"tag:{TAG_LAUNCH}", "Values": [plan.launch_id]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ],
        )
        out = []
        for res in resp.get("Reservations", []):
            for inst in res.get("Instances", []):
                found = _instance(inst, region)
                if found.owned_by(plan.owner or "", plan.launch_id) and found.alive:
                    out.append(found)
        return sorted(out, key=lambda r: (r.node_index is None, r.node_index or 0, r.id))

    def _interfaces(self, plan: Plan, region: str, zone: str) -> list[dict[str, Any]]:
        """The primary interface: public address, the launch's group, EFA where the type has it."""
        nic: dict[str, Any] = {
            "DeviceIndex": 0,
            "SubnetId": self._subnet(region, zone),
            "Groups": [self._sg[region]],
            "AssociatePublicIpAddress": True,
            "DeleteOnTermination": True,
        }
        if plan.nodes > 1:
            from provision.cluster import capabilities

            if capabilities.efa(plan.instance_type).supported:
                nic["InterfaceType"] = "efa"
        return [nic]

    def create(self, plan: Plan, placement: Placement, attempt: int, journal: Journal) -> list[Resource]:
        """All ``plan.nodes`` machines in one RunInstances call (MinCount = MaxCount: EC2 launches all
        or none), in the launch's cluster placement group; then each gets its node index and role."""
        import botocore.exceptions as bce
        from botocore.parsers import ResponseParserError

        region, n = placement.region, plan.nodes
        image, root = self._image(plan, region)
        where: dict[str, Any] = {"AvailabilityZone": placement.zone}
        if region in self._pg:
            where["GroupName"] = self._pg[region]
        tags = self._tags(plan, "instance") if n > 1 else self._node_tags(plan, 0, "instance")
        params: dict[str, Any] = {
            "ImageId": image,
            "InstanceType": plan.instance_type,
            "MinCount": n,
            "MaxCount": n,
            "KeyName": self._key[region],
            "Placement": where,
            # a public address explicitly: default subnets do not always assign one, and SSH needs it
            "NetworkInterfaces": self._interfaces(plan, region, placement.zone),
            "BlockDeviceMappings": [
                {
                    "DeviceName": root,
                    "Ebs": {"VolumeSize": plan.disk_gb, "VolumeType": "gp3", "DeleteOnTermination": True},
                }
            ],
            "UserData": firstboot.render(plan, self.settings.envcheck_spec, self.settings.aws_ssh_user),
            "InstanceInitiatedShutdownBehavior": "terminate",
            # a cluster's nodes read their node list from their own tags (see announce)
            "MetadataOptions": {
                "HttpTokens": "required",
                "HttpEndpoint": "enabled",
                **({"InstanceMetadataTags": "enabled"} if n > 1 else {}),
            },
            "TagSpecifications": tags + self._tags(plan, "volume"),
            # idempotency on real EC2: a retried call with the same token returns the same instances
            "ClientToken": f"{plan.launch_id}-{attempt}",
        }
        if placement.spot:
            params["InstanceMarketOptions"] = {
                "MarketType": "spot",
                "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
            }
            params["TagSpecifications"] += self._tags(plan, "spot-instances-request")
        rows = [
            journal.intent(
                "instance",
                region,
                placement.zone,
                plan.name,
                params["ClientToken"],
                node_index=k,
                role=role_of(k),
            )
            for k in range(n)
        ]
        try:
            resp = self._c(region, launch=True).run_instances(**params)
            insts = sorted(resp["Instances"], key=lambda i: int(i.get("AmiLaunchIndex") or 0))
            ids = [str(i["InstanceId"]) for i in insts]
        except bce.ClientError as exc:
            for row in rows:
                journal.failed(row, f"{_code(exc)}: {_msg(exc)}")
            raise classify(exc, plan, placement, (plan.vcpus or 0) * n or None) from None
        except (
            bce.ReadTimeoutError,
            bce.ConnectionClosedError,
            bce.EndpointConnectionError,
            ResponseParserError,
            KeyError,
            IndexError,
            TypeError,
            ValueError,
        ) as exc:
            # the call may have created the machines: look for them by tag before deciding
            found = self.find(plan, region)
            if len(found) == n:
                return self._number(plan, region, found, rows, journal)
            for res in found:  # a partial answer is never kept: all or none
                self.delete(res)
            for row in rows:
                journal.failed(row, f"no usable answer: {type(exc).__name__}: {exc}"[:300])
            raise AttemptError(FailureKind.UNKNOWN_OUTCOME, "NoAnswer", str(exc)) from None
        machines = [_instance(i, region) for i in insts]
        for row, rid in zip(rows, ids, strict=False):
            journal.created(row, rid)
        if len(machines) != n:  # MinCount makes this impossible on EC2; never keep part of a cluster
            for res in machines:
                self.delete(res)
            raise AttemptError(
                FailureKind.CAPACITY, "PartialCluster", f"EC2 started {len(machines)} of {n} machines"
            )
        return self._number(plan, region, machines, rows, journal) if n > 1 else machines

    def _node_tags(self, plan: Plan, index: int, resource_type: str) -> list[dict[str, Any]]:
        tags = [{"Key": k, "Value": v} for k, v in plan.node_tags(index).items()]
        tags.append({"Key": "Name", "Value": plan.name if index == 0 else f"{plan.name}-{index}"})
        return [{"ResourceType": resource_type, "Tags": tags}]

    def _number(
        self, plan: Plan, region: str, machines: list[Resource], rows: list[int], journal: Journal
    ) -> list[Resource]:
        """Node index and role tags on each machine of a cluster (head = AMI launch index 0)."""
        out = []
        for k, (res, row) in enumerate(zip(machines, rows, strict=True)):
            journal.created(row, res.id)
            self._call(
                self._c(region).create_tags,
                Resources=[res.id],
                Tags=self._node_tags(plan, k, "instance")[0]["Tags"],
            )
            out.append(Resource(**{**res.__dict__, "node_index": k, "role": role_of(k), "name": plan.name}))
        return out

    def announce(self, plan: Plan, machines: list[Resource], node_list: str) -> bool:
        """The node list as tags on every node (``provision.cluster.deliver.as_tags``): launched with
        instance tags in their metadata, the nodes' first boot reads it there, no SSH needed."""
        from provision.cluster import deliver

        try:
            tags = deliver.as_tags(node_list)
        except (ValueError, ProvisionError) as exc:
            raise ProvisionError(f"the node list cannot be put in tags: {exc}") from None
        by_region: dict[str, list[str]] = {}
        for m in machines:
            by_region.setdefault(m.region, []).append(m.id)
        for region, ids in by_region.items():
            self._call(
                self._c(region).create_tags,
                Resources=ids,
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        return True

    def _describe(self, region: str, instance_id: str) -> dict[str, Any] | None:
        try:
            resp = self._call(self._c(region).describe_instances, InstanceIds=[instance_id])
        except AwsApiError as exc:
            if exc.code.startswith("InvalidInstanceID"):
                return None
            raise
        for res in resp.get("Reservations", []):
            for inst in res.get("Instances", []):
                return dict(inst)
        return None

    def wait_running(self, res: Resource, timeout: float) -> Resource:
        def check() -> Resource | None:
            inst = self._describe(res.region, res.id)
            if inst is None:
                raise ProvisionError(f"instance {res.id} disappeared while starting")
            state = inst["State"]["Name"]
            if state in ("shutting-down", "terminated", "stopped", "stopping"):
                reason = inst.get("StateReason", {}).get("Message", "no reason given")
                raise ProvisionError(f"instance {res.id} is {state} while starting: {reason}")
            return _instance(inst, res.region) if state == "running" else None

        return poll(check, timeout=timeout, interval=self.settings.poll_interval, what=f"{res.id} to run")

    def delete(self, res: Resource) -> bool:
        ec2 = self._c(res.region)
        interval = self.settings.poll_interval
        if res.kind == "instance":
            inst = self._describe(res.region, res.id)
            if inst is None or inst["State"]["Name"] == "terminated":
                return False
            self._call(ec2.terminate_instances, InstanceIds=[res.id])

            def gone() -> bool:
                cur = self._describe(res.region, res.id)
                return cur is None or cur["State"]["Name"] == "terminated"

            poll(gone, timeout=self.settings.launch_timeout, interval=interval, what=f"{res.id} to terminate")
            return True
        if res.kind == "security_group":
            deadline = time.monotonic() + self.settings.launch_timeout
            while True:
                try:
                    self._call(ec2.delete_security_group, GroupId=res.id)
                    return True
                except AwsApiError as exc:
                    if exc.code in ("InvalidGroup.NotFound", "InvalidGroupId.NotFound"):
                        return False
                    # an instance still terminating holds the group for a while
                    if exc.code != "DependencyViolation" or time.monotonic() > deadline:
                        raise ProvisionError(
                            f"could not delete security group {res.id}: {exc.message}"
                        ) from None
                time.sleep(interval)
        if res.kind == "key_pair":
            current = self.refresh(res)
            if not current.alive:
                return False
            self._call(ec2.delete_key_pair, KeyName=current.name)
            return True
        if res.kind == "placement_group":
            try:
                self._call(ec2.delete_placement_group, GroupName=res.name or res.id)
                return True
            except AwsApiError as exc:
                if exc.code == "InvalidPlacementGroup.Unknown":
                    return False
                raise ProvisionError(f"could not delete placement group {res.id}: {exc.message}") from None
        if res.kind == "volume":
            try:
                self._call(ec2.delete_volume, VolumeId=res.id)
                return True
            except AwsApiError as exc:
                if exc.code == "InvalidVolume.NotFound":
                    return False
                raise
        raise ProvisionError(f"aws cannot delete a {res.kind}")

    def list_tagged(self, regions: list[str]) -> list[Resource]:
        tag_filter = [{"Name": "tag-key", "Values": [TAG_LAUNCH]}]

        def region_list(region: str) -> list[Resource]:
            ec2 = self._c(region)
            out = [
                _instance(i, region)
                for r in self._call(ec2.describe_instances, Filters=tag_filter).get("Reservations", [])
                for i in r.get("Instances", [])
            ]
            out += [
                _security_group(sg, region)
                for sg in self._call(ec2.describe_security_groups, Filters=tag_filter).get(
                    "SecurityGroups", []
                )
            ]
            out += [
                _key_pair(kp, region)
                for kp in self._call(ec2.describe_key_pairs, Filters=tag_filter).get("KeyPairs", [])
            ]
            out += [
                _placement_group(pg, region)
                for pg in self._call(ec2.describe_placement_groups, Filters=tag_filter).get(
                    "PlacementGroups", []
                )
            ]
            # a detached volume bills on its own; attached ones go with their instance
            out += [
                _volume(v, region)
                for v in self._call(ec2.describe_volumes, Filters=tag_filter).get("Volumes", [])
                if v.get("State") == "available"
            ]
            return out

        return self._per_region(regions, region_list)

    def refresh(self, res: Resource) -> Resource:
        ec2 = self._c(res.region)
        gone = Resource(res.cloud, res.kind, res.region, res.id, zone=res.zone, name=res.name, state="gone")
        if res.kind == "instance":
            inst = self._describe(res.region, res.id)
            return gone if inst is None else _instance(inst, res.region)
        try:
            if res.kind == "security_group":
                # an intent whose answer was lost knows only the group's name
                by = (
                    {"GroupIds": [res.id]}
                    if res.id.startswith("sg-")
                    else {"Filters": [{"Name": "group-name", "Values": [res.name or res.id]}]}
                )
                found = self._call(ec2.describe_security_groups, **by).get("SecurityGroups", [])
                return _security_group(found[0], res.region) if found else gone
            if res.kind == "key_pair":
                keys = self._call(ec2.describe_key_pairs, KeyNames=[res.name or res.id]).get("KeyPairs", [])
                return _key_pair(keys[0], res.region) if keys else gone
            if res.kind == "volume":
                vols = self._call(ec2.describe_volumes, VolumeIds=[res.id]).get("Volumes", [])
                return _volume(vols[0], res.region) if vols else gone
            if res.kind == "placement_group":
                pgs = self._call(ec2.describe_placement_groups, GroupNames=[res.name or res.id]).get(
                    "PlacementGroups", []
                )
                return _placement_group(pgs[0], res.region) if pgs else gone
        except AwsApiError as exc:
            if exc.code.endswith((".NotFound", ".Malformed", ".Unknown")):
                return gone
            raise
        return res


def _tag(tags: list[dict[str, str]] | None, key: str) -> str | None:
    for t in tags or []:
        if t.get("Key") == key:
            return t.get("Value")
    return None


def _index(text: str | None) -> int | None:
    """A node index as tagged (anything else is no index)."""
    return int(text) if text is not None and text.isdigit() and len(text) < 6 else None


def _tagged(kind: str, region: str, rid: str, tags: list[dict[str, str]] | None, **kw: Any) -> Resource:
    """A listed side resource with the launch id and owner it is tagged with (ownership is checked
    by the caller, on these values)."""
    return Resource(
        "aws", kind, region, rid, launch_id=_tag(tags, TAG_LAUNCH), owner=_tag(tags, TAG_OWNER), **kw
    )


def _security_group(sg: dict[str, Any], region: str) -> Resource:
    return _tagged(
        "security_group", region, sg["GroupId"], sg.get("Tags"), name=sg.get("GroupName"), state="exists"
    )


def _key_pair(kp: dict[str, Any], region: str) -> Resource:
    rid = kp.get("KeyPairId") or kp["KeyName"]
    return _tagged("key_pair", region, rid, kp.get("Tags"), name=kp["KeyName"], state="exists")


def _placement_group(pg: dict[str, Any], region: str) -> Resource:
    state = "gone" if pg.get("State") == "deleted" else "exists"
    return _tagged(
        "placement_group", region, pg["GroupName"], pg.get("Tags"), name=pg["GroupName"], state=state
    )


def _volume(v: dict[str, Any], region: str) -> Resource:
    return _tagged(
        "volume", region, v["VolumeId"], v.get("Tags"), zone=v.get("AvailabilityZone"), state=v.get("State")
    )


def _instance(inst: dict[str, Any], region: str) -> Resource:
    launched = inst.get("LaunchTime")
    return Resource(
        cloud="aws",
        kind="instance",
        region=region,
        id=inst["InstanceId"],
        zone=inst.get("Placement", {}).get("AvailabilityZone"),
        name=_tag(inst.get("Tags"), "Name"),
        launch_id=_tag(inst.get("Tags"), TAG_LAUNCH),
        owner=_tag(inst.get("Tags"), TAG_OWNER),
        node_index=_index(_tag(inst.get("Tags"), TAG_NODE)),
        role=_tag(inst.get("Tags"), TAG_ROLE),
        state=inst.get("State", {}).get("Name"),
        instance_type=inst.get("InstanceType"),
        spot=inst.get("InstanceLifecycle") == "spot",
        public_ip=inst.get("PublicIpAddress"),
        private_ip=inst.get("PrivateIpAddress"),
        launched_at=launched.timestamp() if launched is not None and hasattr(launched, "timestamp") else None,
    )
