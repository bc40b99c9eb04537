"""The exchange as an MCP server, driven by the official MCP SDK's own client: over Streamable HTTP at the client
service's `/mcp` and over stdio (`coalesce mcp --client URL`, a real process), with the four tools doing real work
through the market; refusals come back as tool errors with the reason; API keys guard `/mcp`."""

from __future__ import annotations

import os
import sys
from typing import Any

import httpx
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from shared.security.auth import ApiKeys
from tests.conftest import LABELS, subtask

TOOLS = {"submit_task", "get_task", "list_market", "register_contractor"}
HEADLINE = subtask(
    "sentiment-analysis",
    "Classify the sentiment of: 'Shares soar on record profits'",
    verification={"kind": "labels", "labels": LABELS},
)


async def structured(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def test_an_mcp_client_gets_a_task_done_over_streamable_http(sdk_agent, make_client):
    agent = sdk_agent()
    service = make_client(own_skills=set())
    async with Client(service.url + "mcp") as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
        seller = await structured(client, "register_contractor", card_url=agent.url, price_usd=0.002)
        assert seller["a2a_version"] == "1.0"
        done = await structured(client, "submit_task", description="tone", subtasks=[HEADLINE], wait_s=60)
        assert done["status"] == "completed"
        [sub] = done["subtasks"]
        assert sub["answer"] == ["positive"] and sub["verified"] is True
        assert sub["decision"]["action"] == "outsource" and sub["decision"]["contractor"] == seller["id"]
        assert sub["costUsd"] == 0.002
        again = await structured(client, "get_task", task_id=done["id"])
        assert again == done
        market = await structured(client, "list_market")
        assert [c["id"] for c in market["contractors"]] == [seller["id"]]

        unpriced = await client.call_tool("register_contractor", {"card_url": sdk_agent().url})
        assert unpriced.is_error and "give price_usd" in unpriced.content[0].text
        invalid = await client.call_tool("submit_task", {"description": "x", "budget_usd": -1})
        assert invalid.is_error and "budget_usd" in invalid.content[0].text
        missing = await client.call_tool("get_task", {"task_id": "no-such-task"})
        assert missing.is_error and "not found" in missing.content[0].text


async def test_an_mcp_client_gets_a_task_done_over_stdio(sdk_agent, make_client):
    agent = sdk_agent()
    service = make_client(own_skills=set())
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "coalesce.cli", "mcp", "--client", service.url], env=dict(os.environ)
    )
    async with Client(server) as client:
        seller = await structured(client, "register_contractor", card_url=agent.url, price_usd=0.002)
        done = await structured(client, "submit_task", description="tone", subtasks=[HEADLINE], wait_s=60)
        assert done["status"] == "completed" and done["subtasks"][0]["decision"]["contractor"] == seller["id"]
        assert done["subtasks"][0]["answer"] == ["positive"]
        refused = await client.call_tool("register_contractor", {"card_url": service.url + "health"})
        assert refused.is_error and "cannot register" in refused.content[0].text


def test_mcp_takes_the_services_api_keys(make_client):
    service = make_client(own_skills=set(), api_keys=ApiKeys(["k1"]))
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"accept": "application/json, text/event-stream"}
    refused = httpx.post(service.url + "mcp", json=initialize, headers=headers)
    assert refused.status_code == 401 and "error" in refused.json()
    wrong = httpx.post(service.url + "mcp", json=initialize, headers={**headers, "Authorization": "Bearer nope"})
    assert wrong.status_code == 401
