"""Rich tables and JSON documents for ``provision gpus``, ``cost``, ``rig`` and ``catalog``.

Formatting lives here only; the estimators return raw numbers. JSON carries raw units (USD,
hours, watts, GB) and a ``schema_version``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from envcheck.knowledge import gpus
from provision.catalog._files import age_days
from provision.cost import fmt_hours, per_pflop_hour

if TYPE_CHECKING:
    from provision.catalog import CatalogFile, Offering
    from provision.cost import CostReport
    from provision.rig import RigPlan

SCHEMA_VERSION = 1


def emit_json(doc: dict[str, Any]) -> None:
    """Write one JSON document to stdout."""
    print(json.dumps({"schema_version": SCHEMA_VERSION, **doc}, indent=2, default=str))


def print_table(
    console: Console,
    title: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[str | Text]],
    wrap: str | None = None,
) -> None:
    """A rich table with column widths computed up front (rich would otherwise measure every cell).

    ``columns`` are (header, justify); cells are plain text, never markup; ``wrap`` names the one
    column allowed to wrap.
    """
    table = Table(title=title, title_justify="left")
    for i, (header, justify) in enumerate(columns):
        width = max([cell_len(header), *(cell_len(str(r[i])) for r in rows)])
        if header == wrap:
            table.add_column(header, justify=justify, max_width=width)  # type: ignore[arg-type]
        else:
            table.add_column(header, justify=justify, no_wrap=True, width=width)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(*(c if isinstance(c, Text) else Text(c) for c in r))
    console.print(table)


def _short(source: str, limit: int = 48) -> str:
    """First clause of a source string, for table cells (the full text is in --json)."""
    head = source.split(";", maxsplit=1)[0].split(" (", maxsplit=1)[0].strip()
    return head if len(head) <= limit else head[: limit - 1] + "…"


def _money(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "-"
    return f"${x:,.{digits}f}" if x < 1000 else f"${x:,.0f}"


def _age(as_of: str) -> str:
    days = age_days(as_of)
    if days is None:
        return as_of
    if days < 60:
        return f"{as_of} ({days} d old)"
    return f"{as_of} (~{days / 30.4:.0f} months old)"


def catalog_dates(offers: Sequence[Offering]) -> str:
    """The as_of values behind a set of prices, with their age."""
    return ", ".join(_age(a) for a in sorted({o.as_of for o in offers})) or "-"


# ----------------------------------------------------------------------------- gpus


def offering_row(o: Offering, spot: bool) -> dict[str, Any]:
    """Raw numbers for one offering (what --json prints and the table formats)."""
    spec = gpus.lookup(o.accelerator)
    price = o.price_spot if spot else o.price_on_demand
    peak = spec.peak_tflops if spec else None
    return {
        "accelerator": o.accelerator,
        "accelerator_count": o.accelerator_count,
        "accelerator_memory_gb": o.accelerator_memory_gb,
        "cloud": o.cloud,
        "instance_type": o.instance_type,
        "region": o.region,
        "kind": o.kind,
        "vcpus": o.vcpus,
        "ram_gb": o.ram_gb,
        "price_on_demand": o.price_on_demand,
        "price_spot": o.price_spot,
        "price_per_accelerator_hour": price / o.accelerator_count if price else None,
        "usd_per_pflop_hour": per_pflop_hour(price, o.accelerator_count, peak) if price else None,
        "peak_tflops_per_accelerator": peak,
        "as_of": o.as_of,
        "source": o.source,
    }


def gpus_table(console: Console, offers: Sequence[Offering], spot: bool) -> None:
    """One row per offering: prices per hour, per GPU-hour and per dense-BF16 PFLOP-hour."""
    market = "spot" if spot else "on-demand"
    columns = [
        ("GPU", "left"), ("Mem GB", "right"), ("#", "right"), ("Cloud", "left"), ("Instance", "left"),
        ("Region", "left"), ("$/h", "right"), ("$/GPU-h", "right"), ("Spot $/h", "right"),
        ("$/PFLOP-h", "right"), ("As of", "left"),
    ]  # fmt: skip
    rows = []
    for o in offers:
        r = offering_row(o, spot)
        price = o.price_spot if spot else o.price_on_demand
        rows.append([
            o.accelerator, f"{o.accelerator_memory_gb:g}" if o.accelerator_memory_gb else "-",
            str(o.accelerator_count), o.cloud, o.instance_type, o.region, _money(price),
            _money(r["price_per_accelerator_hour"]), _money(o.price_spot), _money(r["usd_per_pflop_hour"]),
            o.as_of,
        ])  # fmt: skip
    title = f"{len(offers)} offerings, {market} prices · catalog as of {catalog_dates(offers)}"
    print_table(console, title, columns, rows)
    console.print(
        "[dim]$/PFLOP-h = price / peak dense BF16 PFLOP/s (GeForce normalised to FP32 accumulate; "
        "V100/T4: FP16 tensor). Sources: `provision catalog`.[/]"
    )


# ----------------------------------------------------------------------------- cost


def cost_json(report: CostReport, top: int) -> dict[str, Any]:
    """Raw estimate numbers."""
    return {
        "work": {
            "hours": report.work.hours,
            "flops": report.work.flops,
            "mfu": report.work.mfu,
            "basis": report.work.basis,
        },
        "cheapest": report.cheapest.to_dict() if report.cheapest else None,
        "fastest": report.fastest.to_dict() if report.fastest else None,
        "estimates": [e.to_dict() for e in report.estimates[:top]],
        "estimates_total": len(report.estimates),
        "assumptions": report.assumptions,
        "skipped": report.skipped,
        "catalog_as_of": sorted({e.offering.as_of for e in report.estimates}),
    }


def cost_table(console: Console, report: CostReport, top: int) -> None:
    """Cheapest first; the fastest is called out; assumptions listed under the table."""
    shown = report.estimates[:top]
    columns = [
        ("Cloud", "left"), ("Instance", "left"), ("GPUs", "right"), ("Time", "right"), ("$/h", "right"),
        ("On-demand", "right"), ("Spot", "right"), ("Storage", "right"), ("As of", "left"),
    ]  # fmt: skip
    rows = []
    for e in shown:
        o = e.offering
        nodes = f"{e.nodes} x " if e.nodes > 1 else ""
        rows.append([
            o.cloud, f"{nodes}{o.instance_type}", f"{e.accelerators} x {o.accelerator}", fmt_hours(e.hours),
            _money((o.price_on_demand or o.price_spot or 0) * e.nodes), _money(e.on_demand_cost),
            _money(e.spot_cost), _money(e.storage_cost), o.as_of,
        ])  # fmt: skip
    title = (
        f"{len(report.estimates)} ways to run it (showing {len(shown)}), cheapest first · "
        f"catalog as of {catalog_dates([e.offering for e in report.estimates])}"
    )
    print_table(console, title, columns, rows)
    if report.cheapest:
        c = report.cheapest
        market = "spot" if c.spot_cost is not None and c.best_cost == c.spot_cost else "on-demand"
        console.print(
            f"cheapest: {c.offering.cloud} {c.offering.instance_type} x{c.nodes}, "
            f"{fmt_hours(c.hours)}, {_money(c.best_cost)} ({market})"
        )
    ondemand = [e for e in report.estimates if e.on_demand_cost is not None]
    if ondemand:
        d = min(ondemand, key=lambda e: e.on_demand_cost or 0.0)
        console.print(
            f"cheapest on-demand: {d.offering.cloud} {d.offering.instance_type} x{d.nodes}, "
            f"{fmt_hours(d.hours)}, {_money(d.on_demand_cost)}"
        )
    if report.fastest and len({round(e.hours, 6) for e in report.estimates}) > 1:
        f = report.fastest
        console.print(
            f"fastest:  {f.offering.cloud} {f.offering.instance_type} x{f.nodes}, "
            f"{fmt_hours(f.hours)}, {_money(f.best_cost if f.on_demand_cost is None else f.on_demand_cost)}"
        )
    console.print("[bold]assumptions[/]")
    for a in report.assumptions:
        console.print(f"  - {a}", highlight=False)
    if report.skipped:
        console.print(
            f"[dim]left out: {'; '.join(report.skipped[:4])}"
            + (f" (+{len(report.skipped) - 4} more)" if len(report.skipped) > 4 else "")
            + "[/]"
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
        "vram_gb": plan.vram_gb,
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
        "pcie_lanes_per_gpu": plan.lanes_per_gpu,
        "slot_width": plan.slot_width,
        "ram_gb": plan.ram.total_gb,
        "power": {
            "sustained_w": p.sustained_w,
            "required_psu_w": p.required_psu_w,
            "transient_w": p.transient_w,
            "rule_of_thumb_w": p.rule_of_thumb_w,
            "wall_w": p.wall_w,
            "psu": p.psu.name if p.psu else None,
            "power_limit_w": p.power_limit_w,
            "formula": "psu >= 1.25 x (sum GPU TDP + CPU power + 150 W); transient = 2 x GPU + CPU + 150 W",
        },
        "electricity": {
            "kwh_price": plan.kwh_price,
            "utilization": plan.utilization,
            "kwh_per_year": plan.energy_kwh_year,
            "usd_per_year": plan.energy_usd_year,
        },
        "cloud_comparison": None
        if plan.cloud is None
        else {
            "cloud": plan.cloud.offering.cloud,
            "instance_type": plan.cloud.offering.instance_type,
            "accelerator": plan.cloud.offering.accelerator,
            "usd_per_hour": plan.cloud.per_hour,
            "how": plan.cloud.how,
            "as_of": plan.cloud.offering.as_of,
        },
        "break_even_days": be.days if be else None,
        "notes": [*plan.notes, *p.notes],
    }


def rig_table(console: Console, plan: RigPlan) -> None:
    """Bill of materials, then power, running cost and buy-vs-rent."""
    columns = [
        ("Item", "left"), ("Part", "left"), ("Qty", "right"), ("Price", "right"), ("Total", "right"),
        ("Price date", "left"), ("Source", "left"),
    ]  # fmt: skip
    rows: list[list[str | Text]] = [
        [ln.item, ln.name, str(ln.quantity), _money(ln.unit_usd, 0),
         _money(ln.total_usd, 0) + ("" if ln.verified else " *"), ln.price_date, _short(ln.source)]
        for ln in plan.lines
    ]  # fmt: skip
    rows.append(
        [Text("Total", style="bold"), "", "", "", Text(_money(plan.total_usd, 0), style="bold"), "", ""]
    )
    print_table(console, f"{plan.count} x {plan.gpu.name} workstation", columns, rows, wrap="Source")
    if any(not ln.verified for ln in plan.lines):
        console.print("[dim]* planning estimate, not a retrieved quote: check current prices[/]")
    p = plan.power
    peak = f"{plan.peak_tflops:,.0f} dense BF16 TFLOPS" if plan.peak_tflops else "peak n/a"
    console.print(
        f"{plan.vram_gb:g} GB GPU memory, {peak}, {plan.ram.total_gb} GB RAM (>= 2 x GPU memory), "
        f"x{plan.lanes_per_gpu} PCIe per card",
        highlight=False,
    )
    psu = p.psu.name if p.psu else "-"
    console.print(
        f"power: {p.sustained_w:,.0f} W sustained, PSU {psu} ({p.psu.watts if p.psu else 0} W)",
        highlight=False,
    )
    for note in (*plan.notes, *p.notes):
        console.print(f"  - {note}", highlight=False)
    console.print(
        f"electricity: {plan.energy_kwh_year:,.0f} kWh/yr = {_money(plan.energy_usd_year, 0)}/yr "
        f"at ${plan.kwh_price:g}/kWh and {plan.utilization:.0%} utilisation",
        highlight=False,
    )
    if plan.cloud and plan.break_even:
        c = plan.cloud
        days = plan.break_even.days
        verdict = f"break-even after {days:,.0f} days" if days is not None else "renting is always cheaper"
        if days is not None and days > 365 * 3:
            verdict += " (beyond a typical 3-year life: rent)"
        console.print(
            f"buy vs rent: {verdict} vs {c.offering.cloud} {c.offering.instance_type} "
            f"at {_money(c.per_hour)}/h "
            f"({c.how}; catalog as of {c.offering.as_of}) — Dettmers' method",
            highlight=False,
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
                "rows": f.rows,
                "as_of": f.as_of,
                "age_days": f.age_days,
                "sources": list(f.sources),
                "note": f.note,
            }
            for f in files
        ],
    }


def catalog_table(console: Console, files: Sequence[CatalogFile], total_offers: int) -> None:
    """One row per data file with its age."""
    columns = [(c, "right" if c in {"Rows", "Age"} else "left") for c in
               ("File", "Kind", "Rows", "As of", "Age", "Origin", "Sources")]  # fmt: skip
    rows = [
        [f.name, f.kind, str(f.rows), f.as_of, "-" if f.age_days is None else f"{f.age_days} d", f.origin,
         "; ".join(_short(x, 40) for x in f.sources[:2])]
        for f in files
    ]  # fmt: skip
    print_table(console, f"mlrig catalog: {total_offers} cloud offerings", columns, rows, wrap="Sources")
    console.print(
        "[dim]refresh cloud prices: provision catalog refresh --cloud aws|gcp (needs credentials)[/]"
    )
