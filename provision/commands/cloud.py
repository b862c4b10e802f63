"""provision commands: up, ls, ssh, down, gc (cloud machines that leave nothing behind).

Parsing and rendering only; deciding is in provision/planning.py, acting in provision/launch.py and
provision/fleet.py. stdout carries data (tables, --json), stderr carries progress and questions.
SIGINT, SIGTERM and SIGHUP all raise an exception while a command acts (the handlers the CLI
installs, envcheck.clirun), so each runs the same cleanup; the exit code says which (130, 143, 129).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from contextlib import suppress
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from envcheck.clirun import bounded
from provision import targets
from provision.commands._common import JsonOpt, err_console, out_console
from provision.errors import ProvisionError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from provision.clouds.base import Provider
    from provision.plan import Plan
    from provision.settings import Settings
    from provision.state import Store

#: the clouds ``--cloud`` accepts, from the registry of launch targets
_CLOUD_CHOICES = " or ".join(targets.clouds())

#: version of every JSON document these commands print ("major.minor": a new field is minor)
SCHEMA_VERSION = "1.0"

YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.", envvar="PROVISION_YES")
]


def _store(settings: Settings) -> Store:
    from provision.state import Store

    return Store(settings.db_path, timeout=settings.store_timeout)


def _getter(settings: Settings) -> Any:
    """Drivers by launch target id, built once per command."""
    from provision import targets

    cache: dict[str, Provider] = {}

    def get(key: str) -> Provider:
        if key not in cache:
            cache[key] = targets.get(key).provider(settings)
        return cache[key]

    return get


def _emit(data: dict[str, Any]) -> None:
    typer.echo(json.dumps({"schema_version": SCHEMA_VERSION, **data}, indent=2, default=str))


def _say(console: Console, text: str) -> None:
    """A line on stderr that never stops the work (after SIGHUP the terminal may be gone)."""
    with suppress(OSError, ValueError):
        console.print(text)


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("not asking on a non-interactive terminal", hint="pass --yes to go ahead")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Abort()  # the CLI says "cancelled" and exits 1


class RichProgress:
    """Spinner with the current step on a terminal; plain lines when piped (all on stderr)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.status = console.status("starting")

    def __enter__(self) -> RichProgress:
        if self.console.is_terminal:
            self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with suppress(OSError, ValueError):
            self.status.stop()

    def step(self, message: str) -> None:
        if self.console.is_terminal:
            self.tick(message)
        else:
            _say(self.console, f"… {escape(message)}")

    def tick(self, message: str) -> None:
        if self.console.is_terminal:
            with suppress(OSError, ValueError):
                self.status.update(escape(message))

    def note(self, message: str) -> None:
        _say(self.console, f"[yellow]![/] {escape(message)}")


def _money(value: float | None) -> str:
    return "?" if value is None else f"${value:,.2f}"


def _show_plan(plan: Plan, console: Console) -> None:
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_row("name", escape(plan.name))
    t.add_row("machine", f"{plan.cloud} {plan.instance_type} ({plan.accelerator_count}x {plan.accelerator})")
    if plan.nodes > 1:
        t.add_row("nodes", f"{plan.nodes} (one zone, cluster placement, all ports open between them)")
    market = "spot" + (" (then on-demand)" if plan.on_demand_fallback else "") if plan.spot else "on-demand"
    t.add_row("where", escape(f"{plan.zone or plan.region}, {market}"))
    price = _money(plan.price_per_hour) + "/h"
    if plan.nodes > 1:
        total = None if plan.price_per_hour is None else plan.price_per_hour * plan.nodes
        price += f" per node, {_money(total)}/h for {plan.nodes}"
    if plan.price_as_of:
        price += f"  (catalog {plan.price_as_of})"
    if plan.spot and plan.on_demand_fallback and plan.price_on_demand:
        price += f"; on-demand fallback {_money(plan.price_on_demand)}/h"
    t.add_row("price", price)
    if plan.tpu_runtime:
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
    app.command("exec")(exec_)
    app.command("down")(down)
    app.command("gc")(gc)


def up(
    cloud: Annotated[str, typer.Option(help=f"{_CLOUD_CHOICES}.", envvar="PROVISION_CLOUD")] = "aws",
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
        typer.Option(
            help="Script run once on first boot as the login user. It travels in the instance's "
            "user-data / metadata, readable by anyone with describe rights on the instance: no secrets.",
            envvar="PROVISION_SETUP",
        ),
    ] = None,
    wait: Annotated[
        str, typer.Option(help="ssh: until SSH answers; running: until it runs.", envvar="PROVISION_WAIT")
    ] = "ssh",
    ssh_timeout: Annotated[
        float | None,
        typer.Option(
            help="With --wait ssh: give up after this many seconds [default: 600].",
            envvar="PROVISION_SSH_TIMEOUT",
            callback=bounded(1, 86400),
        ),
    ] = None,
    ssh_cidr: Annotated[
        str | None,
        typer.Option(help="Who may SSH in (default: your public IP /32).", envvar="PROVISION_SSH_CIDR"),
    ] = None,
    allow_ssh_from_anywhere: Annotated[
        bool,
        typer.Option(
            "--allow-ssh-from-anywhere",
            help="Accept an --ssh-cidr wider than /8 (e.g. 0.0.0.0/0).",
            envvar="PROVISION_ALLOW_SSH_FROM_ANYWHERE",
        ),
    ] = False,
    key_name: Annotated[
        str | None,
        typer.Option(
            help="Use this existing AWS key pair instead of a new key.", envvar="PROVISION_KEY_NAME"
        ),
    ] = None,
    nodes: Annotated[
        int,
        typer.Option(
            help="Machines in the launch (a cluster); more than 1 needs a target that launches clusters.",
            envvar="PROVISION_NODES",
            callback=bounded(1, 64),
        ),
    ] = 1,
    engine: Annotated[
        str,
        typer.Option(
            help="With --nodes: none (cluster file only) or ray (a Ray head on node 0, the others join).",
            envvar="PROVISION_ENGINE",
        ),
    ] = "none",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; create nothing.", envvar="PROVISION_DRY_RUN")
    ] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Launch a GPU or TPU machine: cheapest matching offer, zone/region failover, SSH config entry.

    Ctrl-C, SIGTERM or SIGHUP at any point removes what was created; running the same command
    again after a crash finishes the interrupted launch.
    """
    from provision import launch, planning
    from provision import settings as settings_mod
    from provision.clouds._clients import public_ip

    err = err_console()
    settings = settings_mod.load(ssh_timeout=ssh_timeout)
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
        allow_ssh_from_anywhere=allow_ssh_from_anywhere,
        nodes=nodes,
        engine=engine,
    )
    try:
        offers = planning.load_offers(settings)
    except ProvisionError:
        if not ((instance_type or tpu) and (region or zone)):
            raise
        offers = []
    plan = planning.make_plan(req, offers, settings)
    if any("WARNING: SSH" in n for n in plan.notes):
        err.print(f"[bold yellow]warning:[/] SSH will be reachable from {plan.ssh_cidr}")
    if dry_run:
        if as_json:
            _emit({"dry_run": True, "plan": plan.to_dict()})
        else:
            _show_plan(plan, out_console())  # the plan is this command's output: stdout
            err.print("dry run: nothing was created")
        return
    target = targets.get(plan.target)
    provider = target.provider(settings)
    provider.check_credentials()  # loads the cloud SDK before anything is recorded
    store = _store(settings)
    plan = planning.make_plan(
        req,
        offers,
        settings,
        owner=store.owner_id,
        now=plan.created_at,
        launch_id=plan.launch_id,
        my_ip=lambda: public_ip(settings),
    )
    previous = launch.preflight(plan, store)
    if previous is not None:
        err.print(f"an interrupted launch of {plan.name} matches: this finishes it")
    _show_plan(plan, err)
    asked = {"--autostop": (targets.Capability.AUTOSTOP, plan.autostop_minutes)}
    asked["--spot"] = (targets.Capability.SPOT, plan.spot)
    for option, (capability, wanted) in asked.items():
        feat = target.supports(capability)
        if wanted and not feat.supported:
            err.print(f"[yellow]note:[/] {option}: {escape(feat.why_not or '')}")
    many = f"{plan.nodes} x " if plan.nodes > 1 else ""
    _confirm(f"Launch {plan.name} at {many}{_money(plan.price_per_hour)}/h?", yes)
    with RichProgress(err) as progress:
        result = launch.up(plan, provider, store, settings, progress)
    plan, m = result.plan, result.machine
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
        "nodes": [
            {
                "index": i,
                "role": n.role or ("head" if i == 0 else "worker"),
                "id": n.id,
                "zone": n.zone,
                "public_ip": n.public_ip,
                "private_ip": n.private_ip,
            }
            for i, n in enumerate(result.machines)
        ],
    }
    if as_json:
        _emit(out)
    else:
        price = _money(row.price_per_hour if row else plan.price_per_hour)
        if len(result.machines) > 1:
            count = len(result.machines)
            err.print(
                f"[bold green]✓[/] {plan.name}: {count} machines {m.state} in {m.zone} at {count} x {price}/h"
            )
            for i, n in enumerate(result.machines):
                err.print(f"  node {i} ({n.role or '?'}): {n.id} {n.public_ip or ''} / {n.private_ip or ''}")
        else:
            err.print(f"[bold green]✓[/] {plan.name} ({m.id}) is {m.state} in {m.zone} at {price}/h")
        if result.ssh_alias:
            err.print(f"  connect: [bold]provision ssh {plan.name}[/]  (or: ssh {plan.name})")
        err.print(f"  remove:  provision down {plan.name}")


#: ls layouts, widest first: the first that fits the terminal is used. Low-value columns go first
#: (SSH is the name again, HOURS is COST / $/H), then CLOUD and MARKET fold into TYPE, then ZONE.
_LS_LAYOUTS = (
    ("NAME", "CLOUD", "TYPE", "ZONE", "MARKET", "STATE", "$/H", "HOURS", "COST", "SSH"),
    ("NAME", "CLOUD", "TYPE", "ZONE", "MARKET", "STATE", "$/H", "HOURS", "COST"),
    ("NAME", "CLOUD", "TYPE", "ZONE", "MARKET", "STATE", "$/H", "COST"),
    ("NAME", "MACHINE", "ZONE", "STATE", "$/H", "COST"),
    ("NAME", "MACHINE", "STATE", "$/H", "COST"),
)
_NUMERIC = {"$/H", "HOURS", "COST"}


def _ls_cells(views: list[Any], untracked: list[Any]) -> list[dict[str, str]]:
    rows = []
    for v in views:
        market = "spot" if v.spot else "on-demand"
        hosts = len(v.members)
        shape = f"{v.nodes}x {v.instance_type}" if v.nodes > 1 else v.instance_type
        if v.nodes == 1 and hosts > 1:
            shape += f" ({hosts} hosts)"
        rows.append(
            {
                "NAME": v.name,
                "CLOUD": v.cloud,
                "TYPE": shape,
                "MACHINE": f"{v.cloud} {shape}" + (" spot" if v.spot else ""),
                "ZONE": v.zone or "",
                "MARKET": market,
                "STATE": v.state,
                # the whole launch: every node is billed (COST is for all of them too)
                "$/H": _money(None if v.price_per_hour is None else v.price_per_hour * v.nodes),
                "HOURS": "" if v.hours is None else f"{v.hours:.2f}",
                "COST": _money(v.cost_so_far),
                "SSH": v.ssh or "",
            }
        )
    for r in untracked:
        what = r.instance_type or r.kind
        rows.append(
            {"NAME": r.id, "CLOUD": r.cloud, "TYPE": what, "MACHINE": f"{r.cloud} {what}"}
            | {"ZONE": r.zone or r.region, "STATE": "untracked"}
        )
    return rows


def _ls_table(views: list[Any], untracked: list[Any], width: int) -> Any:
    """The ls table in the widest layout that fits ``width``: numbers are never cut or wrapped."""
    from rich import box
    from rich.table import Table

    rows = _ls_cells(views, untracked)

    def need(layout: tuple[str, ...]) -> int:
        widths = [max(len(c), *(len(r.get(c, "")) for r in rows)) + 1 for c in layout]  # +1: padding
        return sum(widths) + len(layout) - 1  # and one space of the box between columns

    layout = next((lay for lay in _LS_LAYOUTS if need(lay) <= width), _LS_LAYOUTS[-1])
    t = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False)
    for col in layout:
        if col in _NUMERIC:
            t.add_column(col, justify="right", no_wrap=True)
        else:  # only a very narrow terminal wraps names (never cuts them)
            t.add_column(col, overflow="fold", no_wrap=col != "NAME")
    for r in rows:
        t.add_row(*(escape(r.get(c, "")) for c in layout))
    return t


def ls(
    refresh: Annotated[
        bool, typer.Option(help="Ask the clouds (off: the state store only).", envvar="PROVISION_REFRESH")
    ] = True,
    all_regions: Annotated[
        bool,
        typer.Option(
            "--all-regions",
            help="Look in every region of every cloud, for machines of ours the store lost.",
            envvar="PROVISION_ALL_REGIONS",
        ),
    ] = False,
    nodes: Annotated[
        bool,
        typer.Option(
            "--nodes",
            help="Also list every node (and TPU slice host) with its address.",
            envvar="PROVISION_LS_NODES",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Machines mlrig launched, reconciled with what the clouds report, with cost so far."""
    from provision import fleet
    from provision import settings as settings_mod

    settings = settings_mod.load()
    store = _store(settings)
    err = err_console()
    views, untracked, scan = fleet.inventory(
        store, settings, _getter(settings), refresh=refresh, all_regions=all_regions
    )
    for key, why in scan.problems.items():
        err.print(f"[yellow]warning:[/] {key}: could not list: {escape(why)}")
    for key, why in scan.skipped.items():
        err.print(f"[dim]{key}: not checked ({escape(why)})[/]")
    if as_json:
        _emit(
            {
                "owner_id": store.owner_id,
                "machines": [v.to_dict() for v in views],
                "untracked": [asdict(r) for r in untracked],
                "not_checked": {**scan.skipped, **scan.problems},
            }
        )
    elif not views and not untracked:
        err.print("no machines (launch one with `provision up`)")
    else:
        console = out_console()
        console.print(_ls_table(views, untracked, console.width))
        for v in views:
            if v.note:
                console.print(f"{escape(v.name)}: {escape(v.note)}", soft_wrap=False)
        if nodes:
            for v in views:
                for m in v.members:
                    line = f"{v.name} node {m['index']} ({m['role']}): {m['id']} {m['address'] or '-'}"
                    console.print(escape(line + (f"  ssh {m['ssh']}" if m["ssh"] else "")), soft_wrap=False)
        if untracked:
            err.print(f"{len(untracked)} resource(s) of ours unknown to the state store: see `provision gc`")
    if scan.problems:
        raise typer.Exit(3)


def _running(settings: Settings, name: str) -> Any:
    from provision.state import LaunchStatus

    row = _store(settings).active_by_name(name)
    if row is None or row.status != LaunchStatus.RUNNING:
        raise UsageError(f"no running machine named {name!r}", hint="`provision ls` lists them")
    return row


def _host_port(address: str) -> tuple[str, int]:
    """``HOST`` or ``HOST:PORT`` ([v6]:PORT) as recorded -> (host, port); SSH's port 22 by default."""
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and (host.count(":") == 0 or host.startswith("[")):
        return host.strip("[]"), int(port)
    return address, 22


def _node_targets(settings: Settings, row: Any) -> list[Any]:
    """One remote.Target per node (and TPU slice host) of a running launch, from the store."""
    from provision import sshconfig
    from provision.cluster.remote import Target

    members = [(r, r.address) for r in _store(settings).nodes(row.launch_id) if r.address]
    if not members and row.ssh_host:  # a launch of 0.2 or before: its one machine
        return [
            Target(
                0,
                row.ssh_host,
                row.ssh_user or "ubuntu",
                key_path=row.key_path,
                known_hosts=str(settings.known_hosts),
                alias=row.name,
            )
        ]
    return [
        Target(
            r.node_index or 0,
            _host_port(address)[0],
            row.ssh_user or "ubuntu",
            port=_host_port(address)[1],
            key_path=row.key_path,
            known_hosts=str(settings.known_hosts),
            alias=sshconfig.node_alias(row.name, r.node_index or 0),
        )
        for r, address in members
    ]


