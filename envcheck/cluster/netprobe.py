"""The node's links to other nodes, from /sys: RDMA ports (InfiniBand, RoCE, EFA) and Ethernet speeds.

Read on each node so the collective knows what bandwidth to expect. Never raises: a tree that
cannot be read is an ``error`` string in the facts.
"""

from __future__ import annotations

import re
from pathlib import Path

from envcheck.cluster.models import NetFacts

_RATE = re.compile(r"([\d.]+)\s*Gb/sec")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def probe_net(root: Path = Path("/")) -> NetFacts:
    """RDMA ports with their rate (Gb/s) and physical Ethernet interfaces that are up (Mb/s)."""
    facts = NetFacts()
    ib = root / "sys/class/infiniband"
    try:
        for dev in sorted(ib.iterdir()) if ib.is_dir() else []:
            driver = (
                (dev / "device" / "driver").resolve().name if (dev / "device" / "driver").exists() else ""
            )
            if driver == "efa" or dev.name.startswith("efa"):
                facts.efa_devices.append(dev.name)
            ports = dev / "ports"
            for port in sorted(ports.iterdir()) if ports.is_dir() else []:
                state = _read(port / "state") or ""
                m = _RATE.search(_read(port / "rate") or "")
                if m and "DOWN" not in state.upper():
                    facts.rdma_ports[f"{dev.name}/{port.name}"] = float(m.group(1))
        net = root / "sys/class/net"
        for iface in sorted(net.iterdir()) if net.is_dir() else []:
            if not (iface / "device").exists():
                continue  # lo, bridges, veth, docker0: not a link to another node
            if (_read(iface / "operstate") or "") != "up":
                continue
            speed = _read(iface / "speed")
            if speed and speed.lstrip("-").isdigit() and int(speed) > 0:
                facts.ethernet[iface.name] = int(speed)
    except OSError as exc:
        facts.error = f"cannot read {exc.filename or '/sys'}: {exc.strerror or exc}"
    return facts
