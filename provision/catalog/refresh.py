"""``provision catalog refresh``: rebuild offerings from public catalogs or the clouds' price APIs.

Only ever run on request. Fetching is in the adapters (``_gpuhunt``, ``_aws_pricing``,
``_gcp_billing``); everything here is pure parsing of their documents, so tests feed recorded responses.

- gpuhunt (default, no account): dstack's published catalogs for AWS, GCP, Azure, Lambda and RunPod;
  on-demand and spot rows per region (GCP zones fold into regions), one mlrig row per shape and region.

- AWS: Pricing API ``GetProducts`` (EC2, GPU instances, Linux, shared tenancy). The API has no spot
  prices, so refreshed AWS rows carry on-demand only.
- GCP: Cloud Billing Catalog SKUs. A GPU VM's price is its host machine type (per-vCPU and
  per-GiB SKUs of its series) plus the attached GPUs (per-GPU SKUs); host shapes come from the
  shipped catalog. TPU rows are carried over unchanged with their own source and date.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from envcheck.knowledge import gpus
from provision.catalog import _files
from provision.catalog._integrity import problems
from provision.errors import ProvisionError, UsageError
from provision.models import Offering, OfferingKind

COLUMNS = [
    "cloud",
    "instance_type",
    "accelerator",
    "accelerator_count",
    "accelerator_memory_gb",
    "vcpus",
    "ram_gb",
    "region",
    "price_on_demand",
    "price_spot",
    "kind",
    "source",
    "as_of",
]

#: EC2 family -> (canonical accelerator, GB per accelerator); GpuInfo is not in the Pricing API
AWS_FAMILIES: dict[str, tuple[str, float]] = {
    "g4dn": ("T4", 16),
    "g5": ("A10G", 24),
    "g6": ("L4", 24),
    "g6e": ("L40S", 48),
    "p3": ("V100", 16),
    "p3dn": ("V100 32GB", 32),
    "p4d": ("A100", 40),
    "p4de": ("A100 80GB", 80),
    "p5": ("H100", 80),
    "p5e": ("H200", 141),
    "p5en": ("H200", 141),
}

#: GCP GPU SKU description -> canonical accelerator (order matters: most specific first)
GCP_GPUS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bA100 80GB\b", re.I), "A100 80GB"),
    (re.compile(r"\bA100\b", re.I), "A100"),
    (re.compile(r"\bH100 80GB\b(?! (?:Mega|Plus))", re.I), "H100"),
    (re.compile(r"\bL4\b", re.I), "L4"),
    (re.compile(r"\bT4\b", re.I), "T4"),
    (re.compile(r"\bV100\b", re.I), "V100"),
]
_GCP_SKIP = re.compile(
    r"commit|reserv|dws|calendar|flex|sole tenancy|custom|extended|premium|virtual workstation", re.I
)
_GCP_HOST = re.compile(
    r"^(?:spot preemptible |preemptible )?(?P<series>[a-z]\d)(?: predefined)? instance (?P<what>core|ram)",
    re.I,
)


@dataclass
class RefreshResult:
    """What a refresh wrote."""

    cloud: str
    path: Path
    rows: int
    as_of: str
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """For --json."""
        return {
            "cloud": self.cloud,
            "path": str(self.path),
            "rows": self.rows,
            "as_of": self.as_of,
            "skipped": self.skipped,
        }


# ----------------------------------------------------------------------------- AWS


def _num(text: str) -> float | None:
    m = re.match(r"\s*([\d.]+)", text or "")
    return float(m.group(1)) if m else None


def parse_aws(price_list: Iterable[str], region: str) -> tuple[list[Offering], list[str]]:
    """``PriceList`` documents -> on-demand offerings of known GPU families, and what was skipped."""
    offers: dict[str, Offering] = {}
    skipped: set[str] = set()
    for raw in price_list:
        doc = json.loads(raw) if isinstance(raw, str) else raw
        attrs = doc.get("product", {}).get("attributes", {})
        itype = attrs.get("instanceType", "")
        if attrs.get("regionCode", region) != region or "." not in itype:
            continue
        family = itype.split(".")[0]
        if family not in AWS_FAMILIES:
            skipped.add(f"{itype} (GPU model of family {family} unknown)")
            continue
        price = _on_demand_hourly(doc.get("terms", {}))
        if price is None:
            skipped.add(f"{itype} (no hourly on-demand price)")
            continue
        accel, mem = AWS_FAMILIES[family]
        count = int(_num(attrs.get("gpu", "")) or 0)
        if count < 1:
            skipped.add(f"{itype} (no GPU count)")
            continue
        published = str(doc.get("publicationDate", ""))[:10] or dt.date.today().isoformat()
        vcpu = _num(attrs.get("vcpu", ""))
        try:
            offers[itype] = Offering(
                cloud="aws",
                instance_type=itype,
                accelerator=accel,
                accelerator_count=count,
                accelerator_memory_gb=mem,
                vcpus=int(vcpu) if vcpu else None,
                ram_gb=_num(attrs.get("memory", "")),
                region=region,
                price_on_demand=price,
                price_spot=None,
                kind="vm",
                source=f"AWS Pricing API GetProducts AmazonEC2 {region}, Linux shared on-demand "
                f"(sku {doc.get('product', {}).get('sku', '?')}, version {doc.get('version', '?')}); "
                "no spot in this API",
                as_of=published,
            )
        except ValueError as exc:  # an infinite price in the price list
            skipped.add(f"{itype} (unusable row: {exc})")
    return sorted(
        offers.values(), key=lambda o: (o.accelerator, o.accelerator_count, o.instance_type)
    ), sorted(skipped)


def _on_demand_hourly(terms: dict[str, Any]) -> float | None:
    for term in terms.get("OnDemand", {}).values():
        for dim in term.get("priceDimensions", {}).values():
            if dim.get("unit") == "Hrs":
                usd = float(dim.get("pricePerUnit", {}).get("USD", "0") or 0)
                if usd > 0:
                    return usd
    return None


# ----------------------------------------------------------------------------- GCP


def _unit_price(sku: dict[str, Any]) -> tuple[float, str] | None:
    infos = sku.get("pricingInfo") or []
    if not infos:
        return None
    expr = infos[-1].get("pricingExpression", {})
    rates = expr.get("tieredRates") or []
    if not rates:
        return None
    price = rates[-1].get("unitPrice", {})
    value = float(price.get("units") or 0) + float(price.get("nanos") or 0) / 1e9
    return value, str(infos[-1].get("effectiveTime", ""))[:10]


def gcp_prices(skus: Iterable[dict[str, Any]], region: str) -> dict[tuple[str, str, str], tuple[float, str]]:
    """SKUs -> {(kind, name, market): ($/unit-hour, effective date)} for ``region``.

    kind is "gpu" (name = canonical accelerator), "core" or "ram" (name = machine series such as
    "a2"); market is "ondemand" or "spot".
    """
    out: dict[tuple[str, str, str], tuple[float, str]] = {}
    for sku in skus:
        cat = sku.get("category", {})
        if cat.get("resourceFamily") != "Compute" or region not in (sku.get("serviceRegions") or []):
            continue
        usage = cat.get("usageType", "")
        if usage not in {"OnDemand", "Preemptible"}:
            continue
        desc = sku.get("description", "")
        if _GCP_SKIP.search(desc):
            continue
        price = _unit_price(sku)
        if price is None or price[0] <= 0:
            continue
        market = "spot" if usage == "Preemptible" else "ondemand"
        if cat.get("resourceGroup") == "GPU":
            name = next((acc for rx, acc in GCP_GPUS if rx.search(desc)), None)
            if name:
                out.setdefault(("gpu", name, market), price)
            continue
        m = _GCP_HOST.match(desc)
        if m:
            out.setdefault((m.group("what").lower(), m.group("series").lower(), market), price)
    return out


def parse_gcp(
    skus: Iterable[dict[str, Any]], shapes: Iterable[Offering], region: str
) -> tuple[list[Offering], list[str]]:
    """Price every shipped GCP VM shape (host + GPUs) from SKUs; TPU rows pass through unchanged."""
    prices = gcp_prices(skus, region)
    out: list[Offering] = []
    skipped: list[str] = []
    seen: set[tuple[str, str, int]] = set()
    for shape in shapes:
        if shape.kind != "vm":
            out.append(shape)
            continue
        key = (shape.instance_type, shape.accelerator, shape.accelerator_count)
        if key in seen:  # the same shape listed for another region: priced once, for ``region``
            continue
        seen.add(key)
        series = shape.instance_type.split("-")[0].lower()
        vcpus, ram = shape.vcpus or 0, shape.ram_gb or 0.0
        totals: dict[str, float | None] = {}
        dates: list[str] = []
        for market in ("ondemand", "spot"):
            core = prices.get(("core", series, market))
            mem = prices.get(("ram", series, market))
            gpu = prices.get(("gpu", shape.accelerator, market))
            if core is None or mem is None or gpu is None:
                totals[market] = None
                continue
            totals[market] = round(vcpus * core[0] + ram * mem[0] + shape.accelerator_count * gpu[0], 5)
            dates += [core[1], mem[1], gpu[1]]
        if totals["ondemand"] is None:
            skipped.append(
                f"{shape.instance_type} + {shape.accelerator_count} x {shape.accelerator} "
                f"(no SKU in {region})"
            )
            continue
        spot = totals["spot"] if totals["spot"] is not None and totals["spot"] <= totals["ondemand"] else None
        try:
            priced = replace(
                shape,
                region=region,
                price_on_demand=totals["ondemand"],
                price_spot=spot,
                source=f"Cloud Billing Catalog API ({region}): {series.upper()} core x {vcpus} "
                f"+ RAM x {ram:g} GiB "
                f"+ {shape.accelerator_count} x {shape.accelerator} GPU SKUs",
                as_of=max((d for d in dates if d), default=dt.date.today().isoformat()),
            )
        except ValueError as exc:  # an infinite or zero total from the SKUs
            skipped.append(f"{shape.instance_type} + {shape.accelerator_count} x {shape.accelerator} ({exc})")
            continue
        out.append(priced)
    return out, skipped


# ----------------------------------------------------------------------------- gpuhunt

#: mlrig cloud -> gpuhunt provider
GPUHUNT_PROVIDERS = {"aws": "aws", "gcp": "gcp", "azure": "azure", "lambda": "lambdalabs", "runpod": "runpod"}
#: GCP sells spot at 60-91 % off; a row less than 50 % off is a mis-scraped on-demand price
GCP_MIN_SPOT_DISCOUNT = 0.5
_TPU_CHIPS_PER_CORE = {"v2": 0.5, "v3": 0.5, "v4": 0.5, "v5p": 0.5, "v5litepod": 1.0, "v6e": 1.0}
_TPU_SPEC = {
    "v2": "TPU v2",
    "v3": "TPU v3",
    "v4": "TPU v4",
    "v5p": "TPU v5p",
    "v5litepod": "TPU v5e",
    "v6e": "TPU v6e",
}
_GCP_ZONE = re.compile(r"^([a-z]+-[a-z]+\d+)-[a-z]+\d*$")
_RUNPOD_CONTINENTS = {"EU", "EUR", "AP", "OC", "SEA", "SA", "AF", "ME"}


def _compact(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _spec_index() -> dict[str, gpus.GpuSpec]:
    index: dict[str, gpus.GpuSpec] = {}
    for spec in gpus.all_specs():
        for alias in (spec.name, *spec.aliases):
            index.setdefault(_compact(alias), spec)
    return index


def accelerator_for(
    name: str, memory_gb: float | None, index: dict[str, gpus.GpuSpec]
) -> gpus.GpuSpec | None:
    """The GPU spec a provider's GPU name means ("A100" + 80 GB -> "A100 80GB", "RTXA6000" -> "RTX A6000")."""
    key = _compact(name)
    if key.startswith("rtxa") and key[4:].isdigit():  # RunPod's RTXA6000
        key = "a" + key[4:]
    candidates = [f"{key}{memory_gb:g}gb"] if memory_gb else []
    for k in [*candidates, key]:
        if k in index:
            return index[k]
    return None


