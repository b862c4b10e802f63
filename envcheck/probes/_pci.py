"""Read PCI devices from sysfs: the first layer of "why can't I see my accelerator"."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from envcheck.models import PciDevice

if TYPE_CHECKING:
    from envcheck.probes import ProbeContext

NVIDIA_VENDOR = "0x10de"
GOOGLE_VENDOR = "0x1ae0"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def list_pci_devices(ctx: ProbeContext, vendor_id: str) -> list[PciDevice]:
    """Devices under /sys/bus/pci/devices whose vendor is ``vendor_id`` (e.g. "0x10de").

    Raises OSError only when the PCI directory itself cannot be listed (no sysfs); a single
    unreadable device is skipped.
    """
    base = ctx.path("/sys/bus/pci/devices")
    found: list[PciDevice] = []
    for dev in sorted(base.iterdir()):
        vendor = _read(dev / "vendor")
        if vendor is None or vendor.lower() != vendor_id:
            continue
        try:  # the "driver" symlink's target names the bound kernel driver; absent when unbound
            driver: str | None = os.path.basename(os.readlink(dev / "driver"))
        except OSError:
            driver = None
        found.append(
            PciDevice(
                address=dev.name,
                vendor_id=vendor.lower(),
                device_id=(_read(dev / "device") or "").lower(),
                class_id=_read(dev / "class"),
                driver=driver,
            )
        )
    return found
