"""provision commands: gpus, cost, rig and the catalog group (offline pricing and planning).

Parsing only: the estimators live in provision.cost / provision.rig, tables in
provision.pricing_render. Heavy work is imported inside each command so ``provision --help``
stays fast; none of these commands imports a cloud SDK (``catalog refresh`` does, lazily).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provision.commands._common import JsonOpt, err_console, out_console
from provision.errors import UsageError

if TYPE_CHECKING:
    from provision.catalog import Offering

CloudOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--cloud",
        help="Only these clouds (repeatable): aws, gcp, lambda, runpod, azure (after a refresh).",
        envvar="PROVISION_CLOUD",
    ),
]
RegionOpt = Annotated[
    str | None, typer.Option("--region", help="Only this region.", envvar="PROVISION_REGION")
]


class SortKey(str, Enum):
    """How `provision gpus` orders offerings."""

    price = "price"
    gpu_price = "gpu-price"
    per_tflop = "per-tflop"
    memory = "memory"


class Optimize(str, Enum):
    """What `provision rig --budget` maximises."""

    tflops = "tflops"
    memory = "memory"


class RefreshSource(str, Enum):
    """Where `provision catalog refresh` reads prices."""

    gpuhunt = "gpuhunt"
    aws_api = "aws-api"
    gcp_api = "gcp-api"


def _check_clouds(clouds: list[str] | None) -> list[str]:
    from provision.catalog import clouds as known

    names = [c.strip().lower() for item in (clouds or []) for c in item.split(",") if c.strip()]
    bad = [c for c in names if c not in known()]
    if bad:
        raise UsageError(f"unknown cloud {bad[0]!r}", hint=f"catalog clouds: {', '.join(known())}")
    return names


def _sort_key(sort: SortKey, spot: bool) -> Callable[[Offering], tuple[float, float]]:
    from envcheck.knowledge import gpus
    from provision.cost import per_pflop_hour
    from provision.offer_views import price

    def key(o: Offering) -> tuple[float, float]:
        p = price(o, spot) or math.inf
        if sort is SortKey.gpu_price:
            return (p / o.accelerator_count, p)
        if sort is SortKey.per_tflop:
            spec = gpus.lookup(o.accelerator)
            per = per_pflop_hour(p, o.accelerator_count, spec.peak_tflops if spec else None)
            return (per if per is not None else math.inf, p)
        if sort is SortKey.memory:
            return (-(o.accelerator_memory_gb or 0) * o.accelerator_count, p)
        return (p, 0.0)

    return key


def gpus_cmd(
    gpu: Annotated[
        str | None, typer.Argument(help="GPU name or family: A100, 'RTX 4090', H100, 'TPU v5e'.")
    ] = None,
    *,
    list_all: Annotated[
        bool, typer.Option("--all", help="List every offering instead of the per-GPU summary.")
    ] = False,
    min_memory: Annotated[
        float | None, typer.Option("--min-memory", help="Minimum memory per accelerator, GB.")
    ] = None,
    min_total_memory: Annotated[
        float | None, typer.Option("--min-total-memory", help="Minimum memory of all accelerators, GB.")
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", help="Exactly this many accelerators.", min=1)
    ] = None,
    cloud: CloudOpt = None,
    region: RegionOpt = None,
    all_regions: Annotated[
        bool, typer.Option("--all-regions", help="One row per region (default: the cheapest region).")
    ] = False,
    spot: Annotated[
        bool, typer.Option("--spot", help="Price and sort by spot/interruptible prices.")
    ] = False,
    max_price: Annotated[
        float | None, typer.Option("--max-price", help="Maximum $/h for the machine.")
    ] = None,
    max_gpu_price: Annotated[
        float | None, typer.Option("--max-gpu-price", help="Maximum $ per accelerator-hour.")
    ] = None,
    sort: Annotated[
        SortKey, typer.Option("--sort", help="price, gpu-price, per-tflop or memory.")
    ] = SortKey.price,
    json_out: JsonOpt = False,
) -> None:
    """What every GPU/TPU costs to rent: a summary per GPU, or every offering of one GPU."""
    from provision import offer_views as views
    from provision import pricing_render as render
    from provision.catalog import load_offerings
    from provision.cost import filter_offers, finite

    for name, value in (
        ("--min-memory", min_memory),
        ("--min-total-memory", min_total_memory),
        ("--max-price", max_price),
        ("--max-gpu-price", max_gpu_price),
    ):
        if value is not None:
            finite(name, value, high=1e9, low_ok=True)
    clouds = _check_clouds(cloud)
    offers = [
        o
        for o in filter_offers(load_offerings(), gpu=gpu, clouds=clouds, region=region)
        if (min_memory is None or (o.accelerator_memory_gb or 0) >= min_memory)
        and (
            min_total_memory is None
            or (o.accelerator_memory_gb or 0) * o.accelerator_count >= min_total_memory
        )
        and (count is None or o.accelerator_count == count)
        and (p := views.price(o, spot)) is not None
        and (max_price is None or p <= max_price)
        and (max_gpu_price is None or p / o.accelerator_count <= max_gpu_price)
    ]
    if not offers:
        raise UsageError("no offering matches these filters", hint="drop a filter, or run `provision gpus`")
    fresh = views.freshness(o.as_of for o in offers)
    summary = gpu is None and not list_all
    key = _sort_key(sort, spot)
    if all_regions:
        groups = [views.ShapeGroup(o, (o,)) for o in sorted(offers, key=key)]
    else:
        groups = sorted(views.group_regions(offers, spot), key=lambda g: key(g.best))
    if json_out:
        doc: dict[str, object] = {"market": "spot" if spot else "on-demand", "catalog": fresh.to_dict()}
        doc["summary"] = [s.to_dict() for s in views.summarize(offers)]
        doc["offerings"] = [
            render.offering_row(g.best, spot, [o.region for o in g.regions[1:]]) for g in groups
        ]
        render.emit_json(doc)
    elif summary:
        render.gpus_summary_table(out_console(wide_when_piped=True), views.summarize(offers), fresh)
    else:
        render.gpus_table(out_console(wide_when_piped=True), groups, spot, fresh)
    render.warn_if_stale(fresh)


def cost_cmd(
    *,
    gpu: Annotated[
        str | None,
        typer.Option("--gpu", help="NAME[:COUNT], e.g. A100:8 or 'TPU v5e:8'.", envvar="PROVISION_GPU"),
    ] = None,
    hours: Annotated[float | None, typer.Option("--hours", help="Wall-clock hours (needs --gpu).")] = None,
    flops: Annotated[float | None, typer.Option("--flops", help="Total training FLOP, e.g. 3.1e21.")] = None,
    params: Annotated[
        float | None, typer.Option("--params", help="Model parameters N (6*N*D rule; sizes the memory).")
    ] = None,
    tokens: Annotated[float | None, typer.Option("--tokens", help="Training tokens D (6*N*D rule).")] = None,
    mfu: Annotated[
        float,
        typer.Option(
            "--mfu",
            help="Model FLOPs utilisation at scale, 0-1 (0.4: Llama 2 7B's published run implies 0.39).",
            envvar="PROVISION_MFU",
        ),
    ] = 0.4,
    deadline: Annotated[
        str,
        typer.Option(
            "--deadline",
            help="Finish within this (72h, 30d, 2w): nodes are added until plans do.",
            envvar="PROVISION_DEADLINE",
        ),
    ] = "30d",
    disk: Annotated[
        float, typer.Option("--disk", help="Disk GB per host kept for the job.", envvar="PROVISION_DISK_GB")
    ] = 100.0,
    cloud: CloudOpt = None,
    region: RegionOpt = None,
    top: Annotated[int, typer.Option("--top", help="Plans to show.", min=1, max=100_000)] = 15,
    json_out: JsonOpt = False,
) -> None:
    """Estimate a job's time and cost: plans that fit in memory and meet the deadline, cheapest first."""
    from provision import offer_views as views
    from provision import pricing_render as render
    from provision.catalog import load_offerings, storage_rates
    from provision.cost import Work, estimate, group_plans, parse_duration, parse_gpu

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
        deadline_hours=parse_duration(deadline),
    )
    fresh = views.freshness(e.offering.as_of for e in report.estimates)
    if json_out:
        render.emit_json(render.cost_json(report, top, fresh))
    else:
        render.cost_table(
            out_console(wide_when_piped=True), report, group_plans(report.estimates), top, fresh
        )
    render.warn_if_stale(fresh)


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
    from provision.catalog import electricity_rates, load_offerings, load_parts, power_limits
    from provision.cost import finite, parse_gpu

    if gpu is None and budget is None:
        raise UsageError("give --gpu NAME[:COUNT], or --budget USD to let mlrig choose the GPUs")
    if budget is not None:
        finite("--budget", budget, high=1e9)
    if kwh_price is not None:
        kwh, kwh_source = kwh_price, "--kwh-price"
    else:
        rate = electricity_rates()["us-residential"]
        kwh, kwh_source = rate.value, f"US residential average, EIA, {rate.as_of}; --kwh-price to change"
    parts, offers = load_parts(), load_offerings()
    kw = {
        "kwh_price": kwh,
        "utilization": utilization,
        "storage_tb": storage_tb,
        "limits": power_limits(),
        "kwh_source": kwh_source,
    }
    if gpu is not None:
        plan = rig.plan(parse_gpu(gpu), parts, offers, **kw)  # type: ignore[arg-type]
        if budget is not None and plan.total_usd > budget:
            raise UsageError(
                f"{plan.count} x {plan.gpu.name} costs ${plan.total_usd:,.0f}, "
                f"over the ${budget:,.0f} budget",
                hint="drop --gpu to let --budget choose, or raise the budget",
            )
    else:
        assert budget is not None
        plan = rig.plan_for_budget(budget, optimize.value, parts, offers, **kw)  # type: ignore[arg-type]
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
    help="Show the offline price catalog and its age; refresh it from public catalogs or price APIs.",
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
    from provision.catalog._files import user_dir

    render.catalog_table(out_console(wide_when_piped=True), files, total, str(user_dir()))


