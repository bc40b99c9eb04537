"""Push notifications: POST the task to the client's webhook on every status change, with retries.

Deliveries go through one bounded queue and a single sender task, so a slow or dead webhook never blocks
the work; when the queue is full the oldest undelivered notification is dropped (the next one carries the
newer state anyway, since each notification is a full task snapshot).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from shared.a2a.dialects import Dialect
from shared.a2a.models import PushNotificationConfig, Task
from shared.a2a.wire import render_task
from shared.security.net_policy import AddressRefused, check_url

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    config: PushNotificationConfig
    task: Task
    dialect: Dialect


class PushNotifier:
    def __init__(
        self,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 0.25,
        max_pending: int = 1000,
        allow_private: bool = False,
    ) -> None:
        """`allow_private`: webhooks on loopback and private networks too (tests, a local market); refused by
        default, so that a client cannot make the contractor call into its own network."""
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(max_pending)
        self._client: httpx.AsyncClient | None = None
        self._sender: asyncio.Task[None] | None = None
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    def notify(self, config: PushNotificationConfig, task: Task, dialect: Dialect) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(Delivery(config, task, dialect))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all(), name="push-notifier")

    async def _send_all(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        while not self._queue.empty():
            delivery = self._queue.get_nowait()
            if await self._deliver(delivery):
                self.delivered += 1
            else:
                self.failed += 1

    @staticmethod
    def headers(config: PushNotificationConfig) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if config.token:
            headers["X-A2A-Notification-Token"] = config.token
        auth = config.authentication
        if auth and auth.credentials:
            scheme = auth.schemes[0] if auth.schemes else "Bearer"
            headers["Authorization"] = f"{scheme} {auth.credentials}"
        return headers

    async def check(self, url: str) -> None:
        """Raises AddressRefused for a webhook this contractor will not call."""
        await check_url(url, self.allow_private, self.timeout_s)

    async def _deliver(self, delivery: Delivery) -> bool:
        assert self._client is not None
        try:
            await self.check(delivery.config.url)
        except AddressRefused as refused:
            log.warning("push not sent: %s", refused)
            return False
        body = render_task(delivery.task, delivery.dialect)
        for attempt in range(self.attempts):
            try:
                response = await self._client.post(
                    delivery.config.url, json=body, headers=self.headers(delivery.config)
                )
                if response.status_code < 300:
                    return True
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    log.warning("push to %s refused: HTTP %s", delivery.config.url, response.status_code)
                    return False
            except httpx.HTTPError as error:
                log.info("push to %s failed (attempt %d): %s", delivery.config.url, attempt + 1, error)
            await asyncio.sleep(self.backoff_s * 2**attempt)
        return False

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued notification was tried (for shutdown and tests)."""
        if self._sender is not None:
            await asyncio.wait_for(asyncio.shield(self._sender), timeout_s)

    async def close(self) -> None:
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
