"""provision commands: gpus, cost, rig and the catalog group (offline pricing and planning).

Parsing only: the estimators live in provision.cost / provision.rig, tables in
provision.pricing_render. Heavy work is imported inside each command so ``provision --help``
stays fast; none of these commands imports a cloud SDK (``catalog refresh`` does, lazily).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from provision.commands._common import JsonOpt, err_console, out_console
from provision.errors import UsageError

CloudOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--cloud", help="Only these clouds (repeatable): aws, gcp, lambda, runpod.", envvar="PROVISION_CLOUD"
    ),
]
RegionOpt = Annotated[
    str | None, typer.Option("--region", help="Only this region.", envvar="PROVISION_REGION")
]


class SortKey(str, Enum):
    """How `provision gpus` orders offerings."""

    price = "price"
    per_tflop = "per-tflop"
    memory = "memory"


class Optimize(str, Enum):
    """What `provision rig --budget` maximises."""

    tflops = "tflops"
    memory = "memory"


class RefreshCloud(str, Enum):
    """Clouds whose price APIs `provision catalog refresh` knows."""

    aws = "aws"
    gcp = "gcp"


def _check_clouds(clouds: list[str] | None) -> list[str]:
    from provision.catalog import clouds as known

    names = [c.strip().lower() for item in (clouds or []) for c in item.split(",") if c.strip()]
    bad = [c for c in names if c not in known()]
    if bad:
        raise UsageError(f"unknown cloud {bad[0]!r}", hint=f"catalog clouds: {', '.join(known())}")
    return names


def gpus_cmd(
    gpu: Annotated[
        str | None, typer.Argument(help="GPU name or family: A100, 'RTX 4090', H100, 'TPU v5e'.")
    ] = None,
    *,
    min_memory: Annotated[
        float | None, typer.Option("--min-memory", help="Minimum memory per accelerator, GB.", min=0)
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", help="Exactly this many accelerators.", min=1)
    ] = None,
    cloud: CloudOpt = None,
    region: RegionOpt = None,
    spot: Annotated[
        bool, typer.Option("--spot", help="Price and sort by spot/interruptible prices.")
    ] = False,
    max_price: Annotated[
        float | None, typer.Option("--max-price", help="Maximum $/h for the instance.", min=0)
    ] = None,
    sort: Annotated[SortKey, typer.Option("--sort", help="price, per-tflop or memory.")] = SortKey.price,
    json_out: JsonOpt = False,
) -> None:
    """What every GPU/TPU costs to rent: one row per offering, from the offline catalog."""
    from provision import pricing_render as render
    from provision.catalog import load_offerings
    from provision.cost import filter_offers

    clouds = _check_clouds(cloud)
    offers = filter_offers(load_offerings(), gpu=gpu, clouds=clouds, region=region)
    offers = [
        o
        for o in offers
        if (min_memory is None or (o.accelerator_memory_gb or 0) >= min_memory)
        and (count is None or o.accelerator_count == count)
        and (o.price_spot if spot else o.price_on_demand) is not None
    ]
    if max_price is not None:
        offers = [o for o in offers if ((o.price_spot if spot else o.price_on_demand) or 0.0) <= max_price]
    rows = {id(o): render.offering_row(o, spot) for o in offers}

    def key(o: object) -> tuple[float, float]:
        r = rows[id(o)]
        price = r["price_spot" if spot else "price_on_demand"] or float("inf")
        if sort is SortKey.per_tflop:
            return (r["usd_per_pflop_hour"] or float("inf"), price)
        if sort is SortKey.memory:
            return (-(r["accelerator_memory_gb"] or 0) * r["accelerator_count"], price)
        return (price, 0.0)

    offers.sort(key=key)
    if json_out:
        render.emit_json(
            {"market": "spot" if spot else "on-demand", "offerings": [rows[id(o)] for o in offers]}
        )
        return
    if not offers:
        raise UsageError("no offering matches these filters", hint="drop a filter, or run `provision gpus`")
    render.gpus_table(out_console(wide_when_piped=True), offers, spot)


def cost_cmd(
    *,
    gpu: Annotated[
        str | None,
        typer.Option("--gpu", help="NAME[:COUNT], e.g. A100:8 or 'TPU v5e:8'.", envvar="PROVISION_GPU"),
    ] = None,
    hours: Annotated[float | None, typer.Option("--hours", help="Wall-clock hours (needs --gpu).")] = None,
    flops: Annotated[float | None, typer.Option("--flops", help="Total training FLOP, e.g. 3.1e21.")] = None,
    params: Annotated[float | None, typer.Option("--params", help="Model parameters N (6*N*D rule).")] = None,
    tokens: Annotated[float | None, typer.Option("--tokens", help="Training tokens D (6*N*D rule).")] = None,
    mfu: Annotated[
        float,
        typer.Option(
            "--mfu", help="Model FLOPs utilisation, 0-1 (0.4 large dense models).", envvar="PROVISION_MFU"
        ),
    ] = 0.4,
    disk: Annotated[
        float, typer.Option("--disk", help="Disk GB per node kept for the job.", envvar="PROVISION_DISK_GB")
    ] = 100.0,
    cloud: CloudOpt = None,
    region: RegionOpt = None,
    top: Annotated[int, typer.Option("--top", help="Rows to show.", min=1)] = 15,
    json_out: JsonOpt = False,
) -> None:
    """Estimate a job's time and cost on every matching offering, cheapest and fastest first."""
    from provision import pricing_render as render
    from provision.catalog import load_offerings, storage_rates
    from provision.cost import Work, estimate, parse_gpu

    work = Work.build(hours=hours, flops=flops, params=params, tokens=tokens, mfu=mfu)
    request = parse_gpu(gpu) if gpu else None
    if request is not None and hours is not None and request.count is None:
        raise UsageError("--hours needs a count: --gpu NAME:COUNT, e.g. A100:8")
    report = estimate(
        load_offerings(),
        work,
        gpu=request,
        clouds=_check_clouds(cloud),
        region=region,
        disk_gb=disk,
        storage=storage_rates(),
    )
    if json_out:
        render.emit_json(render.cost_json(report, top))
        return
    render.cost_table(out_console(wide_when_piped=True), report, top)


