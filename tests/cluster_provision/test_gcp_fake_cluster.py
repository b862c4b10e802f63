"""The Google Cloud fake's cluster routes, through the real client libraries (and gcloud).

Compact placement resource policies with google-cloud-compute, multi-host TPU slices with
google-cloud-tpu over REST: the shapes the phase-B drivers will send and read, checked against
the fake, plus the leak oracle's view of a policy and of a half-created slice.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provision.cluster import bootstrap, nodes
from provision.cluster.bootstrap import Metadata
from provision.cluster.tpu import slice_nodes

pytest.importorskip("google.cloud.compute_v1", reason="the gcp extra is not installed")

HERE = Path(__file__).resolve().parent
PROJECT = "proj"
REGION = "us-central1"
ZONE = "us-central1-a"
LAUNCH = "0123456789ab"
DESCRIPTION = f"mlrig launch={LAUNCH} owner=alice name=train"


@pytest.fixture
def fake(gcp_fake: Any) -> Any:
    return gcp_fake


@pytest.fixture
def gcp(fake: Any) -> Iterator[Any]:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1, tpu_v2

    fake.reset()
    opts = ClientOptions(api_endpoint=fake.url)
    creds = AnonymousCredentials()

    class Clients:
        policies = compute_v1.ResourcePoliciesClient(credentials=creds, client_options=opts)
        region_ops = compute_v1.RegionOperationsClient(credentials=creds, client_options=opts)
        zone_ops = compute_v1.ZoneOperationsClient(credentials=creds, client_options=opts)
        instances = compute_v1.InstancesClient(credentials=creds, client_options=opts)
        tpu = tpu_v2.TpuClient(credentials=creds, client_options=opts, transport="rest")

    yield Clients
    assert fake.ours() == [], "left behind"  # the leak oracle: every test cleans up what it made


def _policy(gcp: Any, name: str = "mlrig-train-place", vm_count: int = 2) -> Any:
    from google.cloud import compute_v1

    body = compute_v1.ResourcePolicy(
        name=name,
        description=DESCRIPTION,
        group_placement_policy=compute_v1.ResourcePolicyGroupPlacementPolicy(
            collocation=compute_v1.ResourcePolicyGroupPlacementPolicy.Collocation.COLLOCATED.name,
            vm_count=vm_count,
        ),
    )
    op = gcp.policies.insert(project=PROJECT, region=REGION, resource_policy_resource=body)
    done = gcp.region_ops.wait(project=PROJECT, region=REGION, operation=op.name)
    assert done.status == compute_v1.Operation.Status.DONE
    return gcp.policies.get(project=PROJECT, region=REGION, resource_policy=name)


def _instance(gcp: Any, name: str, policy_link: str, zone: str = ZONE) -> None:
    from google.cloud import compute_v1

    body = compute_v1.Instance(
        name=name,
        machine_type=f"zones/{zone}/machineTypes/a2-highgpu-1g",
        labels={"mlrig-launch": LAUNCH},
        resource_policies=[policy_link],
        scheduling=compute_v1.Scheduling(on_host_maintenance="TERMINATE"),
    )
    op = gcp.instances.insert(project=PROJECT, zone=zone, instance_resource=body)
    gcp.zone_ops.wait(project=PROJECT, zone=zone, operation=op.name)


def _delete_instance(gcp: Any, name: str, zone: str = ZONE) -> None:
    op = gcp.instances.delete(project=PROJECT, zone=zone, instance=name)
    gcp.zone_ops.wait(project=PROJECT, zone=zone, operation=op.name)


def _delete_policy(gcp: Any, name: str) -> None:
    op = gcp.policies.delete(project=PROJECT, region=REGION, resource_policy=name)
    gcp.region_ops.wait(project=PROJECT, region=REGION, operation=op.name)


def test_a_compact_placement_policy_holds_its_instances(gcp: Any, fake: Any) -> None:
    from google.api_core import exceptions as gexc

    policy = _policy(gcp, vm_count=2)
    assert policy.status == "READY"
    assert policy.group_placement_policy.collocation == "COLLOCATED"
    assert policy.group_placement_policy.vm_count == 2
    assert policy.self_link.endswith(
        f"/projects/{PROJECT}/regions/{REGION}/resourcePolicies/mlrig-train-place"
    )
    assert fake.ours_by_launch() == [(f"resource-policy {REGION}/mlrig-train-place", LAUNCH)]
    sent = fake.requests("POST", "/resourcePolicies")[0][3]
    assert sent["groupPlacementPolicy"] == {"collocation": "COLLOCATED", "vmCount": 2}

    _instance(gcp, "train-0", policy.self_link)
    _instance(gcp, "train-1", policy.self_link)
    with pytest.raises(gexc.BadRequest, match="vmCount of 2"):
        _instance(gcp, "train-2", policy.self_link)
    with pytest.raises(gexc.BadRequest, match="already being used") as err:
        _delete_policy(gcp, "mlrig-train-place")
    assert err.value.errors[0]["reason"] == "resourceInUseByAnotherResource"
    held = gcp.instances.get(project=PROJECT, zone=ZONE, instance="train-0")
    assert list(held.resource_policies) == [policy.self_link]

    # teardown order matters: the machines, then the policy they were placed by
    _delete_instance(gcp, "train-0")
    _delete_instance(gcp, "train-1")
    _delete_policy(gcp, "mlrig-train-place")
    with pytest.raises(gexc.NotFound):
        gcp.policies.get(project=PROJECT, region=REGION, resource_policy="mlrig-train-place")


def test_policy_references_are_checked(gcp: Any) -> None:
    from google.api_core import exceptions as gexc

    policy = _policy(gcp, "mlrig-p2")
    with pytest.raises(gexc.Conflict):
        _policy(gcp, "mlrig-p2")
    with pytest.raises(gexc.BadRequest, match="same region"):
        _instance(gcp, "elsewhere", policy.self_link, zone="us-east1-b")
    missing = policy.self_link.replace("mlrig-p2", "mlrig-nope")
    with pytest.raises(gexc.BadRequest, match="not found"):
        _instance(gcp, "orphan", missing)
    listed = [p.name for p in gcp.policies.list(project=PROJECT, region=REGION)]
    assert listed == ["mlrig-p2"]
    _delete_policy(gcp, "mlrig-p2")


def test_somebody_elses_policy_is_not_ours(gcp: Any, fake: Any) -> None:
    from google.cloud import compute_v1

    body = compute_v1.ResourcePolicy(name="mlrig-lookalike", description="team placement, hands off")
    op = gcp.policies.insert(project=PROJECT, region=REGION, resource_policy_resource=body)
    gcp.region_ops.wait(project=PROJECT, region=REGION, operation=op.name)
    assert fake.ours() == []  # a name prefix proves nothing
    _delete_policy(gcp, "mlrig-lookalike")


def _create_slice(gcp: Any, accelerator: str, node_id: str = "train-tpu") -> Any:
    from google.cloud import tpu_v2

    node = tpu_v2.Node(
        accelerator_type=accelerator,
        runtime_version="tpu-ubuntu2204-base",
        labels={"mlrig-launch": LAUNCH},
        network_config=tpu_v2.NetworkConfig(enable_external_ips=True),
    )
    op = gcp.tpu.create_node(parent=f"projects/{PROJECT}/locations/{ZONE}", node_id=node_id, node=node)
    return op


def _delete_slice(gcp: Any, node_id: str = "train-tpu") -> None:
    gcp.tpu.delete_node(name=f"projects/{PROJECT}/locations/{ZONE}/nodes/{node_id}").result(timeout=30)


@pytest.mark.parametrize(
    ("accelerator", "hosts"), [("v4-8", 1), ("v4-32", 4), ("v5litepod-16", 4), ("v2-32", 4)]
)
def test_a_tpu_slice_has_one_endpoint_per_host(gcp: Any, accelerator: str, hosts: int) -> None:
    made = _create_slice(gcp, accelerator).result(timeout=30)
    assert made.state.name == "READY"
    got = gcp.tpu.get_node(name=f"projects/{PROJECT}/locations/{ZONE}/nodes/train-tpu")
    cluster_nodes, public = slice_nodes(list(got.network_endpoints))
    assert len(cluster_nodes) == hosts
    assert len({n.address for n in cluster_nodes}) == hosts and all(public)
    spec = nodes.ClusterSpec(name="train-tpu", size=hosts).with_nodes(cluster_nodes)
    assert spec.head.address == got.network_endpoints[0].ip_address
    _delete_slice(gcp)


def test_every_host_of_a_v4_32_finds_its_rank_from_the_slice_metadata(gcp: Any, fake: Any, sim: Any) -> None:
    _create_slice(gcp, "v4-32").result(timeout=30)
    got = gcp.tpu.get_node(name=f"projects/{PROJECT}/locations/{ZONE}/nodes/train-tpu")
    expected = nodes.ClusterSpec(name="train-tpu", size=4, master_port=8476).with_nodes(
        slice_nodes(list(got.network_endpoints))[0]
    )
    script_spec = nodes.ClusterSpec(name="train-tpu", size=4, master_port=8476)
    root = sim.tempdir("mlt")
    try:
        script = root / "boot.sh"
        script.write_text(bootstrap.script(script_spec, metadata=Metadata.TPU))
        for worker in range(4):
            attributes = fake.tpu_metadata(ZONE, "train-tpu", worker)
            server = sim.MetadataServer(gce={f"instance/attributes/{k}": v for k, v in attributes.items()})
            server.start()
            try:
                env = {
                    **os.environ,
                    "GCE_METADATA_HOST": server.hostport,
                    "MLRIG_CLUSTER_DIR": str(root / f"w{worker}"),
                }
                env.pop("MLRIG_NODE_RANK", None)
                proc = subprocess.run(
                    ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
                )
            finally:
                server.stop()
            assert proc.returncode == 0, proc.stderr
            assert (root / f"w{worker}" / "cluster.env").read_text() == bootstrap.env_file(expected, worker)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        _delete_slice(gcp)


def test_a_slice_that_fails_after_some_hosts_is_left_for_us_to_delete(gcp: Any, fake: Any) -> None:
    from google.api_core import exceptions as gexc

    fake.fail_slice(hosts=2, zone=ZONE)
    op = _create_slice(gcp, "v4-32")
    with pytest.raises(gexc.GoogleAPICallError, match="TPU host failed"):
        op.result(timeout=30)
    half = gcp.tpu.get_node(name=f"projects/{PROJECT}/locations/{ZONE}/nodes/train-tpu")
    assert half.state.name == "CREATING" and len(half.network_endpoints) == 2
    assert fake.ours() == [f"tpu {ZONE}/train-tpu"]  # billed until deleted: the driver must delete it
    _delete_slice(gcp)


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud is not installed")
def test_gcloud_reads_the_policy_too(gcp: Any, fake: Any, tmp_path: Path) -> None:
    _policy(gcp, "mlrig-seen-by-gcloud")
    env = {
        **os.environ,
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "CLOUDSDK_CORE_PROJECT": PROJECT,
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": f"{fake.url}/compute/v1/",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
    }
    proc = subprocess.run(
        [
            "gcloud",
            "compute",
            "resource-policies",
            "describe",
            "mlrig-seen-by-gcloud",
            f"--region={REGION}",
            "--format=json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        assert proc.returncode == 0, proc.stderr[-2000:]
        seen = json.loads(proc.stdout)
        assert seen["groupPlacementPolicy"]["collocation"] == "COLLOCATED"
        assert seen["description"] == DESCRIPTION
    finally:
        _delete_policy(gcp, "mlrig-seen-by-gcloud")
