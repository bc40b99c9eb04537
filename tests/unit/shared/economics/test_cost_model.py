"""The cost model, formula by formula, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.economics import cost_model as cm

# An A100-like machine: 312 TFLOP/s peak at 40 % utilisation, 80 GB, 400 W, $1.80/h, memory $0.40/h.
GPU = cm.HardwareProfile(
    peak_flops=312e12,
    memory_bytes=80e9,
    tdp_watts=400,
    hw_cost_per_hour=1.80,
    mem_cost_per_hour=0.40,
    energy_cost_per_kwh=0.15,
    utilisation=0.4,
    power_utilisation=0.8,
    purchase_usd=15_000,
    lifetime_hours=30_000,
)
# 7B parameters × 1 000 000 tokens × 2 FLOPs = 1.4e16 FLOPs.
TASK = cm.TaskProfile.for_llm(
    7e9,
    1e6,
    value_usd=200.0,
    model_bytes=14e9,
    kv_cache_bytes=4e9,
    activation_bytes=2e9,
    input_bytes=2e9,
    output_bytes=0.5e9,
)


def test_execution_time_is_flops_over_achieved_throughput():
    assert cm.execution_seconds(TASK, GPU) == pytest.approx(1.4e16 / (312e12 * 0.4))  # 112.18 s


def test_internal_cost_terms_by_hand():
    cost = cm.internal_cost(
        TASK, GPU, queue=[cm.QueuedTask(value_usd=50, duration_s=100), cm.QueuedTask(value_usd=30, duration_s=20)]
    )
    hours = 1.4e16 / (312e12 * 0.4) / 3600  # 0.0311608 h
    assert cost.compute == pytest.approx(hours * 1.80)  # (2)
    assert cost.memory == pytest.approx(20e9 / 80e9 * hours * 0.40)  # (3): 20 GB of 80 GB
    assert cost.energy == pytest.approx(0.4 * 0.8 * hours * 0.15)  # (4): 0.32 kW
    assert cost.opportunity == pytest.approx(30 / 20 * hours * 3600)  # (5): the best rate is $1.5/s
    assert cost.depreciation == pytest.approx(15_000 / 30_000 * hours)
    assert cost.total == pytest.approx(
        cost.compute + cost.memory + cost.energy + cost.opportunity + cost.depreciation
    )  # (1)


def test_dynamic_price_follows_demand():
    assert cm.dynamic_price(10.0, 0.5, demand=1, available=4, total=4) == pytest.approx(10 * (1 - 0.5 * 3 / 4))
    assert cm.dynamic_price(10.0, 0.5, demand=6, available=0, total=4, complexity=2) == pytest.approx(
        10 * (1 + 0.5 * 6 / 4) * 2
    )  # (7)
    with pytest.raises(ValueError):
        cm.dynamic_price(1, 0.5, 1, 1, 0)


def test_communication_cost_prices_link_time_and_bytes():
    link = cm.Link(
        bandwidth_bytes_per_s=1.25e8, transfer_cost_per_s=0.001, egress_usd_per_gb=0.12, protocol_overhead_usd=0.5
    )
    # (8): 2.5 GB over 1 Gbit/s = 20 s × $0.001 + 2.5 GB × $0.12 + $0.50
    assert cm.communication_cost(2e9, 0.5e9, link) == pytest.approx(0.02 + 0.30 + 0.50)


def test_risk_cost_by_hand():
    # (9): 200 × [1 − 0.9 × 0.98 × 0.95] = 200 × 0.1621
    assert cm.risk_cost(200.0, 0.1, 0.02, 0.05) == pytest.approx(200 * (1 - 0.9 * 0.98 * 0.95))
    assert np.allclose(cm.risk_cost(np.array([100.0, 200.0]), 0.5, 0.0, 0.0), [50.0, 100.0])


def test_latency_penalty_only_past_the_deadline():
    assert cm.latency_penalty(50, 60, 100, 0.8) == 0.0
    assert cm.latency_penalty(90, 60, 100, 0.8) == pytest.approx(100 * 0.8 * 0.5)
    assert cm.latency_penalty(600, 60, 100, 0.8) == pytest.approx(80.0)  # capped at the value × urgency
    assert cm.latency_penalty(600, None, 100, 0.8) == 0.0


def test_external_cost_adds_every_term():
    offer = cm.Offer(
        price_usd=18.5,
        latency_s=30,
        p_failure=0.013,
        p_security=0.0213,
        p_quality=0.0107,
        verification_usd=3.0,
        integration_usd=1.2,
        link=cm.Link(bandwidth_bytes_per_s=1.25e8, egress_usd_per_gb=0.12, protocol_overhead_usd=0.5),
    )
    task = cm.TaskProfile(flops=1e15, value_usd=200, input_bytes=2e9, output_bytes=0.5e9, deadline_s=20, urgency=1.0)
    cost = cm.external_cost(offer, task, value_at_stake=50.0)
    assert cost.communication == pytest.approx(2.5 * 0.12 + 0.5)
    assert cost.risk == pytest.approx(50 * (1 - 0.987 * 0.9787 * 0.9893))
    # latency 30 s + 20 s of transfer = 50 s against a 20 s deadline: overrun 1.5, capped at 1 → $200
    assert cost.latency_penalty == pytest.approx(200.0)
    assert cost.total == pytest.approx(18.5 + cost.communication + 3.0 + 1.2 + cost.risk + 200.0)  # (6)


def test_calibration_moves_the_estimate_toward_actual_costs():
    calibrator = cm.CostCalibrator(smoothing=0.2)
    assert calibrator.estimate("gpu|llm", 10.0) == 10.0
    calibrator.observe("gpu|llm", raw_estimate=10.0, actual=20.0)  # (10): 0.2 × 2 + 0.8 × 1 = 1.2
    assert calibrator.estimate("gpu|llm", 10.0) == pytest.approx(12.0)
    for _ in range(60):
        calibrator.observe("gpu|llm", raw_estimate=5.0, actual=10.0)
    assert calibrator.estimate("gpu|llm", 3.0) == pytest.approx(6.0, rel=1e-4)  # converges to the true ratio
    assert calibrator.estimate("other", 3.0) == 3.0
    with pytest.raises(ValueError):
        cm.CostCalibrator(smoothing=0.0)


def test_hardware_profile_rejects_nonsense():
    with pytest.raises(ValueError):
        cm.HardwareProfile(peak_flops=0, memory_bytes=1, tdp_watts=1, hw_cost_per_hour=1)
    assert math.isfinite(cm.internal_cost(cm.TaskProfile(flops=0), GPU).total)


def test_a_charge_is_checked_against_the_price_list_and_what_the_client_measured():
    from shared.a2a.models import Price
    from shared.economics.cost_model import Metered, check_charge

    price = Price(base_usd=0.01, per_1k_output_tokens_usd=0.002, per_compute_second_usd=0.001, surge_alpha=0.5)
    metered = Metered(seconds=2.0, input_chars=400)
    honest = check_charge(price, 4, 8, 0.01, 0.01 + 0.002 + 0.0015, 100, 1000, 1.5, metered)
    assert not honest.over and honest.notes == ()
    padded = check_charge(price, 4, 8, 0.01, 5.0, 100, 1000, 1e6, metered)  # a million compute seconds in 2 s
    assert padded.over and padded.allowed_usd == pytest.approx(0.01 + 0.002 + 0.002)
    assert "compute seconds" in padded.notes[0]
    greedy_quote = check_charge(price, 4, 8, 1.0, 1.0, 0, 0, 0.0, metered)  # above eq. (7) at full load
    assert greedy_quote.over and greedy_quote.allowed_usd == pytest.approx(0.01 * (1 + 0.5 * 13 / 4))
    tokens = check_charge(price, 4, 8, 0.01, 1.0, 10**9, 10**9, 0.0, metered)
    assert tokens.over and len(tokens.notes) == 2


def test_calibration_converges_to_the_true_ratio_when_fed_raw_estimates():
    calibrator = cm.CostCalibrator(0.2)
    for _ in range(60):  # a contractor that charges four times its quote, every time
        calibrator.observe("c", 0.01, 0.04)
    assert calibrator.factors["c"] == pytest.approx(4.0, rel=1e-3)
