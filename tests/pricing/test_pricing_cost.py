"""provision.cost: the DAWNBench check, the 6*N*D rule, multi-node shapes, storage, bad requests."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from envcheck.knowledge import gpus
from provision import catalog, cost
from provision.errors import UsageError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pricing"

#: DAWNBench system -> the catalog instance it ran on
DAWN_INSTANCE = {"p3.16xlarge": "p3.16xlarge", "Cloud TPU v2": "tpu-v2-8"}


def _dawnbench_rows() -> list[dict[str, str]]:
    lines = [
        ln for ln in (FIXTURES / "dawnbench_imagenet.csv").read_text().splitlines() if not ln.startswith("#")
    ]
    return [r for r in csv.DictReader(lines) if r["cost_usd"] and r["total_accelerators"]]


def _instance_for(system: str) -> str | None:
    return next((inst for key, inst in DAWN_INSTANCE.items() if key in system), None)


def test_dawnbench_costs_are_reproduced_from_hardware_and_time() -> None:
    """Given each entry's hardware and time, the estimate matches its published cost.

    Entries whose hourly price has not moved since (p3.16xlarge $24.48, Cloud TPU v2-8 $4.50 + a
    $0.095 n1-standard-2 host) must come out within 3 %; entries from before Google's 2018 TPU price
    cut ($6.50/h) must come out cheaper by exactly that ratio.
    """
    offers = catalog.load_offerings()
    storage = catalog.storage_rates()
    checked = 0
    for row in _dawnbench_rows():
        instance = _instance_for(row["system"])
        if instance is None:
            continue
        spec = gpus.lookup(row["accelerator"].split(" (")[0])
        assert spec is not None, row["accelerator"]
        hours = float(row["time_minutes"]) / 60.0
        request = cost.GpuRequest(spec.name, int(row["total_accelerators"]))
        report = cost.estimate(offers, cost.Work.build(hours=hours), gpu=request, disk_gb=0, storage=storage)
        match = [e for e in report.estimates if e.offering.instance_type == instance]
        assert len(match) == 1, (row["system"], [e.offering.instance_type for e in report.estimates])
        est = match[0]
        assert est.on_demand_cost is not None
        published, their_rate = float(row["cost_usd"]), float(row["cost_per_hour_usd"])
        our_rate = est.offering.price_on_demand * est.nodes  # type: ignore[operator]
        if abs(our_rate - their_rate) / their_rate < 0.05:
            assert est.on_demand_cost == pytest.approx(published, rel=0.03), row["system"]
        else:
            assert their_rate == pytest.approx(6.595)  # TPU v2 at $6.50/h + host, before the price cut
            assert est.on_demand_cost == pytest.approx(published * our_rate / their_rate, rel=0.03)
        checked += 1
    assert checked >= 10


def test_dawnbench_multi_machine_entry_uses_several_nodes() -> None:
    """fast.ai's 16 x p3.16xlarge run: 128 V100 for 18.09 min cost $118.07."""
    report = cost.estimate(
        catalog.load_offerings(), cost.Work.build(hours=18.09 / 60), gpu=cost.parse_gpu("V100:128"), disk_gb=0
    )
    by_type = {e.offering.instance_type: e for e in report.estimates}
    assert by_type["p3dn.24xlarge"].nodes == 16  # the family query also finds the 32 GB V100s
    est = by_type["p3.16xlarge"]
    assert est.nodes == 16
    assert est.on_demand_cost == pytest.approx(118.07, rel=0.01)


def test_six_n_d_rule_and_time_on_h100() -> None:
    work = cost.Work.build(params=7e9, tokens=2e12, mfu=0.4)
    assert work.flops == pytest.approx(8.4e22)
    report = cost.estimate(
        catalog.load_offerings(),
        work,
        gpu=cost.parse_gpu("H100:8"),
        clouds=["lambda"],
        region="us-east-1",
        disk_gb=0,
    )
    (est,) = report.estimates
    expected_h = 8.4e22 / (8 * 989.4e12 * 0.4 * 3600)
    assert est.hours == pytest.approx(expected_h) and est.nodes == 1 and est.efficiency == 1.0
    assert est.on_demand_cost == pytest.approx(expected_h * 31.92)  # Lambda 8x H100 SXM, 2026-09
    assert "6 x N x D" in report.assumptions[0]


