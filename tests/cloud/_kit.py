"""Helpers the cloud tests share (loaded by conftest as ``_kit``): clients of the tests' own, the real
CLI in child processes, and look-alike resources that are not ours."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

#: the tests' own boto3 clients (building one costs ~0.3 s)
CLIENTS: dict[tuple[str, str], Any] = {}


def ec2(url: str, region: str = "us-east-1") -> Any:
    """A boto3 EC2 client of the tests' own (cached: building a client costs ~0.3 s)."""
    import boto3

    if (url, region) not in CLIENTS:
        CLIENTS[(url, region)] = boto3.client(
            "ec2",
            endpoint_url=url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    return CLIENTS[(url, region)]


def aws_cli(url: str, region: str, *args: str) -> Any:
    """The real aws CLI (an independent client) against moto: its JSON answer."""
    import json
    import shutil

    exe = shutil.which("aws")
    if exe is None:
        raise AssertionError("the aws CLI is needed as the independent check (scripts/test.sh installs it)")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_PAGER": "",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    out = subprocess.run(
        [exe, "--endpoint-url", url, "--region", region, "--output", "json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    return json.loads(out.stdout)


def cli_env(env: dict[str, str]) -> dict[str, str]:
    """The child environment ``run_cli`` uses: the test's variables over a clean copy of ours."""
    skip = ("AWS_", "PROVISION_", "GOOGLE_", "CLOUDSDK_")
    full = {**{k: v for k, v in os.environ.items() if not k.startswith(skip)}, **env}
    full.setdefault("COLUMNS", "200")
    full.setdefault("PYTHONFAULTHANDLER", "1")  # a hung child can be asked where it is (finish)
    return full


def spawn_cli(args: list[str], env: dict[str, str], **kw: Any) -> subprocess.Popen[str]:
    """The real CLI started in the background (to be signalled, or raced against another copy)."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(
        [sys.executable, "-m", "provision", *args],
        env=cli_env(env),
        stdin=subprocess.DEVNULL,
        text=True,
        **kw,
    )


def wait_until(check: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def finish(proc: subprocess.Popen[str], timeout: float = 60.0) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a spawned CLI. One that overstays is a failure that shows
    where it hung: SIGABRT makes its faulthandler (cli_env turns it on) print every thread."""
    import signal

    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise AssertionError(f"{proc.args} hung for {timeout:g}s; where it was:\n{err[-8000:]}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


# --------------------------------------------------------------------------- look-alikes that are not ours
#: launch-tag values of the planted look-alikes (the leak oracle must not count them as ours)
FOREIGN_LAUNCHES = {"prod", "staging", "f0f0f0f0f0f0", "e1e1e1e1e1e1", "d2d2d2d2d2d2"}
OTHER_OWNER = "0b0e0b0e0b0e0b0e"


def plant_foreign_aws(url: str, images: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Resources a colleague or another tool made, some with mlrig's tag keys or name prefix.

    ``images``: an AMI id per region. Returns {label: (region, id)}; ``foreign_aws_alive`` says which
    still exist.
    """
    out: dict[str, tuple[str, str]] = {}
    for region, suffix in (("us-east-1", ""), ("us-west-2", "-w")):
        c = ec2(url, region)
        image = images[region]

        def run(tags: dict[str, str], _c: Any = c, _image: str = image) -> str:
            spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
            return str(
                _c.run_instances(
                    ImageId=_image, InstanceType="g5.xlarge", MinCount=1, MaxCount=1, TagSpecifications=spec
                )["Instances"][0]["InstanceId"]
            )

        out["vm launch=prod, no owner" + suffix] = (region, run({"mlrig-launch": "prod", "Name": "prod"}))
        out["vm of another store" + suffix] = (
            region,
            run({"mlrig-launch": "f0f0f0f0f0f0", "mlrig-owner": OTHER_OWNER, "Name": "theirs"}),
        )
        out["vm owned by the OS user name" + suffix] = (
            region,
            run({"mlrig-launch": "e1e1e1e1e1e1", "mlrig-owner": "tester", "Name": "old"}),
        )
        out["vm named mlrig-web" + suffix] = (region, run({"Name": "mlrig-web"}))
        vpc = c.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        out["sg mlrig- prefix" + suffix] = (
            region,
            c.create_security_group(GroupName="mlrig-web-12345678", Description="not ours", VpcId=vpc)[
                "GroupId"
            ],
        )
        out["sg launch=staging" + suffix] = (
            region,
            c.create_security_group(
                GroupName="staging-sg",
                Description="not ours",
                VpcId=vpc,
                TagSpecifications=[
                    {"ResourceType": "security-group", "Tags": [{"Key": "mlrig-launch", "Value": "staging"}]}
                ],
            )["GroupId"],
        )
        kp = c.create_key_pair(
            KeyName=f"mlrig-box-deadbeef{suffix}",
            TagSpecifications=[
                {"ResourceType": "key-pair", "Tags": [{"Key": "mlrig-launch", "Value": "d2d2d2d2d2d2"}]}
            ],
        )
        out["key pair launch tag, no owner" + suffix] = (region, kp["KeyName"])
        vol = c.create_volume(
            AvailabilityZone=f"{region}a",
            Size=10,
            TagSpecifications=[
                {"ResourceType": "volume", "Tags": [{"Key": "mlrig-launch", "Value": "prod"}]}
            ],
        )
        out["volume launch=prod" + suffix] = (region, vol["VolumeId"])
    return out


def foreign_aws_alive(url: str, planted: dict[str, tuple[str, str]]) -> set[str]:
    """Labels of the planted AWS resources that still exist (instances: not terminated)."""
    alive = set()
    for label, (region, rid) in planted.items():
        c = ec2(url, region)
        if label.startswith("vm"):
            res = c.describe_instances(InstanceIds=[rid])["Reservations"]
            if res and res[0]["Instances"][0]["State"]["Name"] not in ("terminated", "shutting-down"):
                alive.add(label)
        elif label.startswith("sg"):
            if c.describe_security_groups(Filters=[{"Name": "group-id", "Values": [rid]}])["SecurityGroups"]:
                alive.add(label)
        elif label.startswith("key"):
            if c.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [rid]}])["KeyPairs"]:
                alive.add(label)
        elif c.describe_volumes(Filters=[{"Name": "volume-id", "Values": [rid]}])["Volumes"]:
            alive.add(label)
    return alive


def plant_foreign_gcp(fake: Any) -> set[str]:
    """Look-alike VMs, firewall rules and TPU nodes in the Google fake; returns their keys."""
    zone_url = "https://www.googleapis.com/compute/v1/projects/proj/zones/"

    def vm(zone: str, name: str, labels: dict[str, str]) -> tuple[str, tuple[str, str], dict[str, Any]]:
        body = {
            "kind": "compute#instance",
            "name": name,
            "status": "RUNNING",
            "zone": zone_url + zone,
            "labels": labels,
            "machineType": f"zones/{zone}/machineTypes/n1-standard-8",
            "networkInterfaces": [{"networkIP": "10.9.9.9"}],
            "scheduling": {"provisioningModel": "STANDARD"},
        }
        return "instances", (zone, name), body

    def node(zone: str, name: str, labels: dict[str, str]) -> tuple[str, tuple[str, str], dict[str, Any]]:
        body = {
            "name": f"projects/proj/locations/{zone}/nodes/{name}",
            "state": "READY",
            "acceleratorType": "v5litepod-8",
            "labels": labels,
        }
        return "nodes", (zone, name), body

    things = [
        vm("us-central1-a", "prod-box", {"mlrig-launch": "prod"}),
        vm("us-central1-b", "theirs-box", {"mlrig-launch": "f0f0f0f0f0f0", "mlrig-owner": OTHER_OWNER}),
        vm("us-central1-c", "old-box", {"mlrig-launch": "e1e1e1e1e1e1", "mlrig-owner": "tester"}),
        vm("us-east1-b", "mlrig-web", {}),
        node("us-central1-b", "prod-tpu", {"mlrig-launch": "prod"}),
        node("us-west4-a", "theirs-tpu", {"mlrig-launch": "f0f0f0f0f0f0", "mlrig-owner": OTHER_OWNER}),
    ]
    keys = set()
    with fake.lock:
        for table, key, body in things:
            getattr(fake.state, table)[key] = body
            keys.add(f"{table} {key[0]}/{key[1]}")
        for name, desc, tags in (
            ("mlrig-allow-https", "opens 443 for the web team", ["web"]),
            (
                "mlrig-f0f0f0f0f0f0-ssh",
                f"mlrig launch=f0f0f0f0f0f0 owner={OTHER_OWNER} name=theirs",
                ["mlrig-f0f0f0f0f0f0"],
            ),
            (
                "mlrig-e1e1e1e1e1e1-ssh",
                "mlrig launch=e1e1e1e1e1e1 owner=tester name=old",
                ["mlrig-e1e1e1e1e1e1"],
            ),
        ):
            fake.state.firewalls[name] = {
                "kind": "compute#firewall",
                "name": name,
                "description": desc,
                "targetTags": tags,
                "sourceRanges": ["0.0.0.0/0"],
                "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}],
            }
            keys.add(f"firewalls {name}")
    return keys


def foreign_gcp_alive(fake: Any, keys: set[str]) -> set[str]:
    with fake.lock:
        s = fake.state
        present = {f"instances {z}/{n}" for z, n in s.instances} | {f"nodes {z}/{n}" for z, n in s.nodes}
        present |= {f"firewalls {n}" for n in s.firewalls}
    return keys & present
