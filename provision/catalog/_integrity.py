"""Integrity rules every catalog row must pass; used by the loader and by the refresh writer."""

from __future__ import annotations

from collections.abc import Iterable

from envcheck.knowledge import gpus
from provision.models import Offering


def problems(offers: Iterable[Offering]) -> list[str]:
    """Human-readable problems, empty when the offerings are sound.

    Checked: a price exists and is > 0, spot <= on-demand, the accelerator is a canonical name in
    envcheck's GPU specs, count and per-accelerator memory are present, source and as_of are set,
    and no (cloud, instance, accelerator, count, region) appears twice.
    """
    names = {s.name for s in gpus.all_specs()}
    seen: set[tuple[str, str, str, int, str]] = set()
    out: list[str] = []
    for o in offers:
        where = f"{o.cloud} {o.instance_type} ({o.accelerator_count}x {o.accelerator}, {o.region})"
        if o.price_on_demand is None and o.price_spot is None:
            out.append(f"{where}: no price")
        for label, price in (("on-demand", o.price_on_demand), ("spot", o.price_spot)):
            if price is not None and not price > 0:
                out.append(f"{where}: {label} price {price} is not > 0")
        if o.price_on_demand is not None and o.price_spot is not None and o.price_spot > o.price_on_demand:
            out.append(f"{where}: spot {o.price_spot} > on-demand {o.price_on_demand}")
        if o.accelerator not in names:
            out.append(f"{where}: accelerator {o.accelerator!r} is not in envcheck's GPU specs")
        if o.accelerator_count < 1:
            out.append(f"{where}: accelerator count missing")
        if not o.accelerator_memory_gb or o.accelerator_memory_gb <= 0:
            out.append(f"{where}: accelerator memory missing")
        if not o.source.strip() or not o.as_of.strip():
            out.append(f"{where}: source or as_of missing")
        key = (o.cloud, o.instance_type, o.accelerator, o.accelerator_count, o.region)
        if key in seen:
            out.append(f"{where}: duplicate row")
        seen.add(key)
    return out