def test_flops_with_mfu_scales_time_inversely() -> None:
    offers = catalog.load_offerings()
    a = cost.estimate(
        offers, cost.Work.build(flops=3.1e21, mfu=0.4), gpu=cost.parse_gpu("A100:8"), clouds=["aws"]
    )
    b = cost.estimate(
        offers, cost.Work.build(flops=3.1e21, mfu=0.2), gpu=cost.parse_gpu("A100:8"), clouds=["aws"]
    )
    ea = next(e for e in a.estimates if e.offering.instance_type == "p4d.24xlarge")
    eb = next(e for e in b.estimates if e.offering.instance_type == "p4d.24xlarge")
    assert eb.hours == pytest.approx(2 * ea.hours)
    assert ea.hours == pytest.approx(3.1e21 / (8 * 312e12 * 0.4 * 3600))


def test_every_offering_is_estimated_cheapest_on_time_first() -> None:
    offers = catalog.load_offerings()
    report = cost.estimate(offers, cost.Work.build(flops=1e21), deadline_hours=24 * 7)
    assert len(report.estimates) + len(report.infeasible) == len(offers)  # every GPU has a peak now
    on_time = [e.within_deadline for e in report.estimates]
    assert on_time == sorted(on_time, reverse=True)  # plans that meet the deadline come first
    kept = [e.sort_cost for e in report.estimates if e.within_deadline]
    late = [e.hours for e in report.estimates if not e.within_deadline]
    assert kept == sorted(kept) and late == sorted(late)  # cheapest on time, then soonest late
    assert report.cheapest is report.estimates[0] and report.cheapest.within_deadline
    assert report.fastest is not None and report.fastest.hours == min(e.hours for e in report.estimates)


def test_storage_is_charged_per_gb_month() -> None:
    report = cost.estimate(
        catalog.load_offerings(),
        cost.Work.build(hours=730),
        gpu=cost.parse_gpu("T4:1"),
        clouds=["aws"],
        disk_gb=500,
        storage=catalog.storage_rates(),
    )
    for e in report.estimates:
        assert e.storage_cost == pytest.approx(500 * 0.08)
        assert e.on_demand_cost == pytest.approx(730 * e.offering.price_on_demand + 40)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "name", "count"),
    [("A100:8", "A100", 8), ("RTX 4090:2", "RTX 4090", 2), ("TPU v5e", "TPU v5e", None)],
)
def test_parse_gpu(text: str, name: str, count: int | None) -> None:
    assert cost.parse_gpu(text) == cost.GpuRequest(name, count)


@pytest.mark.parametrize("text", ["A100:0", "A100:x", "A100:-1", ""])
def test_parse_gpu_rejects_bad_counts(text: str) -> None:
    with pytest.raises(UsageError):
        cost.parse_gpu(text)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({}, "exactly one of"),
        ({"hours": 1, "flops": 1e20}, "exactly one of"),
        ({"params": 7e9}, "--params needs --tokens"),
        ({"flops": 1e20, "mfu": 1.5}, "--mfu 1.5 must be > 0 and <= 1"),
        ({"hours": -1}, "must be > 0"),
    ],
)
def test_work_rejects_impossible_requests(kwargs: dict[str, float], needle: str) -> None:
    with pytest.raises(UsageError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        cost.Work.build(**kwargs)


def test_estimate_rejects_impossible_requests() -> None:
    offers = catalog.load_offerings()
    with pytest.raises(UsageError, match="--hours needs --gpu"):
        cost.estimate(offers, cost.Work.build(hours=3))
    with pytest.raises(UsageError, match="unknown GPU"):
        cost.estimate(offers, cost.Work.build(hours=3), gpu=cost.parse_gpu("Voodoo5:2"))
    with pytest.raises(UsageError, match="no offering has 3 x H100"):
        cost.estimate(offers, cost.Work.build(hours=3), gpu=cost.parse_gpu("H100:3"))


def test_per_pflop_hour() -> None:
    assert cost.per_pflop_hour(23.92, 8, 989.4) == pytest.approx(23.92 / 7.9152)
    assert cost.per_pflop_hour(1.0, 1, None) is None
