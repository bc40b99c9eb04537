"""The COALESCE cost model (paper section III.E). Units: US dollars, seconds, bytes, FLOPs, watts.

Plain functions of plain data, no I/O: the client service, the contractors and the simulator share them.
Where the paper's formula is dimensionally wrong or undefined, the docstring says what we do instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from shared.a2a.models import Price

Number = TypeVar("Number", float, np.ndarray)

SECONDS_PER_HOUR = 3600.0
BYTES_PER_GB = 1e9


@dataclass(frozen=True)
class HardwareProfile:
    """The client's own machine: what running a task locally costs."""

    peak_flops: float  # P_peak, FLOP/s
    memory_bytes: float  # M_total
    tdp_watts: float  # P_TDP
    hw_cost_per_hour: float  # C_hw_hour, $/h for the compute units
    mem_cost_per_hour: float = 0.0  # C_mem_hour, $/h for all of the memory
    energy_cost_per_kwh: float = 0.15  # C_kwh
    utilisation: float = 0.4  # share of the peak a real workload reaches
    power_utilisation: float = 0.8  # U_factor, 0.7 to 0.95 for GPU-heavy work
    purchase_usd: float = 0.0  # for depreciation
    lifetime_hours: float = 3 * 365 * 24.0

    def __post_init__(self) -> None:
        if self.peak_flops <= 0 or self.memory_bytes <= 0 or not 0 < self.utilisation <= 1:
            raise ValueError("peak_flops and memory_bytes must be positive and utilisation in (0, 1]")


@dataclass(frozen=True)
class TaskProfile:
    """What a (sub)task needs and what it is worth."""

    flops: float  # FLOPS(T): the work, in floating-point operations
    value_usd: float = 0.0  # V_task: what the result is worth to the client
    model_bytes: float = 0.0  # M_model
    kv_cache_bytes: float = 0.0  # M_kv_cache
    activation_bytes: float = 0.0  # M_activations
    input_bytes: float = 0.0  # S_input
    output_bytes: float = 0.0  # S_output
    urgency: float = 0.5  # in [0, 1]
    deadline_s: float | None = None
    complexity: float = 1.0  # beta_complexity(T) of eq. (7)

    @classmethod
    def for_llm(cls, parameters: float, tokens: float, **kwargs: float) -> TaskProfile:
        """A transformer's forward passes cost about 2 FLOPs per parameter per token."""
        return cls(flops=2.0 * parameters * tokens, **kwargs)


@dataclass(frozen=True)
class QueuedTask:
    """A task waiting on the client's machine: what it is worth and how long it takes."""

    value_usd: float
    duration_s: float


@dataclass(frozen=True)
class InternalCost:
    compute: float
    memory: float
    energy: float
    opportunity: float
    depreciation: float
    exec_seconds: float

    @property
    def total(self) -> float:
        # (1) C_internal = C_compute + C_memory + C_energy + C_opportunity + C_depreciation
        return self.compute + self.memory + self.energy + self.opportunity + self.depreciation


def execution_seconds(task: TaskProfile, hardware: HardwareProfile) -> float:
    """t_exec = FLOPs / (P_peak × utilisation).

    Eq. (2) as printed multiplies FLOPS/P_peak (already a time) by t_exec again: dimensionally a time squared.
    """
    return task.flops / (hardware.peak_flops * hardware.utilisation)


def opportunity_cost(queue: Iterable[QueuedTask], exec_seconds: float) -> float:
    # (5) C_opportunity = max_i (V_i / t_i) × t_exec: the best value rate the machine gives up meanwhile
    rates = [q.value_usd / q.duration_s for q in queue if q.duration_s > 0]
    return max(rates, default=0.0) * exec_seconds


def internal_cost(task: TaskProfile, hardware: HardwareProfile, queue: Iterable[QueuedTask] = ()) -> InternalCost:
    t_exec = execution_seconds(task, hardware)
    hours = t_exec / SECONDS_PER_HOUR
    # (2) C_compute = t_exec × C_hw_hour (with t_exec as above)
    compute = hours * hardware.hw_cost_per_hour
    # (3) C_memory = (M_model + M_kv_cache + M_activations) / M_total × t_exec × C_mem_hour
    memory_share = (task.model_bytes + task.kv_cache_bytes + task.activation_bytes) / hardware.memory_bytes
    memory = min(memory_share, 1.0) * hours * hardware.mem_cost_per_hour
    # (4) C_energy = P_TDP × U_factor × t_exec × C_kwh  (watts → kW)
    energy = hardware.tdp_watts / 1000.0 * hardware.power_utilisation * hours * hardware.energy_cost_per_kwh
    depreciation = hardware.purchase_usd / hardware.lifetime_hours * hours
    return InternalCost(compute, memory, energy, opportunity_cost(queue, t_exec), depreciation, t_exec)


