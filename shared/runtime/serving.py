"""Run an ASGI app under uvicorn on a socket we bind ourselves, so the real port is known before serving."""

from __future__ import annotations

import gc
import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def public_url(sock: socket.socket, advertised_host: str | None = None) -> str:
    """The URL clients reach: the bound address, with a wildcard bind replaced by `advertised_host`."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = advertised_host or socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


# The collector's thresholds for a service in a process of its own. A long-running service keeps many objects alive
# (a contractor keeps its newest 10 000 tasks, some 300 000 objects) and allocates hundreds per request: with
# Python's default (700, 10, 10) its collections rescan the survivors every few requests. A young generation of
# 10 000 allocations, and what start-up built frozen out of every scan, make an echo contractor measurably faster
# at the same memory (the issue notes of #18 have the runs).
GC_THRESHOLDS = (10_000, 10, 10)


def serve_forever(server: uvicorn.Server, sock: socket.socket) -> None:
    """Serve on `sock` until stopped, as the service of this process: what start-up made is frozen out of the
    collector's scans and the collector runs at GC_THRESHOLDS."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    server.run(sockets=[sock])


def uvicorn_server(app: FastAPI, log_level: str = "warning") -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level=log_level,
        log_config=None,  # uvicorn's lines go through the root logger: the service's format (text or JSON)
        access_log=False,
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
    return uvicorn.Server(config)


class ServerThread:
    """`with ServerThread(app, sock) as server:` serves in a background thread until the block ends."""

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        self.sock = sock
        self.server = uvicorn_server(app)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    @property
    def url(self) -> str:
        return public_url(self.sock)

    def start(self, timeout_s: float = 30.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