def _gcp_region(location: str) -> str:
    m = _GCP_ZONE.match(location)
    return m.group(1) if m else location


def _runpod_region(location: str) -> str:
    parts = location.split("-")
    return parts[1] if len(parts) > 2 and parts[0] in _RUNPOD_CONTINENTS else parts[0]


#: how each price feed's provider writes a location, as a catalog region (default: as is)
_REGION_OF_LOCATION: dict[str, Callable[[str], str]] = {"gcp": _gcp_region, "runpod": _runpod_region}
#: providers whose gpuhunt instance names are a GPU type alone (a count and tier make them a shape)
_NAMED_BY_GPU = {"runpod"}
#: providers whose scraped spot prices need the "at least 50 % off" sanity check
_SPOT_CHECKED = {"gcp"}


def _region(cloud: str, location: str) -> str:
    return _REGION_OF_LOCATION.get(cloud, str)(location)


def runpod_instance(gpu_type: str, count: int, location: str) -> str:
    """RunPod pods are a GPU type times a count, in Secure Cloud (listed per data centre, "US-KS-2")
    or Community Cloud (listed per country, "US"); the two are priced apart, so named apart."""
    tier = "SECURE" if "-" in location else "COMMUNITY"
    return f"{count}x {gpu_type} {tier}"


