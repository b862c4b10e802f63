"""`provision catalog refresh`: parsers on recorded-shape responses, and the real client libraries
(boto3 pricing, google-cloud-billing REST) talking to a loopback server that replays them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provision import catalog
from provision.catalog import refresh
from provision.errors import CredentialsError, ProvisionError


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _aws_pages(load_fixture: Callable[[str], dict[str, Any]]) -> list[str]:
    return [
        *load_fixture("aws_get_products_page1.json")["PriceList"],
        *load_fixture("aws_get_products_page2.json")["PriceList"],
    ]


def test_parse_aws_maps_families_and_reads_on_demand_terms(
    load_fixture: Callable[[str], dict[str, Any]],
) -> None:
    offers, skipped = refresh.parse_aws(_aws_pages(load_fixture), "us-east-1")
    by_type = {o.instance_type: o for o in offers}
    assert set(by_type) == {"p3.16xlarge", "g5.xlarge", "p4d.24xlarge", "p5.48xlarge"}
    p3 = by_type["p3.16xlarge"]
    assert (p3.accelerator, p3.accelerator_count, p3.accelerator_memory_gb) == ("V100", 8, 16)
    assert p3.price_on_demand == 24.48 and p3.price_spot is None
    assert p3.vcpus == 64 and p3.ram_gb == 488 and p3.as_of == "2025-06-11"
    assert "AWS Pricing API" in p3.source
    assert by_type["p5.48xlarge"].accelerator == "H100"
    assert any("g4ad.xlarge" in s for s in skipped)  # AMD GPU family: not in the map
    assert any("p3dn.24xlarge" in s and "no hourly on-demand" in s for s in skipped)
    assert catalog.problems(offers) == []


def test_refresh_aws_through_boto3_and_loopback(
    aws_env: None,
    load_fixture: Callable[[str], dict[str, Any]],
    loopback: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    user_catalog: Path,
) -> None:
    pages = {
        None: load_fixture("aws_get_products_page1.json"),
        "PAGE2TOKEN/Ax+2Aw==": load_fixture("aws_get_products_page2.json"),
    }

    def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        assert headers["x-amz-target"] == "AWSPriceListService.GetProducts"
        req = json.loads(body)
        return 200, pages[req.get("NextToken")]

    url, seen = loopback(handler)
    monkeypatch.setenv("PROVISION_AWS_PRICING_ENDPOINT", url)
    result = refresh.refresh("aws")
    assert result.rows == 4 and result.path == user_catalog / "offerings_aws.csv"
    first = json.loads(seen.requests[0]["body"])
    assert first["ServiceCode"] == "AmazonEC2" and first["FormatVersion"] == "aws_v1"
    filters = {f["Field"]: f["Value"] for f in first["Filters"]}
    assert filters["regionCode"] == "us-east-1" and filters["instanceFamily"] == "GPU instance"
    assert filters["operatingSystem"] == "Linux" and filters["tenancy"] == "Shared"
    assert len(seen.requests) == 2  # followed NextToken
    text = result.path.read_text()
    assert text.startswith("# aws offerings rebuilt") and "fetched 20" in text.splitlines()[0]
    # the recorded price list (2025-06-11) is older than the shipped AWS rows (2025-11): they stay
    info = next(f for f in catalog.summary() if f.kind == "aws")
    assert info.origin == "shipped" and "older than the shipped prices" in info.note
    # a price list newer than the shipped rows replaces them
    result.path.write_text(text.replace("2025-06-11", "2026-12-01"))
    catalog.reset_cache()
    aws = [o for o in catalog.load_offerings() if o.cloud == "aws"]
    assert sorted(o.instance_type for o in aws) == ["g5.xlarge", "p3.16xlarge", "p4d.24xlarge", "p5.48xlarge"]
    info = next(f for f in catalog.summary() if f.kind == "aws")
    assert info.as_of == "2026-12-01" and info.origin == str(result.path) and info.fetched


def test_refresh_aws_api_error_is_one_clear_message(
    aws_env: None, loopback: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, user_catalog: Path
) -> None:
    url, _ = loopback(lambda *a: (400, {"__type": "AccessDeniedException", "message": "not authorized"}))
    monkeypatch.setenv("PROVISION_AWS_PRICING_ENDPOINT", url)
    with pytest.raises(ProvisionError, match="AccessDeniedException"):
        refresh.refresh("aws")
    assert not (user_catalog / "offerings_aws.csv").exists()


def test_refresh_aws_without_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CredentialsError) as info:
        refresh.refresh("aws")
    assert info.value.hint and "aws configure" in info.value.hint


def _gcp_skus(load_fixture: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        *load_fixture("gcp_list_skus_page1.json")["skus"],
        *load_fixture("gcp_list_skus_page2.json")["skus"],
    ]


def test_gcp_prices_read_host_and_gpu_skus(load_fixture: Callable[[str], dict[str, Any]]) -> None:
    prices = refresh.gcp_prices(_gcp_skus(load_fixture), "us-central1")
    assert prices[("core", "a2", "ondemand")][0] == pytest.approx(0.031611)
    assert prices[("ram", "a2", "spot")][0] == pytest.approx(0.001695)
    assert prices[("gpu", "A100", "ondemand")][0] == pytest.approx(2.933908)
    assert prices[("gpu", "H100", "ondemand")][0] == pytest.approx(
        4.20076
    )  # the Mega SKU is not the H100 row
    assert ("gpu", "A100", "commit") not in prices
    assert prices[("gpu", "T4", "ondemand")][0] == pytest.approx(0.35)
    assert all(key[0] != "gpu" or key[1] != "A100 80GB" for key in prices)


def test_parse_gcp_prices_shapes_as_host_plus_gpus(load_fixture: Callable[[str], dict[str, Any]]) -> None:
    shapes = [o for o in catalog.load_offerings() if o.cloud == "gcp"]
    offers, skipped = refresh.parse_gcp(_gcp_skus(load_fixture), shapes, "us-central1")
    by = {(o.instance_type, o.accelerator, o.accelerator_count): o for o in offers}
    a2 = by[("a2-highgpu-1g", "A100", 1)]
    assert a2.price_on_demand == pytest.approx(12 * 0.031611 + 85 * 0.004237 + 2.933908, abs=1e-5)
    assert a2.price_on_demand == pytest.approx(3.67339, abs=1e-4)  # same as the shipped SkyPilot-derived row
    assert a2.price_spot == pytest.approx(12 * 0.012644 + 85 * 0.001695 + 1.1472, abs=1e-5)
    n1 = by[("n1-standard-8", "T4", 2)]
    assert n1.price_on_demand == pytest.approx(8 * 0.031611 + 30 * 0.004237 + 2 * 0.35, abs=1e-5)
    assert n1.price_spot is None  # no preemptible N1/T4 SKUs in the fixture
    assert ("a2-ultragpu-1g", "A100 80GB", 1) not in by and any("a2-ultragpu-1g" in s for s in skipped)
    assert any("g2-standard-4" in s for s in skipped)  # no G2/L4 SKUs in the fixture
    tpus = [o for o in offers if o.kind == "tpu-vm"]
    assert tpus and all("skypilot" in o.source.lower() for o in tpus)  # carried over with their own source
    assert catalog.problems(offers) == []


def test_refresh_gcp_through_the_billing_client_and_loopback(
    load_fixture: Callable[[str], dict[str, Any]],
    loopback: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pytest.importorskip("google.cloud.billing_v1")
    pages = {"": load_fixture("gcp_list_skus_page1.json"), "page2": load_fixture("gcp_list_skus_page2.json")}

    def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        assert method == "GET" and path.startswith("/v1/services/6F81-5844-456A/skus")
        token = path.split("pageToken=")[1].split("&", maxsplit=1)[0] if "pageToken=" in path else ""
        return 200, pages[token]

    url, seen = loopback(handler)
    monkeypatch.setenv("PROVISION_GCP_BILLING_ENDPOINT", url)
    out = tmp_path / "gcp.csv"
    result = refresh.refresh("gcp", output=out)
    assert len(seen.requests) == 2
    assert result.path == out and out.read_text().startswith("# gcp offerings rebuilt")
    text = out.read_text()
    assert "a2-highgpu-8g" in text and "Cloud Billing Catalog API" in text
    assert result.as_of == "2025-06-01"


def test_refresh_rejects_unknown_cloud() -> None:
    with pytest.raises(ProvisionError, match="only aws and gcp"):
        refresh.refresh("lambda")
