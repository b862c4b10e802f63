"""Rich tables and JSON documents for ``provision gpus``, ``cost``, ``rig`` and ``catalog``.

Formatting lives here only: the estimators and ``provision.offer_views`` decide what to show. Below
``WIDE`` columns (an 80-column terminal) rows are stacked onto two lines so that no number is ever
cut; prices always carry the date of the catalog row they come from. JSON carries raw units (USD,
hours, watts, GB), a string ``schema_version`` and never NaN or Infinity.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from envcheck.knowledge import gpus
from provision.cost import fmt_hours, per_pflop_hour
from provision.models import OfferingKind
from provision.offer_views import Freshness, GpuSummary, ShapeGroup, interconnect, price

if TYPE_CHECKING:
    from provision.catalog import CatalogFile, Offering
    from provision.cost import CostReport, Estimate
    from provision.rig import RigPlan

#: "<major>.<minor>" of every JSON document these commands print (2.0: string version, cost plans
#: with nodes/feasibility, gpus summary, rig options)
SCHEMA_VERSION = "2.0"
#: terminal width from which tables keep one line per row
WIDE = 120


def _clean(value: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def emit_json(doc: dict[str, Any]) -> None:
    """Write one JSON document to stdout."""
    print(
        json.dumps(_clean({"schema_version": SCHEMA_VERSION, **doc}), indent=2, default=str, allow_nan=False)
    )


def print_table(
    console: Console,
    title: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[str | Text]],
    wrap: Sequence[str] = (),
) -> None:
    """A borderless rich table. ``columns`` are (header, justify); only columns named in ``wrap`` may
    wrap (text such as instance names); every other cell, numbers above all, is never cut."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for header, justify in columns:
        if header in wrap:
            table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]
        else:
            table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(*(c if isinstance(c, Text) else Text(c) for c in r))
    console.print(table)


def _short(source: str, limit: int = 48) -> str:
    """First clause of a source string, for table cells (the full text is in --json)."""
    head = source.split(";", maxsplit=1)[0].split(" (", maxsplit=1)[0].strip()
    return head if len(head) <= limit else head[: limit - 1] + "…"