def _tpu(name: str) -> tuple[str, int] | None:
    """gpuhunt TPU name ("v5p-8", "tpu-v6e-4") -> (spec name, chips)."""
    m = re.match(r"^(?:tpu-)?(v\d+[a-z]*)-(\d+)$", name)
    if not m or m.group(1) not in _TPU_SPEC:
        return None
    return _TPU_SPEC[m.group(1)], max(1, int(int(m.group(2)) * _TPU_CHIPS_PER_CORE[m.group(1)]))


def version_date(version: str, fetched: dt.date) -> str:
    """A gpuhunt catalog version as an ``as_of`` date: "20261207..." -> "2026-12-07", else the fetch day."""
    m = re.match(r"^(\d{4})(\d{2})(\d{2})", version)
    if m:
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
        except ValueError:
            pass
    return fetched.isoformat()


def parse_gpuhunt(
    cloud: str, version: str, items: Iterable[dict[str, Any]], *, url: str, fetched: dt.date
) -> tuple[list[Offering], list[str]]:
    """gpuhunt offers (plain dicts) -> one Offering per shape and region, on-demand and spot merged."""
    index = _spec_index()
    skipped: set[str] = set()
    groups: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    for item in items:
        count = int(item.get("gpu_count") or 0)
        name = str(item.get("gpu_name") or "")
        instance = str(item.get("instance_name") or "")
        if count < 1 or not name:
            continue
        kind = "vm"
        if str(item.get("gpu_vendor") or "").lower() == "google" or name.startswith(
            ("v2-", "v3-", "v4-", "v5", "v6e", "tpu-")
        ):
            tpu = _tpu(name)
            if tpu is None:
                skipped.add(f"{instance} (TPU {name} unknown)")
                continue
            accel, count, kind = tpu[0], tpu[1], OfferingKind.TPU_VM.value
            instance = instance if instance.startswith("tpu-") else f"tpu-{instance}"
            spec = gpus.lookup(accel)
            memory = spec.memory_gb if spec else None
        else:
            memory = float(item["gpu_memory"]) if item.get("gpu_memory") else None
            spec = accelerator_for(name, memory, index)
            if spec is None:
                skipped.add(f"{instance} ({name} not in envcheck's GPU specs)")
                continue
            accel = spec.name
        location = str(item.get("location") or "")
        region = _region(cloud, location)
        if cloud in _NAMED_BY_GPU:
            instance = runpod_instance(instance, count, location)
        price = float(item.get("price") or 0)
        if not region or not price > 0:
            continue
        key = (instance, accel, count, region)
        g = groups.setdefault(
            key,
            {
                "od": None,
                "spot": None,
                "memory": memory,
                "vcpus": item.get("cpu"),
                "ram": item.get("memory"),
                "kind": kind,
            },
        )
        market = "spot" if item.get("spot") in (True, "True", "true") else "od"
        g[market] = price if g[market] is None else min(g[market], price)
    as_of = version_date(version, fetched)
    provider = GPUHUNT_PROVIDERS.get(cloud, cloud)
    source = f"gpuhunt catalog {provider} version {version} ({url}), fetched {fetched.isoformat()}"
    offers: list[Offering] = []
    for (instance, accel, count, region), g in sorted(groups.items()):
        od, spot = g["od"], g["spot"]
        if od is not None and spot is not None and spot >= od:
            spot = None  # no real discount: not a spot market
        if cloud in _SPOT_CHECKED and not gcp_spot_sane(od, spot):
            skipped.add(
                f"{instance} {region} (spot {spot:g} is less than 50% below on-demand {od:g}: mis-scraped)"
            )
            continue
        if od is None and spot is None:
            continue
        try:
            offer = Offering(
                cloud=cloud,
                instance_type=instance,
                accelerator=accel,
                accelerator_count=count,
                accelerator_memory_gb=g["memory"],
                vcpus=int(g["vcpus"]) if g["vcpus"] else None,
                ram_gb=round(float(g["ram"]), 1) if g["ram"] else None,
                region=region,
                price_on_demand=od,
                price_spot=spot,
                kind=g["kind"],
                source=source,
                as_of=as_of,
            )
        except (ValueError, OverflowError) as exc:  # NaN or infinite figures in the feed
            skipped.add(f"{instance} {region} (unusable row: {exc})")
            continue
        offers.append(offer)
    return offers, sorted(skipped)


