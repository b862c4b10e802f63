"""The only module that imports gpuhunt: dstack's published offline price catalogs, no account needed.

gpuhunt (PyPI, MPL-2.0) publishes one catalog per provider, rebuilt continuously by dstack's CI, as
``{base}/{provider}/version`` and ``{base}/{provider}/{version}/catalog.zip`` holding
``{provider}.csv``; ``gpuhunt.Catalog.load()`` downloads them. This module returns the offers as
plain dicts; mapping them onto mlrig's catalog is pure and lives in ``provision.catalog.refresh``.

gpuhunt fetches with urllib and no timeout of its own, so the download runs under a socket default
timeout; its per-provider failures are logged, not raised, so they are collected here and reported.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from provision.errors import MissingDependencyError, ProvisionError

#: where gpuhunt's catalogs are published (its CATALOG_URL); override for mirrors and tests
DEFAULT_URL = "https://dstack-gpu-pricing.s3.eu-west-1.amazonaws.com/v3"
URL_ENV = "PROVISION_GPUHUNT_CATALOG_URL"
TIMEOUT_S = 30.0


def base_url() -> str:
    """The catalog location in use."""
    return (os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


@dataclass(frozen=True)
class ProviderCatalog:
    """One provider's offers as gpuhunt published them."""

    provider: str
    version: str
    items: list[dict[str, Any]]


class _Collect(logging.Handler):
    """Keeps gpuhunt's per-provider failures instead of letting logging print tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        cause = record.exc_info[1] if record.exc_info else None
        self.errors.append(f"{record.getMessage()}: {cause}" if cause else record.getMessage())


@contextmanager
def _quiet_and_bounded() -> Iterator[_Collect]:
    log = logging.getLogger("gpuhunt")
    handler = _Collect()
    saved = (log.propagate, log.level, socket.getdefaulttimeout(), os.environ.get("GPUHUNT_CATALOG_URL"))
    log.addHandler(handler)
    log.propagate = False
    socket.setdefaulttimeout(TIMEOUT_S)
    os.environ["GPUHUNT_CATALOG_URL"] = base_url()
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.propagate = saved[0]
        socket.setdefaulttimeout(saved[2])
        if saved[3] is None:
            os.environ.pop("GPUHUNT_CATALOG_URL", None)
        else:
            os.environ["GPUHUNT_CATALOG_URL"] = saved[3]


def fetch(providers: Sequence[str]) -> tuple[list[ProviderCatalog], list[str]]:
    """The published catalogs of ``providers`` (gpuhunt names) and what failed; raises when none loaded."""
    try:
        import gpuhunt
    except ImportError as exc:
        raise MissingDependencyError(
            "refreshing prices from the public gpuhunt catalog needs gpuhunt",
            hint="pip install 'mlrig[prices]'",
        ) from exc
    catalog = gpuhunt.Catalog(balance_resources=False, auto_reload=False)
    with _quiet_and_bounded() as failures:
        try:
            catalog.load()
        except gpuhunt.GPUHuntError as exc:
            reason = exc.__cause__ or exc
            raise ProvisionError(
                f"cannot reach the gpuhunt price catalog at {base_url()}: {reason}",
                hint="no network route to it from here; the shipped prices stay in use. Run the refresh "
                f"where it is reachable, point {URL_ENV} at a mirror, or use the credentialed APIs: "
                "provision catalog refresh --source aws-api|gcp-api",
            ) from exc
        loaded = getattr(catalog, "catalog", {})
        out = []
        for name in providers:
            entry = loaded.get(name)
            if entry is None:
                continue
            items = catalog.query(provider=name)
            out.append(ProviderCatalog(name, str(entry.version), [_plain(i) for i in items]))
    missing = [p for p in providers if p not in {c.provider for c in out}]
    errors = [e for e in failures.errors if any(p in e for p in missing)] or (
        [f"{p}: not published at {base_url()}" for p in missing]
    )
    if not out:
        raise ProvisionError(
            f"the gpuhunt catalog at {base_url()} has none of {', '.join(providers)}: {'; '.join(errors)}",
            hint="the shipped prices stay in use",
        )
    return out, errors


def _plain(item: Any) -> dict[str, Any]:
    """A gpuhunt CatalogItem as a plain dict with enum values as strings."""
    row = dataclasses.asdict(item)
    for key in ("gpu_vendor", "cpu_arch"):
        value = row.get(key)
        row[key] = getattr(value, "value", value)
    return row
