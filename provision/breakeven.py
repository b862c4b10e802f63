"""Buy vs rent (Dettmers' method, cost-anchors 4.8).

    break_even_days = capex / (24 x utilisation x (cloud_$per_h - P_kW x $per_kWh))

With Dettmers' 2020 inputs ($2,200 RTX 3090 desktop, 0.45 kW, $0.12/kWh, $2.14/h cloud, 15 %
utilisation) this gives 293 days, matching his "about 300 days".
"""

from __future__ import annotations

from dataclasses import dataclass

HOURS_PER_YEAR = 24 * 365


@dataclass(frozen=True)
class BreakEven:
    """When owning gets cheaper than renting; None days = never at this utilisation."""

    capex_usd: float
    cloud_per_hour: float
    power_kw: float
    kwh_price: float
    utilization: float
    days: float | None

    def buy_cost(self, day: float) -> float:
        """Cumulative cost of owning after ``day`` days (hardware + electricity while busy)."""
        return self.capex_usd + self.power_kw * self.kwh_price * 24 * self.utilization * day

    def rent_cost(self, day: float) -> float:
        """Cumulative cost of renting the same busy hours."""
        return self.cloud_per_hour * 24 * self.utilization * day


def break_even(
    capex_usd: float, cloud_per_hour: float, power_kw: float, kwh_price: float, utilization: float
) -> BreakEven:
    """Days until the rig has paid for itself against renting at ``utilization`` (0-1]."""
    saving_per_hour = cloud_per_hour - power_kw * kwh_price
    days = capex_usd / (24 * utilization * saving_per_hour) if saving_per_hour > 0 else None
    return BreakEven(capex_usd, cloud_per_hour, power_kw, kwh_price, utilization, days)


def yearly_energy(power_kw: float, kwh_price: float, utilization: float) -> tuple[float, float]:
    """(kWh per year, $ per year) for a rig busy ``utilization`` of the time."""
    kwh = power_kw * HOURS_PER_YEAR * utilization
    return kwh, kwh * kwh_price
