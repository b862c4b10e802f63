"""Cloud TPU VMs: the device held by another process, a stale libtpu lock file, JAX without
libtpu (diagnostics-anchors b15)."""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.models import Finding, Severity, Snapshot
from envcheck.rules._base import MissingFacts, need, rule

E, W = Severity.ERROR, Severity.WARNING


def _tpu_present(s: Snapshot) -> bool | None:
    tpu = s.tpu
    if tpu is None:
        return None
    if tpu.pci_devices or tpu.accel_nodes or tpu.vfio_nodes:
        return True
    if tpu.pci_devices is None and tpu.accel_nodes is None:
        return None
    return False


@rule(
    "tpu-busy",
    "another process holds the TPU, so a new JAX/PyTorch-XLA process falls back to CPU or fails",
    W,
)
def tpu_busy(s: Snapshot) -> Iterator[Finding]:
    present = need(_tpu_present(s), "TPU devices")
    if not present:
        return
    tpu = need(s.tpu, "TPU facts")
    holders = tpu.holders
    if holders is None:
        raise MissingFacts("processes holding the TPU unknown")
    if not holders:
        return
    who = ", ".join(f"{h.pid} ({h.command or '?'})" for h in holders)
    yield Finding(
        id="tpu-busy",
        severity=W,
        summary=f"the TPU is held by PID {who}",
        facts={"holders": [h.model_dump(exclude_none=True) for h in holders]},
        fix="Stop that process (or restart the notebook kernel holding it) before starting another TPU job.",
        commands=[f"kill {' '.join(str(h.pid) for h in holders)}"],
    )


@rule(
    "tpu-stale-lock",
    "a libtpu lock file remains although no process holds the TPU, blocking the next start",
    W,
)
def tpu_stale_lock(s: Snapshot) -> Iterator[Finding]:
    tpu = need(s.tpu, "TPU facts")
    if not tpu.lockfile:
        return
    holders = need(tpu.holders, "processes holding the TPU")
    if holders:
        return
    if tpu.holders_complete is False:
        raise MissingFacts("not every process's open files were readable (run as root to decide)")
    yield Finding(
        id="tpu-stale-lock",
        severity=W,
        summary=f"stale {tpu.lockfile}: no process holds the TPU",
        facts={"lockfile": tpu.lockfile, "holders": []},
        fix="Remove the lock file; nothing holds the device.",
        commands=[f"rm -f {tpu.lockfile}"],
    )


@rule("tpu-no-libtpu", "a TPU is attached but JAX has no libtpu, so it runs on CPU", E)
def tpu_no_libtpu(s: Snapshot) -> Iterator[Finding]:
    present = need(_tpu_present(s), "TPU devices")
    if not present:
        return
    jax = s.framework("jax")
    if jax is None:
        if s.frameworks is None:
            raise MissingFacts("installed frameworks unknown")
        return
    tpu = need(s.tpu, "TPU facts")
    if tpu.libtpu_version or any(n.startswith("libtpu") for n in jax.plugins):
        return
    yield Finding(
        id="tpu-no-libtpu",
        severity=E,
        summary=f"TPU {tpu.generation or ''} attached but jax {jax.version or ''} has no libtpu",
        facts={"generation": tpu.generation, "jax": jax.version, "plugins": jax.plugins},
        fix="Install JAX's TPU extra, which brings the matching libtpu.",
        commands=['pip install -U "jax[tpu]"'],
        subject="jax",
    )
