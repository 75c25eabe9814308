"""Process helpers shared by the supervisor and the tests."""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def child_preexec() -> None:
    """Make a child die with its parent (Linux), so a killed supervisor leaves no orphans."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass
