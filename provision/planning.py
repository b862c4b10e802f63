"""``provision up`` deciding, before anything is spent: which offer, which places, in which order.

Pure functions over the catalog's Offerings and the request; the cloud drivers only act on the Plan.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from provision import targets
from provision.clouds.base import Placement, check_name
from provision.errors import ProvisionError, UsageError
from provision.models import Offering, OfferingKind
from provision.plan import Plan, setup_fingerprint
from provision.settings import Settings

#: TPU generation as users say it -> the accelerator-type prefix Cloud TPU uses.
#: source: cloud.google.com/tpu/docs/system-architecture-tpu-vm (accelerator types), as_of 2026-11
_TPU_PREFIX = {
    "v2": "v2",
    "v3": "v3",
    "v4": "v4",
    "v5e": "v5litepod",
    "v5litepod": "v5litepod",
    "v5p": "v5p",
    "v6e": "v6e",
}
#: default TPU VM software per generation. source: cloud.google.com/tpu/docs/runtimes, as_of 2026-11
TPU_RUNTIMES = {
    "v2": "tpu-ubuntu2204-base",
    "v3": "tpu-ubuntu2204-base",
    "v4": "tpu-ubuntu2204-base",
    "v5litepod": "v2-alpha-tpuv5-lite",
    "v5p": "v2-alpha-tpuv5",
    "v6e": "v2-alpha-tpuv6e",
}


@dataclass(frozen=True)
class Request:
    """What the user asked for on the command line."""

    cloud: str
    gpu: str | None = None
    instance_type: str | None = None
    tpu: str | None = None
    region: str | None = None
    zone: str | None = None
    spot: bool = False
    disk_gb: int = 200
    image: str | None = None
    name: str | None = None
    autostop: str | None = None
    setup_path: Path | None = None
    wait: str = "ssh"
    ssh_cidr: str | None = None
    key_name: str | None = None
    on_demand_fallback: bool = True
    allow_ssh_from_anywhere: bool = False
    #: machines in the launch; more than one needs a target that can launch clusters
    nodes: int = 1
    #: none, or ray: the head starts a Ray head and the others join it
    engine: str = "none"


#: the most machines one launch may have (a guard against a typo costing thousands per hour)
MAX_NODES = 64

#: the shortest prefix --ssh-cidr takes without --allow-ssh-from-anywhere (a /8 is 16.7M addresses)
MIN_SSH_PREFIX = 8


def ssh_cidr(text: str, allow_anywhere: bool = False) -> str:
    """``--ssh-cidr`` checked and normalised: 203.0.113.7 -> 203.0.113.7/32, 1.2.3.4/24 -> 1.2.3.0/24.

    A prefix shorter than /8 (1.2.3.4/0 is the whole internet) is refused unless ``allow_anywhere``.
    """
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise UsageError(
            f"bad --ssh-cidr {text!r}", hint="give an address or range, e.g. --ssh-cidr 203.0.113.7/32"
        ) from None
    if net.prefixlen < MIN_SSH_PREFIX and not allow_anywhere:
        raise UsageError(
            f"--ssh-cidr {text} would let {net.num_addresses:.3g} addresses reach SSH ({net})",
            hint="give your own address or network (e.g. 203.0.113.7/32); "
            "if you really mean it, add --allow-ssh-from-anywhere",
        )
    return str(net)


def parse_gpu(text: str) -> tuple[str, int]:
    """``A10G:1`` -> ("A10G", 1); ``H100`` -> ("H100", 1)."""
    name, _, count = text.partition(":")
    try:
        n = int(count) if count else 1
    except ValueError:
        raise UsageError(f"bad --gpu {text!r}", hint="write NAME:COUNT, e.g. --gpu A10G:1") from None
    if not name or n < 1:
        raise UsageError(f"bad --gpu {text!r}", hint="write NAME:COUNT, e.g. --gpu A10G:1")
    return name, n


def parse_minutes(text: str) -> int:
    """``90`` / ``90m`` / ``2h`` / ``1h30m`` -> minutes."""
    m = re.fullmatch(r"\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m?)?\s*", text.lower())
    if not m or not (m.group(1) or m.group(2)):
        raise UsageError(f"bad duration {text!r}", hint="write e.g. 45m, 2h or 1h30m")
    minutes = int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
    if minutes < 1:
        raise UsageError("--autostop must be at least 1 minute")
    return minutes


def tpu_type(text: str) -> str:
    """``v5e-8`` -> ``v5litepod-8`` (the Cloud TPU accelerator type)."""
    m = re.fullmatch(r"(?:tpu-)?(v\d+[a-z]*|v5litepod)-(\d+)", text.strip().lower())
    if not m or m.group(1) not in _TPU_PREFIX:
        raise UsageError(f"bad --tpu {text!r}", hint="write GENERATION-SIZE, e.g. --tpu v5e-8 or --tpu v4-8")
    return f"{_TPU_PREFIX[m.group(1)]}-{m.group(2)}"


def region_of(cloud: str, zone: str) -> str:
    """us-east-1a -> us-east-1 (AWS); us-central1-a -> us-central1 (Google Cloud): the cloud's targets say."""
    return targets.of_cloud(cloud)[0].region_of(zone)