def gcp_spot_sane(od: float | None, spot: float | None) -> bool:
    """False when a GCP row's spot price is under 50 % off its on-demand price (a mis-scraped row)."""
    return od is None or spot is None or spot <= (1 - GCP_MIN_SPOT_DISCOUNT) * od


# ----------------------------------------------------------------------------- writing


def to_csv(offers: Iterable[Offering], header: str) -> str:
    """Offerings as a catalog CSV with a ``#`` header comment."""
    buf = io.StringIO()
    buf.write(f"# {header}\n")
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for o in offers:
        row = o.to_dict()
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS})
    return buf.getvalue()


def write(cloud: str, offers: list[Offering], output: Path | None, header: str) -> Path:
    """Integrity-check and write atomically; returns the path."""
    if not offers:
        raise ProvisionError(f"the {cloud} price source returned no usable GPU offerings; catalog unchanged")
    bad = problems(offers)
    if bad:
        raise ProvisionError(f"refreshed {cloud} rows fail integrity: {bad[0]}; catalog unchanged")
    path = output or _files.user_dir() / f"offerings_{cloud}.csv"
    target = path.resolve() if path.is_symlink() else path  # write through a symlink, keep the link
    if target.exists() and not target.is_file():
        raise UsageError(f"cannot write {path}: it exists and is not a regular file")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(to_csv(offers, header), encoding="utf-8")
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def _aws_api(cloud: str, region: str | None) -> tuple[list[Offering], list[str], str]:
    from provision.catalog import _aws_pricing

    region = region or "us-east-1"
    offers, skipped = parse_aws(_aws_pricing.fetch_gpu_products(region), region)
    return offers, skipped, region