def money(x: float | None, digits: int = 2) -> str:
    """$1.23 below $1,000, whole dollars above; '-' when unknown."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"${x:,.{digits}f}" if x < 1000 else f"${x:,.0f}"


def total(x: float | None) -> str:
    """A job total: cents below $100, whole dollars above."""
    return money(x, 2 if x is not None and x < 100 else 0)


def warn_if_stale(fresh: Freshness) -> None:
    """Say on stderr when the prices are older than 30 days, and how to refresh them."""
    msg = fresh.warning()
    if msg:
        Console(stderr=True, highlight=False).print(f"[yellow]{msg}[/]", highlight=False)


def _dates(fresh: Freshness) -> str:
    if fresh.oldest is None:
        return "-"
    span = fresh.oldest if fresh.oldest == fresh.newest else f"{fresh.oldest} to {fresh.newest}"
    return span + (f", up to {fresh.max_age_days} days old" if fresh.max_age_days is not None else "")


# ----------------------------------------------------------------------------- gpus


def offering_row(o: Offering, spot: bool, other_regions: Sequence[str] = ()) -> dict[str, Any]:
    """Raw numbers for one offering (what --json prints and the table formats)."""
    spec = gpus.lookup(o.accelerator)
    p = price(o, spot)
    peak = spec.peak_tflops if spec else None
    return {
        "accelerator": o.accelerator,
        "accelerator_count": o.accelerator_count,
        "accelerator_memory_gb": o.accelerator_memory_gb,
        "interconnect": interconnect(o),
        "cloud": o.cloud,
        "instance_type": o.instance_type,
        "region": o.region,
        "other_regions": list(other_regions),
        "kind": o.kind,
        "vcpus": o.vcpus,
        "ram_gb": o.ram_gb,
        "price_on_demand": o.price_on_demand,
        "price_spot": o.price_spot,
        "price_per_accelerator_hour": p / o.accelerator_count if p else None,
        "usd_per_pflop_hour": per_pflop_hour(p, o.accelerator_count, peak) if p else None,
        "peak_tflops_per_accelerator": peak,
        "as_of": o.as_of,
        "source": o.source,
    }


def _gb(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _price_cell(amount: float | None, o: Offering | None) -> str:
    """ "$0.74/GPU-h" over "runpod 2026-09": a price always shows where and when it was quoted."""
    if o is None or amount is None:
        return "-"
    return f"{money(amount)}\n{o.cloud} {o.as_of}"


def _counts(counts: Sequence[int]) -> str:
    return ", ".join(map(str, counts))


def gpus_summary_table(console: Console, summaries: Sequence[GpuSummary], fresh: Freshness) -> None:
    """sky show-gpus style: one row per accelerator, the counts sold, and the cheapest GPU-hour."""
    wide = console.width >= WIDE
    rows = []
    for s in summaries:
        od, sp = s.cheapest_on_demand, s.cheapest_spot
        mem = "/".join(f"{m:g}" for m in s.memory_gb)
        od_h, sp_h = s.per_accelerator(od, False), s.per_accelerator(sp, True)
        if wide:
            rows.append(
                [
                    s.accelerator,
                    mem,
                    _counts(s.counts),
                    ", ".join(s.interconnects),
                    "-" if s.peak_tflops is None else f"{s.peak_tflops:,.0f}",
                    ", ".join(s.clouds),
                    money(od_h),
                    f"{od.cloud} {od.as_of}" if od else "-",
                    money(sp_h),
                    f"{sp.cloud} {sp.as_of}" if sp else "-",
                ]
            )
        else:
            rows.append(
                [
                    s.accelerator,
                    mem,
                    _counts(s.counts),
                    "\n".join(s.interconnects),
                    _price_cell(od_h, od),
                    _price_cell(sp_h, sp),
                ]
            )
    if wide:
        columns = [
            ("GPU", "left"),
            ("GB", "right"),
            ("Counts", "left"),
            ("Link", "left"),
            ("TFLOPS", "right"),
            ("Clouds", "left"),
            ("On-demand $/GPU-h", "right"),
            ("where, as of", "left"),
            ("Spot $/GPU-h", "right"),
            ("where, as of", "left"),
        ]
        wrap: tuple[str, ...] = ("Clouds",)
    else:
        columns = [
            ("GPU", "left"),
            ("GB", "right"),
            ("Counts", "left"),
            ("Link", "left"),
            ("On-demand/GPU-h", "left"),
            ("Spot/GPU-h", "left"),
        ]
        wrap = ("GPU", "Counts", "Link")
    print_table(
        console, f"{len(summaries)} accelerators · prices as of {_dates(fresh)}", columns, rows, wrap=wrap
    )
    console.print(
        "[dim]Cheapest price per accelerator-hour over all regions. `provision gpus NAME` lists one "
        "GPU's offerings (vCPU, RAM, every region with --all-regions); --all lists every offering.[/]"
    )


def _where(o: Offering, more: int) -> str:
    """Cloud and instance on one line when short, then the region (and how many more sell it)."""
    head = f"{o.cloud} {o.instance_type}"
    if len(head) > 22:
        head = f"{o.cloud}\n{o.instance_type}"
    return f"{head}\n{o.region}" + (f" +{more}" if more else "")


def gpus_table(console: Console, groups: Sequence[ShapeGroup], spot: bool, fresh: Freshness) -> None:
    """One row per shape (cheapest region unless every region was asked for)."""
    market = "spot" if spot else "on-demand"
    wide = console.width >= WIDE
    rows: list[list[str]] = []
    for g in groups:
        o = g.best
        r = offering_row(o, spot)
        more = f" (+{g.other_regions})" if g.other_regions else ""
        od, sp = money(o.price_on_demand), money(o.price_spot)
        per_gpu = money(r["price_per_accelerator_hour"])
        vcpus = "-" if o.vcpus is None else str(o.vcpus)
        if wide:
            rows.append(
                [
                    o.accelerator,
                    _gb(o.accelerator_memory_gb),
                    str(o.accelerator_count),
                    interconnect(o),
                    o.cloud,
                    o.instance_type,
                    o.region + more,
                    vcpus,
                    _gb(o.ram_gb),
                    od,
                    sp,
                    per_gpu,
                    money(r["usd_per_pflop_hour"]),
                    o.as_of,
                ]
            )
        else:
            ram = "-" if o.ram_gb is None else f"{o.ram_gb:.0f} GB"
            unit = "chip" if o.kind == OfferingKind.TPU_VM else "GPU"
            rows.append(
                [
                    f"{o.accelerator_count}x {o.accelerator}\n"
                    f"{_gb(o.accelerator_memory_gb)} GB {interconnect(o)}",
                    _where(o, g.other_regions),
                    f"{vcpus}\n{ram}",
                    f"{od}\n{per_gpu}/{unit}" if not spot else od,
                    sp if not spot else f"{sp}\n{per_gpu}/{unit}",
                    o.as_of,
                ]
            )
    if wide:
        columns = [
            ("GPU", "left"),
            ("GB", "right"),
            ("#", "right"),
            ("Link", "left"),
            ("Cloud", "left"),
            ("Instance", "left"),
            ("Region", "left"),
            ("vCPU", "right"),
            ("RAM GB", "right"),
            ("$/h", "right"),
            ("Spot $/h", "right"),
            (f"{market} $/GPU-h", "right"),
            ("$/PFLOP-h", "right"),
            ("As of", "left"),
        ]
        wrap: tuple[str, ...] = ("Instance", "Region")
    else:
        columns = [
            ("GPUs", "left"),
            ("Where", "left"),
            ("vCPU\nRAM", "right"),
            ("On-demand", "right"),
            ("Spot", "right"),
            ("As of", "left"),
        ]
        wrap = ("Where",)
    title = f"{len(groups)} offerings, sorted by {market} price · prices as of {_dates(fresh)}"
    print_table(console, title, columns, rows, wrap=wrap)
    console.print(
        "[dim]Prices in $/h per machine. $/PFLOP-h = price / dense BF16 peak. (+N) = sold in N more "
        "regions at this price or more (--all-regions lists them). Sources: `provision catalog`.[/]"
    )


# ----------------------------------------------------------------------------- cost


def cost_json(report: CostReport, top: int, fresh: Freshness) -> dict[str, Any]:
    """Raw estimate numbers."""
    return {
        "work": {
            "hours": report.work.hours,
            "flops": report.work.flops,
            "params": report.work.params,
            "tokens": report.work.tokens,
            "mfu": report.work.mfu,
            "basis": report.work.basis,
        },
        "deadline_hours": report.deadline_hours,
        "cheapest": report.cheapest.to_dict() if report.cheapest else None,
        "cheapest_spot": report.cheapest_spot.to_dict() if report.cheapest_spot else None,
        "fastest": report.fastest.to_dict() if report.fastest else None,
        "estimates": [e.to_dict() for e in report.estimates[:top]],
        "estimates_total": len(report.estimates),
        "infeasible": [
            {
                "cloud": i.offering.cloud,
                "instance_type": i.offering.instance_type,
                "region": i.offering.region,
                "accelerator": i.offering.accelerator,
                "accelerator_count": i.offering.accelerator_count,
                "reason": i.reason,
            }
            for i in report.infeasible
        ],
        "calibration": report.calibration,
        "assumptions": report.assumptions,
        "skipped": report.skipped,
        "catalog": fresh.to_dict(),
    }


def _plan(e: Estimate) -> str:
    nodes = f"{e.nodes} x " if e.nodes > 1 else ""
    return f"{e.offering.cloud} {nodes}{e.offering.instance_type}"


def cost_table(
    console: Console, report: CostReport, groups: Sequence[tuple[Estimate, int]], top: int, fresh: Freshness
) -> None:
    """Plans that meet the deadline first, cheapest on-demand first; spot beside; dates on every row."""
    wide = console.width >= WIDE
    shown = groups[:top]
    rows: list[list[str | Text]] = []
    for e, more in shown:
        o = e.offering
        region = o.region + (f" (+{more})" if more else "")
        late = "" if e.within_deadline else " (late)"
        od, sp = total(e.on_demand_cost), total(e.spot_cost)
        acc_h = f"{e.accelerator_hours:,.0f}"
        if wide:
            rows.append(
                [
                    _plan(e),
                    region,
                    f"{e.accelerators} x {o.accelerator}",
                    fmt_hours(e.hours) + late,
                    acc_h,
                    money((o.price_on_demand or 0) * e.nodes or None),
                    od,
                    sp,
                    o.as_of,
                ]
            )
        else:
            head = f"{o.cloud} {e.nodes} x" if e.nodes > 1 else o.cloud
            head = (
                f"{head} {o.instance_type}"
                if len(head) + len(o.instance_type) < 23
                else f"{head}\n{o.instance_type}"
            )
            region = o.region + (f" +{more}" if more else "")
            rows.append(
                [
                    f"{head}\n{region}",
                    f"{e.accelerators} x {o.accelerator}\n{acc_h} h",
                    fmt_hours(e.hours) + late,
                    f"{od}\n{o.as_of}",
                    sp,
                ]
            )
    if wide:
        columns = [
            ("Plan", "left"),
            ("Region", "left"),
            ("Accelerators", "left"),
            ("Time", "right"),
            ("GPU-h", "right"),
            ("$/h", "right"),
            ("On-demand", "right"),
            ("Spot*", "right"),
            ("As of", "left"),
        ]
        wrap: tuple[str, ...] = ("Plan", "Region")
    else:
        columns = [
            ("Plan", "left"),
            ("Accelerators", "left"),
            ("Time", "right"),
            ("On-demand\nas of", "right"),
            ("Spot*", "right"),
        ]
        wrap = ("Plan", "Accelerators")
    deadline = f" within {fmt_hours(report.deadline_hours)}" if report.deadline_hours else ""
    title = (
        f"{len(groups)} plans (showing {len(shown)}), cheapest{deadline} first · prices as of {_dates(fresh)}"
    )
    print_table(console, title, columns, rows, wrap=wrap)
    console.print(
        "[dim]* spot assumes the job is never interrupted. +N = also sold in N more regions "
        "(--json lists every plan).[/]"
    )
    c = report.cheapest
    if c is not None:
        console.print(
            f"cheapest: {_plan(c)} ({c.offering.region}), {c.accelerators} x {c.offering.accelerator}, "
            f"{fmt_hours(c.hours)}, {total(c.on_demand_cost)} on-demand"
            + (f" / {total(c.spot_cost)} spot" if c.spot_cost is not None else "")
            + f" · as of {c.offering.as_of}",
            highlight=False,
            markup=False,
        )
    cs = report.cheapest_spot
    if cs is not None and cs is not c:
        console.print(
            f"cheapest spot: {_plan(cs)} ({cs.offering.region}), {fmt_hours(cs.hours)}, "
            f"{total(cs.spot_cost)} if never interrupted ({total(cs.on_demand_cost)} on-demand) "
            f"· as of {cs.offering.as_of}",
            highlight=False,
            markup=False,
        )
    f = report.fastest
    if f is not None and f is not c:
        console.print(
            f"fastest: {_plan(f)} ({f.offering.region}), {fmt_hours(f.hours)}, "
            f"{total(f.on_demand_cost if f.on_demand_cost is not None else f.best_cost)} "
            f"· as of {f.offering.as_of}",
            highlight=False,
            markup=False,
        )
    if report.infeasible:
        names = sorted(
            {f"{i.offering.accelerator_count} x {i.offering.accelerator}" for i in report.infeasible}
        )
        console.print(
            f"cannot run it ({len(report.infeasible)} offerings, memory): "
            + ", ".join(names[:8])
            + (f" (+{len(names) - 8} more; --json lists why)" if len(names) > 8 else ""),
            highlight=False,
            markup=False,
        )
    if report.calibration:
        console.print("[bold]checked against published runs[/]")
        for line in report.calibration:
            console.print(f"  - {line}", highlight=False, markup=False)
    console.print("[bold]assumptions[/]")
    for a in report.assumptions:
        console.print(f"  - {a}", highlight=False, markup=False)
    if report.skipped:
        console.print(
            f"[dim]left out: {escape('; '.join(report.skipped[:4]))}"
            + (f" (+{len(report.skipped) - 4} more)" if len(report.skipped) > 4 else "")
            + "[/]",
            highlight=False,
        )


# ----------------------------------------------------------------------------- rig


def rig_json(plan: RigPlan) -> dict[str, Any]:
    """Raw numbers of a build."""
    p = plan.power
    be = plan.break_even
    return {
        "gpu": plan.gpu.name,
        "count": plan.count,
        "total_usd": plan.total_usd,
        "peak_tflops": plan.peak_tflops,
        "peak_tflops_uncapped": plan.peak_tflops_uncapped,
        "vram_gb": plan.vram_gb,
        "platform": plan.platform,
        "bom": [
            {
                "item": ln.item,
                "name": ln.name,
                "quantity": ln.quantity,
                "unit_usd": ln.unit_usd,
                "total_usd": ln.total_usd,
                "price_date": ln.price_date,
                "verified": ln.verified,
                "source": ln.source,
            }
            for ln in plan.lines
        ],
        "pcie": {
            "lanes_per_gpu": plan.lanes_per_gpu,
            "generation": plan.pcie_gen,
            "gpu_generation": plan.gpu.pcie_gen,
            "gb_per_s_per_direction": plan.pcie_gb_s,
        },
        "slot_width": plan.slot_width,
        "ram_gb": plan.ram.total_gb,
        "power": {
            "sustained_w": p.sustained_w,
            "required_psu_w": p.required_psu_w,
            "transient_w": p.transient_w,
            "rule_of_thumb_w": p.rule_of_thumb_w,
            "wall_w": p.wall_w,
            "psu_efficiency": p.efficiency,
            "psu": p.psu.name if p.psu else None,
            "psu_count": p.psu_count,
            "power_limit_w": p.power_limit_w,
            "performance_at_limit": p.performance_at_limit,
            "formula": "psu >= 1.25 x (sum GPU TDP + CPU power + 150 W); transient = 2 x GPU + CPU + 150 W; "
            "wall = load / PSU efficiency",
        },
        "electricity": {
            "kwh_price": plan.kwh_price,
            "kwh_price_source": plan.kwh_source,
            "utilization": plan.utilization,
            "kwh_per_year": plan.energy_kwh_year,
            "usd_per_year": plan.energy_usd_year,
        },
        "cloud_comparison": None
        if plan.cloud is None
        else {
            "cloud": plan.cloud.offering.cloud,
            "instance_type": plan.cloud.offering.instance_type,
            "region": plan.cloud.offering.region,
            "accelerator": plan.cloud.offering.accelerator,
            "usd_per_hour": plan.cloud.per_hour,
            "same_gpu": plan.cloud.same_gpu,
            "how": plan.cloud.how,
            "as_of": plan.cloud.offering.as_of,
        },
        "break_even_days": be.days if be else None,
        "options": list(plan.options),
        "notes": [*plan.notes, *p.notes],
    }


def rig_table(console: Console, plan: RigPlan) -> None:
    """Bill of materials (every price dated; * = not backed by a dated source), power, running cost."""
    wide = console.width >= WIDE
    rows: list[list[str | Text]] = []
    for ln in plan.lines:
        star = "" if ln.verified else " *"
        row: list[str | Text] = [
            ln.item,
            ln.name,
            str(ln.quantity),
            money(ln.unit_usd, 0),
            money(ln.total_usd, 0) + star,
            ln.price_date,
        ]
        if wide:
            row.append(_short(ln.source))
        rows.append(row)
    total_row: list[str | Text] = [
        Text("Total", style="bold"),
        "",
        "",
        "",
        Text(money(plan.total_usd, 0), style="bold"),
        "",
    ]
    rows.append(total_row + ([""] if wide else []))
    columns = [
        ("Item", "left"),
        ("Part", "left"),
        ("Qty", "right"),
        ("Price", "right"),
        ("Total", "right"),
        ("Price date", "left"),
    ] + ([("Source", "left")] if wide else [])
    print_table(
        console,
        f"{plan.count} x {plan.gpu.name} workstation ({plan.platform})",
        columns,
        rows,
        wrap=("Part", "Source", "Item"),
    )
    if any(not ln.verified for ln in plan.lines):
        console.print("[dim]* planning estimate without a dated, retrieved source: check current prices[/]")
    p = plan.power
    peak = f"{plan.peak_tflops:,.0f} dense BF16 TFLOPS" if plan.peak_tflops else "peak n/a"
    if p.power_limit_w is not None and plan.peak_tflops_uncapped:
        peak += f" at the {p.power_limit_w:.0f} W cap ({plan.peak_tflops_uncapped:,.0f} uncapped)"
    console.print(
        f"{plan.vram_gb:g} GB GPU memory, {peak}, {plan.ram.total_gb} GB RAM (>= 2 x GPU memory)",
        highlight=False,
        markup=False,
    )
    console.print(
        f"PCIe: x{plan.lanes_per_gpu} Gen{plan.pcie_gen} per card = {plan.pcie_gb_s:.0f} GB/s each way "
        f"(the {plan.gpu.name} is a Gen{plan.gpu.pcie_gen} card)",
        highlight=False,
        markup=False,
    )
    psu = f"{p.psu_count} x {p.psu.name}" if p.psu and p.psu_count > 1 else (p.psu.name if p.psu else "-")
    console.print(
        f"power: {p.sustained_w:,.0f} W load, {p.wall_w:,.0f} W at the wall ({p.efficiency:.0%} PSU "
        f"efficiency), PSU {psu}",
        highlight=False,
        markup=False,
    )
    for note in (*plan.notes, *p.notes):
        console.print(f"  - {note}", highlight=False, markup=False)
    if plan.options:
        console.print("[bold]ways to build it[/]")
        for opt in plan.options:
            console.print(f"  - {opt}", highlight=False, markup=False)
    console.print(
        f"electricity: {plan.energy_kwh_year:,.0f} kWh/yr at the wall = {money(plan.energy_usd_year, 0)}/yr "
        f"at ${plan.kwh_price:g}/kWh ({plan.kwh_source}) and {plan.utilization:.0%} utilisation",
        highlight=False,
        markup=False,
    )
    if plan.cloud and plan.break_even:
        c = plan.cloud
        days = plan.break_even.days
        verdict = f"break-even after {days:,.0f} days" if days is not None else "renting is always cheaper"
        if days is not None and days > 365 * 3:
            verdict += " (beyond a typical 3-year life: rent)"
        console.print(
            f"buy vs rent: {verdict} vs {c.offering.cloud} {c.offering.instance_type} at "
            f"{money(c.per_hour)}/h ({c.how}; as of {c.offering.as_of}) — Dettmers' method",
            highlight=False,
            markup=False,
        )
    else:
        console.print("buy vs rent: no comparable cloud offering in the catalog")


# ----------------------------------------------------------------------------- catalog


def catalog_json(files: Sequence[CatalogFile], total_offers: int) -> dict[str, Any]:
    """What the catalog holds."""
    return {
        "offerings": total_offers,
        "files": [
            {
                "name": f.name,
                "kind": f.kind,
                "origin": f.origin,
                "fetched": f.fetched,
                "rows": f.rows,
                "as_of": f.as_of,
                "age_days": f.age_days,
                "sources": list(f.sources),
                "note": f.note,
            }
            for f in files
        ],
    }


def catalog_table(
    console: Console, files: Sequence[CatalogFile], total_offers: int, user_dir: str | None = None
) -> None:
    """One row per data file with its age."""
    wide = console.width >= WIDE
    rows = []
    for f in files:
        origin = "shipped" if f.origin == "shipped" else f"refreshed {f.fetched or ''}".strip()
        row = [f.name, str(f.rows), f.as_of, "-" if f.age_days is None else f"{f.age_days} d", origin]
        if wide:
            row.append("; ".join(_short(x, 40) for x in f.sources[:2]))
        rows.append(row)
    columns = [("File", "left"), ("Rows", "right"), ("As of", "left"), ("Age", "right"), ("Origin", "left")]
    if wide:
        columns.append(("Sources", "left"))
    print_table(
        console,
        f"mlrig catalog: {total_offers} cloud offerings",
        columns,
        rows,
        wrap=("Sources", "Origin", "File"),
    )
    for f in files:
        if f.note.startswith("(refreshed copy"):
            console.print(f"{f.name}: {f.note.split(')')[0].lstrip('(')}", highlight=False, markup=False)
    if user_dir:
        console.print(f"refreshed files live in {user_dir}", highlight=False, markup=False)
    console.print(
        "[dim]refresh cloud prices: provision catalog refresh (public gpuhunt catalog, no account); "
        "--source aws-api|gcp-api for the credentialed price APIs[/]"
    )
