"""The COALESCE cost model (paper section III.E). Units: US dollars, seconds, bytes, FLOPs."""

from __future__ import annotations

from shared.protocol import Price


def dynamic_price(
    base_usd: float, alpha: float, demand: float, available: float, total: float, complexity: float = 1.0
) -> float:
    """P_j(T): a contractor's price under load.

    demand = tasks running or waiting, available = free worker slots, total = all slots. An idle contractor
    quotes P_base (1 - alpha); a saturated one with a queue quotes more than P_base.
    """
    if total <= 0:
        raise ValueError("total capacity must be positive")
    # (7) P_j(T) = P_base × (1 + α × (D_current − S_available) / S_total) × β_complexity(T)
    return max(0.0, base_usd * (1.0 + alpha * (demand - available) / total) * complexity)


def usage_charge(price: Price, input_tokens: int, output_tokens: int, compute_seconds: float) -> float:
    """What measured usage adds to the quoted task price."""
    return (
        input_tokens / 1000.0 * price.per_1k_input_tokens_usd
        + output_tokens / 1000.0 * price.per_1k_output_tokens_usd
        + compute_seconds * price.per_compute_second_usd
    )