@catalog_app.command("refresh")
def catalog_refresh(
    source: Annotated[
        RefreshSource,
        typer.Option(
            "--source",
            help="gpuhunt: dstack's public catalogs, no account (needs mlrig's 'prices' extra). "
            "aws-api / gcp-api: the clouds' own price APIs (credentials; exact list prices).",
        ),
    ] = RefreshSource.gpuhunt,
    cloud: Annotated[
        list[str] | None,
        typer.Option(
            "--cloud", help="Only these clouds (repeatable; gpuhunt: aws, gcp, azure, lambda, runpod)."
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="aws-api / gcp-api: region to price (default: the catalog's)."),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir", help="Write the offerings_<cloud>.csv files here instead of the user catalog."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Fetch current prices into the user catalog (the shipped snapshot stays as the fallback)."""
    from provision import pricing_render as render
    from provision.catalog import refresh

    names = [c.strip().lower() for item in (cloud or []) for c in item.split(",") if c.strip()]
    if source is RefreshSource.gpuhunt:
        if region:
            raise UsageError("--region applies to --source aws-api/gcp-api; gpuhunt refreshes every region")
        results = refresh.refresh_gpuhunt(names or list(refresh.GPUHUNT_PROVIDERS), output_dir=output_dir)
    else:
        api_cloud = "aws" if source is RefreshSource.aws_api else "gcp"
        if names and names != [api_cloud]:
            raise UsageError(f"--source {source.value} refreshes {api_cloud} only")
        out = output_dir / f"offerings_{api_cloud}.csv" if output_dir else None
        results = [refresh.refresh(api_cloud, region=region, output=out)]
    if json_out:
        render.emit_json(
            {
                "schema_version": render.SCHEMA_VERSION,
                "source": source.value,
                "results": [r.to_dict() for r in results],
            }
        )
        return
    console = err_console()
    for r in results:
        if not r.rows:
            console.print(f"{r.cloud}: {'; '.join(r.skipped)}")
            continue
        note = f"; {len(r.skipped)} shapes not mapped: {', '.join(r.skipped[:3])}" if r.skipped else ""
        console.print(f"{r.cloud}: wrote {r.rows} offerings to {r.path} (prices as of {r.as_of}){note}")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the provision app."""
    app.command("gpus")(gpus_cmd)
    app.command("cost")(cost_cmd)
    app.command("rig")(rig_cmd)
    app.add_typer(catalog_app, name="catalog")
