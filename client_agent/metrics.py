"""The client's Prometheus metrics, on top of the HTTP and worker metrics every service has."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from shared.runtime.observability import LATENCY_BUCKETS, ServiceMetrics


class ClientMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__("coalesce_client")
        r = self.registry
        self.tasks = Counter("coalesce_client_tasks", "tasks that ended, by final status", ["status"], registry=r)
        self.subtask_seconds = Histogram(
            "coalesce_client_subtask_seconds", "from decision to settlement, by where it ran", ["where"], registry=r,
            buckets=LATENCY_BUCKETS,
        )  # fmt: skip
        self.decisions = Counter(
            "coalesce_client_decisions",
            "decisions, by strategy, action and outcome",
            ["strategy", "action", "outcome"],
            registry=r,
        )
        self.money_usd = Counter(
            "coalesce_client_money_usd", "escrow money, by kind: reserved, released, refunded", ["kind"], registry=r
        )