def ssh(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Machine name.")],
    node: Annotated[
        int,
        typer.Option(
            "--node",
            help="Which node of a cluster or TPU slice (0 is the head).",
            envvar="PROVISION_NODE",
            callback=bounded(0, 4096),
        ),
    ] = 0,
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
    row = _running(settings, name)
    by_index = {t.index: t for t in _node_targets(settings, row)}
    if node not in by_index:
        if not by_index:
            raise ProvisionError(f"{name} has no address recorded")
        raise UsageError(
            f"{name} has no node {node}", hint=f"its nodes are {', '.join(map(str, sorted(by_index)))}"
        )
    target = by_index[node]
    alias = target.alias or name
    if not sshconfig.has_entry(settings.ssh_include, alias):
        entry = sshconfig.render_entry(alias, target.host, target.user, row.key_path, settings.known_hosts)
        sshconfig.add(settings.ssh_config, settings.ssh_include, alias, entry)
    exe = shutil.which("ssh")
    # -F only for a non-default config: it would also make ssh skip /etc/ssh/ssh_config
    default = settings.ssh_config == Path.home() / ".ssh" / "config"
    argv = ["ssh", *([] if default else ["-F", str(settings.ssh_config)]), alias, *ctx.args]
    if dry_run or as_json:
        if as_json:
            _emit({"argv": argv, "host": target.host, "user": target.user, "node": node})
        else:
            typer.echo(" ".join(argv))
        return
    if exe is None:
        raise ProvisionError("ssh is not installed", hint="install OpenSSH client")
    os.execv(exe, argv)


def exec_(
    name: Annotated[str, typer.Argument(help="Machine or cluster name.")],
    command: Annotated[list[str], typer.Argument(help="The command, after --, run by the login shell.")],
    timeout: Annotated[
        float,
        typer.Option(
            help="Seconds the command may run on each node before it is stopped.",
            envvar="PROVISION_EXEC_TIMEOUT",
            callback=bounded(0, 86400, low_open=True),
        ),
    ] = 600.0,
    group: Annotated[
        bool,
        typer.Option(
            "--group",
            "-b",
            help="Wait for every node, then show each distinct output once with the nodes that gave "
            "it (as dshbak -c or clush -b), instead of lines as they come.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a command on every node of a cluster (or TPU slice host) at once, with each node's output
    and exit status. Exit 0 when it succeeded everywhere, 1 when it failed somewhere, 3 when a node
    could not be reached."""
    from provision import settings as settings_mod
    from provision.cluster import remote, render

    settings = settings_mod.load()
    row = _running(settings, name)
    targets_ = _node_targets(settings, row)
    if not targets_:
        raise ProvisionError(f"{name} has no address recorded")
    out, err = out_console(), err_console()

    def live(index: int, stream: str, line: str) -> None:
        _say(out if stream == "stdout" else err, f"[{index}] {escape(line)}")

    streaming = not (as_json or group)
    results = remote.run(targets_, " ".join(command), timeout=timeout, on_line=live if streaming else None)
    if as_json:
        _emit({"name": name, **render.to_json(results, " ".join(command))})
    elif group:
        typer.echo(render.text(results, width=out.width), nl=False)  # plain text: no markup to escape
    else:
        for r in results:
            status = f"exit {r.exit_status}" if r.exit_status is not None else r.outcome.value
            _say(
                err,
                f"node {r.index} ({r.host}): {escape(status)}" + (f": {escape(r.error)}" if r.error else ""),
            )
        _say(err, escape(render.summary(results)))  # "3 nodes: 2 ok, 1 failed (node 1)"
    code = remote.exit_code(results)
    if code:
        raise typer.Exit(code)


def down(
    names: Annotated[list[str] | None, typer.Argument(help="Machine names.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every machine in the state store.", envvar="PROVISION_DOWN_ALL")
    ] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Terminate machines and remove everything mlrig created for them; safe to repeat.

    Refuses a machine that another `provision up` or `down` is acting on right now.
    """
    from provision import launch
    from provision import settings as settings_mod

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
            _emit({"results": []})
        else:
            err.print("nothing to remove")
        return
    _confirm(f"Terminate and remove {', '.join(r.name for r in rows)}?", yes)
    results = []
    with RichProgress(err) as progress:
        for row in rows:
            try:
                provider = targets.for_launch(row).provider(settings)
                deleted = launch.down(row, provider, store, settings, progress)
            except ProvisionError as exc:
                _say(err, f"[red]✗[/] {escape(row.name)}: {escape(exc.message)}")
                if exc.hint:
                    _say(err, f"  [dim]hint:[/] {escape(exc.hint)}")
                results.append({"name": row.name, "ok": False, "error": exc.message, "hint": exc.hint})
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
                _say(err, f"[green]✓[/] {escape(row.name)}: removed {escape(what)}")
    if as_json:
        _emit({"results": results})
    if any(not r["ok"] for r in results):
        raise typer.Exit(3)


def gc(
    cloud: Annotated[
        list[str] | None,
        typer.Option(
            help="Cloud(s) to sweep (default: every cloud with an SDK and credentials).",
            envvar="PROVISION_GC_CLOUD",
        ),
    ] = None,
    owner: Annotated[
        list[str] | None,
        typer.Option(
            help="Also sweep resources of this owner id (a lost store's; `provision ls --json` shows "
            "this store's).",
            envvar="PROVISION_GC_OWNER",
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Delete what is listed.", envvar="PROVISION_YES")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List (with --yes delete), in every region, resources of ours the state store does not hold.

    Ours means: tagged with this store's owner id (or an --owner given) and a launch id. Resources
    of other stores, other people or other tools are never touched, whatever their names.
    """
    import re

    from provision import fleet, launch
    from provision import settings as settings_mod

    settings = settings_mod.load()
    clouds = cloud or list(targets.clouds())
    for c in clouds:
        targets.of_cloud(c)  # a usage error naming the clouds there are
    for o in owner or []:
        if not re.fullmatch(r"[0-9a-f]{16,32}", o):
            raise UsageError(f"bad --owner {o!r}", hint="an owner id is 16-32 hex digits")
    store = _store(settings)
    getter = _getter(settings)
    err = err_console()
    keys = fleet.orphan_keys(store, settings)
    found, scan = fleet.untracked(store, getter, clouds, explicit=bool(cloud), owners=owner or [])
    for key, why in scan.problems.items():
        err.print(f"[red]error:[/] {key}: could not check: {escape(why)}")
    for key, why in scan.skipped.items():
        err.print(f"[dim]{key}: not checked ({escape(why)})[/]")
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
    checked = ", ".join(f"{k} ({n} regions)" for k, n in scan.regions.items())
    results: list[tuple[Any, str]] = []
    if yes:
        results = fleet.collect(found, getter, on_delete=lambda r: _say(err, f"deleting {r.kind} {r.id}"))
        for path in keys:
            launch.forget_key(str(path).removesuffix(".pub"))
    if as_json:
        _emit(
            {
                "owner_id": store.owner_id,
                "untracked": rows,
                "deleted": [{"id": r.id, "kind": r.kind, "outcome": o} for r, o in results],
                "keys": [str(p) for p in keys],
                "keys_removed": yes,
                "checked": scan.regions,
                "not_checked": {**scan.skipped, **scan.problems},
            }
        )
    elif not yes:
        for r in found:
            typer.echo(f"{r.cloud}\t{r.kind}\t{r.id}\t{r.zone or r.region}\t{r.state}\tlaunch={r.launch_id}")
        for path in keys:
            typer.echo(f"local\tkey\t{path}")
        total = len(found) + len(keys)
        err.print(f"{total} untracked item(s)" + (" — delete them with --yes" if total else ""))
    else:
        for r, o in results:
            typer.echo(f"{r.cloud}\t{r.kind}\t{r.id}\t{o}")
        for path in keys:
            typer.echo(f"local\tkey\t{path}\tdeleted")
    failed = [r for r, o in results if o.startswith("failed")]
    if scan.problems or failed:
        if not as_json:
            err.print(f"[red]incomplete:[/] checked {checked or 'nothing'}; see the errors above")
        raise typer.Exit(3)
    if not as_json:
        err.print(f"checked {checked}" + (f"; {len(results)} removed" if yes else ""))