def target_for(req: Request) -> targets.Target:
    """The launch target of a request: its cloud, and what it asks for (a TPU or a VM)."""
    return targets.for_offering(req.cloud, OfferingKind.TPU_VM if req.tpu else OfferingKind.VM)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def load_offers(settings: Settings) -> list[Offering]:
    """Offers from PROVISION_OFFERS_FILE when set, else from the shipped catalog."""
    if settings.offers_file:
        try:
            raw = json.loads(settings.offers_file.read_text())
            return [Offering.from_dict(o) for o in raw]
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read offers from {settings.offers_file}: {exc}") from None
    try:
        from provision.catalog import load_offerings
    except ImportError:
        raise ProvisionError(
            "the offer catalog (provision.catalog) is not available",
            hint="pin --instance-type with --region, or point PROVISION_OFFERS_FILE at a JSON list of offers",
        ) from None
    return list(load_offerings())


def matching_offers(req: Request, offers: list[Offering]) -> list[Offering]:
    """Offers that satisfy the request, cheapest first for the requested market."""
    target = target_for(req)
    region = req.region or (target.region_of(req.zone) if req.zone else None)
    out = [o for o in offers if o.cloud == target.cloud and o.kind in target.kinds]
    if req.tpu:
        want = "tpu-" + tpu_type(req.tpu)
        out = [o for o in out if o.instance_type in (want, want.removeprefix("tpu-"))]
    elif req.instance_type:
        out = [o for o in out if o.instance_type == req.instance_type]
    if req.gpu:
        name, count = parse_gpu(req.gpu)
        out = [
            o for o in out if _norm(o.accelerator).startswith(_norm(name)) and o.accelerator_count == count
        ]
    if region:
        out = [o for o in out if o.region == region]

    def price(o: Offering) -> float:
        p = o.price_spot if req.spot else o.price_on_demand
        return p if p is not None else float("inf")

    return sorted(out, key=lambda o: (price(o), o.instance_type))


