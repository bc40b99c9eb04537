"""The official a2a-sdk client (v1.0 JSON-RPC and its v0.3 compat client) drives our contractor."""

from __future__ import annotations

import httpx
import pytest
from a2a.types.a2a_pb2 import (
    AuthenticationInfo,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError
from google.protobuf.json_format import MessageToDict

from contractor_agent.identity import Identity
from shared.security.auth import ApiKeys
from tests.conftest import (
    SdkClient,
    StartContractor,
    Webhook,
    card_named,
    data_request,
    risk_input_round_trip,
    wait_until,
)

VERSIONS = ["1.0", "0.3"]
PORTFOLIO = {"expected_returns": [0.08, 0.12], "covariance": [[0.04, 0.01], [0.01, 0.09]]}
SLOW_VAR = {"portfolio_value": 1e6, "mu": 0.0, "sigma": 0.01, "simulations": 5_000_000, "horizon_days": 50}


async def client_http(url: str) -> dict:
    async with httpx.AsyncClient(timeout=10) as http:
        return (await http.get(url)).json()


@pytest.fixture
def cpu(start_contractor: StartContractor) -> str:
    return start_contractor(card_named("cpu_optimised"))


@pytest.mark.parametrize("version", VERSIONS)
async def test_streams_a_compute_task_to_completion(cpu: str, version: str):
    async with SdkClient(cpu, version) as client:
        events = [e async for e in client.send_message(data_request(PORTFOLIO, "portfolio-optimisation"))]
        kinds = [e.WhichOneof("payload") for e in events]
        assert kinds[0] == "task"
        assert "artifact_update" in kinds
        last = events[-1]
        assert last.status_update.status.state == TaskState.TASK_STATE_COMPLETED
        artifact = next(e.artifact_update.artifact for e in events if e.HasField("artifact_update"))
        assert sum(MessageToDict(artifact.parts[0].data)["weights"]) == pytest.approx(1.0)
        task = await client.get_task(GetTaskRequest(id=last.status_update.task_id))
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert len(task.artifacts) == 1


@pytest.mark.parametrize("version", VERSIONS)
async def test_blocking_send_returns_the_finished_task(cpu: str, version: str):
    async with SdkClient(cpu, version, streaming=False) as client:
        [response] = [e async for e in client.send_message(data_request(PORTFOLIO, "portfolio-optimisation"))]
        assert response.task.status.state == TaskState.TASK_STATE_COMPLETED
        assert response.task.artifacts[0].parts[0].HasField("data")


@pytest.mark.parametrize("version", VERSIONS)
async def test_non_blocking_send_returns_at_once_and_the_task_can_be_cancelled(cpu: str, version: str):
    async with SdkClient(cpu, version, streaming=False, polling=True) as client:
        [response] = [e async for e in client.send_message(data_request(SLOW_VAR, "risk-assessment"))]
        assert response.task.status.state in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)
        cancelled = await client.cancel_task(CancelTaskRequest(id=response.task.id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(CancelTaskRequest(id=response.task.id))
        health = await client_http(cpu + "health")
    assert health["load"]["running"] == 0


@pytest.mark.parametrize("version", VERSIONS)
async def test_input_required_round_trip_on_the_same_task(cpu: str, version: str):
    async with SdkClient(cpu, version) as client:
        waiting, second = await risk_input_round_trip(client)
        assert second[-1].status_update.task_id == waiting.task_id
        result = MessageToDict(next(e for e in second if e.HasField("artifact_update")).artifact_update.artifact)
        var = result["parts"][0]["data"]
        assert var["confidence"] == 0.95
        assert var["var"] == pytest.approx(1000 * 1.6449 * 0.01, rel=0.05)


@pytest.mark.parametrize("version", VERSIONS)
async def test_resubscribe_reattaches_to_a_running_task(cpu: str, version: str):
    slow = {**SLOW_VAR, "simulations": 1_000_000, "horizon_days": 20}
    async with SdkClient(cpu, version, streaming=False, polling=True) as client:
        [response] = [e async for e in client.send_message(data_request(slow, "risk-assessment"))]
    async with SdkClient(cpu, version) as client:
        events = [e async for e in client.subscribe(SubscribeToTaskRequest(id=response.task.id))]
        assert events[0].HasField("task")
        assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
        again = [e async for e in client.subscribe(SubscribeToTaskRequest(id=response.task.id))]
        assert [e.WhichOneof("payload") for e in again] == ["task"]
        assert again[0].task.status.state == TaskState.TASK_STATE_COMPLETED


async def test_list_tasks_filters_and_pages_a_callers_own_tasks(start_contractor: StartContractor):
    keys = ApiKeys(["alice-key", "bob-key"])
    cpu = start_contractor(card_named("cpu_optimised"), identity=Identity(api_keys=keys))
    async with SdkClient(cpu, "1.0", streaming=False, token="bob-key") as bob:
        [bobs] = [e async for e in bob.send_message(data_request(PORTFOLIO, "portfolio-optimisation"))]
        assert (await bob.list_tasks(ListTasksRequest())).total_size == 1
    async with SdkClient(cpu, "1.0", streaming=False, token="alice-key") as client:
        ids = []
        for _ in range(3):
            [response] = [e async for e in client.send_message(data_request(PORTFOLIO, "portfolio-optimisation"))]
            ids.append(response.task.id)
        page = await client.list_tasks(ListTasksRequest(page_size=2))
        assert page.total_size == 3 and len(page.tasks) == 2 and page.next_page_token
        rest = await client.list_tasks(ListTasksRequest(page_size=2, page_token=page.next_page_token))
        assert {t.id for t in [*page.tasks, *rest.tasks]} == set(ids)
        done = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_COMPLETED))
        assert done.total_size == 3
        none = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_FAILED))
        assert none.total_size == 0
        with pytest.raises(TaskNotFoundError):  # bob's task, as if it did not exist
            await client.get_task(GetTaskRequest(id=bobs.task.id))


