"""Offering, the catalog row: a frozen dataclass that refuses what cannot be a price list row, however
it is made (catalog CSV, a refresh, an offers file), and a catalog that names the bad file, row and field."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest

from provision import catalog
from provision.catalog import refresh
from provision.errors import ProvisionError, UsageError
from provision.models import Offering, OfferingError

ROW = {
    "cloud": "aws",
    "instance_type": "p4d.24xlarge",
    "accelerator": "A100",
    "accelerator_count": "8",
    "accelerator_memory_gb": "40",
    "vcpus": "96",
    "ram_gb": "1152",
    "region": "us-east-1",
    "price_on_demand": "21.96",
    "price_spot": "7.5",
    "kind": "vm",
    "source": "test",
    "as_of": "2026-09",
}


def test_csv_text_becomes_typed_fields_and_unknown_columns_are_ignored() -> None:
    o = Offering.from_dict({**ROW, "zone": "us-east-1a", None: "extra cell"})  # type: ignore[dict-item]
    assert (o.accelerator_count, o.vcpus) == (8, 96)
    assert (o.accelerator_memory_gb, o.ram_gb, o.price_on_demand, o.price_spot) == (40.0, 1152.0, 21.96, 7.5)
    assert isinstance(o.accelerator_memory_gb, float) and isinstance(o.accelerator_count, int)
    # JSON numbers (an offers file) and keyword construction (a refresh) give the same row
    typed = o.to_dict()
    assert Offering.from_dict(json.loads(json.dumps(typed))) == o == Offering(**typed)  # type: ignore[arg-type]
    assert Offering.from_dict({**ROW, "accelerator_count": 8.0, "accelerator_memory_gb": 40}) == o
    assert hash(o) == hash(Offering.from_dict(ROW))


def test_optional_fields_default_and_required_ones_are_named_when_missing() -> None:
    minimal = {k: ROW[k] for k in ("cloud", "instance_type", "accelerator", "accelerator_count", "region")}
    o = Offering.from_dict({**minimal, "source": "s", "as_of": "2026"})
    assert (o.kind, o.vcpus, o.price_spot) == ("vm", None, None)
    for name in ("cloud", "instance_type", "accelerator", "accelerator_count", "region", "source", "as_of"):
        with pytest.raises(OfferingError) as info:
            Offering.from_dict({k: v for k, v in ROW.items() if k != name})
        assert info.value.field == name and "missing" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price_on_demand", "nan"),
        ("price_on_demand", "inf"),
        ("price_spot", "-inf"),
        ("price_on_demand", "0"),
        ("price_spot", -1.5),
        ("price_on_demand", math.nan),
        ("accelerator_memory_gb", "NaN"),
        ("ram_gb", math.inf),
        ("ram_gb", "lots"),
        ("accelerator_count", "0"),
        ("accelerator_count", "zero"),
        ("accelerator_count", "8.5"),
        ("accelerator_count", True),
        ("accelerator_count", "1e400"),
        ("vcpus", "-4"),
        ("vcpus", [96]),
        ("cloud", 5),
        ("as_of", 2026),
    ],
)
def test_a_value_that_cannot_be_a_price_list_cell_is_refused(field: str, value: Any) -> None:
    with pytest.raises(OfferingError) as info:
        Offering.from_dict({**ROW, field: value})
    assert info.value.field == field
    assert isinstance(info.value, ValueError)  # callers that catch ValueError keep working


def test_not_a_mapping_is_refused_with_a_value_error() -> None:
    for bad in (1, "aws", [ROW], None):
        with pytest.raises(ValueError, match="must be an object"):
            Offering.from_dict(bad)


def test_rows_are_frozen_and_replace_revalidates() -> None:
    o = Offering.from_dict(ROW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.price_on_demand = 1.0  # type: ignore[misc]
    assert dataclasses.replace(o, price_on_demand="30").price_on_demand == 30.0  # type: ignore[arg-type]
    with pytest.raises(OfferingError, match="price_spot"):
        dataclasses.replace(o, price_spot=math.inf)


_HEADER = ",".join(ROW) + "\n"


@pytest.mark.parametrize(
    ("cell", "value"),
    [("price_on_demand", "nan"), ("price_spot", "inf"), ("accelerator_memory_gb", "1e999")],
)
def test_a_refreshed_file_with_a_non_finite_number_names_file_row_and_field(
    user_catalog: Path, cell: str, value: str
) -> None:
    good = ",".join(ROW.values())
    bad = ",".join(value if k == cell else v for k, v in ROW.items())
    (user_catalog / "offerings_aws.csv").write_text(f"# test\n{_HEADER}{good}\n{bad}\n")
    catalog.reset_cache()
    with pytest.raises(ProvisionError, match=rf"offerings_aws.csv row 3: {cell}: must be a finite number"):
        catalog.load_offerings()


def test_an_offers_file_with_bad_entries_is_a_usage_error(tmp_path: Path) -> None:
    from provision import planning, settings

    offers = tmp_path / "offers.json"
    for body in ("[1]", '[{"cloud": "aws"}]', json.dumps([{**ROW, "price_on_demand": "NaN"}])):
        offers.write_text(body)
        conf = settings.load(
            {"PROVISION_STATE_DIR": str(tmp_path / "s"), "PROVISION_OFFERS_FILE": str(offers)}
        )
        with pytest.raises(UsageError, match="cannot read offers"):
            planning.load_offers(conf)
    offers.write_text(json.dumps([ROW]))
    conf = settings.load({"PROVISION_STATE_DIR": str(tmp_path / "s"), "PROVISION_OFFERS_FILE": str(offers)})
    assert planning.load_offers(conf) == [Offering.from_dict(ROW)]


def test_gpuhunt_rows_with_non_finite_figures_are_skipped_with_the_reason() -> None:
    item = {
        "instance_name": "p5.48xlarge",
        "location": "us-east-1",
        "cpu": 192,
        "memory": 2048.0,
        "gpu_count": 8,
        "gpu_name": "H100",
        "gpu_memory": 80.0,
        "spot": False,
        "gpu_vendor": "nvidia",
    }
    rows = [
        {**item, "price": "inf"},
        {**item, "location": "us-west-2", "price": 55.04, "gpu_memory": "nan"},
        {**item, "location": "eu-west-1", "price": 60.0, "cpu": "nan"},
        {**item, "location": "us-east-2", "price": 55.04},
    ]
    offers, skipped = refresh.parse_gpuhunt(
        "aws", "20261201-0400", rows, url="u", fetched=dt.date(2026, 12, 7)
    )
    assert [(o.region, o.price_on_demand) for o in offers] == [("us-east-2", 55.04)]
    assert len([s for s in skipped if "unusable row" in s]) == 3, skipped
    assert catalog.problems(offers) == []
