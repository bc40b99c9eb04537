"""Hostile input: the client's OpenAPI fuzzed by schemathesis, the contractor's JSON-RPC fuzzed by hypothesis. Zero
5xx, zero hangs (every request has a timeout), a clear error each time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.workers.base import EchoWorker
from tests.conftest import StartContractor, card_named

# Not fuzzed: registering a contractor makes the client fetch whatever URL it is given (fuzzed URLs would leave
# this machine; the registration's input checks have their own tests), and the market's event stream never ends.
NOT_FUZZED = ["register_v1_contractors_post", "market_events_v1_events_get"]


def test_client_api_survives_schemathesis(make_client, tmp_path: Path):
    client = make_client(own_skills=set())
    excluded = [arg for operation in NOT_FUZZED for arg in ("--exclude-operation-id", operation)]
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", client.url + "openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "25", "--generation-deterministic", "--request-timeout", "20", *excluded],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated and int(generated.group(1)) > 500, run.stdout[-3000:]
    assert run.returncode == 0, run.stdout[-5000:]


METHODS = [
    "tasks/send", "tasks/sendSubscribe", "tasks/get", "tasks/cancel", "tasks/resubscribe",
    "tasks/pushNotification/set", "message/send", "message/stream", "SendMessage", "GetTask", "ListTasks",
    "CancelTask", "no/such/method",
]  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
parts = st.fixed_dictionaries(
    {"kind": st.sampled_from(["text", "data", "file", "bogus"])},
    optional={"text": st.text(max_size=200) | json_values, "data": json_values, "file": json_values},
)
messages = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "agent", "admin"]) | json_values},
    optional={"parts": st.lists(parts, max_size=3) | json_values, "messageId": st.text(max_size=20) | json_values},
)
params = st.fixed_dictionaries(
    {}, optional={"id": st.text(max_size=40) | json_values, "message": messages | json_values, "metadata": json_values}
)
envelopes = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0"]) | json_values, "method": st.sampled_from(METHODS) | json_values},
    optional={"id": st.integers() | st.text(max_size=10) | json_values, "params": params | json_values},
)


def nested(depth: int) -> bytes:
    return ('{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":' + "[" * depth + "]" * depth + "}").encode()


raw_bodies = st.one_of(
    envelopes.map(lambda e: json.dumps(e).encode()),
    st.binary(max_size=300),  # bad UTF-8, not JSON at all
    st.integers(min_value=100, max_value=5000).map(nested),  # deep nesting
    st.just(b'{"jsonrpc":"2.0","id":1,"method":"tasks/send","params":{"id":"x","message":{"role":"user","parts":'
            b'[{"kind":"text","text":"' + b"A" * 2_000_000 + b'"}]}}}'),  # a 2 MB part
    st.just(b'{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"\xed\xa0\x80"}}'),  # a lone surrogate
)  # fmt: skip


def check_reply(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 500, response.text[:500]
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        frames = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
        assert frames and all("result" in f or "error" in f for f in frames)
        return frames[0]
    reply = response.json()
    assert ("result" in reply) != ("error" in reply), reply
    if "error" in reply:
        assert isinstance(reply["error"]["code"], int) and reply["error"]["message"]
    return reply


def test_contractor_json_rpc_survives_hostile_envelopes(start_contractor: StartContractor):
    card = card_named("edge_computing")
    url = start_contractor(card, workers={skill.id: EchoWorker() for skill in card.skills})
    seen: list[int] = []

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(raw_bodies)
    def post(body: bytes) -> None:
        response = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=30)
        seen.append(response.status_code)
        check_reply(response)

    with httpx.Client():
        post()
    assert len(seen) >= 400 and max(seen) < 500
