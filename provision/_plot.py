"""The only module that imports matplotlib: cumulative cost of buying vs renting over time."""

from __future__ import annotations

from pathlib import Path

from provision.breakeven import BreakEven
from provision.errors import MissingDependencyError, UsageError


def plot_buy_vs_rent(be: BreakEven, path: Path, title: str) -> None:
    """Write a PNG of cumulative buy and rent cost against days, marking the break-even day."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependencyError("--plot needs matplotlib", hint="pip install 'mlrig[plot]'") from exc
    horizon = max(365.0, (be.days or 0) * 1.5)
    horizon = min(horizon, 365.0 * 10)
    days = [horizon * i / 200 for i in range(201)]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.plot(days, [be.buy_cost(d) for d in days], label="buy (hardware + electricity)")
    ax.plot(days, [be.rent_cost(d) for d in days], label=f"rent (${be.cloud_per_hour:.2f}/h)")
    if be.days is not None and be.days <= horizon:
        ax.axvline(be.days, color="grey", linestyle="--", linewidth=1)
        ax.annotate(
            f"break-even: {be.days:.0f} days",
            (be.days, be.buy_cost(be.days)),
            xytext=(8, -14),
            textcoords="offset points",
        )
    ax.set_xlabel("days")
    ax.set_ylabel("cumulative cost (USD)")
    ax.set_title(f"{title} at {be.utilization:.0%} utilisation")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise UsageError(f"cannot write plot {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
