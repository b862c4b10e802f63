"""provision commands: up, ls, ssh, down, gc (cloud machines that leave nothing behind).

Parsing and rendering only; deciding is in provision/planning.py, acting in provision/launch.py and
provision/fleet.py. stdout carries data (tables, --json), stderr carries progress and questions.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from provision.commands._common import JsonOpt, err_console, out_console
from provision.errors import ProvisionError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from provision.clouds.base import Plan, Provider
    from provision.settings import Settings
    from provision.state import Store

YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.", envvar="PROVISION_YES")
]


def _store(settings: Settings) -> Store:
    from provision.state import Store

    return Store(settings.db_path)


def _getter(settings: Settings) -> Any:
    from provision.clouds import provider_for

    cache: dict[str, Provider] = {}

    def get(key: str) -> Provider:
        if key not in cache:
            cache[key] = provider_for(key.split("-", maxsplit=1)[0], settings, tpu=key.endswith("-tpu"))
        return cache[key]

    return get


def _emit(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("not asking on a non-interactive terminal", hint="pass --yes to go ahead")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Abort()  # the CLI says "cancelled" and exits 1


class RichProgress:
    """Spinner with the current step; notes printed above it (all on stderr)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.status = console.status("starting")

    def __enter__(self) -> RichProgress:
        self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.status.stop()

    def step(self, message: str) -> None:
        self.status.update(escape(message))
        if not self.console.is_terminal:
            self.console.print(f"… {escape(message)}")

    def note(self, message: str) -> None:
        self.console.print(f"[yellow]![/] {escape(message)}")


def _money(value: float | None) -> str:
    return "?" if value is None else f"${value:,.2f}"