def rig_cmd(
    *,
    gpu: Annotated[str | None, typer.Option("--gpu", help="NAME[:COUNT], e.g. 'RTX 4090:2'.")] = None,
    budget: Annotated[
        float | None, typer.Option("--budget", help="Total budget, USD.", envvar="PROVISION_BUDGET")
    ] = None,
    optimize: Annotated[
        Optimize, typer.Option("--optimize", help="With --budget alone: maximise tflops or memory.")
    ] = Optimize.tflops,
    kwh_price: Annotated[
        float | None,
        typer.Option(
            "--kwh-price",
            help="Electricity $/kWh (default: US residential average, EIA).",
            envvar="PROVISION_KWH_PRICE",
        ),
    ] = None,
    utilization: Annotated[
        float,
        typer.Option(
            "--utilization", help="Fraction of the time the rig trains, 0-1.", envvar="PROVISION_UTILIZATION"
        ),
    ] = 0.3,
    storage_tb: Annotated[float, typer.Option("--storage-tb", help="NVMe capacity, TB.", min=0)] = 2.0,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write buy-vs-rent cumulative cost to this PNG.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Plan a workstation: parts, PSU, cooling, power bill and buy-vs-rent break-even."""
    from provision import pricing_render as render
    from provision import rig
    from provision.catalog import electricity_rates, load_offerings, load_parts
    from provision.cost import parse_gpu

    if gpu is None and budget is None:
        raise UsageError("give --gpu NAME[:COUNT], or --budget USD to let mlrig choose the GPUs")
    kwh = kwh_price if kwh_price is not None else electricity_rates()["us-residential"].value
    parts, offers = load_parts(), load_offerings()
    if gpu is not None:
        plan = rig.plan(
            parse_gpu(gpu), parts, offers, kwh_price=kwh, utilization=utilization, storage_tb=storage_tb
        )
        if budget is not None and plan.total_usd > budget:
            raise UsageError(
                f"{plan.count} x {plan.gpu.name} costs ${plan.total_usd:,.0f}, "
                f"over the ${budget:,.0f} budget",
                hint="drop --gpu to let --budget choose, or raise the budget",
            )
    else:
        assert budget is not None
        plan = rig.plan_for_budget(
            budget,
            optimize.value,
            parts,
            offers,
            kwh_price=kwh,
            utilization=utilization,
            storage_tb=storage_tb,
        )
    if plot is not None:
        if plan.break_even is None:
            raise UsageError(
                "--plot needs a comparable cloud offering, and the catalog has none for this GPU"
            )
        from provision._plot import plot_buy_vs_rent

        plot_buy_vs_rent(plan.break_even, plot, f"{plan.count} x {plan.gpu.name}")
    if json_out:
        doc = render.rig_json(plan)
        doc["plot"] = str(plot) if plot else None
        render.emit_json(doc)
        return
    render.rig_table(out_console(wide_when_piped=True), plan)
    if plot is not None:
        err_console().print(f"wrote {plot}")


catalog_app = typer.Typer(
    name="catalog",
    help="Show the offline price catalog and its age; refresh cloud prices from the providers' APIs.",
    no_args_is_help=False,
    invoke_without_command=True,
)


@catalog_app.callback()
def catalog_show(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """What the catalog holds, where each file comes from and how old it is."""
    if ctx.invoked_subcommand is not None:
        return
    from provision import pricing_render as render
    from provision.catalog import load_offerings, summary

    files, total = summary(), len(load_offerings())
    if json_out:
        render.emit_json(render.catalog_json(files, total))
        return
    render.catalog_table(out_console(wide_when_piped=True), files, total)


@catalog_app.command("refresh")
def catalog_refresh(
    cloud: Annotated[
        RefreshCloud, typer.Option("--cloud", help="aws (Pricing API) or gcp (Cloud Billing Catalog).")
    ],
    region: Annotated[
        str | None, typer.Option("--region", help="Region to price (default: the catalog's region).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write here instead of the user catalog directory.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Rebuild one cloud's offerings from its price API (needs credentials and network)."""
    from provision import pricing_render as render
    from provision.catalog import refresh

    result = refresh.refresh(cloud.value, region=region, output=output)
    if json_out:
        render.emit_json(result.to_dict())
        return
    err_console().print(
        f"wrote {result.rows} {cloud.value} offerings to {result.path} (as_of {result.as_of})"
        + (
            f"; {len(result.skipped)} shapes not priced: {', '.join(result.skipped[:5])}"
            if result.skipped
            else ""
        )
    )


def register(app: typer.Typer) -> None:
    """Add this group's commands to the provision app."""
    app.command("gpus")(gpus_cmd)
    app.command("cost")(cost_cmd)
    app.command("rig")(rig_cmd)
    app.add_typer(catalog_app, name="catalog")
