"""Our A2A client against a real contractor, in each wire generation: a stream brings the artifacts and, with the
final state, the contractor's bill (so the client need not ask for the task again), and it leaves its connection
to the next call."""

from __future__ import annotations

import asyncio

import httpcore
import httpx
import pytest

from shared.a2a.cards import Endpoint
from shared.a2a.client import A2AClient
from shared.a2a.dialects import Dialect
from shared.a2a.models import Message, Part, TaskArtifactUpdateEvent, TaskState, TaskStatusUpdateEvent, new_id
from shared.security.net_policy import CheckedBackend, CheckedTransport
from tests.conftest import PORTFOLIO


class CountingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own network backend, counting the connections it opens."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.connections = 0

    async def connect_tcp(self, *args, **kwargs) -> httpcore.AsyncNetworkStream:
        self.connections += 1
        return await self.inner.connect_tcp(*args, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@pytest.mark.parametrize("dialect", list(Dialect))
def test_a_stream_brings_the_bill_and_leaves_its_connection(cpu_contractor: str, dialect: Dialect):
    backend = CountingBackend()

    async def hire_twice() -> list[list]:
        transport = CheckedTransport(CheckedBackend(allow_private=True, inner=backend))
        async with httpx.AsyncClient(transport=transport, timeout=60) as http:
            client = A2AClient(Endpoint(cpu_contractor, dialect), http)
            streams = []
            for _ in range(2):
                message = Message(role="user", parts=[Part.of_data(PORTFOLIO)], message_id=new_id())
                streams.append([event async for event in client.stream(message, "portfolio-optimisation")])
            return streams

    for events in asyncio.run(hire_twice()):
        last = events[-1]
        assert isinstance(last, TaskStatusUpdateEvent) and last.status.state is TaskState.COMPLETED
        bill = (last.metadata or {}).get("coalesce")
        assert isinstance(bill, dict) and bill["costUsd"] > 0 and bill["quoteUsd"] > 0
        artifacts = [e.artifact for e in events if isinstance(e, TaskArtifactUpdateEvent)]
        assert artifacts and artifacts[0].metadata["coalesce"]["costUsd"] == bill["costUsd"]
    assert backend.connections == 1  # the second stream went over the first one's connection
