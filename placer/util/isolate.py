"""Running a native call that may never return in a child process, under a time budget.

ONNX shape inference is C++ that holds the interpreter lock: on a malformed op (an
``Einsum`` equation ``....->``) it can loop forever, and while it runs Python cannot
even handle Ctrl-C.  :func:`run_isolated` runs such a call in a forked child, which
shares the parent's memory copy-on-write (nothing is sent to it), and reads back the
bytes it produces; the parent stays responsive, kills the child at the deadline or on
Ctrl-C, and never waits for it longer than that.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Callable

__all__ = ["IsolatedFailure", "IsolatedTimeout", "run_isolated"]


class IsolatedTimeout(Exception):
    """The call did not finish within its budget; the child was killed."""


class IsolatedFailure(Exception):
    """The call raised, or its process died; the message says how."""


def run_isolated(
    call: Callable[[], bytes], seconds: float, memory: int | None = None
) -> bytes:
    """``call()``, run in a forked child, its result read back within ``seconds``.

    ``memory`` bounds how many bytes of address space the child may add to what it
    inherits (an allocation past it fails in the child, whose call then raises).
    Where ``os.fork`` does not exist the call runs in this process, unbounded.

    Raises
    ------
    IsolatedTimeout
        ``seconds`` passed first (the child is killed).
    IsolatedFailure
        ``call`` raised (the message is the exception's first line) or the child died.
    KeyboardInterrupt
        Ctrl-C while waiting (the child is killed first).
    """
    if not hasattr(os, "fork"):
        return call()
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        _child(call, memory, read_end, write_end)
    os.close(write_end)
    data, status = _read_back(pid, read_end, seconds)
    if not data or os.waitstatus_to_exitcode(status) != 0:
        raise IsolatedFailure(f"the worker process ended with status {status}")
    if data[:1] == b"\x01":
        raise IsolatedFailure(data[1:].decode(errors="replace"))
    return data[1:]


def _child(call: Callable[[], bytes], memory: int | None, read_end: int, write_end: int):
    """The forked child: run ``call`` and write its result (``\\x00`` and the bytes) or
    its error (``\\x01`` and the first line) to ``write_end``; never returns."""
    status = 1
    try:
        os.close(read_end)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and kills us
        if memory is not None:
            _limit_memory(memory)
        try:
            payload = b"\x00" + call()
        except BaseException as err:  # reported to the parent, whatever it is
            lines = str(err).strip().splitlines()
            payload = b"\x01" + (lines[0] if lines else type(err).__name__).encode()
        view = memoryview(payload)
        while view:
            view = view[os.write(write_end, view) :]
        status = 0
    finally:
        os._exit(status)


def _read_back(pid: int, read_end: int, seconds: float) -> tuple[bytes, int]:
    """What child ``pid`` writes to ``read_end`` until it closes it, and its wait status;
    the child is killed if that takes over ``seconds`` or on Ctrl-C.

    Raises
    ------
    IsolatedTimeout
        ``seconds`` passed first.
    """
    deadline = time.monotonic() + seconds
    chunks: list[bytes] = []
    finished = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise IsolatedTimeout(f"did not finish within {seconds:g} s")
            ready, _, _ = select.select([read_end], [], [], min(left, 0.25))
            if not ready:
                continue
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        finished = True
    finally:
        os.close(read_end)
        if not finished:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    return b"".join(chunks), status


def _limit_memory(extra: int) -> None:
    """Cap this process's address space at what it has now plus ``extra`` bytes."""
    import resource

    with open("/proc/self/statm") as statm:  # virtual size, in pages
        size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + extra if hard == resource.RLIM_INFINITY else min(hard, size + extra)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