def _show_plan(plan: Plan, console: Console) -> None:
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_row("name", escape(plan.name))
    t.add_row("machine", f"{plan.cloud} {plan.instance_type} ({plan.accelerator_count}x {plan.accelerator})")
    market = "spot" + (" (then on-demand)" if plan.on_demand_fallback else "") if plan.spot else "on-demand"
    t.add_row("where", escape(f"{plan.zone or plan.region}, {market}"))
    price = _money(plan.price_per_hour) + "/h"
    if plan.price_as_of:
        price += f"  (catalog {plan.price_as_of})"
    if plan.spot and plan.on_demand_fallback and plan.price_on_demand:
        price += f"; on-demand fallback {_money(plan.price_on_demand)}/h"
    t.add_row("price", price)
    if plan.kind == "tpu-vm":
        t.add_row("software", f"TPU runtime {plan.tpu_runtime}")
    else:
        t.add_row("disk", escape(f"{plan.disk_gb} GB, image {plan.image or 'Deep Learning image (latest)'}"))
    t.add_row("autostop", f"terminate after {plan.autostop_minutes} min" if plan.autostop_minutes else "off")
    t.add_row("ssh from", escape(plan.ssh_cidr or "your public IP /32 (looked up at launch)"))
    for note in plan.notes:
        t.add_row("note", escape(note))
    console.print(t)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the provision app."""
    app.command("up")(up)
    app.command("ls")(ls)
    app.command("ssh", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(ssh)
    app.command("down")(down)
    app.command("gc")(gc)


def up(
    cloud: Annotated[str, typer.Option(help="aws or gcp.", envvar="PROVISION_CLOUD")] = "aws",
    gpu: Annotated[
        str | None,
        typer.Option(help="GPU and count, e.g. A10G:1 (cheapest offer wins).", envvar="PROVISION_GPU"),
    ] = None,
    instance_type: Annotated[
        str | None,
        typer.Option(help="Pin the machine type, e.g. g5.xlarge.", envvar="PROVISION_INSTANCE_TYPE"),
    ] = None,
    tpu: Annotated[
        str | None, typer.Option(help="Cloud TPU slice, e.g. v5e-8 (gcp).", envvar="PROVISION_TPU")
    ] = None,
    region: Annotated[str | None, typer.Option(help="Only this region.", envvar="PROVISION_REGION")] = None,
    zone: Annotated[str | None, typer.Option(help="Only this zone.", envvar="PROVISION_ZONE")] = None,
    spot: Annotated[
        bool, typer.Option(help="Spot capacity (falls back to on-demand last).", envvar="PROVISION_SPOT")
    ] = False,
    on_demand_fallback: Annotated[
        bool,
        typer.Option(
            help="With --spot, try on-demand when spot fails.", envvar="PROVISION_ON_DEMAND_FALLBACK"
        ),
    ] = True,
    disk: Annotated[int, typer.Option(help="Boot disk size, GB.", envvar="PROVISION_DISK")] = 200,
    image: Annotated[
        str | None, typer.Option(help="AMI id / GCE image / TPU runtime version.", envvar="PROVISION_IMAGE")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Machine name (ssh alias).", envvar="PROVISION_NAME")
    ] = None,
    autostop: Annotated[
        str | None,
        typer.Option(
            help="Terminate after this long, e.g. 60m or 2h (a timer).", envvar="PROVISION_AUTOSTOP"
        ),
    ] = None,
    setup: Annotated[
        Path | None,
        typer.Option(help="Script run once on first boot as the login user.", envvar="PROVISION_SETUP"),
    ] = None,
    wait: Annotated[
        str, typer.Option(help="ssh: until SSH answers; running: until it runs.", envvar="PROVISION_WAIT")
    ] = "ssh",
    ssh_cidr: Annotated[
        str | None,
        typer.Option(help="Who may SSH in (default: your public IP /32).", envvar="PROVISION_SSH_CIDR"),
    ] = None,
    key_name: Annotated[
        str | None,
        typer.Option(
            help="Use this existing AWS key pair instead of a new key.", envvar="PROVISION_KEY_NAME"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; create nothing.", envvar="PROVISION_DRY_RUN")
    ] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Launch a GPU or TPU machine: cheapest matching offer, zone/region failover, SSH config entry."""
    from provision import launch, planning
    from provision import settings as settings_mod
    from provision.clouds import provider_for_plan
    from provision.clouds._clients import public_ip

    settings = settings_mod.load()
    err = err_console()
    req = planning.Request(
        cloud=cloud,
        gpu=gpu,
        instance_type=instance_type,
        tpu=tpu,
        region=region,
        zone=zone,
        spot=spot,
        disk_gb=disk,
        image=image,
        name=name,
        autostop=autostop,
        setup_path=setup,
        wait=wait,
        ssh_cidr=ssh_cidr,
        key_name=key_name,
        on_demand_fallback=on_demand_fallback,
    )
    try:
        offers = planning.load_offers(settings)
    except ProvisionError:
        if not ((instance_type or tpu) and (region or zone)):
            raise
        offers = []
    plan = planning.make_plan(req, offers, settings)
    if ssh_cidr == "0.0.0.0/0":
        err.print("[bold yellow]warning:[/] SSH will be reachable from the whole internet")
    if dry_run:
        if as_json:
            _emit({"dry_run": True, "plan": plan.to_dict()})
        else:
            _show_plan(plan, out_console())  # the plan is this command's output: stdout
            err.print("dry run: nothing was created")
        return
    store = _store(settings)
    previous = store.active_by_name(plan.name)
    if previous is not None:
        if previous.status != "launching":
            raise UsageError(
                f"a machine named {plan.name!r} already exists ({previous.status})",
                hint=f"pick another --name, or `provision down {plan.name}` first",
            )
        # an earlier `up` of this name died mid-launch: resume it under the same launch id
        plan.launch_id, plan.created_at = previous.launch_id, previous.created_at
        plan.key_path = previous.key_path
        err.print(f"resuming the interrupted launch {plan.launch_id} of {plan.name}")
    provider = provider_for_plan(plan, settings)
    provider.check_credentials()
    if plan.ssh_cidr is None:
        plan.ssh_cidr = f"{public_ip(settings)}/32"
    _show_plan(plan, err)
    for option, feature in (("--autostop", "autostop"), ("--spot", "spot")):
        feat = provider.features.get(feature)
        if (
            feat
            and not feat.supported
            and getattr(plan, "autostop_minutes" if feature == "autostop" else "spot")
        ):
            err.print(f"[yellow]note:[/] {option}: {escape(feat.why_not or '')}")
    _confirm(f"Launch {plan.name} at {_money(plan.price_per_hour)}/h?", yes)
    with RichProgress(err) as progress:
        result = launch.up(plan, provider, store, settings, progress)
    m = result.machine
    row = store.launch(plan.launch_id)
    out = {
        "name": plan.name,
        "launch_id": plan.launch_id,
        "cloud": plan.cloud,
        "id": m.id,
        "instance_type": plan.instance_type,
        "zone": m.zone,
        "spot": m.spot,
        "state": m.state,
        "public_ip": m.public_ip,
        "private_ip": m.private_ip,
        "price_per_hour": row.price_per_hour if row else plan.price_per_hour,
        "ssh": f"ssh {result.ssh_alias}" if result.ssh_alias else None,
        "tried": [str(a) for a in result.attempts],
        "autostop_at": plan.expires_at,
    }
    if as_json:
        _emit(out)
    else:
        price = _money(row.price_per_hour if row else plan.price_per_hour)
        err.print(f"[bold green]✓[/] {plan.name} ({m.id}) is {m.state} in {m.zone} at {price}/h")
        if result.ssh_alias:
            err.print(f"  connect: [bold]provision ssh {plan.name}[/]  (or: ssh {plan.name})")
        err.print(f"  remove:  provision down {plan.name}")


