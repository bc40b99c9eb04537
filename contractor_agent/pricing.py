"""A contractor's prices: the quote of eq. (7) from its load, and the charge of a finished task (the quote plus
the measured usage at the card's per-unit prices)."""

from __future__ import annotations

from shared.a2a.models import CoalesceProfile, Price
from shared.economics.cost_model import dynamic_price, usage_charge
from shared.workers.base import Usage


class Pricing:
    def __init__(self, profile: CoalesceProfile | None) -> None:
        self.price: Price = profile.price if profile else Price(base_usd=0.0)

    def quote(self, running: int, waiting: int, total: int, complexity: float = 1.0) -> float:
        """The price of one more task now, by eq. (7) of the cost model."""
        demand = running + waiting + 1
        available = max(0, total - running)
        price = self.price
        return round(dynamic_price(price.base_usd, price.surge_alpha, demand, available, total, complexity), 9)

    def charge(self, quote: float, usage: Usage) -> float:
        return quote + usage_charge(self.price, usage.input_tokens, usage.output_tokens, usage.compute_seconds)
