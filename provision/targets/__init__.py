"""The registry of launch targets: the one place that knows which targets exist.

Planning, ``ls``/``down``/``gc``, the CLI's choices and help and ``catalog refresh`` ask here
instead of comparing cloud names. Importing this package imports no cloud SDK.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from provision.errors import UsageError
from provision.models import OfferingKind
from provision.targets._base import Capability, Target, TargetId

if TYPE_CHECKING:
    from provision.clouds.base import Resource

__all__ = [
    "TARGETS",
    "Capability",
    "Target",
    "TargetId",
    "clouds",
    "for_launch",
    "for_offering",
    "for_resource",
    "get",
    "of_cloud",
]


def _discover() -> list[Target]:
    """The ``TARGET`` of every public module of this package, by module name (the CLI's order):
    adding a target is adding its module, nothing else."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            target = getattr(importlib.import_module(f"{__name__}.{info.name}"), "TARGET", None)
            if isinstance(target, Target):
                found.append(target)
    return found


#: every target, in the order the CLI lists them
TARGETS: dict[TargetId, Target] = {t.id: t for t in _discover()}


def get(target_id: str | TargetId) -> Target:
    try:
        return TARGETS[TargetId(target_id)]
    except KeyError:
        raise UsageError(
            f"unknown launch target {str(target_id)!r}",
            hint=f"choose one of: {', '.join(t.value for t in TARGETS)}",
        ) from None


def clouds() -> tuple[str, ...]:
    """Clouds with at least one launch target, in registry order."""
    return tuple(dict.fromkeys(t.cloud for t in TARGETS.values()))


def of_cloud(cloud: str) -> list[Target]:
    found = [t for t in TARGETS.values() if t.cloud == cloud]
    if not found:
        raise UsageError(f"unknown cloud {cloud!r}", hint=f"choose one of: {', '.join(clouds())}")
    return found


def for_offering(cloud: str, kind: str | OfferingKind) -> Target:
    """The target that launches offerings of ``kind`` on ``cloud``; a usage error names who does."""
    try:
        wanted = OfferingKind(kind)
    except ValueError:
        raise UsageError(f"unknown offering kind {kind!r}") from None
    for target in of_cloud(cloud):
        if wanted in target.kinds:
            return target
    elsewhere = [t for t in TARGETS.values() if wanted in t.kinds]
    what = "TPUs" if wanted is OfferingKind.TPU_VM else f"{wanted.value} offerings"
    clouds_there = list(dict.fromkeys(t.cloud_title for t in elsewhere))
    raise UsageError(
        f"{what} cannot be launched on {cloud}"
        + (f": they exist only on {', '.join(clouds_there)}" if clouds_there else ""),
        hint=f"use {elsewhere[0].example}" if elsewhere else None,
    )


def for_launch(row: Any) -> Target:
    """The target of a stored launch: its recorded target id, else (stores before 0.3) its cloud and kind."""
    recorded = getattr(row, "target", None)
    if recorded:
        return get(recorded)
    return for_offering(row.cloud, row.kind)


def for_resource(res: Resource) -> Target:
    """The target whose driver lists and deletes ``res`` (side resources: the cloud's first target)."""
    candidates = of_cloud(res.cloud)
    return next((t for t in candidates if t.machine_kind == res.kind), candidates[0])
