"""What changed between two reports: facts as dotted paths, GPUs added or removed, findings.

Lists are matched by what identifies their items (GPUs by UUID, then bus id, then index;
frameworks by name; libraries by name and path) so that a reordered list is not a change and
paths read like ``frameworks.torch.version``. Readings that move every second (temperature,
power draw, memory used, clocks, utilisation, processes, probe timings) are left out unless
``include_noise`` is set: a diff answers "what did someone change on this machine".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envcheck.models import SCHEMA_VERSION, Finding, Gpu, Report, _Model

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["FactChange", "GpuRef", "ReportDiff", "diff_reports", "render_diff"]

#: field names whose values change from one second to the next
NOISE_FIELDS = frozenset(
    {
        "memory_used_mib", "power_draw_w", "temperature_c", "utilization_gpu_pct",
        "utilization_memory_pct", "fan_pct", "clock_sm_mhz", "processes", "uptime_s",
        "available_bytes", "swap_used_bytes", "shm_free_bytes", "free_bytes", "mhz_current",
        "seconds", "import_seconds", "holders",
    }
)  # fmt: skip

#: how the items of a list field are identified, by field name: the first of these that is set
_LIST_KEYS: dict[str, tuple[str, ...]] = {
    "frameworks": ("name",),
    "libraries": ("name+path",),
    "toolkits": ("path",),
    "disks": ("label",),
    "pci_devices": ("address",),
    "mig_devices": ("uuid", "index"),
    "loaded_libraries": ("soname",),
}


class FactChange(_Model, kw_only=True):
    """One fact that differs: ``path`` is dotted (``nvidia.driver_version``)."""

    path: str
    before: Any = None
    after: Any = None


class GpuRef(_Model, kw_only=True):
    """A GPU present in only one of the two reports."""

    key: str
    index: int
    name: str | None = None


class ReportDiff(_Model, kw_only=True):
    """The difference from report ``a`` (before) to report ``b`` (after); ``--json`` prints it.

    ``a_created_at``/``b_created_at`` are when the facts were collected; None for pasted text,
    which holds no time (the moment it was read is not when its facts were true).
    """

    schema_version: str = SCHEMA_VERSION
    a_created_at: str | None
    b_created_at: str | None
    #: what each side is: "envcheck report" or "pasted collect_env", "pasted nvidia-smi", ...
    a_source: str | None = None
    b_source: str | None = None
    changed: list[FactChange] = []
    gpus_added: list[GpuRef] = []
    gpus_removed: list[GpuRef] = []
    findings_appeared: list[Finding] = []
    findings_resolved: list[Finding] = []

    @property
    def empty(self) -> bool:
        return not (
            self.changed or self.gpus_added or self.gpus_removed or self.findings_appeared
            or self.findings_resolved
        )  # fmt: skip


def observed_at(report: Report) -> str | None:
    """When the report's facts were collected; None for pasted text, which states no time."""
    return None if report.snapshot.paste is not None else report.created_at


def source_label(report: Report) -> str:
    paste = report.snapshot.paste
    if paste is None:
        return "envcheck report"
    kinds = [k for k in paste.kinds if k not in ("shell", "log")] or ["error lines"]
    return "pasted " + ", ".join(kinds)


def _label(created: str | None, source: str | None) -> str:
    if created is None:
        return f"{source or 'a paste'} (no time in it)"
    return created


def _gpu_key(gpu: Gpu) -> str:
    if gpu.uuid:
        return gpu.uuid
    if gpu.bus_id:
        return f"bus:{gpu.bus_id.lower()}"
    return f"index:{gpu.index}"


def _item_key(item: Any, fields: tuple[str, ...], position: int) -> str:
    if isinstance(item, dict):
        for name in fields:
            parts = [str(item[n]) for n in name.split("+") if item.get(n) not in (None, "")]
            if parts:
                return "@".join(parts)
    return f"#{position}"


def _walk(a: Any, b: Any, path: str, out: list[FactChange], noise: bool) -> None:
    """Append every leaf that differs between ``a`` and ``b`` (JSON-shaped values)."""
    if a == b:
        return
    leaf = path.rsplit(".", 1)[-1].split("[", 1)[0]
    if not noise and leaf in NOISE_FIELDS:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            _walk(a.get(key), b.get(key), f"{path}.{key}" if path else str(key), out, noise)
        return
    if isinstance(a, list) and isinstance(b, list) and leaf in _LIST_KEYS:
        keys = _LIST_KEYS[leaf]
        am = {_item_key(x, keys, i): x for i, x in enumerate(a)}
        bm = {_item_key(x, keys, i): x for i, x in enumerate(b)}
        for key in list(am) + [k for k in bm if k not in am]:
            _walk(am.get(key), bm.get(key), f"{path}[{key}]", out, noise)
        return
    out.append(FactChange(path=path, before=a, after=b))