def _gcp_api(cloud: str, region: str | None) -> tuple[list[Offering], list[str], str]:
    from provision.catalog import _gcp_billing, load_offerings

    region = region or "us-central1"
    # the SKU feed prices shapes the catalog already knows for this cloud
    shapes = [o for o in load_offerings() if o.cloud == cloud and o.region == region]
    if not shapes:
        shapes = _unique_shapes(o for o in load_offerings() if o.cloud == cloud)
    offers, skipped = parse_gcp(_gcp_billing.fetch_compute_skus(), shapes, region)
    return offers, skipped, region


#: the clouds' own credentialed price APIs mlrig reads, by cloud
PRICE_APIS: dict[str, Callable[[str, str | None], tuple[list[Offering], list[str], str]]] = {
    "aws": _aws_api,
    "gcp": _gcp_api,
}


def api_clouds() -> list[str]:
    """Clouds ``catalog refresh`` can read from their own price API: launch targets' clouds that have one."""
    from provision import targets

    return [c for c in targets.clouds() if c in PRICE_APIS]


def refresh(cloud: str, *, region: str | None = None, output: Path | None = None) -> RefreshResult:
    """Fetch, parse, check and write one cloud's offerings from its credentialed price API."""
    from provision.catalog import reset_cache

    if cloud not in api_clouds():
        raise UsageError(
            f"cannot refresh {cloud!r} from a price API: "
            f"only {' and '.join(api_clouds())} have one mlrig reads"
        )
    offers, skipped, region = PRICE_APIS[cloud](cloud, region)
    today = dt.date.today().isoformat()
    path = write(
        cloud, offers, output, f"{cloud} offerings rebuilt by `provision catalog refresh`; fetched {_stamp()}"
    )
    reset_cache()
    fresh = [o.as_of for o in offers if o.kind == OfferingKind.VM]  # GCP TPU rows are carried over unchanged
    as_of = max(fresh, key=lambda a: _files.as_of_date(a) or dt.date.min, default=today)
    return RefreshResult(cloud, path, len(offers), as_of, skipped)