@pytest.mark.parametrize("version", VERSIONS)
async def test_push_notification_configs_and_delivery(cpu: str, version: str, webhook: Webhook):
    async with SdkClient(cpu, version, streaming=False) as client:
        [waiting] = [e async for e in client.send_message(data_request({"seed": 1}, "risk-assessment"))]
        task_id = waiting.task.id
        assert waiting.task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        config = TaskPushNotificationConfig(
            task_id=task_id,
            id="hook-1",
            url=webhook.url,
            token="tok-1",
            authentication=AuthenticationInfo(scheme="Bearer", credentials="secret-1"),
        )
        created = await client.create_task_push_notification_config(config)
        assert created.url == webhook.url
        got = await client.get_task_push_notification_config(
            GetTaskPushNotificationConfigRequest(task_id=task_id, id="hook-1")
        )
        assert got.token == "tok-1"
        listed = await client.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=task_id)
        )
        assert [c.id for c in listed.configs] == ["hook-1"]
        follow_up = data_request(
            PORTFOLIO | {"portfolio_value": 1.0, "mu": 0.0, "sigma": 0.01},
            "risk-assessment",
            task_id=task_id,
            context_id=waiting.task.context_id,
        )
        [done] = [e async for e in client.send_message(follow_up)]
        assert done.task.status.state == TaskState.TASK_STATE_COMPLETED
        wait_until(lambda: len(webhook.received) >= 2)
        headers, _ = webhook.received[-1]
        assert headers["authorization"] == "Bearer secret-1"
        assert headers["x-a2a-notification-token"] == "tok-1"
        final_state = webhook.states()[-1]
        assert final_state in ("completed", "TASK_STATE_COMPLETED")
        await client.delete_task_push_notification_config(
            DeleteTaskPushNotificationConfigRequest(task_id=task_id, id="hook-1")
        )
        with pytest.raises(TaskNotFoundError):
            await client.get_task_push_notification_config(
                GetTaskPushNotificationConfigRequest(task_id=task_id, id="hook-1")
            )


@pytest.mark.parametrize("version", VERSIONS)
async def test_unknown_task_is_an_error(cpu: str, version: str):
    async with SdkClient(cpu, version) as client:
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id="no-such-task"))
