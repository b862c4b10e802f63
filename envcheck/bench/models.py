"""Results of ``envcheck bench``: each figure with its spread, the device's peak and the percentage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Figure(BaseModel):
    model_config = ConfigDict(extra="ignore")

    #: "cpu", "gpu:0"
    device: str
    device_name: str | None = None
    #: matmul, copy, triad, h2d, d2h, speedup
    metric: str
    dtype: str | None = None
    #: TFLOPS, GB/s, or "x" for the speedup
    unit: str
    #: problem size ("n=2048", "256 MiB/array")
    size: str | None = None
    median: float | None = None
    #: slowest and fastest sample
    low: float | None = None
    high: float | None = None
    #: interquartile range of the samples, in % of the median
    spread_pct: float | None = None
    repeats: int | None = None
    #: calls timed back to back in each sample
    inner: int | None = None
    peak: float | None = None
    #: where the peak comes from (the CPU formula, the GPU spec row, the PCIe link)
    peak_basis: str | None = None
    achieved_pct: float | None = None
    #: the figure could not be measured (an error's last line)
    error: str | None = None
    #: the figure does not apply here (unsupported dtype, backend without it)
    skipped: str | None = None


class DeviceInfo(BaseModel):
    device: str
    name: str | None = None
    compute_capability: str | None = None
    memory_bytes: int | None = None
    uuid: str | None = None
    #: PCIe link as NVML reports it ("gen 4 x16 (max gen 4 x16)")
    pcie: str | None = None
    #: the knowledge-base row used for the peaks, with its source and date
    spec: str | None = None


#: version of the ``envcheck bench --json`` document ("<major>.<minor>", see envcheck.schemas)
SCHEMA_VERSION = "1.0"


class BenchReport(BaseModel):
    schema_version: str = SCHEMA_VERSION
    tool_version: str
    created_at: str
    #: "quick" or "full"
    mode: str
    #: the library that ran the measurements (torch, numpy) and its version
    backend: str
    backend_version: str | None = None
    #: threads the backend used on the CPU
    threads: int | None = None
    seconds: float
    cpu_model: str | None = None
    #: the CPU peak formula with its factors, or why there is none
    cpu_peak: str | None = None
    devices: list[DeviceInfo] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)
    #: the benchmark child died (partial results are kept)
    error: str | None = None
    #: environment notes that change the figures (OPENBLAS_CORETYPE set, load on the machine)
    notes: list[str] = Field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when a figure could not be measured or the child died."""
        return self.error is not None or any(f.error for f in self.figures)
