"""Cloud TPU: the chips on the PCI bus, their device nodes, libtpu, and who is holding them.

The classic TPU failure is a second process that cannot open a chip another one holds (JAX then
quietly falls back to CPU), or a stale /tmp/libtpu_lockfile. So besides what is there, this
probe names the processes that have the nodes open, by scanning /proc/*/fd (what ``lsof`` does).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from envcheck.models import PciDevice, TpuHolder, TpuInfo
from envcheck.probes._dist import installed_version
from envcheck.probes._pci import GOOGLE_VENDOR, list_pci_devices

if TYPE_CHECKING:
    from envcheck.probes import ProbeContext

#: PCI device id (vendor 0x1ae0) -> TPU generation; v2 and v3 share 0x0027 and differ by subsystem id.
#: Sources: AI-Hypercomputer/cloud-accelerator-diagnostics tpu_info/device.py (commit 2cbfaa9d) and
#: jax 0.10.2 jax/_src/hardware_utils.py (0x0056 "no public name"), both read 2026-11-22.
TPU_DEVICE_IDS = {
    "0x0027": "v2/v3",
    "0x0056": "plc",
    "0x005e": "v4",
    "0x0062": "v5p",
    "0x0063": "v5e",
    "0x006f": "v6e",
    "0x0076": "7x",
}
_V2_V3_SUBSYSTEMS = {"0x004e": "v2", "0x004f": "v3"}
#: v5e, v5p, v6e and 7x chips are opened through /dev/vfio/N, older ones through /dev/accelN (tpu_info).
VFIO_GENERATIONS = frozenset({"v5e", "v5p", "v6e", "7x"})
#: TPU_ACCELERATOR_TYPE prefix ("v5litepod-8") -> generation; Cloud TPU accelerator type names.
_TYPE_PREFIXES = {
    "v2": "v2", "v3": "v3", "v4": "v4", "v5litepod": "v5e", "v5e": "v5e", "v5p": "v5p", "v6e": "v6e",
    "tpu7x": "7x",
}  # fmt: skip
#: Google's other PCI functions (the gVNIC NIC 0x0042, NVMe disks) are network / storage class.
_NOT_TPU_CLASSES = ("0x01", "0x02")
LOCKFILE = "/tmp/libtpu_lockfile"
TPU_ENV_NAMES = ("LIBTPU_INIT_ARGS", "ALLOW_MULTIPLE_LIBTPU_LOAD", "PJRT_DEVICE", "JAX_PLATFORMS")


def _is_tpu(dev: PciDevice) -> bool:
    if dev.device_id in TPU_DEVICE_IDS:
        return True
    return dev.class_id is not None and not dev.class_id.lower().startswith(_NOT_TPU_CLASSES)


def _generation_from_type(accelerator_type: str | None) -> str | None:
    if not accelerator_type:
        return None
    head = accelerator_type.strip().lower().split("-", 1)[0]
    return _TYPE_PREFIXES.get(head)


def _generation(ctx: ProbeContext, dev: PciDevice) -> str | None:
    gen = TPU_DEVICE_IDS.get(dev.device_id)
    if gen == "v2/v3":
        try:
            sub = ctx.path(f"/sys/bus/pci/devices/{dev.address}/subsystem_device").read_text().strip().lower()
        except OSError:
            return gen
        return _V2_V3_SUBSYSTEMS.get(sub, gen)
    return gen


def _label(gen: str) -> str:
    return "TPU7x" if gen == "7x" else f"TPU {gen}"


def _nodes(ctx: ProbeContext, directory: str, pattern: str) -> list[str]:
    base = ctx.path(directory)
    try:
        names = [p.name for p in base.iterdir() if re.fullmatch(pattern, p.name)]
    except OSError:
        return []
    key = lambda n: (len(n), n)  # noqa: E731 - accel2 before accel10
    return [f"{directory.rstrip('/')}/{n}" for n in sorted(names, key=key)]


def libtpu_version() -> str | None:
    """Version of the installed libtpu wheel (libtpu, or libtpu-nightly), from its metadata only."""
    for dist in ("libtpu", "libtpu-nightly"):
        found = installed_version(dist)
        if found:
            return found
    return None


def _cmdline(proc_dir: Path) -> str | None:
    try:
        raw = (proc_dir / "cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip() or None


def find_holders(ctx: ProbeContext, targets: list[str]) -> tuple[list[TpuHolder], bool]:
    """(processes with any of ``targets`` open, whether every process's fds could be read).

    Reading another user's /proc/PID/fd needs root; when some cannot be read the list may be
    missing a holder, which the second value says.
    """
    wanted = set(targets)
    holders: list[TpuHolder] = []
    complete = True
    try:
        pids = sorted((p for p in ctx.path("/proc").iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    except OSError:
        return [], False
    for proc_dir in pids:
        try:
            fds = list((proc_dir / "fd").iterdir())
        except FileNotFoundError:  # the process exited meanwhile
            continue
        except OSError:
            complete = False
            continue
        seen: set[str] = set()
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target in wanted and target not in seen:
                seen.add(target)
                holders.append(TpuHolder(pid=int(proc_dir.name), command=_cmdline(proc_dir), device=target))
    return holders, complete


def probe(ctx: ProbeContext) -> TpuInfo:
    """Collect the TPU section; a machine without TPUs gets empty lists, not an error."""
    notes: list[str] = []
    pci: list[PciDevice] | None = None
    generations: list[str] = []
    if os.path.isdir(ctx.path("/sys/bus/pci/devices")):
        try:
            found = [d for d in list_pci_devices(ctx, GOOGLE_VENDOR) if _is_tpu(d)]
        except OSError as exc:
            notes.append(f"cannot list PCI devices: {exc.strerror or exc}")
        else:
            pci = []
            for dev in found:
                gen = _generation(ctx, dev)
                generations += [gen] if gen else []
                pci.append(dev.model_copy(update={"name": _label(gen)}) if gen else dev)
    env = {k: v for k, v in ctx.env.items() if k.startswith("TPU_") or k in TPU_ENV_NAMES}
    generation = generations[0] if generations else None
    if generation in (None, "v2/v3"):
        generation = _generation_from_type(env.get("TPU_ACCELERATOR_TYPE")) or generation
    accel = _nodes(ctx, "/dev", r"accel\d+")
    vfio = _nodes(ctx, "/dev/vfio", r"\d+|vfio")
    lockfile = LOCKFILE if os.path.exists(ctx.path(LOCKFILE)) else None
    holders: list[TpuHolder] | None = None
    complete: bool | None = None
    if pci or accel or lockfile:  # scan /proc only where a TPU can be: it costs ms per process
        targets = accel + [n for n in vfio if not n.endswith("/vfio")] + ([LOCKFILE] if lockfile else [])
        holders, complete = find_holders(ctx, targets)
    return TpuInfo(
        pci_devices=pci,
        generation=generation,
        accel_nodes=accel,
        vfio_nodes=vfio,
        libtpu_version=libtpu_version(),
        env=dict(sorted(env.items())),
        holders=holders,
        holders_complete=complete,
        lockfile=lockfile,
        error="; ".join(notes) or None,
    )