def _facts_without_gpus(report: Report) -> dict[str, Any]:
    """The snapshot as plain data, minus its origin and the GPUs (those are matched by identity)."""
    data = report.snapshot.model_dump()
    data.pop("source", None)
    data.pop("paste", None)  # what a paste held (dump kinds, error lines) is not a fact about the machine
    if isinstance(data.get("nvidia"), dict):
        data["nvidia"].pop("gpus", None)
    return data


def diff_reports(a: Report, b: Report, *, include_noise: bool = False) -> ReportDiff:
    """Everything that changed from ``a`` to ``b``; noisy live readings only on request."""
    da, db = _facts_without_gpus(a), _facts_without_gpus(b)
    fa, fb = da.pop("frameworks", None), db.pop("frameworks", None)
    changed: list[FactChange] = []
    if a.tool_version != b.tool_version:
        changed.append(FactChange(path="tool_version", before=a.tool_version, after=b.tool_version))
    _walk(da, db, "", changed, include_noise)

    # frameworks read best as frameworks.torch.version
    fwa = {f["name"]: f for f in (fa or {}).get("frameworks", [])}
    fwb = {f["name"]: f for f in (fb or {}).get("frameworks", [])}
    rest_a = {k: v for k, v in (fa or {}).items() if k != "frameworks"}
    rest_b = {k: v for k, v in (fb or {}).items() if k != "frameworks"}
    _walk(rest_a or None, rest_b or None, "frameworks", changed, include_noise)
    for name in list(fwa) + [n for n in fwb if n not in fwa]:
        _walk(fwa.get(name), fwb.get(name), f"frameworks.{name}", changed, include_noise)

    gpus_a = {_gpu_key(g): g for g in (a.snapshot.nvidia.gpus or [] if a.snapshot.nvidia else [])}
    gpus_b = {_gpu_key(g): g for g in (b.snapshot.nvidia.gpus or [] if b.snapshot.nvidia else [])}
    for key in [k for k in gpus_a if k in gpus_b]:
        _walk(
            gpus_a[key].model_dump(mode="json"),
            gpus_b[key].model_dump(mode="json"),
            f"nvidia.gpus[{key}]",
            changed,
            include_noise,
        )

    def fkey(f: Finding) -> tuple[str, str | None]:
        return (f.id, f.subject)

    before = {fkey(f) for f in a.findings}
    after = {fkey(f) for f in b.findings}
    return ReportDiff(
        a_created_at=observed_at(a),
        b_created_at=observed_at(b),
        a_source=source_label(a),
        b_source=source_label(b),
        changed=changed,
        gpus_added=[GpuRef(key=k, index=g.index, name=g.name) for k, g in gpus_b.items() if k not in gpus_a],
        gpus_removed=[
            GpuRef(key=k, index=g.index, name=g.name) for k, g in gpus_a.items() if k not in gpus_b
        ],
        findings_appeared=[f for f in b.findings if fkey(f) not in before],
        findings_resolved=[f for f in a.findings if fkey(f) not in after],
    )


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items()) if value else "(none)"
    return str(value)


def render_diff(diff: ReportDiff, console: Console) -> None:
    """Print ``diff`` for people: the findings that moved first, then the changed facts."""
    from rich.table import Table
    from rich.text import Text

    console.print(
        Text(
            f"from {_label(diff.a_created_at, diff.a_source)} to {_label(diff.b_created_at, diff.b_source)}",
            style="dim",
        )
    )
    if diff.empty:
        console.print("No differences.")
        return
    for f in diff.findings_appeared:
        console.print(Text.assemble(("+ new problem ", "bold red"), (f"{f.id}", "bold"), f": {f.summary}"))
    for f in diff.findings_resolved:
        console.print(Text.assemble(("- resolved ", "bold green"), (f"{f.id}", "bold"), f": {f.summary}"))
    for g in diff.gpus_added:
        console.print(Text.assemble(("+ GPU ", "green"), f"{g.index} {g.name or ''} ({g.key})"))
    for g in diff.gpus_removed:
        console.print(Text.assemble(("- GPU ", "red"), f"{g.index} {g.name or ''} ({g.key})"))
    if diff.changed:
        table = Table(title=None, show_edge=False, header_style="bold")
        table.add_column("Fact", no_wrap=True)
        table.add_column("Before", style="red", overflow="fold")
        table.add_column("After", style="green", overflow="fold")
        for c in diff.changed:
            table.add_row(c.path, _show(c.before), _show(c.after))
        console.print(table)