def ls(
    refresh: Annotated[
        bool, typer.Option(help="Ask the clouds (off: the state store only).", envvar="PROVISION_REFRESH")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Machines mlrig launched, reconciled with what the clouds report, with cost so far."""
    from rich.table import Table

    from provision import fleet
    from provision import settings as settings_mod

    settings = settings_mod.load()
    store = _store(settings)
    views, untracked, warnings = fleet.inventory(store, settings, _getter(settings), refresh=refresh)
    err = err_console()
    for w in warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}")
    if as_json:
        _emit({"machines": [v.to_dict() for v in views], "untracked": [vars(r) for r in untracked]})
        return
    if not views and not untracked:
        err.print("no machines (launch one with `provision up`)")
        return
    t = Table()
    for col in ("NAME", "CLOUD", "TYPE", "ZONE", "MARKET", "STATE", "$/H", "HOURS", "COST", "SSH"):
        t.add_column(col)
    for v in views:
        t.add_row(
            v.name,
            v.cloud,
            v.instance_type,
            v.zone or "",
            "spot" if v.spot else "on-demand",
            escape(v.state + (f" ({v.note})" if v.note else "")),
            _money(v.price_per_hour),
            "" if v.hours is None else f"{v.hours:.2f}",
            _money(v.cost_so_far),
            v.ssh or "",
        )
    for r in untracked:
        t.add_row(
            "?",
            r.cloud,
            r.instance_type or r.kind,
            r.zone or r.region,
            "",
            f"untracked {r.kind} {r.id}",
            "",
            "",
            "",
            "",
        )
    out_console().print(t)
    if untracked:
        err.print(f"{len(untracked)} tagged resource(s) unknown to the state store: see `provision gc`")


def ssh(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Machine name.")],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the ssh command instead of running it.", envvar="PROVISION_DRY_RUN"
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Connect to a machine (extra arguments go to ssh, e.g. a command to run)."""
    from provision import settings as settings_mod
    from provision import sshconfig

    settings = settings_mod.load()
    row = _store(settings).active_by_name(name)
    if row is None or row.status != "running":
        raise UsageError(f"no running machine named {name!r}", hint="`provision ls` lists them")
    if not row.ssh_host:
        raise ProvisionError(f"{name} has no address recorded")
    if not sshconfig.has_entry(settings.ssh_include, name):
        user = row.ssh_user or "ubuntu"
        entry = sshconfig.render_entry(name, row.ssh_host, user, row.key_path, settings.known_hosts)
        sshconfig.add(settings.ssh_config, settings.ssh_include, name, entry)
    exe = shutil.which("ssh")
    # -F only for a non-default config: it would also make ssh skip /etc/ssh/ssh_config
    default = settings.ssh_config == Path.home() / ".ssh" / "config"
    argv = ["ssh", *([] if default else ["-F", str(settings.ssh_config)]), name, *ctx.args]
    if dry_run or as_json:
        if as_json:
            _emit({"argv": argv, "host": row.ssh_host, "user": row.ssh_user})
        else:
            typer.echo(" ".join(argv))
        return
    if exe is None:
        raise ProvisionError("ssh is not installed", hint="install OpenSSH client")
    os.execv(exe, argv)


def down(
    names: Annotated[list[str] | None, typer.Argument(help="Machine names.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every machine in the state store.", envvar="PROVISION_DOWN_ALL")
    ] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Terminate machines and remove everything mlrig created for them; safe to repeat."""
    from provision import launch
    from provision import settings as settings_mod
    from provision.clouds import provider_for
    from provision.fleet import driver_key

    settings = settings_mod.load()
    store = _store(settings)
    err = err_console()
    if all_:
        rows = store.launches()
    elif names:
        rows = []
        for n in names:
            row = store.active_by_name(n)
            if row is None:
                done = [r for r in store.launches(include_finished=True) if r.name == n]
                if done:
                    err.print(f"{n}: already down")
                    continue
                raise UsageError(
                    f"no machine named {n!r} in the state store",
                    hint="`provision ls` lists machines; `provision gc` finds untracked ones",
                )
            rows.append(row)
    else:
        raise UsageError("say which machines", hint="provision down NAME, or provision down --all")
    if not rows:
        if as_json:
            _emit([])
        else:
            err.print("nothing to remove")
        return
    _confirm(f"Terminate and remove {', '.join(r.name for r in rows)}?", yes)
    results = []
    failed = False
    with RichProgress(err) as progress:
        for row in rows:
            key = driver_key(row)
            provider = provider_for(key.split("-")[0], settings, tpu=key.endswith("-tpu"))
            try:
                deleted = launch.teardown(row, provider, store, settings, progress=progress)
            except ProvisionError as exc:
                store.update_launch(row.launch_id, status="cleanup-incomplete")
                err.print(f"[red]✗[/] {row.name}: {escape(exc.message)}")
                results.append({"name": row.name, "ok": False, "error": exc.message})
                failed = True
                continue
            results.append(
                {
                    "name": row.name,
                    "ok": True,
                    "deleted": [{"kind": r.kind, "id": r.id, "region": r.region} for r in deleted],
                }
            )
            if not as_json:
                what = ", ".join(f"{r.kind} {r.id}" for r in deleted) or "nothing left in the cloud"
                err.print(f"[green]✓[/] {row.name}: removed {escape(what)}")
    if as_json:
        _emit(results)
    if failed:
        raise typer.Exit(3)


def gc(
    cloud: Annotated[
        list[str] | None,
        typer.Option(help="Cloud(s) to sweep (default: aws and gcp).", envvar="PROVISION_GC_CLOUD"),
    ] = None,
    all_owners: Annotated[
        bool,
        typer.Option(help="Include resources tagged with other owners.", envvar="PROVISION_GC_ALL_OWNERS"),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Delete what is listed.", envvar="PROVISION_YES")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List (and with --yes delete) resources tagged as mlrig's that the state store does not know."""
    from provision import fleet
    from provision import settings as settings_mod

    settings = settings_mod.load()
    clouds = cloud or ["aws", "gcp"]
    for c in clouds:
        if c not in fleet.DRIVERS:
            raise UsageError(f"unknown cloud {c!r}", hint="choose aws or gcp")
    store = _store(settings)
    getter = _getter(settings)
    err = err_console()
    found, warnings = fleet.untracked(store, settings, getter, clouds, all_owners=all_owners)
    for w in warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}")
    rows = [
        {
            "cloud": r.cloud,
            "kind": r.kind,
            "id": r.id,
            "name": r.name,
            "region": r.region,
            "zone": r.zone,
            "launch_id": r.launch_id,
            "owner": r.owner,
            "state": r.state,
        }
        for r in found
    ]
    if not yes:
        if as_json:
            _emit({"untracked": rows, "deleted": []})
        else:
            for r in found:
                typer.echo(
                    f"{r.cloud}\t{r.kind}\t{r.id}\t{r.zone or r.region}\t{r.state}\tlaunch={r.launch_id}"
                )
            err.print(f"{len(found)} untracked resource(s)" + (" — delete them with --yes" if found else ""))
        return
    start = time.monotonic()
    results = fleet.collect(found, getter, on_delete=lambda r: err.print(f"deleting {r.kind} {r.id}"))
    if as_json:
        _emit(
            {"untracked": rows, "deleted": [{"id": r.id, "kind": r.kind, "outcome": o} for r, o in results]}
        )
    else:
        for r, o in results:
            typer.echo(f"{r.cloud}\t{r.kind}\t{r.id}\t{o}")
        err.print(f"done in {time.monotonic() - start:.1f}s")
    if any(o.startswith("failed") for _, o in results):
        raise typer.Exit(3)
