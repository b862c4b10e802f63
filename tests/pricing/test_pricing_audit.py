"""Issue 15's audit of the shipped catalog against public figures: one test per finding.

Expected figures are the public ones the issue quotes (AWS after its June-2025 P-family cut, Lambda
and RunPod as of 2026-09) and skypilot-catalog v8 snapshots the rebuilt rows were read from.
"""

from __future__ import annotations

import pytest

from provision import catalog, cost
from provision.catalog import Offering
from provision.catalog._files import as_of_date


def _rows(cloud: str, instance: str, region: str | None = None) -> list[Offering]:
    return [
        o
        for o in catalog.load_offerings()
        if o.cloud == cloud and o.instance_type == instance and (region is None or o.region == region)
    ]


def _one(cloud: str, instance: str, region: str) -> Offering:
    (row,) = _rows(cloud, instance, region)
    return row


@pytest.mark.parametrize(
    ("instance", "price"),
    [("p5.48xlarge", 55.04), ("p4d.24xlarge", 21.96), ("p4de.24xlarge", 27.45)],
)
def test_aws_p_family_carries_the_june_2025_price_cut(instance: str, price: float) -> None:
    row = _one("aws", instance, "us-east-1")
    assert row.price_on_demand == pytest.approx(price, abs=0.01)
    date = as_of_date(row.as_of)
    assert date is not None and date.isoformat() >= "2025-06-30"


@pytest.mark.parametrize(
    ("instance", "per_gpu"),
    [
        ("gpu_8x_h100_sxm5", 3.99),
        ("gpu_1x_h100_sxm5", 4.29),
        ("gpu_1x_a100", 1.99),
        ("gpu_1x_a10", 1.29),
        ("gpu_4x_a6000", 1.09),
        ("gpu_8x_v100", 0.79),
    ],
)
def test_lambda_per_gpu_prices_as_of_2026_09(instance: str, per_gpu: float) -> None:
    rows = _rows("lambda", instance)
    assert len(rows) > 1  # every region Lambda lists
    for row in rows:
        assert row.price_on_demand is not None
        assert row.price_on_demand / row.accelerator_count == pytest.approx(per_gpu, abs=0.005)
        assert row.as_of == "2026-09" and row.price_spot is None


def test_gcp_h100_training_types_are_listed_with_sane_prices() -> None:
    offers = [o for o in catalog.load_offerings() if o.cloud == "gcp"]
    types = {o.instance_type for o in offers}
    assert {"a3-highgpu-8g", "a3-megagpu-8g", "a3-ultragpu-8g", "a4-highgpu-8g"} <= types
    for o in offers:
        if o.price_on_demand and o.price_spot and o.kind == "vm":
            # GCP's spot discount is 60-91 %: a row under 50 % off is a mis-scraped on-demand price
            assert o.price_spot <= 0.5 * o.price_on_demand, (o.instance_type, o.region)
    one = [o for o in offers if o.instance_type == "a3-highgpu-1g"]
    eight = _one("gcp", "a3-highgpu-8g", "us-east4")
    assert one and eight.price_on_demand
    for o in one:  # a 1-GPU slice costs about an eighth of the 8-GPU machine, never $5.38
        assert o.price_on_demand is not None and o.price_on_demand > 10
    east4 = _one("gcp", "a3-highgpu-1g", "us-east4")
    assert east4.price_on_demand == pytest.approx(eight.price_on_demand / 8, rel=0.01)


def test_gcp_a100_80gb_has_no_1_85_dollar_row() -> None:
    rows = [o for o in catalog.load_offerings() if o.cloud == "gcp" and o.accelerator == "A100 80GB"]
    assert rows
    for o in rows:
        assert o.price_on_demand is not None and o.price_on_demand / o.accelerator_count > 4.0


@pytest.mark.parametrize(
    ("instance", "price"),
    [
        ("1x_RTX4090_SECURE", 0.74),
        ("1x_H200-SXM_SECURE", 4.59),
        ("1x_A100-80GB-SXM_SECURE", 1.59),
        ("1x_RTX3090_SECURE", 0.50),
        ("1x_RTX5090_SECURE", 0.99),
        ("1x_H100-SXM_SECURE", 3.29),
        ("1x_L40S_SECURE", 0.99),
    ],
)
def test_runpod_prices_and_formerly_missing_gpus(instance: str, price: float) -> None:
    row = _one("runpod", instance, "US")
    assert row.price_on_demand == pytest.approx(price)


def test_runpod_has_no_fake_spot_column() -> None:
    """The old "spot" figures were Community Cloud on-demand prices: RunPod rows carry no spot."""
    rows = [o for o in catalog.load_offerings() if o.cloud == "runpod"]
    assert rows and all(o.price_spot is None for o in rows)


@pytest.mark.parametrize("cloud", ["aws", "gcp", "lambda", "runpod"])
def test_b200_is_offered_everywhere(cloud: str) -> None:
    assert any(o.cloud == cloud and o.accelerator == "B200" for o in catalog.load_offerings())


def test_formerly_missing_offerings() -> None:
    p5 = _one("aws", "p5.4xlarge", "us-east-1")
    assert (p5.accelerator, p5.accelerator_count, p5.price_on_demand) == ("H100", 1, 6.88)
    lam = {o.accelerator for o in catalog.load_offerings() if o.cloud == "lambda"}
    assert {"A100 80GB", "H100 PCIe", "GH200"} <= lam


def test_small_tpu_v5p_slices_cost_out() -> None:
    """`--gpu "TPU v5p:4"` used to fail: a v5p-8 slice is 4 chips."""
    report = cost.estimate(
        catalog.load_offerings(), cost.Work.build(hours=10), gpu=cost.parse_gpu("TPU v5p:4"), disk_gb=0
    )
    assert report.estimates
    best = report.estimates[0]
    assert best.offering.instance_type == "tpu-v5p-8" and best.accelerators == 4
    assert best.on_demand_cost == pytest.approx(10 * 16.8)


def test_a10g_offerings_are_costed_not_dropped() -> None:
    report = cost.estimate(
        catalog.load_offerings(),
        cost.Work.build(params=1e8, tokens=1e9),
        gpu=cost.parse_gpu("A10G:1"),
        clouds=["aws"],
    )
    assert report.estimates and all(e.offering.accelerator == "A10G" for e in report.estimates)
    assert not any("A10G" in s for s in report.skipped)


def test_every_shipped_row_is_dated_and_sourced() -> None:
    for o in catalog.load_offerings():
        assert as_of_date(o.as_of) is not None and o.source, (o.cloud, o.instance_type)
