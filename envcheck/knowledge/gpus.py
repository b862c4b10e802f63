"""GPU and TPU specifications, looked up by the names drivers, clouds and people use.

The data live in ``gpu_specs.csv`` next to this module (every row with its source and date).
``lookup`` accepts NVML product names ("NVIDIA A100-SXM4-80GB", "Tesla V100-SXM2-16GB",
"NVIDIA H100 80GB HBM3"), marketing names ("GeForce RTX 4090") and cloud catalog names
("A100-80GB", "RTX4090", "A10G"), and returns None rather than a near miss: an "H100 NVL" is not
an H100 SXM, so a leftover distinguishing word rejects the match.
"""

from __future__ import annotations

import csv
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["GpuPrices", "GpuSpec", "all_specs", "lookup", "matches", "normalize", "search"]

_DATA_FILE = "gpu_specs.csv"

#: words that never distinguish one accelerator from another
_NOISE = frozenset(
    {
        "nvidia",
        "geforce",
        "tesla",
        "quadro",
        "amd",
        "instinct",
        "google",
        "cloud",
        "workstation",
        "edition",
        "generation",
        "graphics",
        "gpu",
        "card",
        "hbm2",
        "hbm2e",
        "hbm3",
        "hbm3e",
        "per",
        "chip",
        "the",
        "x",
    }
)


@dataclass(frozen=True, slots=True)
class GpuPrices:
    """What a card cost to buy: launch MSRP and a dated street price (USD), either may be unknown."""

    launch_msrp_usd: float | None
    street_usd: float | None
    street_date: str | None

    @property
    def best_usd(self) -> float | None:
        """The price a buyer pays today: the street price when known, else the launch MSRP."""
        return self.street_usd if self.street_usd is not None else self.launch_msrp_usd


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """One accelerator model. TPU rows are per chip; GB200 is the whole two-GPU superchip."""

    name: str
    aliases: tuple[str, ...]
    vendor: str
    segment: str
    architecture: str
    release_year: int | None
    #: CUDA compute capability such as "8.0"; None for AMD and TPUs
    compute_capability: str | None
    memory_gb: float | None
    memory_bw_gbs: float | None
    fp32_tflops: float | None
    #: dense 16-bit tensor peak with FP32 accumulate (BF16/AMP training rate); see bf16_basis
    bf16_tflops_dense: float | None
    bf16_basis: str
    #: the dense tensor figure as published, and what it means (FP16- vs FP32-accumulate)
    tensor_dense_tflops_published: float | None
    tensor_note: str
    tdp_w: float | None
    pcie_gen: str | None
    pcie_lanes: int | None
    slot_width: int | None
    #: open-air, blower, passive (needs server airflow), liquid, or None
    cooler: str | None
    prices: GpuPrices
    source: str
    as_of: str
    notes: str = ""

    @property
    def peak_tflops(self) -> float | None:
        """Peak for training estimates: the dense BF16/FP16 tensor rate, else plain FP32."""
        return self.bf16_tflops_dense if self.bf16_tflops_dense is not None else self.fp32_tflops

    @property
    def is_tpu(self) -> bool:
        """True for Google TPU chips (priced and counted per chip)."""
        return self.vendor == "Google"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


def normalize(name: str) -> str:
    """Canonical token string: lower case, no punctuation, "80 GB" -> "80gb", "RTX4090" -> "rtx 4090"."""
    s = name.lower()
    s = re.sub(r"\((?:per [^)]*)\)", " ", s)
    s = re.sub(r"[-_/,()+:]", " ", s)
    s = re.sub(r"\b(rtx|gtx)(?=\d)", r"\1 ", s)
    s = re.sub(r"\b(\d+)\s*gi?b\b", r"\1gb", s)
    return " ".join(s.split())


def _tokens(name: str) -> frozenset[str]:
    return frozenset(normalize(name).split())


def _f(value: str) -> float | None:
    value = value.strip()
    return float(value) if value else None


