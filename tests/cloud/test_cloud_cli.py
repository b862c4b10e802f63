"""The real ``provision`` CLI in a child process against moto and the GCP fake, cross-checked with the
real ``aws`` CLI and ``ssh -G`` (which resolves a config without connecting)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _kit import aws_cli


def _aws(env: dict[str, str], *args: str) -> Any:
    """The real aws CLI (an independent client) against the same moto server."""
    return aws_cli(env["PROVISION_AWS_ENDPOINT"], "us-east-1", *args)


def _gcloud(url: str, tmp: Path, *args: str) -> list[list[str]]:
    """The real gcloud (an independent client) against the Compute/TPU fake, no credentials."""
    exe = shutil.which("gcloud")
    if exe is None:
        pytest.skip("gcloud not installed")
    env = {
        **os.environ,
        "CLOUDSDK_CONFIG": str(tmp / "gcloud-cfg"),
        "CLOUDSDK_CORE_PROJECT": "proj",
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": f"{url}/compute/v1/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_TPU": f"{url}/",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
    }
    out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, env=env, check=True)
    return [line.split("\t") for line in out.stdout.splitlines() if line.strip()]


def _ssh_g(config: str, host: str) -> dict[str, str]:
    """What ssh would use for ``host`` (``ssh -G`` resolves the config and never connects)."""
    if shutil.which("ssh") is None:
        pytest.skip("OpenSSH client not installed")
    out = subprocess.run(
        ["ssh", "-G", "-F", config, host], capture_output=True, text=True, timeout=10, check=True
    )
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


def test_help_imports_no_cloud_sdk() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from provision.cli import app\n"
        "for args in (['--help'], ['up', '--help'], ['ls', '--help'], ['gc', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
        "heavy = ('boto3', 'botocore', 'google.cloud', 'moto')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_dry_run_needs_no_credentials_and_creates_nothing(
    cli: Any, cloud_env: dict[str, str], leaks: Any
) -> None:
    env = {k: v for k, v in cloud_env.items() if not k.startswith("AWS_")}
    proc = cli(["up", "--gpu", "A10G:1", "--spot", "--autostop", "1h", "--dry-run", "--json"], env=env)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)["plan"]
    assert plan["instance_type"] == "g5.xlarge" and plan["price_per_hour"] == pytest.approx(0.397)
    assert plan["autostop_minutes"] == 60 and plan["regions"] == ["us-east-1", "us-west-2"]
    assert leaks() == [] and not Path(cloud_env["PROVISION_STATE_DIR"], "state.db").exists()


def test_aws_up_ls_ssh_down_end_to_end(cli: Any, cloud_env: dict[str, str], leaks: Any) -> None:
    config = Path(cloud_env["PROVISION_SSH_CONFIG"])
    config.parent.mkdir(parents=True)
    config.write_text("Host *\n    User somebody-else\n    ServerAliveInterval 5\n")  # SkyPilot #1022

    up = cli(
        ["up", "--cloud", "aws", "--gpu", "A10G:1", "--name", "e2e", "--wait", "running", "--yes", "--json"]
    )
    assert up.returncode == 0, up.stderr
    out = json.loads(up.stdout)
    assert out["name"] == "e2e" and out["instance_type"] == "g5.xlarge" and out["ssh"] == "ssh e2e"
    assert "Traceback" not in up.stderr

    # the independent client sees the same machine, tags and SSH rule
    insts = _aws(
        cloud_env,
        "ec2",
        "describe-instances",
        "--filters",
        f"Name=tag:mlrig-launch,Values={out['launch_id']}",
    )
    (inst,) = [i for r in insts["Reservations"] for i in r["Instances"]]
    assert inst["State"]["Name"] == "running" and inst["InstanceId"] == out["id"]
    sgs = _aws(
        cloud_env,
        "ec2",
        "describe-security-groups",
        "--filters",
        f"Name=tag:mlrig-launch,Values={out['launch_id']}",
    )["SecurityGroups"]
    assert [r["CidrIp"] for r in sgs[0]["IpPermissions"][0]["IpRanges"]] == ["203.0.113.7/32"]  # caller's IP

    resolved = _ssh_g(str(config), "e2e")
    assert resolved["hostname"] == inst["PublicIpAddress"] and resolved["user"] == "ubuntu"
    assert resolved["identityfile"].startswith(cloud_env["PROVISION_STATE_DIR"])
    assert stat_mode(config) == 0o600

    ls = cli(["ls", "--json"])
    assert ls.returncode == 0, ls.stderr
    (m,) = json.loads(ls.stdout)["machines"]
    assert m["name"] == "e2e" and m["state"] == "running" and m["price_per_hour"] == pytest.approx(1.006)
    assert m["cost_so_far"] is not None and m["cost_so_far"] >= 0

    ssh = cli(["ssh", "e2e", "--json"])
    assert json.loads(ssh.stdout)["argv"] == ["ssh", "-F", str(config), "e2e"]
    ssh = cli(["ssh", "e2e", "--json", "--", "cat", "/var/lib/mlrig/envcheck.json"])
    assert json.loads(ssh.stdout)["argv"][-3:] == ["e2e", "cat", "/var/lib/mlrig/envcheck.json"]

    down = cli(["down", "e2e", "--yes", "--json"])
    assert down.returncode == 0, down.stderr
    assert {d["kind"] for d in json.loads(down.stdout)["results"][0]["deleted"]} == {
        "instance",
        "security_group",
        "key_pair",
    }
    assert leaks() == []
    insts = _aws(cloud_env, "ec2", "describe-instances", "--instance-ids", out["id"])
    assert insts["Reservations"][0]["Instances"][0]["State"]["Name"] == "terminated"
    assert _ssh_g(str(config), "e2e")["hostname"] == "e2e"  # entry gone
    assert _ssh_g(str(config), "e2e")["user"] == "somebody-else"  # the user's own config untouched

    again = cli(["down", "e2e", "--yes"])
    assert again.returncode == 0 and "already down" in again.stderr


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _no_aws_creds(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}


def test_missing_aws_credentials_is_one_line_and_exit_3(
    cli: Any, cloud_env: dict[str, str], leaks: Any
) -> None:
    proc = cli(["up", "--gpu", "A10G:1", "--yes"], env=_no_aws_creds(cloud_env))
    assert proc.returncode == 3
    assert "no AWS credentials" in proc.stderr and "aws configure" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 2  # error + hint
    assert leaks() == []


def test_missing_gcp_credentials_is_one_line_and_exit_3(
    cli: Any, cloud_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in cloud_env.items() if not k.startswith("PROVISION_GCP_")}
    env.update(
        {
            "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # no gcloud login here
            "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing.json"),
            "GCE_METADATA_HOST": "127.0.0.1:9",
            "GCE_METADATA_IP": "127.0.0.1:9",  # never the real metadata server
        }
    )
    proc = cli(["up", "--cloud", "gcp", "--gpu", "T4:1", "--yes"], env=env)
    assert proc.returncode == 3, proc.stderr
    assert "gcloud auth application-default login" in proc.stderr and "Traceback" not in proc.stderr


def test_asks_before_spending_and_refuses_without_a_terminal(cli: Any, leaks: Any) -> None:
    proc = cli(["up", "--gpu", "A10G:1", "--wait", "running"])
    assert proc.returncode == 2 and "--yes" in proc.stderr
    assert "$1.01/h" in proc.stderr  # the plan with its price was shown first
    assert leaks() == []


def test_unknown_gpu_is_a_usage_error(cli: Any) -> None:
    proc = cli(["up", "--gpu", "Z900:3", "--yes"])
    assert (
        proc.returncode == 2 and "no aws offer for Z900:3" in proc.stderr and "Traceback" not in proc.stderr
    )


def test_sigint_mid_launch_cleans_up_and_exits_130(
    cloud_env: dict[str, str], moto_server: Any, leaks: Any
) -> None:
    # RunInstances reaches moto (the instance exists) but its answer is held back (until the signal has
    # landed, however loaded the machine): press Ctrl-C then
    moto_server.faults.inject(action="RunInstances", delay_after=45.0)
    skip = ("AWS_", "PROVISION_", "GOOGLE_", "CLOUDSDK_")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(skip)}, **cloud_env}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provision",
            "up",
            "--gpu",
            "A10G:1",
            "--name",
            "sig",
            "--wait",
            "running",
            "--yes",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while "RunInstances" not in moto_server.faults.log and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "RunInstances" in moto_server.faults.log
        time.sleep(0.5)
        assert leaks()  # the instance is there, mid-launch
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "removing what was created" in err
    assert leaks() == []


def test_ls_reconciles_and_gc_sweeps_untracked(
    cli: Any, cloud_env: dict[str, str], ec2_client: Any, leaks: Any, expect_leftover: set[str]
) -> None:
    expect_leftover.add("c011ea90e000")
    up = cli(["up", "--gpu", "A10G:1", "--name", "kept", "--wait", "running", "--yes", "--json"])
    assert up.returncode == 0, up.stderr
    ec2 = ec2_client()
    ec2.terminate_instances(InstanceIds=[json.loads(up.stdout)["id"]])  # e.g. terminated in the console
    image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    me = json.loads(cli(["ls", "--json", "--no-refresh"]).stdout)["owner_id"]

    def tagged(owner: str, launch_id: str) -> str:
        spec = [
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "mlrig-launch", "Value": launch_id},
                    {"Key": "mlrig-owner", "Value": owner},
                ],
            }
        ]
        return ec2.run_instances(
            ImageId=image, InstanceType="g5.xlarge", MinCount=1, MaxCount=1, TagSpecifications=spec
        )["Instances"][0]["InstanceId"]

    # a launch of this store the store lost (e.g. its row was never written), and a colleague's
    mine, theirs = tagged(me, "0a0a0a0a0a0a"), tagged("c011ea90e000c011", "c011ea90e000")
    ls = json.loads(cli(["ls", "--json"]).stdout)
    (m,) = ls["machines"]
    assert m["name"] == "kept" and m["state"] == "gone" and "outside mlrig" in m["note"]
    assert {u["id"] for u in ls["untracked"]} == {mine}  # a colleague's machine is not ours to show

    listed = cli(["gc", "--cloud", "aws", "--json"])
    ids = {r["id"] for r in json.loads(listed.stdout)["untracked"]}
    assert mine in ids and theirs not in ids  # another owner's machines are not ours to sweep
    swept = cli(["gc", "--cloud", "aws", "--yes", "--json"])
    assert swept.returncode == 0, swept.stderr
    assert {(d["id"], d["outcome"]) for d in json.loads(swept.stdout)["deleted"]} >= {(mine, "deleted")}
    down = cli(["down", "kept", "--yes"])  # the store's own leftovers (security group, key pair)
    assert down.returncode == 0, down.stderr
    assert leaks() == [f"us-east-1 instance {theirs} running"]
    assert json.loads(cli(["gc", "--cloud", "aws", "--json"]).stdout)["untracked"] == []


def test_gcp_and_tpu_end_to_end(cli: Any, gcp_server: Any, leaks: Any, tmp_path: Path) -> None:
    vm = cli(
        ["up", "--cloud", "gcp", "--gpu", "T4:1", "--name", "gvm", "--wait", "running", "--yes", "--json"]
    )
    assert vm.returncode == 0, vm.stderr
    tpu = cli(
        [
            "up",
            "--cloud",
            "gcp",
            "--tpu",
            "v5e-8",
            "--name",
            "gtpu",
            "--zone",
            "us-west4-a",
            "--spot",
            "--wait",
            "running",
            "--yes",
            "--json",
        ]
    )
    assert tpu.returncode == 0, tpu.stderr
    assert json.loads(tpu.stdout)["zone"] == "us-west4-a"
    machines = {m["name"]: m for m in json.loads(cli(["ls", "--json"]).stdout)["machines"]}
    assert machines["gvm"]["state"] == "RUNNING" and machines["gtpu"]["state"] == "READY"
    assert machines["gtpu"]["price_per_hour"] == pytest.approx(1.70383)
    assert len(leaks()) == 4
    vms = [
        "compute",
        "instances",
        "list",
        "--filter=labels.mlrig-launch:*",
        "--format=value(name,status,zone.basename())",
    ]
    assert _gcloud(gcp_server.url, tmp_path, *vms) == [["gvm", "RUNNING", "us-central1-a"]]
    tpus = [
        "compute",
        "tpus",
        "tpu-vm",
        "list",
        "--zone",
        "us-west4-a",
        "--format=value(name.basename(),state)",
    ]
    assert _gcloud(gcp_server.url, tmp_path, *tpus) == [["gtpu", "READY"]]
    down = cli(["down", "--all", "--yes", "--json"])
    assert down.returncode == 0, down.stderr
    assert leaks() == []
    assert _gcloud(gcp_server.url, tmp_path, *vms) == [] and _gcloud(gcp_server.url, tmp_path, *tpus) == []