def _unique_shapes(offers: Iterable[Offering]) -> list[Offering]:
    seen: dict[tuple[str, str, int], Offering] = {}
    for o in offers:
        seen.setdefault((o.instance_type, o.accelerator, o.accelerator_count), o)
    return list(seen.values())


def refresh_gpuhunt(clouds: Iterable[str], *, output_dir: Path | None = None) -> list[RefreshResult]:
    """Fetch gpuhunt's published catalogs for ``clouds`` and write one offerings file per cloud."""
    from provision.catalog import _gpuhunt, reset_cache

    wanted = list(dict.fromkeys(clouds))
    unknown = [c for c in wanted if c not in GPUHUNT_PROVIDERS]
    if unknown:
        raise UsageError(
            f"gpuhunt has no catalog for {unknown[0]!r}", hint=f"clouds: {', '.join(GPUHUNT_PROVIDERS)}"
        )
    by_provider = {GPUHUNT_PROVIDERS[c]: c for c in wanted}
    catalogs, errors = _gpuhunt.fetch(list(by_provider))
    fetched = dt.date.today()
    stamp = _stamp()
    results: list[RefreshResult] = []
    for cat in catalogs:
        cloud = by_provider[cat.provider]
        offers, skipped = parse_gpuhunt(
            cloud, cat.version, cat.items, url=_gpuhunt.base_url(), fetched=fetched
        )
        out = output_dir / f"offerings_{cloud}.csv" if output_dir else None
        header = (
            f"{cloud} offerings from the gpuhunt catalog ({_gpuhunt.base_url()}, provider {cat.provider}, "
            f"version {cat.version}); fetched {stamp} by `provision catalog refresh`"
        )
        path = write(cloud, offers, out, header)
        as_of = max((o.as_of for o in offers), default=fetched.isoformat())
        results.append(RefreshResult(cloud, path, len(offers), as_of, skipped))
    reset_cache()
    for cloud in wanted:
        if cloud not in {r.cloud for r in results}:
            why = next((e for e in errors if GPUHUNT_PROVIDERS[cloud] in e), "not published")
            results.append(RefreshResult(cloud, Path(), 0, "", [f"not refreshed: {why}"]))
    return results
