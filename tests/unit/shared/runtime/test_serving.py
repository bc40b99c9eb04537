"""A service in a process of its own: served on its socket with the collector tuned for a long-running process."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from shared.runtime.serving import GC_THRESHOLDS, bind_socket, serve_forever, uvicorn_server


def test_serving_forever_freezes_what_start_up_made_and_sets_the_collectors_thresholds():
    before = gc.get_threshold()
    server = uvicorn_server(FastAPI())
    server.should_exit = True  # starts, then stops at once
    sock = bind_socket()
    try:
        serve_forever(server, sock)
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        sock.close()