def dynamic_price(base_usd: Any, alpha: Any, demand: Any, available: Any, total: Any, complexity: Any = 1.0) -> Any:
    """P_j(T): a contractor's price under load (floats or numpy arrays, which broadcast).

    demand = tasks running or waiting, available = free worker slots, total = all slots. An idle contractor
    quotes P_base (1 - alpha); a saturated one with a queue quotes more than P_base.
    """
    if np.any(total <= 0) if isinstance(total, np.ndarray) else total <= 0:  # no numpy for a single quote
        raise ValueError("total capacity must be positive")
    # (7) P_j(T) = P_base × (1 + α × (D_current − S_available) / S_total) × β_complexity(T)
    price = base_usd * (1.0 + alpha * (demand - available) / total) * complexity
    return np.maximum(0.0, price) if isinstance(price, np.ndarray) else max(0.0, float(price))


def usage_charge(price: Price, input_tokens: int, output_tokens: int, compute_seconds: float) -> float:
    """What measured usage adds to the quoted task price."""
    return (
        input_tokens / 1000.0 * price.per_1k_input_tokens_usd
        + output_tokens / 1000.0 * price.per_1k_output_tokens_usd
        + compute_seconds * price.per_compute_second_usd
    )


@dataclass(frozen=True)
class Link:
    """The network between client and contractor."""

    bandwidth_bytes_per_s: float = 12.5e6  # 100 Mbit/s
    transfer_cost_per_s: float = 0.0  # C_transfer: $ per second of link time
    egress_usd_per_gb: float = 0.0  # what a cloud charges per GB moved
    protocol_overhead_usd: float = 0.0  # C_protocol_overhead: handshakes, encryption, framing


def communication_cost(input_bytes: float, output_bytes: float, link: Link) -> float:
    """Eq. (8) prices link time; clouds price bytes, so both terms are here (either may be zero)."""
    moved = input_bytes + output_bytes
    # (8) C_communication = (S_input + S_output) / B_bandwidth × C_transfer + C_protocol_overhead
    return (
        moved / link.bandwidth_bytes_per_s * link.transfer_cost_per_s
        + moved / BYTES_PER_GB * link.egress_usd_per_gb
        + link.protocol_overhead_usd
    )


def transfer_seconds(input_bytes: float, output_bytes: float, link: Link) -> float:
    return (input_bytes + output_bytes) / link.bandwidth_bytes_per_s


def risk_cost(value_at_stake: Number, p_failure: Number, p_security: Number, p_quality: Number) -> Number:
    """Expected loss of hiring. `value_at_stake` is what a bad outcome costs the client: for a client that can
    redo the work, the redo plus the delay; the paper writes V_task. Works on floats and numpy arrays."""
    # (9) C_risk = V_task × [1 − (1 − P_failure)(1 − P_security)(1 − P_quality)]
    return value_at_stake * (1.0 - (1.0 - p_failure) * (1.0 - p_security) * (1.0 - p_quality))


def latency_penalty(latency_s: Any, deadline_s: Any, value_usd: Any, urgency: Any) -> Any:
    """C_latency_penalty (the paper names it, never defines it): the share of the deadline overrun, times the
    value and the urgency, capped at the value. No deadline (None, NaN or 0), no penalty. Applied alike to local
    and hired work. Every argument may be a float or a numpy array (they broadcast)."""
    latency = np.asarray(latency_s, dtype=np.float64)
    deadline = np.asarray(np.nan if deadline_s is None else deadline_s, dtype=np.float64)
    shape = np.broadcast_shapes(latency.shape, deadline.shape)
    valid = np.broadcast_to(np.isfinite(deadline) & (deadline > 0), shape)
    overrun = np.divide(latency - deadline, deadline, out=np.zeros(shape), where=valid)
    penalty = np.asarray(value_usd, dtype=np.float64) * np.asarray(urgency, dtype=np.float64) * np.clip(overrun, 0, 1)
    return float(penalty) if penalty.ndim == 0 else penalty


@dataclass(frozen=True)
class Offer:
    """One contractor's terms for one task, with the client's current estimates of its risks."""

    price_usd: float  # P_j(T), quoted or computed by eq. (7)
    latency_s: float
    p_failure: float = 0.0
    p_security: float = 0.0
    p_quality: float = 0.0
    verification_usd: float = 0.0
    integration_usd: float = 0.0
    link: Link = field(default_factory=Link)


