"""The registry of launch targets: what each declares, and that nothing else decides by a cloud's name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provision import settings as settings_mod
from provision import targets
from provision.clouds.base import Resource
from provision.errors import CredentialsError, ProvisionError, UsageError
from provision.models import OfferingKind

ROOT = Path(__file__).resolve().parents[2]

#: modules allowed to name clouds: the targets themselves and the per-cloud drivers they load
_ALLOWED = {
    "provision/clouds/aws.py",
    "provision/clouds/gcp.py",
    "provision/clouds/tpu.py",
    "provision/clouds/_clients.py",
}
#: "which cloud / which target" decided by a literal
_FORBIDDEN = [
    re.compile(r"""\bcloud\s*[!=]=\s*["']"""),
    re.compile(r"""["']\s*[!=]=\s*[\w.]*cloud\b"""),
    re.compile(r"""[!=]=\s*["'](aws|gcp)["']"""),
    re.compile(r"""["']gcp-tpu["']"""),
    re.compile(r"""\bkind\s*[!=]=\s*["']tpu-vm["']"""),
    re.compile(r"""\bcloud\s+(not\s+)?in\s*[(\[{]\s*["']"""),
]


def test_no_cloud_literal_decides_outside_the_target_modules() -> None:
    hits = []
    for path in sorted((ROOT / "provision").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("provision/targets/") or rel in _ALLOWED:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if any(p.search(code) for p in _FORBIDDEN):
                hits.append(f"{rel}:{n}: {line.strip()}")
    assert not hits, "ask provision.targets instead:\n" + "\n".join(hits)


def test_the_grep_catches_what_it_is_for() -> None:
    bad = ['if cloud == "aws":', 'if plan.kind == "tpu-vm":', 'key = "gcp-tpu"', 'x if req.cloud != "gcp"']
    assert all(any(p.search(b) for p in _FORBIDDEN) for b in bad)
    assert not any(p.search("o.cloud == target.cloud") for p in _FORBIDDEN)


def test_every_target_declares_everything_with_reasons() -> None:
    s = settings_mod.load({})
    assert [t.value for t in targets.TARGETS] == ["aws-ec2", "gcp-gce", "gcp-tpu"]
    for tid, target in targets.TARGETS.items():
        assert target.id is tid and target.kinds
        assert set(target.capabilities) == set(targets.Capability), tid
        for cap, feat in target.capabilities.items():
            assert feat.supported or feat.why_not, (tid, cap)
        assert target.ssh_user(s)
        assert target.settings_section(s) and all(
            k.startswith(target.settings_prefix) for k in target.settings_section(s)
        )
    assert targets.get("aws-ec2").default_regions(s) == s.aws_regions
    assert targets.get("gcp-gce").default_regions(s) == ()


def test_regions_of_zones() -> None:
    assert targets.get("aws-ec2").region_of("us-east-1a") == "us-east-1"
    assert targets.get("gcp-gce").region_of("us-central1-f") == "us-central1"
    assert targets.get("gcp-tpu").region_of("europe-west4-a") == "europe-west4"


def test_lookups() -> None:
    assert targets.clouds() == ("aws", "gcp")
    assert targets.for_offering("gcp", OfferingKind.TPU_VM).id == "gcp-tpu"
    assert targets.for_offering("gcp", "vm").id == "gcp-gce"
    with pytest.raises(UsageError, match="TPUs cannot be launched on aws: they exist only on Google") as e:
        targets.for_offering("aws", OfferingKind.TPU_VM)
    assert "--cloud gcp --tpu" in (e.value.hint or "")
    with pytest.raises(UsageError, match="unknown cloud 'azure'"):
        targets.of_cloud("azure")
    with pytest.raises(UsageError, match="unknown launch target"):
        targets.get("lambda")
    node = Resource("gcp", "tpu_node", "us-central2", "n1")
    fw = Resource("gcp", "firewall", "global", "fw")
    assert targets.for_resource(node).id == "gcp-tpu"
    assert targets.for_resource(fw).cloud == "gcp"


class _Row:
    def __init__(self, cloud: str, kind: str, target: str | None = None) -> None:
        self.cloud, self.kind, self.target = cloud, kind, target


def test_a_launch_of_an_old_store_finds_its_target_by_cloud_and_kind() -> None:
    assert targets.for_launch(_Row("gcp", "tpu-vm")).id == "gcp-tpu"
    assert targets.for_launch(_Row("aws", "vm")).id == "aws-ec2"
    assert targets.for_launch(_Row("gcp", "vm", "gcp-tpu")).id == "gcp-tpu"


def test_error_doors_return_the_mapped_error_never_raise() -> None:
    pytest.importorskip("botocore")
    import botocore.exceptions as bce

    target = targets.get("aws-ec2")
    assert isinstance(target.classifier(bce.NoCredentialsError()), CredentialsError)
    with pytest.raises(CredentialsError), target.errors():
        raise bce.NoCredentialsError()
    with pytest.raises(ProvisionError, match="could not use"), targets.get("gcp-gce").errors():
        raise KeyError("missing")


def test_gcp_create_classifier_returns_credentials_errors() -> None:
    pytest.importorskip("google.api_core")
    from google.api_core import exceptions as gexc

    from provision.clouds import gcp

    assert isinstance(gcp.classify_http(gexc.Unauthorized("no"), "us-central1"), CredentialsError)


def test_a_target_is_one_module_the_registry_finds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a cloud (Lambda, RunPod) is one new module in provision/targets: no list, no enum."""
    import sys

    (tmp_path / "zz_lambda.py").write_text(
        "import dataclasses\n"
        "from provision.models import OfferingKind\n"
        "from provision.targets import aws_ec2\n"
        "from provision.targets._base import TargetId\n"
        "TARGET = dataclasses.replace(aws_ec2.TARGET, id=TargetId('lambda-vm'), cloud='lambda',\n"
        "                             cloud_title='Lambda', kinds=(OfferingKind.VM,))\n"
    )
    monkeypatch.setattr(targets, "__path__", [*targets.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "provision.targets.zz_lambda", raising=False)
    try:
        found = {t.id: t.cloud for t in targets._discover()}
    finally:
        sys.modules.pop("provision.targets.zz_lambda", None)
    assert found == {"aws-ec2": "aws", "gcp-gce": "gcp", "gcp-tpu": "gcp", "lambda-vm": "lambda"}
    assert list(found)[-1] == "lambda-vm"  # module order: the CLI lists it after the others
