"""Results of ``envcheck smoke``: one row per framework x device x test, and the whole run."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["pass", "fail", "skip"]


class SmokeResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    framework: str
    #: "cpu", "gpu:0", "tpu:0"; "gpu:all" for multi-GPU tests; "-" for the import itself
    device: str
    #: the device's own name when the framework gives one ("NVIDIA A100-SXM4-80GB")
    device_name: str | None = None
    test: str
    status: Status
    seconds: float | None = None
    #: what was measured, for a pass ("loss 3.2e7 -> 1.1e4 (2900x, needs 100x)")
    detail: str | None = None
    #: why it failed or was skipped: the error's last line
    error: str | None = None


class FrameworkRun(BaseModel):
    """One framework's child interpreter: how it ended, whatever its tests said."""

    framework: str
    installed: bool | None = None
    version: str | None = None
    seconds: float
    #: why the child itself failed: "timed out after 120s while running cpu keras-fit"
    error: str | None = None


#: version of the ``envcheck smoke --json`` document ("<major>.<minor>", see envcheck.schemas)
SCHEMA_VERSION = "1.0"


class SmokeReport(BaseModel):
    schema_version: str = SCHEMA_VERSION
    tool_version: str
    created_at: str
    timeout_s: float
    seconds: float
    frameworks: list[FrameworkRun] = Field(default_factory=list)
    results: list[SmokeResult] = Field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when any test failed (the exit code is then 1)."""
        return any(r.status == "fail" for r in self.results)

    def counts(self) -> dict[str, int]:
        """How many tests passed, failed and were skipped."""
        out = {"pass": 0, "fail": 0, "skip": 0}
        for r in self.results:
            out[r.status] += 1
        return out
