"""The end-to-end channel's cost: AES-256-GCM throughput, and encryption's overhead on a task round trip.

    python bench/crypto.py [--repeat 100]

1. A channel opened and one envelope each way sealed and opened (AES-256-GCM plus the envelope's JSON and base64)
   of 1 KB, 64 KB and 1 MB, in MB/s; raw AES-256-GCM alone beside it. Channels on one session key, as the client
   opens them (`ChannelKeys`): the key agreement once, an HKDF per channel.
2. Round trips through a real contractor (its own server thread on 127.0.0.1, over HTTP) whose worker answers a
   short request with a text artifact of 1 MB, or of 100 bytes (a small message); plaintext `tasks/send` against
   the same call sealed (a channel on the session key, encryption both ways, decryption); replies parsed as the
   client parses them (`jsonio.loads`). Interleaved in one run; the ratio is what to read (issue 18's goals: at most
   1.10 at 1 MB, 1.05 for small messages).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contractor_agent.app import create_app
from contractor_agent.build import load_card
from contractor_agent.identity import Identity
from shared.a2a.models import Artifact, Message, Part, Task, new_id
from shared.runtime import jsonio
from shared.runtime.serving import ServerThread, bind_socket
from shared.security.channel import (
    Channel,
    ChannelKeys,
    ChannelOffer,
    KeyAgreements,
    ReplayGuard,
    channel_offer,
    key_id,
)
from shared.workers.base import StatelessWorker, Worker, WorkRequest, WorkResult

ROUND_TRIPS = {"1 MB": 1024 * 1024, "small (100 bytes)": 100}


class BulkWorker(StatelessWorker):
    """Answers any request with a text artifact of `size` bytes (a report, a generated document)."""

    name = "bulk"

    def __init__(self, size: int) -> None:
        self.size = size

    async def run(self, request: WorkRequest) -> WorkResult:
        return WorkResult(artifacts=[Artifact(name="report", parts=[Part.of_text(os.urandom(self.size // 2).hex())])])


SIZES = {"1 KB": 1024, "64 KB": 64 * 1024, "1 MB": 1024 * 1024}


def throughput(repeat: int) -> list[tuple[str, float, float]]:
    server_key = X25519PrivateKey.generate()
    offer = ChannelOffer(server_key.public_key(), key_id(server_key.public_key()), True, sessions=True)
    keys, agreements = ChannelKeys(), KeyAgreements(server_key)
    rows = []
    for label, size in SIZES.items():
        text = os.urandom(size // 2).hex()
        aead, nonce, raw = AESGCM(os.urandom(32)), os.urandom(12), text.encode()
        started = time.perf_counter()
        for _ in range(repeat):
            aead.decrypt(nonce, aead.encrypt(nonce, raw, b""), b"")
        raw_s = (time.perf_counter() - started) / repeat
        started = time.perf_counter()
        for _ in range(repeat):
            client = keys.open_to(offer, new_id())
            sealed = client.seal_message(Message(role="user", parts=[Part.of_text(text)]))
            envelope = sealed.parts[0].data["coalesceE2e"]
            server, _ = Channel.accept(agreements, envelope, ReplayGuard(), sealed)
            client.open_artifacts([server.seal_artifacts([Artifact(parts=[Part.of_text(text)])])])
        sealed_s = (time.perf_counter() - started) / repeat / 2  # two envelopes per iteration
        rows.append((label, size / raw_s / 1e6, size / sealed_s / 1e6))
    return rows


def round_trips(repeat: int, size: int) -> tuple[list[float], list[float]]:
    card = load_card(os.path.join(os.path.dirname(__file__), "..", "agent_cards", "edge_computing.json"))
    identity = Identity(signing_keys=[Ed25519PrivateKey.generate()], e2e_key=X25519PrivateKey.generate())
    sock = bind_socket("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    workers: dict[str, Worker] = {skill.id: BulkWorker(size) for skill in card.skills}
    plain_s, sealed_s = [], []
    keys = ChannelKeys()  # as the client hires: one session key per contractor
    with ServerThread(create_app(card, workers, base_url=url, identity=identity), sock), httpx.Client() as http:
        offer = channel_offer(
            card.model_validate(http.get(url + ".well-known/agent-card.json").json()).capabilities.extensions
        )
        assert offer is not None

        def send(message: Message, task_id: str) -> Task:
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tasks/send",
                "params": {"id": task_id, "message": message.wire()},
            }
            reply = jsonio.loads(http.post(url, json=body, timeout=60).content)  # parsed as the client parses it
            return Task.model_validate(reply["result"])

        for i in range(repeat + 2):
            message = Message(role="user", parts=[Part.of_text("a report, please")])
            started = time.perf_counter()
            task = send(message, new_id())
            assert len(task.artifacts[0].parts[0].text or "") == size
            plain = time.perf_counter() - started
            started = time.perf_counter()
            task_id = new_id()
            channel = keys.open_to(offer, task_id)
            task = send(channel.seal_message(message), task_id)
            assert len(channel.open_artifacts(task.artifacts)[0].parts[0].text or "") == size
            sealed = time.perf_counter() - started
            if i >= 2:  # warm-up rounds left out
                plain_s.append(plain)
                sealed_s.append(sealed)
    return plain_s, sealed_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    print("| payload | raw AES-256-GCM, MB/s | sealed envelope (AES-GCM + JSON + base64), MB/s |")
    print("|---|---:|---:|")
    for label, raw, sealed in throughput(args.repeat):
        print(f"| {label} | {raw:,.0f} | {sealed:,.0f} |")
    print()
    print("| round trip (tasks/send, loopback), artifact | plaintext p50 ms | end-to-end encrypted p50 ms | ratio |")
    print("|---|---:|---:|---:|")
    for label, size in ROUND_TRIPS.items():
        plain, sealed = (statistics.median(times) for times in round_trips(args.repeat, size))
        print(f"| {label} | {plain * 1e3:.2f} | {sealed * 1e3:.2f} | {sealed / plain:.3f} |")


if __name__ == "__main__":
    main()
