"""Child processes that do not outlive their parent: on Linux the kernel sends the child SIGTERM when the process
that started it dies, however it dies (`kill -9` included), so a crashed client or market leaks no model server
and no contractor. Elsewhere the children are stopped by their parent's normal shutdown only."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys

PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with_parent() -> None:
    """For `subprocess.Popen(preexec_fn=...)`: runs in the child between fork and exec."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