@dataclass(frozen=True)
class ExternalCost:
    price: float
    communication: float
    verification: float
    integration: float
    risk: float
    latency_penalty: float

    @property
    def total(self) -> float:
        # (6) C_external = P_j(T) + C_communication + C_verification + C_integration + C_risk + C_latency_penalty
        return self.price + self.communication + self.verification + self.integration + self.risk + self.latency_penalty


def external_cost(offer: Offer, task: TaskProfile, value_at_stake: float) -> ExternalCost:
    latency = offer.latency_s + transfer_seconds(task.input_bytes, task.output_bytes, offer.link)
    return ExternalCost(
        price=offer.price_usd,
        communication=communication_cost(task.input_bytes, task.output_bytes, offer.link),
        verification=offer.verification_usd,
        integration=offer.integration_usd,
        risk=risk_cost(value_at_stake, offer.p_failure, offer.p_security, offer.p_quality),
        latency_penalty=latency_penalty(latency, task.deadline_s, task.value_usd, task.urgency),
    )


class CostCalibrator:
    """Moves cost estimates toward measured actual costs, one exponentially weighted factor per key
    (a contractor and skill, or `local` and skill). The factor multiplies raw estimates, so one lesson
    carries across task sizes."""

    def __init__(self, smoothing: float = 0.2) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError("smoothing (lambda) must lie in (0, 1]; the paper uses 0.1 to 0.3")
        self.smoothing = smoothing
        self.factors: dict[str, float] = {}

    def estimate(self, key: str, raw_estimate: float) -> float:
        return raw_estimate * self.factors.get(key, 1.0)

    def observe(self, key: str, raw_estimate: float, actual: float) -> float:
        """Record one actual cost; returns the new factor."""
        if raw_estimate <= 0 or actual < 0:
            return self.factors.get(key, 1.0)
        previous = self.factors.get(key, 1.0)
        # (10) Ĉ_t = λ × C_actual,t−1 + (1 − λ) × Ĉ_t−1, applied to the actual / estimated ratio
        self.factors[key] = self.smoothing * (actual / raw_estimate) + (1.0 - self.smoothing) * previous
        return self.factors[key]


@dataclass(frozen=True)
class Metered:
    """What the client itself saw of a hire, to bound a contractor's claimed usage: the wall time of the hire and
    the size of what it sent."""

    seconds: float
    input_chars: int
    max_output_tokens: int = 8192


CHARGE_ROUNDING_USD = 1e-6  # charges travel rounded to micro-dollars: a difference below this is rounding


@dataclass(frozen=True)
class ChargeCheck:
    allowed_usd: float  # the most the price list allows for this hire
    charged_usd: float
    notes: tuple[str, ...]

    @property
    def over(self) -> bool:
        return self.charged_usd > self.allowed_usd + CHARGE_ROUNDING_USD


def check_charge(
    price: Price,
    max_concurrent: int,
    max_queued: int,
    quote_usd: float,
    charged_usd: float,
    input_tokens: int,
    output_tokens: int,
    compute_seconds: float,
    metered: Metered,
) -> ChargeCheck:
    """A contractor's charge against its card's price list: the quote it wrote, at most the eq. (7) price at full
    load; plus the usage it claims at the list's per-unit prices, each unit at most what the client saw (compute
    no longer than the hire took, input tokens no more than the characters sent, output within a bound)."""
    notes = []
    ceiling = dynamic_price(price.base_usd, price.surge_alpha, max_concurrent + max_queued + 1, 0, max_concurrent)
    quote = min(max(quote_usd, 0.0), ceiling)
    if quote_usd > ceiling + 1e-9:
        notes.append(f"quote {quote_usd:.6f} above the list's full-load price {ceiling:.6f}")
    seconds = min(max(compute_seconds, 0.0), metered.seconds)
    if compute_seconds > metered.seconds + 1e-6:
        notes.append(f"{compute_seconds:.3f} compute seconds claimed in a hire of {metered.seconds:.3f} s")
    tokens_in = min(max(input_tokens, 0), metered.input_chars + 256)
    if input_tokens > metered.input_chars + 256:
        notes.append(f"{input_tokens} input tokens claimed for {metered.input_chars} characters sent")
    tokens_out = min(max(output_tokens, 0), metered.max_output_tokens)
    if output_tokens > metered.max_output_tokens:
        notes.append(f"{output_tokens} output tokens claimed, more than {metered.max_output_tokens}")
    allowed = quote + usage_charge(price, tokens_in, tokens_out, seconds)
    return ChargeCheck(round(allowed, 9), charged_usd, tuple(notes))
