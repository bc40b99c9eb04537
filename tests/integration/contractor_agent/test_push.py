"""Push notifications: signed with the card's key, one lane per webhook, final states never dropped. Real
webhooks on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contractor_agent.identity import Identity
from contractor_agent.push import PushNotifier
from shared.a2a.dialects import Dialect
from shared.a2a.models import PushNotificationConfig, Task, TaskState, TaskStatus
from shared.runtime.serving import bind_socket
from shared.security.card_signing import signing_keys
from shared.security.push_signing import SIGNATURE_HEADER, NotificationRejected, verify_notification
from tests.conftest import RISK, StartContractor, Webhook, card_named, data_message, rpc, wait_until


def test_notifications_are_signed_with_the_key_of_the_contractors_card(start_contractor: StartContractor, webhook):
    url = start_contractor(card_named("cpu_optimised"), identity=Identity(signing_keys=[Ed25519PrivateKey.generate()]))
    keys = signing_keys(httpx.get(url + ".well-known/agent-card.json", timeout=10).json())
    params = {"id": "pushed", "message": data_message(RISK), "metadata": {"skill": "risk-assessment"}}
    rpc(url, "tasks/send", {**params, "pushNotification": {"url": webhook.url}})
    wait_until(lambda: "completed" in webhook.states())
    for (headers, body), raw in zip(webhook.received, webhook.raw, strict=True):
        claims = verify_notification(headers[SIGNATURE_HEADER.lower()], raw, keys)
        assert claims["taskId"] == body["id"] == "pushed"
    headers, raw = webhook.received[-1][0], webhook.raw[-1]
    token = headers[SIGNATURE_HEADER.lower()]
    forged = raw.replace(b'"completed"', b'"failed"')
    with pytest.raises(NotificationRejected, match="not the one that was signed"):
        verify_notification(token, forged, keys)
    with pytest.raises(NotificationRejected, match="replay"):  # the same notification, ten minutes later
        verify_notification(token, raw, keys, now=time.time() + 600)
    with pytest.raises(NotificationRejected, match="does not hold"):  # signed by a key that is not the card's
        other = Identity(signing_keys=[Ed25519PrivateKey.generate()]).publish(card_named("cpu_optimised"), url)
        verify_notification(token, raw, signing_keys(other))


def task(task_id: str, state: TaskState) -> Task:
    return Task(id=task_id, context_id="c", status=TaskStatus(state=state))


def test_a_dead_webhook_delays_no_other_webhook(webhook: Webhook):
    dead = bind_socket("127.0.0.1", 0)  # accepts connections, never answers
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/hook"

    async def scenario() -> float:
        notifier = PushNotifier(timeout_s=3.0, attempts=2, allow_private=True)
        notifier.notify(PushNotificationConfig(url=dead_url), task("a", TaskState.WORKING), Dialect.LEGACY)
        notifier.notify(PushNotificationConfig(url=dead_url), task("a", TaskState.COMPLETED), Dialect.LEGACY)
        started = time.monotonic()
        notifier.notify(PushNotificationConfig(url=webhook.url), task("b", TaskState.COMPLETED), Dialect.LEGACY)
        await asyncio.to_thread(wait_until, lambda: bool(webhook.received), 10.0)
        took = time.monotonic() - started
        await notifier.close()
        return took

    try:
        took = asyncio.run(scenario())
    finally:
        dead.close()
    assert took < 2.0, took  # not behind the dead webhook's 2 × 3 s of timeouts
    assert webhook.received[0][1]["id"] == "b"


def test_a_full_lane_drops_stale_updates_but_never_a_final_state(webhook: Webhook):
    async def scenario() -> PushNotifier:
        notifier = PushNotifier(max_pending_per_hook=2, allow_private=True)
        config = PushNotificationConfig(url=webhook.url)
        for n in range(10):  # queued before the lane's sender runs: the lane overflows
            notifier.notify(config, task(f"t{n}", TaskState.WORKING), Dialect.LEGACY)
            notifier.notify(config, task(f"t{n}", TaskState.COMPLETED), Dialect.LEGACY)
        await notifier.drain()
        await notifier.close()
        return notifier

    notifier = asyncio.run(scenario())
    finals = [body["id"] for body in (json.loads(raw) for raw in webhook.raw) if body["status"]["state"] == "completed"]
    assert finals == [f"t{n}" for n in range(10)]  # every final state, in order
    assert notifier.dropped == 10 and notifier.delivered == 10  # the ten stale "working" updates went


def test_webhooks_with_notifications_pending_are_bounded(webhook: Webhook):
    async def scenario() -> PushNotifier:
        notifier = PushNotifier(max_hooks=1, allow_private=True)
        other = PushNotificationConfig(url=webhook.url.replace("/hook", "/other"))
        notifier.notify(PushNotificationConfig(url=webhook.url), task("x", TaskState.WORKING), Dialect.LEGACY)
        notifier.notify(other, task("y", TaskState.WORKING), Dialect.LEGACY)  # a second webhook: over the bound
        notifier.notify(other, task("y", TaskState.FAILED), Dialect.LEGACY)  # ... but a final state still goes
        await notifier.drain()
        await notifier.close()
        return notifier

    notifier = asyncio.run(scenario())
    assert notifier.dropped == 1
    assert [body["status"]["state"] for _, body in webhook.received] == ["working"]  # /other answers 404: failed
    assert notifier.failed == 1


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("tasks/send", {"id": "hooked", "pushNotification": {"url": "http://127.0.0.1:9/hook"}}),
        ("tasks/sendSubscribe", {"id": "hooked-2", "pushNotification": {"url": "http://10.0.0.1/hook"}}),
        ("message/send", {"configuration": {"pushNotificationConfig": {"url": "http://169.254.169.254/"}}}),
    ],
)
def test_a_webhook_inside_a_message_is_checked_when_it_is_set(start_contractor: StartContractor, method, params):
    """A contractor that calls only public webhooks refuses a private one carried by a send as it refuses one set
    by `tasks/pushNotificationConfig/set`: at once, with the reason, and no task is made."""
    url = start_contractor(card_named("cpu_optimised"), allow_private_push=False)
    message = data_message(RISK)
    body = {**params, "message": message, "metadata": {"skill": "risk-assessment"}}
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": body}, timeout=30)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert error["code"] == -32602 and "push notification URL refused" in error["message"]
    assert httpx.get(url + "health", timeout=10).json()["load"]["running"] == 0
