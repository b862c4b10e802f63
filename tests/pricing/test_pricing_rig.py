"""provision.rig / rig_power / breakeven: the formulas, slot and lane rules, impossible builds, the plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision import breakeven, catalog, rig, rig_power
from provision.catalog import Board, Psu
from provision.cost import GpuRequest, parse_gpu
from provision.errors import UsageError


def _plan(gpu: str, **kw: float) -> rig.RigPlan:
    return rig.plan(
        parse_gpu(gpu),
        catalog.load_parts(),
        catalog.load_offerings(),
        kwh_price=kw.get("kwh", 0.16),
        utilization=kw.get("util", 0.3),
    )


def _board(slots: int, pitch: int) -> Board:
    return Board(
        name="b",
        price_usd=1,
        price_date="2026",
        source="t",
        as_of="2026",
        verified=True,
        platform="X",
        gpu_slots=slots,
        slot_pitch=pitch,
    )


def _psu(watts: int, atx3: int, price: float) -> Psu:
    return Psu(
        name=f"psu{watts}",
        price_usd=price,
        price_date="2026",
        source="t",
        as_of="2026",
        verified=True,
        watts=watts,
        atx3_w=atx3,
    )


def test_dettmers_break_even_example() -> None:
    """$2,200 RTX 3090 box, 0.45 kW, $0.12/kWh, $2.14/h cloud, 15 %: ~300 days (293 by the formula)."""
    be = breakeven.break_even(2200, 2.14, 0.45, 0.12, 0.15)
    assert be.days == pytest.approx(292.96, abs=0.1)
    assert be.days is not None and be.buy_cost(be.days) == pytest.approx(be.rent_cost(be.days))
    assert breakeven.break_even(2200, 0.05, 0.45, 0.12, 0.15).days is None  # cheaper to rent forever
    kwh, usd = breakeven.yearly_energy(0.45, 0.12, 0.15)
    assert kwh == pytest.approx(591.3, abs=0.1) and usd == pytest.approx(70.96, abs=0.01)


def test_psu_formula_and_the_old_rule() -> None:
    psus = [_psu(1000, 1000, 150), _psu(1600, 1600, 500), _psu(2000, 0, 300)]
    p = rig_power.budget(450, 2, 170, psus)
    assert p.sustained_w == 450 * 2 + 170 + 150
    assert p.required_psu_w == 1525  # ceil(1.25 x 1220)
    assert p.transient_w == 2 * 900 + 170 + 150
    assert p.rule_of_thumb_w == 800
    assert (
        p.psu is not None and p.psu.watts == 1600
    )  # the cheaper 2000 W ATX 2.x unit cannot carry 2120 W spikes
    assert any("500 W + 150 W/GPU rule says 800 W, 725 W short" in n for n in p.notes)
    small = rig_power.budget(150, 1, 65, psus)
    assert any("still covers" in n for n in small.notes)


def test_a_light_cap_is_chosen_when_it_keeps_the_throughput() -> None:
    """3 x 350 W + 105 W CPU needs 1,632 W: a 340 W cap (97 %) fits one 1,600 W unit at ~99 %."""
    p = rig_power.budget(350, 3, 105, [_psu(1600, 1600, 500)])
    assert p.power_limit_w == 340 and p.psu_count == 1
    assert 1.25 * (3 * p.power_limit_w + 105 + 150) <= 1600
    assert p.performance_at_limit == pytest.approx(rig_power.performance_at(340 / 350))
    assert p.performance_at_limit > 0.95
    assert p.sustained_w == 3 * 340 + 105 + 150
    assert any("nvidia-smi -pl 340" in n for n in p.notes)


def test_cap_never_goes_below_70_percent_or_the_driver_minimum() -> None:
    psus = [_psu(1600, 1600, 500), _psu(1300, 1300, 300)]
    deep = rig_power.budget(350, 4, 280, psus)  # one PSU would need a 210 W cap: 60 % of 350 W
    assert deep.power_limit_w is None and deep.psu_count == 2
    assert any("below the floor of 245 W" in n for n in deep.notes)
    driver = rig_power.budget(350, 3, 105, psus, min_limit_w=345)  # the 340 W cap is under the driver floor
    assert driver.power_limit_w is None and driver.psu_count == 2
    assert any("floor of 345 W" in n for n in driver.notes)


def test_two_psus_with_a_cap_and_the_impossible_build() -> None:
    both = rig_power.budget(450, 4, 280, [_psu(1600, 1600, 600)], min_limit_w=150)
    assert both.psu_count == 2 and both.power_limit_w == 420 and both.performance_at_limit > 0.95
    with pytest.raises(UsageError, match="no PSU combination"):
        rig_power.budget(600, 8, 350, [_psu(1600, 1600, 600)], min_limit_w=400)


def test_performance_curve_follows_puget() -> None:
    """Puget (Kinghorn 2020): 4 x RTX 3090 at 280 of 350 W (80 %) kept >95 % of the throughput."""
    assert rig_power.performance_at(1.0) == 1.0
    assert rig_power.performance_at(0.8) == pytest.approx(0.95)
    assert rig_power.performance_at(0.7) == pytest.approx(0.70)
    assert rig_power.performance_at(0.75) == pytest.approx(0.825)
    assert rig_power.performance_at(0.5) == pytest.approx(0.70)  # never extrapolated below the floor


def test_wall_draw_is_load_over_psu_efficiency() -> None:
    gold = Psu(name="g", price_usd=1, price_date="2026", source="t", as_of="2026", verified=True,
               watts=1000, atx3_w=1000, efficiency="80 PLUS Gold")  # fmt: skip
    p = rig_power.budget(300, 1, 100, [gold])
    assert p.efficiency == 0.90 and p.wall_w == pytest.approx((300 + 100 + 150) / 0.90)


def test_household_circuit_limit() -> None:
    over = rig_power.budget(350, 3, 105, [_psu(2400, 2400, 1)])  # ~1,480 W: over 15 A, under 20 A
    assert 1440 < over.wall_w < 1920 and over.needs_230v
    assert any("230 V circuit" in n and "20 A" in n for n in over.notes)
    huge = rig_power.budget(450, 4, 280, [_psu(3000, 3000, 1)])
    assert huge.wall_w > 1920 and any("230 V" in n and "20 A" not in n for n in huge.notes if "wall" in n)
    under = rig_power.budget(300, 1, 100, [_psu(1000, 1000, 1)])
    assert any("fits a US 15 A" in n for n in under.notes) and not under.needs_230v


@pytest.mark.parametrize(
    ("slots", "pitch", "width", "gap", "fit"),
    [
        (7, 1, 3, False, 3),
        (7, 1, 2, False, 4),
        (7, 1, 2, True, 3),
        (2, 3, 3, False, 2),
        (2, 3, 3, True, 1),
        (3, 2, 3, True, 2),
        (1, 0, 3, True, 1),
    ],
)
def test_cards_that_fit(slots: int, pitch: int, width: int, gap: bool, fit: int) -> None:
    assert rig.cards_that_fit(_board(slots, pitch), width, gap) == fit


def test_two_4090s_plan() -> None:
    """Issue 15: two 3-slot 4090s on a desktop board at x8/x8 with a 1,600 W PSU, no Threadripper,
    no power cap, electricity at the wall."""
    plan = _plan("RTX 4090:2")
    assert plan.count == 2 and plan.gpu.name == "RTX 4090"
    assert plan.ram.total_gb >= 2 * 48
    assert plan.platform.startswith("desktop") and plan.board.platform not in rig.HEDT_PLATFORMS
    assert "Threadripper" not in plan.cpu.name
    assert plan.lanes_per_gpu == 8 and plan.cpu.gpu_lanes >= 2 * plan.lanes_per_gpu
    assert plan.pcie_gen == 4 and plan.pcie_gb_s == pytest.approx(8 * 1.969, rel=0.01)  # a 4090 is Gen4
    assert plan.power.power_limit_w is None and plan.power.psu_count == 1
    assert plan.power.psu is not None and plan.power.psu.watts == 1600
    assert plan.power.wall_w == pytest.approx(plan.power.sustained_w / plan.power.efficiency)
    assert rig.cards_that_fit(plan.board, 3, gap=False) >= 2
    assert any("cooling" in n for n in plan.notes)
    assert plan.total_usd == pytest.approx(sum(line.total_usd for line in plan.lines))
    assert plan.lines[0].item == "GPU" and plan.lines[0].total_usd == 2 * 2749
    assert {line.item for line in plan.lines} == {
        "GPU",
        "CPU",
        "Motherboard",
        "RAM",
        "NVMe",
        "PSU",
        "Case/cooling",
    }
    assert plan.cloud is not None and plan.cloud.offering.accelerator == "RTX 4090" and plan.cloud.same_gpu
    assert plan.cloud.per_hour == pytest.approx(2 * 0.74)
    assert plan.break_even is not None and plan.break_even.days is not None
    expected = plan.total_usd / (24 * 0.3 * (2 * 0.74 - plan.power.wall_w / 1000 * 0.16))
    assert plan.break_even.days == pytest.approx(expected)
    assert plan.energy_kwh_year == pytest.approx(plan.power.wall_w / 1000 * 8760 * 0.3)


def test_four_4090s_get_buildable_options() -> None:
    plan = _plan("RTX 4090:4")
    assert plan.count == 4 and plan.lanes_per_gpu >= 8
    text = " ".join(plan.options).lower()
    for word in ("blower", "riser", "open frame", "water", "two psus", "230 v"):
        assert word in text, word
    assert plan.power.psu_count == 2 or plan.power.power_limit_w is not None
    if plan.power.power_limit_w is not None:
        assert plan.power.power_limit_w >= 0.7 * 450 and plan.power.power_limit_w >= 150  # driver minimum
        assert plan.peak_tflops is not None and plan.peak_tflops_uncapped is not None
        assert plan.peak_tflops == pytest.approx(plan.peak_tflops_uncapped * plan.power.performance_at_limit)
    assert plan.power.needs_230v


def test_buy_vs_rent_names_the_closest_rental_when_the_gpu_is_not_rented() -> None:
    parts = catalog.load_parts()
    offers = [o for o in catalog.load_offerings() if o.accelerator != "RTX 4090"]
    plan = rig.plan(parse_gpu("RTX 4090:1"), parts, offers, kwh_price=0.16, utilization=0.3)
    assert plan.cloud is not None and not plan.cloud.same_gpu
    assert plan.cloud.offering.accelerator != "RTX 4090" and "closest" in plan.cloud.how
    none = rig.plan(parse_gpu("RTX 4090:1"), parts, [], kwh_price=0.16, utilization=0.3)
    assert none.cloud is None and none.break_even is None


def test_gpu_line_is_starred_without_a_dated_street_price() -> None:
    plan = _plan("RTX 4090:1")
    gpu_line = plan.lines[0]
    assert gpu_line.item == "GPU" and gpu_line.price_date
    assert gpu_line.verified == bool(plan.gpu.prices.street_usd and plan.gpu.prices.street_date)
    for line in plan.lines:
        assert line.price_date, line.item


def test_single_card_x16_and_lean_platform() -> None:
    plan = _plan("RTX 3090:1")
    assert plan.lanes_per_gpu == 16 and plan.board.gpu_slots >= 1
    assert plan.ram.total_gb >= 48
    assert any("one card at x16" in n for n in plan.notes)


def test_four_blower_cards_sit_side_by_side_on_workstation_board() -> None:
    plan = _plan("RTX 6000 Ada:4")
    assert plan.board.gpu_slots >= 4 and plan.lanes_per_gpu >= 8
    assert any("blower" in n for n in plan.notes)
    assert plan.ram.total_gb >= 2 * 4 * 48


def test_three_open_air_cards_get_cooling_advice() -> None:
    plan = _plan("RTX 5090:3")
    assert any("open-air cards heat each other" in n for n in plan.notes)


def test_x8_is_explained_when_lanes_are_split() -> None:
    parts = catalog.load_parts()
    desktop = [b for b in parts.boards if b.platform == "AM5" and b.gpu_slots == 2]
    assert desktop and desktop[0].lanes_per_gpu == 8  # AM5 splits its x16 graphics lanes x8/x8


@pytest.mark.parametrize(
    ("gpu", "needle"),
    [
        ("Voodoo5:2", "unknown GPU"),
        ("H100:2", "cannot plan a rig with H100"),
        ("RTX 4090:9", "no board in the catalog"),
        ("TPU v4:1", "cannot plan"),
        ("K80:1", "data-centre card"),
    ],
)
def test_impossible_builds(gpu: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        _plan(gpu)


def test_budget_chooses_within_budget_and_by_objective() -> None:
    parts, offers = catalog.load_parts(), catalog.load_offerings()
    by_tflops = rig.plan_for_budget(6000, "tflops", parts, offers, kwh_price=0.16, utilization=0.3)
    by_memory = rig.plan_for_budget(6000, "memory", parts, offers, kwh_price=0.16, utilization=0.3)
    assert by_tflops.total_usd <= 6000 and by_memory.total_usd <= 6000
    assert by_memory.vram_gb >= by_tflops.vram_gb
    assert (by_tflops.peak_tflops or 0) >= (by_memory.peak_tflops or 0)
    # nothing affordable beats the choice on its own objective
    for spec in rig.buyable_gpus():
        try:
            other = rig.plan(GpuRequest(spec.name, 1), parts, offers, kwh_price=0.16, utilization=0.3)
        except UsageError:
            continue
        if other.total_usd <= 6000:
            assert other.vram_gb <= by_memory.vram_gb
            if other.peak_tflops and spec.bf16_tflops_dense:
                assert other.peak_tflops <= (by_tflops.peak_tflops or 0)


def test_budget_too_small() -> None:
    with pytest.raises(UsageError, match="too small for any build") as info:
        rig.plan_for_budget(
            300, "tflops", catalog.load_parts(), catalog.load_offerings(), kwh_price=0.16, utilization=0.3
        )
    assert info.value.hint and "cheapest build" in info.value.hint


def test_bad_inputs() -> None:
    with pytest.raises(UsageError, match="utilization"):
        _plan("RTX 4090:1", util=0)
    with pytest.raises(UsageError, match="--optimize"):
        rig.plan_for_budget(5000, "speed", catalog.load_parts(), [], kwh_price=0.1, utilization=0.3)


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from provision._plot import plot_buy_vs_rent

    out = tmp_path / "be.png"
    plot_buy_vs_rent(breakeven.break_even(2200, 2.14, 0.45, 0.12, 0.15), out, "1 x RTX 3090")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
