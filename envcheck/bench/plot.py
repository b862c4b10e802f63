"""``envcheck bench --plot FILE.png``: achieved vs theoretical peak, one bar pair per figure.

matplotlib is the optional extra ``mlrig[plot]``; it is imported only here, only when asked.
"""

from __future__ import annotations

from pathlib import Path

from envcheck.bench.models import BenchReport
from envcheck.errors import EnvcheckError


def plot(report: BenchReport, path: Path) -> Path:
    """Write a PNG with one panel per unit (TFLOPS, GB/s): median bars, peak outlines, % labels."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise EnvcheckError("--plot needs matplotlib", hint="pip install 'mlrig[plot]'") from exc
    panels = [u for u in ("TFLOPS", "GB/s", "x") if any(f.unit == u and f.median for f in report.figures)]
    if not panels:
        raise EnvcheckError("nothing was measured, so there is nothing to plot")
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.2 + 0.45 * len(report.figures)), squeeze=False)
    for ax, unit in zip(axes[:, 0], panels, strict=True):
        rows = [f for f in report.figures if f.unit == unit and f.median]
        labels = [
            f"{f.device} {f.metric}{' ' + f.dtype if f.dtype and f.metric == 'matmul' else ''}" for f in rows
        ]
        ys = list(range(len(rows)))
        ax.barh(ys, [f.peak or 0 for f in rows], color="none", edgecolor="grey", label="theoretical peak")
        ax.barh(ys, [f.median for f in rows], color="tab:blue", height=0.5, label="measured (median)")
        for y, f in zip(ys, rows, strict=True):
            text = f"{f.median:.3g}" + (
                f" ({f.achieved_pct:.0f}% of peak)" if f.achieved_pct is not None else ""
            )
            ax.text(f.median, y, " " + text, va="center", fontsize=8)
        ax.set_xlim(0, 1.3 * max(max(f.peak or 0, f.median or 0) for f in rows))
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        ax.set_xlabel(unit)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"envcheck bench ({report.mode}): {report.cpu_model or 'cpu'}", fontsize=10)
    fig.tight_layout()
    import io

    from envcheck.userfiles import WriteFailed, write_bytes

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=110)
    finally:
        plt.close(fig)
    try:  # through a symlink, into a device or pipe as `>` would; atomic for a regular file
        write_bytes(path, buffer.getvalue())
    except WriteFailed as exc:
        raise EnvcheckError(str(exc)) from None
    return path
