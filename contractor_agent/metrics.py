"""The contractor's Prometheus metrics, on top of the HTTP and worker metrics every service has."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared.runtime.observability import LATENCY_BUCKETS, ServiceMetrics


class ContractorMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__("coalesce_contractor")
        r = self.registry
        self.tasks = Counter("coalesce_contractor_tasks", "tasks that ended, by final state", ["state"], registry=r)
        self.task_seconds = Histogram(
            "coalesce_contractor_task_seconds", "from submission to the end, by skill", ["skill"], registry=r,
            buckets=LATENCY_BUCKETS,
        )  # fmt: skip
        self.charged_usd = Counter("coalesce_contractor_charged_usd", "what completed tasks charged", registry=r)
        self.running = Gauge("coalesce_contractor_tasks_running", "tasks being worked on", registry=r)
        self.queued = Gauge("coalesce_contractor_tasks_queued", "tasks waiting for a slot", registry=r)
