"""Push notifications: POST the task to the client's webhook on every status change, with retries, signed.

Each webhook has its own lane: a bounded queue and one sender, so a slow or dead webhook delays only its own
notifications, never another client's, nor the work. When a lane is full its oldest pending notification that is
not final is dropped (the next one carries the newer state anyway: each notification is a full task snapshot); a
final-state notification is never dropped (there are at most as many as the tasks the contractor keeps). With a
signing key, each notification carries a JWT over its exact body (`shared.security.push_signing`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.a2a.dialects import Dialect
from shared.a2a.models import PushNotificationConfig, Task
from shared.a2a.wire import render_task
from shared.runtime import jsonio
from shared.security.net_policy import (
    AddressRefused,
    ConnectionRefusedByPolicy,
    Resolver,
    check_url,
    checked_transport,
    system_resolve,
)
from shared.security.push_signing import SIGNATURE_HEADER, sign_notification

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    config: PushNotificationConfig
    task: Task
    dialect: Dialect

    @property
    def final(self) -> bool:
        return self.task.status.state.terminal


@dataclass
class Lane:
    """One webhook's pending notifications and its sender."""

    pending: deque[Delivery] = field(default_factory=deque)
    sender: asyncio.Task[None] | None = None


class PushNotifier:
    def __init__(
        self,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 0.25,
        max_pending_per_hook: int = 100,
        max_hooks: int = 1000,
        allow_private: bool = False,
        signing_key: Ed25519PrivateKey | None = None,
        resolve: Resolver = system_resolve,
    ) -> None:
        """`allow_private`: webhooks on loopback and private networks too (tests, a local market); refused by
        default, so that a client cannot make the contractor call into its own network. `resolve`: how webhook
        names are looked up (once per connection, the address it checks is the one it calls). `max_hooks` bounds the
        webhooks with notifications pending at once (beyond it, only final notifications are queued)."""
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_pending_per_hook = max_pending_per_hook
        self.max_hooks = max_hooks
        self.signing_key = signing_key
        self.resolve = resolve
        self._lanes: dict[str, Lane] = {}
        self._client: httpx.AsyncClient | None = None
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    def notify(self, config: PushNotificationConfig, task: Task, dialect: Dialect) -> None:
        delivery = Delivery(config, task, dialect)
        lane = self._lanes.get(config.url)
        if lane is None:
            if len(self._lanes) >= self.max_hooks and not delivery.final:
                self.dropped += 1
                return
            lane = self._lanes[config.url] = Lane()
        if len(lane.pending) >= self.max_pending_per_hook:
            stale = next((d for d in lane.pending if not d.final), None)
            if stale is not None:
                lane.pending.remove(stale)
                self.dropped += 1
            elif not delivery.final:
                self.dropped += 1
                return
        lane.pending.append(delivery)
        if lane.sender is None or lane.sender.done():
            lane.sender = asyncio.create_task(self._send_lane(config.url, lane), name="push-notifier")

    async def _send_lane(self, url: str, lane: Lane) -> None:
        if self._client is None:
            transport = checked_transport(self.allow_private, self.timeout_s, self.resolve)
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False, transport=transport)
        try:
            while lane.pending:
                if await self._deliver(lane.pending.popleft()):
                    self.delivered += 1
                else:
                    self.failed += 1
        finally:
            if not lane.pending and self._lanes.get(url) is lane:
                del self._lanes[url]

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
        await check_url(url, self.allow_private, self.timeout_s, self.resolve)

    async def _deliver(self, delivery: Delivery) -> bool:
        assert self._client is not None
        try:  # the scheme here; the address is checked by the transport, on the one lookup it connects by
            await check_url(delivery.config.url, allow_private=True)
        except AddressRefused as refused:
            log.warning("push not sent: %s", refused)
            return False
        body = jsonio.dumps(render_task(delivery.task, delivery.dialect))
        headers = self.headers(delivery.config)
        if self.signing_key is not None:
            headers[SIGNATURE_HEADER] = sign_notification(body, delivery.task.id, self.signing_key)
        for attempt in range(self.attempts):
            try:
                response = await self._client.post(delivery.config.url, content=body, headers=headers)
                if response.status_code < 300:
                    return True
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    log.warning("push to %s refused: HTTP %s", delivery.config.url, response.status_code)
                    return False
            except httpx.HTTPError as error:
                if isinstance(error.__cause__, ConnectionRefusedByPolicy):  # the name now points elsewhere
                    log.warning("push not sent: %s: %s", delivery.config.url, error)
                    return False
                log.info("push to %s failed (attempt %d): %s", delivery.config.url, attempt + 1, error)
            await asyncio.sleep(self.backoff_s * 2**attempt)
        return False

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued notification was tried (for shutdown and tests)."""
        senders = [lane.sender for lane in self._lanes.values() if lane.sender is not None]
        if senders:
            await asyncio.wait_for(asyncio.shield(asyncio.gather(*senders)), timeout_s)

    async def close(self) -> None:
        senders = [lane.sender for lane in self._lanes.values() if lane.sender is not None and not lane.sender.done()]
        for sender in senders:
            sender.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