def make_plan(
    req: Request,
    offers: list[Offering],
    settings: Settings,
    *,
    owner: str | None = None,
    now: float | None = None,
    launch_id: str | None = None,
    my_ip: Callable[[], str] | None = None,
) -> Plan:
    """The complete Plan for ``req``: the cheapest matching offer unless an instance type or TPU is
    pinned, with everything a launch needs resolved (nothing is filled in later).

    ``owner``: the store's owner id (None for a dry run, which records nothing and is not launchable).
    ``my_ip``: the caller's public address, asked when no ``--ssh-cidr`` was given (a real launch).
    """
    target = target_for(req)
    if sum(x is not None for x in (req.gpu, req.instance_type, req.tpu)) == 0:
        raise UsageError(
            "say what to launch", hint="pass --gpu A10G:1, --instance-type g5.xlarge or --tpu v5e-8"
        )
    if req.tpu and (req.gpu or req.instance_type):
        raise UsageError("--tpu cannot be combined with --gpu or --instance-type")
    if req.wait not in ("ssh", "running"):
        raise UsageError(f"bad --wait {req.wait!r}", hint="choose --wait ssh or --wait running")
    if not 10 <= req.disk_gb <= 16384:
        raise UsageError(f"bad --disk {req.disk_gb}", hint="give the boot disk size in GB, 10-16384")
    _check_nodes(req, target)
    if req.ssh_cidr is not None:
        cidr: str | None = ssh_cidr(req.ssh_cidr, req.allow_ssh_from_anywhere)
    elif owner is not None and my_ip is not None:
        cidr = f"{my_ip()}/32"  # a real launch: the caller's address, looked up while planning
    else:
        cidr = None
    now = time.time() if now is None else now
    launch_id = launch_id or uuid.uuid4().hex[:12]
    found = matching_offers(req, offers)
    offer = found[0] if found else None
    estimate_from = None
    if offer is None and (req.region or req.zone):
        # a region the catalog doesn't price (it lists one region per type): the same shape elsewhere is
        # the estimate; the cloud itself says whether the type exists there
        elsewhere = matching_offers(
            Request(
                cloud=req.cloud, gpu=req.gpu, instance_type=req.instance_type, tpu=req.tpu, spot=req.spot
            ),
            offers,
        )
        if elsewhere:
            offer, estimate_from = elsewhere[0], elsewhere[0].region
    if offer is None and not ((req.instance_type or req.tpu) and (req.region or req.zone)):
        what = req.gpu or req.instance_type or req.tpu
        where = f" in {req.region or req.zone}" if (req.region or req.zone) else ""
        raise UsageError(
            f"no {req.cloud} offer for {what}{where}{' as spot' if req.spot else ''} in the catalog",
            hint="`provision gpus` lists what the catalog knows; a pinned --instance-type with --region "
            "launches without a catalog price",
        )
    if offer is not None and req.spot and offer.price_spot is None:
        raise UsageError(f"{offer.instance_type} has no spot price in the catalog", hint="drop --spot")
    kind = OfferingKind.TPU_VM if req.tpu else OfferingKind.VM
    instance_type = offer.instance_type if offer else (req.instance_type or f"tpu-{tpu_type(req.tpu or '')}")
    if req.tpu:
        instance_type = instance_type.removeprefix("tpu-")
    if req.zone:
        region = target.region_of(req.zone)
    elif req.region:
        region = req.region
    else:
        region = offer.region if offer else ""
    fallback = target.default_regions(settings)
    regions = [region] + ([r for r in fallback if r != region] if not (req.region or req.zone) else [])
    setup_script = None
    if req.setup_path:
        from envcheck.userfiles import ReadFailed, read_bytes

        try:  # bounded: /dev/zero or a huge file by mistake is an error, not an out-of-memory kill
            setup_script = read_bytes(req.setup_path, limit=1 << 20).decode(errors="replace")
        except ReadFailed as exc:
            raise UsageError(f"--setup: {exc}") from None
        if "MLRIG_SETUP_EOF" in setup_script:
            raise UsageError("the --setup script may not contain the line MLRIG_SETUP_EOF")
    accel = offer.accelerator if offer else (parse_gpu(req.gpu)[0] if req.gpu else (req.tpu or "?"))
    count = offer.accelerator_count if offer else (parse_gpu(req.gpu)[1] if req.gpu else 1)
    name = check_name(req.name or f"{_norm(accel)[:12] or 'gpu'}-{launch_id[:4]}")
    price = None if offer is None else (offer.price_spot if req.spot else offer.price_on_demand)
    tpu_runtime = None
    if req.tpu:
        tpu_runtime = req.image or TPU_RUNTIMES[instance_type.rsplit("-", 1)[0]]
    notes = []
    if offer is None:
        notes.append(f"{instance_type} is not in the catalog: price unknown")
    if estimate_from:
        notes.append(f"price estimated from the catalog's {estimate_from} row; {region} may differ")
    if len(regions) > 1:
        notes.append(f"if {region} has no capacity: {', '.join(regions[1:])} (prices there may differ)")
    if cidr is not None and ipaddress.ip_network(cidr).prefixlen < MIN_SSH_PREFIX:
        notes.append(f"WARNING: SSH will be open to {cidr}, practically the whole internet")
    network = _cluster_network(target, instance_type, req.nodes)
    if network:
        notes.append(network)
    plan = Plan(
        name=name,
        launch_id=launch_id,
        cloud=target.cloud,
        target=target.id.value,
        kind=kind.value,
        instance_type=instance_type,
        accelerator=accel,
        accelerator_count=count,
        region=region,
        spot=req.spot,
        disk_gb=req.disk_gb,
        owner=owner,
        created_at=now,
        regions=tuple(regions),
        zone=req.zone,
        image=None if req.tpu else req.image,
        autostop_minutes=parse_minutes(req.autostop) if req.autostop else None,
        setup_script=setup_script,
        setup_path=str(req.setup_path) if req.setup_path else None,
        setup_sha256=setup_fingerprint(setup_script),
        wait=req.wait,
        ssh_cidr=cidr,
        key_name=req.key_name,
        key_path=None if req.key_name else str(settings.key_dir / f"{name}-{launch_id}"),
        price_per_hour=price,
        price_on_demand=offer.price_on_demand if offer else None,
        price_source=offer.source if offer else None,
        price_as_of=offer.as_of if offer else None,
        on_demand_fallback=req.on_demand_fallback,
        tpu_runtime=tpu_runtime,
        vcpus=offer.vcpus if offer else None,
        nodes=req.nodes,
        engine=_engine(req),
        dry_run=owner is None,
        notes=tuple(notes),
    )
    return plan


