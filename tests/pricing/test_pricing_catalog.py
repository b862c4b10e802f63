"""The shipped catalog passes its integrity rules; the rules catch each kind of broken row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from envcheck.knowledge import gpus
from provision import catalog
from provision.catalog import _files
from provision.errors import ProvisionError, UsageError
from provision.models import Offering


def _offer(**kw: object) -> Offering:
    base: dict[str, object] = dict(
        cloud="aws",
        instance_type="x.1",
        accelerator="T4",
        accelerator_count=1,
        accelerator_memory_gb=16,
        region="us-east-1",
        price_on_demand=1.0,
        price_spot=0.5,
        source="test",
        as_of="2025-H1",
    )
    base.update(kw)
    return Offering.from_dict(base)


def test_shipped_offerings_pass_integrity() -> None:
    offers = catalog.load_offerings()
    assert len(offers) >= 90
    assert catalog.problems(offers) == []
    names = {s.name for s in gpus.all_specs()}
    for o in offers:
        assert o.accelerator in names
        assert o.price_on_demand or o.price_spot
        if o.price_on_demand and o.price_spot:
            assert o.price_spot <= o.price_on_demand
        assert o.accelerator_count >= 1 and o.accelerator_memory_gb and o.accelerator_memory_gb > 0
        assert o.source and o.as_of and _files.as_of_date(o.as_of) is not None
    assert {o.cloud for o in offers} == {"aws", "gcp", "lambda", "runpod"}
    assert any(o.kind == "tpu-vm" for o in offers)


def test_gcp_vm_price_is_host_plus_attached_gpus() -> None:
    """a2-highgpu-8g us-central1 = host VM row (5.91582 / spot 2.958) + 8 x A100 GPU row (23.47126 /
    11.4728) in skypilot-catalog v8 gcp/vms.csv@006059e0."""
    offers = {
        (o.cloud, o.instance_type, o.accelerator, o.accelerator_count, o.region): o
        for o in catalog.load_offerings()
    }
    a2 = offers[("gcp", "a2-highgpu-8g", "A100", 8, "us-central1")]
    assert a2.price_on_demand == pytest.approx(5.91582 + 23.47126, abs=1e-4)
    assert a2.price_spot == pytest.approx(2.958 + 11.4728, abs=1e-4)
    n1 = offers[("gcp", "n1-standard-8", "T4", 2, "us-central1")]
    assert n1.price_on_demand == pytest.approx(0.38 + 2 * 0.35, abs=1e-4)


def test_tpu_rows_are_priced_per_chip_slice() -> None:
    v5e = next(o for o in catalog.load_offerings() if o.instance_type == "tpu-v5litepod-8")
    assert v5e.accelerator == "TPU v5e" and v5e.accelerator_count == 8
    assert v5e.price_on_demand == pytest.approx(8 * 1.2)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        (dict(price_spot=2.0), "spot 2.0 > on-demand"),
        (dict(accelerator="A100-80GB"), "not in envcheck's GPU specs"),
        (dict(accelerator_memory_gb=None), "memory missing"),
        (dict(price_on_demand=None, price_spot=None), "no price"),
        (dict(source=" "), "source or as_of missing"),
    ],
)
def test_integrity_rules_catch_bad_rows(kw: dict[str, object], needle: str) -> None:
    found = catalog.problems([_offer(**kw)])
    assert any(needle in p for p in found), found


def test_integrity_rejects_duplicates_and_model_rejects_nonpositive_prices() -> None:
    assert any("duplicate" in p for p in catalog.problems([_offer(), _offer()]))
    with pytest.raises(ValueError):
        _offer(price_on_demand=0)


_HEADER = (
    "cloud,instance_type,accelerator,accelerator_count,accelerator_memory_gb,vcpus,ram_gb,region,"
    "price_on_demand,price_spot,kind,source,as_of\n"
)


def _override(user_catalog: Path, name: str, text: str) -> None:
    """Put ``text`` in the user catalog dir as ``name`` (as `catalog refresh` would) and drop the cache."""
    (user_catalog / name).write_text(text)
    catalog.reset_cache()


def test_refreshed_file_overrides_the_shipped_one(user_catalog: Path) -> None:
    _override(
        user_catalog,
        "offerings_lambda.csv",
        "# test override\n"
        + _HEADER
        + "lambda,gpu_1x_h100_sxm5,H100,1,80,26,225,us-east-1,2.49,,vm,test fixture,2026-11-01\n",
    )
    lam = [o for o in catalog.load_offerings() if o.cloud == "lambda"]
    assert [(o.instance_type, o.price_on_demand) for o in lam] == [("gpu_1x_h100_sxm5", 2.49)]
    info = next(f for f in catalog.summary() if f.kind == "lambda")
    assert info.origin.endswith("offerings_lambda.csv") and info.as_of == "2026-11-01" and info.rows == 1


def test_broken_override_names_file_and_row(user_catalog: Path) -> None:
    _override(
        user_catalog,
        "offerings_aws.csv",
        _HEADER
        + "aws,p3.2xlarge,V100,1,16,8,61,us-east-1,3.06,0.5,vm,x,2026-12-01\n"
        + "aws,p3.8xlarge,V100,zero,16,32,244,us-east-1,12.24,1.75,vm,x,2026-12-01\n",
    )
    with pytest.raises(ProvisionError, match=r"offerings_aws.csv row 3: accelerator_count"):
        catalog.load_offerings()


def test_override_failing_integrity_is_refused(user_catalog: Path) -> None:
    _override(
        user_catalog,
        "offerings_aws.csv",
        _HEADER + "aws,p3.2xlarge,V100,1,16,8,61,us-east-1,3.06,4.0,vm,x,2026-12-01\n",
    )
    with pytest.raises(ProvisionError, match=r"spot 4\.0 > on-demand 3\.06"):
        catalog.load_offerings()


@pytest.mark.parametrize(
    ("as_of", "date"),
    [
        ("2025-H1", dt.date(2025, 6, 30)),
        ("2025-H2", dt.date(2025, 12, 31)),
        ("2024-04", dt.date(2024, 4, 30)),
        ("2024-02", dt.date(2024, 2, 29)),
        ("2020", dt.date(2020, 12, 31)),
        ("2026-11-01", dt.date(2026, 11, 1)),
        ("2025-Q1", dt.date(2025, 3, 31)),
        ("undated", None),
    ],
)
def test_as_of_dates(as_of: str, date: dt.date | None) -> None:
    assert _files.as_of_date(as_of) == date


def test_age_counts_from_the_end_of_the_period() -> None:
    assert _files.age_days("2025-H1", today=dt.date(2025, 7, 30)) == 30
    assert _files.age_days("2026-11", today=dt.date(2026, 11, 22)) == 0


def test_parts_and_rates_load_with_sources() -> None:
    parts = catalog.load_parts()
    assert parts.cpus and parts.boards and parts.psus and parts.ram and parts.drives and parts.other
    for group in (parts.cpus, parts.boards, parts.psus, parts.ram, parts.drives, parts.other):
        for p in group:
            assert p.price_usd > 0 and p.source and p.as_of
    kinds = {b.memory_kind for b in parts.boards}
    assert kinds <= {k.kind for k in parts.ram}
    assert catalog.storage_rates()["aws"].value == 0.08
    assert catalog.electricity_rates()["us-residential"].value == pytest.approx(0.1688)


def test_summary_lists_every_file_with_age() -> None:
    files = {f.name: f for f in catalog.summary()}
    assert {
        "offerings_aws.csv",
        "offerings_gcp.csv",
        "parts_cpus.csv",
        "parts_psus.csv",
        "electricity.csv",
    } <= set(files)
    aws = files["offerings_aws.csv"]
    assert aws.rows == 84 and aws.as_of == "2025-H1" and aws.age_days is not None and aws.origin == "shipped"


def test_refreshed_file_older_than_the_shipped_prices_is_ignored(user_catalog: Path) -> None:
    """A stale refresh left in the cache must not hide newer prices shipped by an upgrade."""
    _override(
        user_catalog,
        "offerings_lambda.csv",
        "# fetched 2024-01-02T00:00Z\n"
        + _HEADER
        + "lambda,gpu_1x_h100_sxm5,H100,1,80,26,225,us-east-1,2.49,,vm,old refresh,2024-01-01\n",
    )
    lam = [o for o in catalog.load_offerings() if o.cloud == "lambda"]
    assert len(lam) > 100 and all(o.source != "old refresh" for o in lam)
    info = next(f for f in catalog.summary() if f.kind == "lambda")
    assert info.origin == "shipped" and "older than the shipped prices" in info.note


def test_refreshed_cloud_without_a_shipped_file_joins_the_catalog(user_catalog: Path) -> None:
    """Azure ships no prices; after a refresh its rows are listed like any other cloud's."""
    _override(
        user_catalog,
        "offerings_azure.csv",
        "# azure offerings; fetched 2026-12-07T10:00Z by `provision catalog refresh`\n"
        + _HEADER
        + "azure,Standard_NC24ads_A100_v4,A100 80GB,1,80,24,220,eastus,3.67,1.1,vm,"
        + "gpuhunt fixture,2026-12-07\n",
    )
    assert "azure" in catalog.clouds()
    info = next(f for f in catalog.summary() if f.kind == "azure")
    assert info.fetched == "2026-12-07T10:00Z" and info.rows == 1


def test_catalog_dir_that_does_not_exist_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in PROVISION_CATALOG_DIR must not silently fall back to the shipped prices."""
    monkeypatch.setenv("PROVISION_CATALOG_DIR", str(tmp_path / "no-such-dir"))
    catalog.reset_cache()
    with pytest.raises(UsageError, match=r"PROVISION_CATALOG_DIR=.*no-such-dir is not a directory"):
        catalog.load_offerings()
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("PROVISION_CATALOG_DIR", str(tmp_path / "a-file"))
    catalog.reset_cache()
    with pytest.raises(UsageError, match="not a directory"):
        catalog.load_offerings()


def test_default_catalog_dir_is_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROVISION_CATALOG_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _files.user_dir() == tmp_path / "cache" / "mlrig" / "catalog"


def test_unreadable_refreshed_file_is_named(user_catalog: Path) -> None:
    (user_catalog / "offerings_gcp.csv").write_bytes("cloud,x\n".encode("utf-16"))
    catalog.reset_cache()
    with pytest.raises(ProvisionError, match=r"offerings_gcp.csv unreadable"):
        catalog.load_offerings()
