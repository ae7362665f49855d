"""Silence third-party prints that bypass Python (Blender's render log, Warp's banner)."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_fds(*fds: int):
    """Redirect the given OS file descriptors to /dev/null inside the block.

    Python exceptions still propagate. Set REPLICANTFACE_VERBOSE=1 to keep the output.
    """
    if os.environ.get("REPLICANTFACE_VERBOSE"):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(devnull, fd)
        yield
    finally:
        for fd, old in zip(fds, saved):
            os.dup2(old, fd)
            os.close(old)
        os.close(devnull)