def _check_nodes(req: Request, target: targets.Target) -> None:
    if not 1 <= req.nodes <= MAX_NODES:
        raise UsageError(f"bad --nodes {req.nodes}", hint=f"give 1-{MAX_NODES} machines")
    if req.nodes > 1:
        feat = target.supports(targets.Capability.NODES)
        if not feat.supported:
            raise UsageError(f"--nodes {req.nodes}: {feat.why_not}", hint="launch one machine (no --nodes)")


def _cluster_network(target: targets.Target, instance_type: str, nodes: int) -> str | None:
    """What carries the traffic between a cluster's nodes, said before anything is paid for.

    The driver attaches one EFA interface, on network card 0: more would need one interface per card,
    and EC2 gives no public address to a machine launched with several (an Elastic IP per node
    would). On a type with many cards that is a fraction of its network, and the plan says so."""
    if nodes < 2 or not target.supports(targets.Capability.EFA).supported:
        return None
    from provision.cluster import capabilities

    efa = capabilities.efa(instance_type)
    if efa.supported is None:
        return f"EFA: {efa.reason}; without it NCCL between the nodes runs over TCP"
    if not efa.supported:
        return f"no EFA on {instance_type}: NCCL between the nodes runs over TCP"
    if efa.count > 1:
        row = capabilities.lookup(instance_type)
        as_of = f" (EC2's figure as of {row.as_of.isoformat()})" if row else ""
        return (
            f"EFA on network card 0 only: {instance_type} takes {efa.count} EFA interfaces{as_of} and "
            f"mlrig attaches one, so NCCL between the nodes gets about 1/{efa.count} of its network"
        )
    return f"EFA: the one interface {instance_type} takes, on every node"


def _engine(req: Request) -> str:
    from provision.cluster.nodes import Engine

    try:
        engine = Engine(req.engine)
    except ValueError:
        choices = ", ".join(e.value for e in Engine)
        raise UsageError(f"bad --engine {req.engine!r}", hint=f"choose one of: {choices}") from None
    if engine is not Engine.NONE and req.nodes < 2:
        raise UsageError(f"--engine {engine.value} needs a cluster", hint="add --nodes 2 (or more)")
    return engine.value


def placements(plan: Plan, zones_of: Callable[[str], list[str]]) -> Iterator[Placement]:
    """Where to try, in order: each zone of each region; then, for spot, the same on-demand.

    ``zones_of`` is asked lazily, so regions after the first are only listed when needed.
    """
    markets = [True, False] if plan.spot and plan.on_demand_fallback else [plan.spot]
    for spot in markets:
        for region in plan.regions:
            zones = [plan.zone] if plan.zone else zones_of(region)
            for zone in zones:
                yield Placement(region=region, zone=zone, spot=spot)
