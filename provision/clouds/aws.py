"""AWS driver (boto3): key pair, security group and one EC2 instance per launch, all tagged.

Only this module (and the client factory) touches boto3. Every create call is journalled before
it is sent; launches use a retry-free client and a ClientToken derived from the launch id.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provision.clouds import _clients, firstboot
from provision.clouds.base import (
    TAG_LAUNCH,
    TAG_OWNER,
    AttemptError,
    FailureKind,
    Feature,
    Journal,
    Placement,
    Plan,
    Resource,
    poll,
)
from provision.errors import CredentialsError, ProvisionError, UsageError
from provision.settings import Settings

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


def classify(exc: Exception, plan: Plan, placement: Placement, vcpus: int | None = None) -> AttemptError:
    """Turn a RunInstances error into an AttemptError whose kind drives failover."""
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
        raise CredentialsError(f"AWS refused the credentials: {code}: {msg}", hint=_clients.AWS_HINT)
    return AttemptError(FailureKind.FATAL, code, msg)


class AwsProvider:
    """EC2 through boto3."""

    cloud = "aws"
    features: Mapping[str, Feature] = {
        "gpu": Feature(True),
        "tpu": Feature(False, "TPUs exist only on Google Cloud; use --cloud gcp --tpu"),
        "spot": Feature(True),
        "autostop": Feature(True),
        "capacity_failover": Feature(True),
        "quota_precheck": Feature(
            False,
            "quota errors name the quota and the request command; no "
            "pre-check because Service Quotas needs extra IAM permissions",
        ),
        "idempotent_launch": Feature(True),
    }

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[tuple[str, str, bool], Any] = {}
        self._sg: dict[str, str] = {}
        self._key: dict[str, str] = {}

    # ------------------------------------------------------------------ plumbing
    def _c(self, region: str, service: str = "ec2", launch: bool = False) -> Any:
        key = (region, service, launch)
        if key not in self._clients:
            self._clients[key] = _clients.aws_client(self.settings, service, region, launch=launch)
        return self._clients[key]

    def _call(self, fn: Any, **kw: Any) -> Any:
        """Call boto3, turning connection/credential failures into ProvisionError."""
        import botocore.exceptions as bce

        try:
            return fn(**kw)
        except bce.NoCredentialsError:
            raise CredentialsError("no AWS credentials found", hint=_clients.AWS_HINT) from None
        except bce.ClientError as exc:
            if _code(exc) in _AUTH:
                raise CredentialsError(
                    f"AWS refused the credentials: {_code(exc)}", hint=_clients.AWS_HINT
                ) from None
            raise
        except (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ReadTimeoutError) as exc:
            raise ProvisionError(
                f"AWS did not answer: {exc}", hint="check the network or AWS_ENDPOINT_URL"
            ) from None

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
        as "could not ``action`` in REGION".
        """
        import botocore.exceptions as bce

        row = journal.intent(kind, region, None, name, None)
        try:
            resp = self._call(fn, **params)
        except bce.ClientError as exc:
            journal.failed(row, _code(exc))
            raise ProvisionError(f"could not {action} in {region}: {_msg(exc)}") from None
        journal.created(row, resp.get(id_field) or name)
        return resp

    def _tags(self, plan: Plan, resource_type: str) -> list[dict[str, Any]]:
        tags = [{"Key": k, "Value": v} for k, v in plan.tags().items()]
        tags.append({"Key": "Name", "Value": plan.name})
        return [{"ResourceType": resource_type, "Tags": tags}]

    @staticmethod
    def _names(plan: Plan) -> str:
        return f"mlrig-{plan.name}-{plan.launch_id[:8]}"

    # ------------------------------------------------------------------ Provider
    def check_credentials(self) -> None:
        _clients.aws_check_credentials(self.settings)

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
        import botocore.exceptions as bce

        ec2 = self._c(region)
        name = self._names(plan)
        # --- key pair: the user's, or our public key imported under a tagged name
        if region not in self._key:
            if plan.key_name:
                try:
                    self._call(ec2.describe_key_pairs, KeyNames=[plan.key_name])
                except bce.ClientError:
                    raise UsageError(f"key pair {plan.key_name!r} does not exist in {region}") from None
                self._key[region] = plan.key_name
            else:
                found = self._call(
                    ec2.describe_key_pairs,
                    Filters=[{"Name": f"tag:{TAG_LAUNCH}", "Values": [plan.launch_id]}],
                )
                if found.get("KeyPairs"):
                    self._key[region] = found["KeyPairs"][0]["KeyName"]
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
        if region not in self._sg:
            found = self._call(
                ec2.describe_security_groups,
                Filters=[{"Name": f"tag:{TAG_LAUNCH}", "Values": [plan.launch_id]}],
            )
            if found.get("SecurityGroups"):
                self._sg[region] = found["SecurityGroups"][0]["GroupId"]
                return
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
            group_id = resp["GroupId"]
            self._sg[region] = group_id
            try:
                self._call(
                    ec2.authorize_security_group_ingress,
                    GroupId=group_id,
                    IpPermissions=[
                        {
                            "IpProtocol": "tcp",
                            "FromPort": 22,
                            "ToPort": 22,
                            "IpRanges": [{"CidrIp": plan.ssh_cidr, "Description": "mlrig ssh"}],
                        }
                    ],
                )
            except bce.ClientError as exc:
                if _code(exc) != "InvalidPermission.Duplicate":
                    raise ProvisionError(f"could not open SSH in {group_id}: {_msg(exc)}") from None

    def _image(self, plan: Plan, region: str) -> tuple[str, str]:
        """(AMI id, root device name): --image, or the DLAMI published in SSM."""
        import botocore.exceptions as bce

        ec2 = self._c(region)
        image = plan.image
        if not image:
            try:
                resp = self._call(self._c(region, "ssm").get_parameter, Name=self.settings.aws_ami_param)
            except bce.ClientError as exc:
                raise ProvisionError(
                    f"cannot read the Deep Learning AMI id from SSM {self.settings.aws_ami_param} "
                    f"in {region}: {_code(exc)}",
                    hint="pass --image ami-... or set PROVISION_AWS_AMI_PARAM",
                ) from None
            image = resp["Parameter"]["Value"]
        try:
            imgs = self._call(ec2.describe_images, ImageIds=[image]).get("Images", [])
        except bce.ClientError as exc:
            raise UsageError(f"AMI {image} is not usable in {region}: {_code(exc)}") from None
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

    def find(self, plan: Plan, region: str) -> Resource | None:
        resp = self._call(
            self._c(region).describe_instances,
            Filters=[
                {"Name": f"tag:{TAG_LAUNCH}", "Values": [plan.launch_id]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ],
        )
        for res in resp.get("Reservations", []):
            for inst in res.get("Instances", []):
                return _instance(inst, region)
        return None

    def create(self, plan: Plan, placement: Placement, attempt: int, journal: Journal) -> Resource:
        import botocore.exceptions as bce

        region = placement.region
        image, root = self._image(plan, region)
        params: dict[str, Any] = {
            "ImageId": image,
            "InstanceType": plan.instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "KeyName": self._key[region],
            "Placement": {"AvailabilityZone": placement.zone},
            # a public address explicitly: default subnets do not always assign one, and SSH needs it
            "NetworkInterfaces": [
                {
                    "DeviceIndex": 0,
                    "SubnetId": self._subnet(region, placement.zone),
                    "Groups": [self._sg[region]],
                    "AssociatePublicIpAddress": True,
                    "DeleteOnTermination": True,
                }
            ],
            "BlockDeviceMappings": [
                {
                    "DeviceName": root,
                    "Ebs": {"VolumeSize": plan.disk_gb, "VolumeType": "gp3", "DeleteOnTermination": True},
                }
            ],
            "UserData": firstboot.render(plan, self.settings.envcheck_spec, self.settings.aws_ssh_user),
            "InstanceInitiatedShutdownBehavior": "terminate",
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "TagSpecifications": self._tags(plan, "instance") + self._tags(plan, "volume"),
            # idempotency on real EC2: a retried call with the same token returns the same instance
            "ClientToken": f"{plan.launch_id}-{attempt}",
        }
        if placement.spot:
            params["InstanceMarketOptions"] = {
                "MarketType": "spot",
                "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
            }
            params["TagSpecifications"] += self._tags(plan, "spot-instances-request")
        row = journal.intent("instance", region, placement.zone, plan.name, params["ClientToken"])
        try:
            resp = self._c(region, launch=True).run_instances(**params)
        except bce.ClientError as exc:
            journal.failed(row, f"{_code(exc)}: {_msg(exc)}")
            raise classify(exc, plan, placement, plan.vcpus) from None
        except (bce.ReadTimeoutError, bce.ConnectionClosedError, bce.EndpointConnectionError) as exc:
            # the call may have created the instance: look for it by tag before deciding
            found = self.find(plan, region)
            if found:
                journal.created(row, found.id)
                return found
            journal.failed(row, f"timeout: {exc}")
            raise AttemptError(FailureKind.UNKNOWN_OUTCOME, "Timeout", str(exc)) from None
        inst = resp["Instances"][0]
        journal.created(row, inst["InstanceId"])
        return _instance(inst, region)

    def _describe(self, region: str, instance_id: str) -> dict[str, Any] | None:
        import botocore.exceptions as bce

        try:
            resp = self._call(self._c(region).describe_instances, InstanceIds=[instance_id])
        except bce.ClientError as exc:
            if _code(exc).startswith("InvalidInstanceID"):
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
        import botocore.exceptions as bce

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
                except bce.ClientError as exc:
                    code = _code(exc)
                    if code in ("InvalidGroup.NotFound", "InvalidGroupId.NotFound"):
                        return False
                    # an instance still terminating holds the group for a while
                    if code != "DependencyViolation" or time.monotonic() > deadline:
                        raise ProvisionError(
                            f"could not delete security group {res.id}: {_msg(exc)}"
                        ) from None
                time.sleep(interval)
        if res.kind == "key_pair":
            name = res.name or res.id
            try:
                found = self._call(ec2.describe_key_pairs, KeyNames=[name]).get("KeyPairs", [])
            except bce.ClientError:
                found = []
            if not found:
                return False
            self._call(ec2.delete_key_pair, KeyName=name)
            return True
        raise ProvisionError(f"aws cannot delete a {res.kind}")

    def list_ours(self, regions: list[str]) -> list[Resource]:
        out: list[Resource] = []
        tag_filter = [{"Name": "tag-key", "Values": [TAG_LAUNCH]}]
        for region in regions:
            ec2 = self._c(region)
            resp = self._call(ec2.describe_instances, Filters=tag_filter)
            for r in resp.get("Reservations", []):
                out += [_instance(i, region) for i in r.get("Instances", [])]
            for sg in self._call(ec2.describe_security_groups, Filters=tag_filter).get("SecurityGroups", []):
                out.append(
                    Resource(
                        "aws",
                        "security_group",
                        region,
                        sg["GroupId"],
                        name=sg.get("GroupName"),
                        launch_id=_tag(sg.get("Tags"), TAG_LAUNCH),
                        owner=_tag(sg.get("Tags"), TAG_OWNER),
                        state="exists",
                    )
                )
            for kp in self._call(ec2.describe_key_pairs, Filters=tag_filter).get("KeyPairs", []):
                out.append(
                    Resource(
                        "aws",
                        "key_pair",
                        region,
                        kp.get("KeyPairId") or kp["KeyName"],
                        name=kp["KeyName"],
                        launch_id=_tag(kp.get("Tags"), TAG_LAUNCH),
                        owner=_tag(kp.get("Tags"), TAG_OWNER),
                        state="exists",
                    )
                )
        return out

    def refresh(self, res: Resource) -> Resource:
        if res.kind != "instance":
            return res
        inst = self._describe(res.region, res.id)
        if inst is None:
            res.state = "gone"
            return res
        return _instance(inst, res.region)


def _tag(tags: list[dict[str, str]] | None, key: str) -> str | None:
    for t in tags or []:
        if t.get("Key") == key:
            return t.get("Value")
    return None


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
        state=inst.get("State", {}).get("Name"),
        instance_type=inst.get("InstanceType"),
        spot=inst.get("InstanceLifecycle") == "spot",
        public_ip=inst.get("PublicIpAddress"),
        private_ip=inst.get("PrivateIpAddress"),
        launched_at=launched.timestamp() if launched is not None and hasattr(launched, "timestamp") else None,
    )