def _i(value: str) -> int | None:
    value = value.strip()
    return int(float(value)) if value and value.replace(".", "", 1).isdigit() else None


def _row_to_spec(row: dict[str, str]) -> GpuSpec:
    aliases = tuple(a.strip() for a in row["aliases"].split(";") if a.strip())
    return GpuSpec(
        name=row["name"],
        aliases=aliases,
        vendor=row["vendor"],
        segment=row["segment"],
        architecture=row["architecture"],
        release_year=_i(row["release_year"]),
        compute_capability=row["compute_capability"].strip() or None,
        memory_gb=_f(row["memory_gb"]),
        memory_bw_gbs=_f(row["memory_bw_gbs"]),
        fp32_tflops=_f(row["fp32_tflops"]),
        bf16_tflops_dense=_f(row["bf16_tflops_dense"]),
        bf16_basis=row["bf16_basis"],
        tensor_dense_tflops_published=_f(row["tensor_dense_tflops_published"]),
        tensor_note=row["tensor_note"],
        tdp_w=_f(row["tdp_w"]),
        pcie_gen=row["pcie_gen"].strip() or None,
        pcie_lanes=_i(row["pcie_lanes"]),
        slot_width=_i(row["slot_width"]),
        cooler=row["cooler"].strip() or None,
        prices=GpuPrices(
            launch_msrp_usd=_f(row["launch_msrp_usd"]),
            street_usd=_f(row["street_price_usd"]),
            street_date=row["street_price_date"].strip() or None,
        ),
        source=row["source"],
        as_of=row["as_of"],
        notes=row["notes"],
    )


@lru_cache(maxsize=1)
def all_specs() -> tuple[GpuSpec, ...]:
    """Every accelerator in the table, in file order (consumer, workstation, data centre, TPU)."""
    text = resources.files(__package__ or "envcheck.knowledge").joinpath(_DATA_FILE).read_text("utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return tuple(_row_to_spec(row) for row in csv.DictReader(lines))


@lru_cache(maxsize=1)
def _keys() -> tuple[tuple[frozenset[str], GpuSpec], ...]:
    keys: list[tuple[frozenset[str], GpuSpec]] = []
    for spec in all_specs():
        for alias in (spec.name, *spec.aliases):
            keys.append((_tokens(alias), spec))
    return tuple(keys)


def _leftover_ok(leftover: frozenset[str], spec: GpuSpec) -> bool:
    mem = f"{spec.memory_gb:g}gb" if spec.memory_gb is not None else None
    return all(t in _NOISE or t == mem for t in leftover)


@lru_cache(maxsize=512)
def lookup(name: str) -> GpuSpec | None:
    """The one accelerator ``name`` refers to, or None when unknown or ambiguous-by-variant.

    An alias matches when all its words appear in ``name`` and every other word of ``name`` is
    noise ("NVIDIA", "GeForce", "HBM3", the card's own memory size); the longest alias wins.
    """
    query = _tokens(name)
    if not query:
        return None
    best: tuple[int, GpuSpec] | None = None
    for key, spec in _keys():
        if key <= query and _leftover_ok(query - key, spec) and (best is None or len(key) > best[0]):
            best = (len(key), spec)
    return best[1] if best else None


def matches(query: str, spec: GpuSpec) -> bool:
    """True when ``query`` names ``spec`` or its family: "A100" matches both A100 40GB and 80GB."""
    words = _tokens(query) - _NOISE
    if not words:
        return False
    if lookup(query) is spec:
        return True
    return any(words <= _tokens(alias) for alias in (spec.name, *spec.aliases))


def search(query: str) -> list[GpuSpec]:
    """Every accelerator ``query`` could mean (a family query returns several)."""
    exact = lookup(query)
    found = [s for s in all_specs() if matches(query, s)]
    if exact is not None and exact not in found:
        found.insert(0, exact)
    return found
