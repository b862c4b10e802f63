"""What the link between nodes should give an all-reduce, with the source of every number.

nccl-tests' "bus bandwidth" of an all-reduce is comparable to the per-node network bandwidth:
for a ring it is ``algbw * 2(n-1)/n`` and it approaches the slowest node's NIC bandwidth
(nccl-tests, doc/PERFORMANCE.md). So the expectation is the line rate of the node's links:
the sum of its active RDMA ports (InfiniBand, RoCE, EFA), else its fastest Ethernet port.
The figures below are line rates from the standards and the cloud's instance pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from envcheck.cluster.models import Interconnect, NetFacts

AS_OF = "2026-12-07"
#: below this fraction of line rate the all-reduce is called low. Ours, not a standard's: NCCL on
#: healthy InfiniBand/EFA reaches 80-95% of line rate; half means a link, a NIC or a setting is off.
LOW_FRACTION = 0.5
_NCCL_TESTS = "https://github.com/NVIDIA/nccl-tests/blob/master/doc/PERFORMANCE.md"


@dataclass(frozen=True)
class Link:
    key: str
    kind: str
    #: per-node line rate, Gb/s
    gbits: float
    source: str

    @property
    def gbytes(self) -> float:
        return self.gbits / 8


LINKS: tuple[Link, ...] = (
    Link("eth-10g", "Ethernet 10GbE", 10, "IEEE 802.3ae (10 Gb/s)"),
    Link("eth-25g", "Ethernet 25GbE", 25, "IEEE 802.3by (25 Gb/s)"),
    Link("eth-100g", "Ethernet 100GbE", 100, "IEEE 802.3ba / 802.3cd (100 Gb/s)"),
    Link("eth-200g", "Ethernet 200GbE", 200, "IEEE 802.3bs / 802.3cd (200 Gb/s)"),
    Link("eth-400g", "Ethernet 400GbE", 400, "IEEE 802.3bs (400 Gb/s)"),
    Link("ib-edr", "InfiniBand EDR, 1 port", 100, "IBTA spec rel. 1.3: EDR 4x = 100 Gb/s"),
    Link("ib-hdr", "InfiniBand HDR, 1 port", 200, "IBTA spec rel. 1.4: HDR 4x = 200 Gb/s"),
    Link("ib-ndr", "InfiniBand NDR, 1 port", 400, "IBTA spec rel. 1.5: NDR 4x = 400 Gb/s"),
    Link(
        "ib-ndr-8x",
        "InfiniBand NDR, 8 ports (DGX H100)",
        3200,
        "NVIDIA DGX H100 user guide: 8x ConnectX-7 400 Gb/s",
    ),
    Link("efa-p4d", "AWS EFA, p4d/p4de", 400, "https://aws.amazon.com/ec2/instance-types/p4/ (400 Gbps EFA)"),
    Link(
        "efa-p5",
        "AWS EFA, p5/p5e/p5en",
        3200,
        "https://aws.amazon.com/ec2/instance-types/p5/ (3200 Gbps EFAv2)",
    ),
    Link(
        "efa-trn1",
        "AWS EFA, trn1.32xlarge",
        800,
        "https://aws.amazon.com/ec2/instance-types/trn1/ (800 Gbps EFA)",
    ),
    Link(
        "gcp-a3",
        "Google Cloud A3 (GPUDirect-TCPX)",
        800,
        "https://cloud.google.com/compute/docs/gpus (a3-highgpu-8g: 800 Gbps)",
    ),
)


def by_key(key: str) -> Link | None:
    return next((link for link in LINKS if link.key == key.lower()), None)


def describe_table() -> str:
    """``--interconnect list``: every known link with its line rate and source."""
    lines = [f"Known interconnects (line rate per node; as of {AS_OF}):"]
    for link in LINKS:
        lines.append(f"  {link.key:<10} {link.kind:<36} {link.gbits:>6g} Gb/s  {link.source}")
    return "\n".join(lines) + "\n"


def from_name(key: str) -> Interconnect:
    link = by_key(key)
    if link is None:
        from envcheck.errors import UsageError

        raise UsageError(
            f"unknown --interconnect {key!r}",
            hint="envcheck cluster --interconnect list shows the known ones",
        )
    return Interconnect(
        kind=link.kind,
        expected_gbps=link.gbytes,
        basis=f"{link.gbits:g} Gb/s line rate, given",
        source=link.source,
    )


def _node_gbits(net: NetFacts) -> tuple[str, float] | None:
    if net.rdma_ports:
        kind = "EFA" if net.efa_devices else "RDMA (InfiniBand/RoCE)"
        return kind, sum(net.rdma_ports.values())
    if net.ethernet:
        return "Ethernet", max(net.ethernet.values()) / 1000
    return None


def detect(nets: Sequence[NetFacts | None]) -> Interconnect:
    """The slowest node's link bounds the ring: its line rate is what the all-reduce should approach."""
    found = [_node_gbits(n) for n in nets if n is not None]
    known = [f for f in found if f is not None]
    if not known or len(known) < len(nets):
        return Interconnect(
            kind="unknown",
            basis="the nodes report no RDMA port and no Ethernet speed (loopback or virtual NICs); "
            "--interconnect names the link",
        )
    kind, gbits = min(known, key=lambda kg: kg[1])
    return Interconnect(
        kind=kind,
        expected_gbps=gbits / 8,
        basis=f"{gbits:g} Gb/s line rate on the slowest node, from /sys/class",
        source=_NCCL_TESTS,
    )
