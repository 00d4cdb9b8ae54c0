"""Ctrl-C at safe points only: native code that must not be interrupted half-way.

Python runs its SIGINT handler between bytecodes of the main thread, and that includes
bytecodes that compiled code calls back into: a numba kernel that unpickles an
exception object, say. A ``KeyboardInterrupt`` raised there unwinds through native
frames that do not expect it (a SIGSEGV in 4 of 5 tries on a large DP). Inside
:func:`deferred_interrupt` a Ctrl-C is only recorded; it is raised as
``KeyboardInterrupt`` once the block is left, so callers keep each block short (well
under a second) to stay responsive.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["EXITING", "LEFT_RUNNING", "deferred_interrupt", "terminate_children"]

#: Work left running in threads that placer stopped waiting for (a HiGHS solve that
#: overran its deadline or was interrupted): kept referenced so that it is not
#: destroyed under its thread, and a sign for the command line to end the process
#: with ``os._exit`` instead of a teardown that could crash under that thread.
LEFT_RUNNING: list[object] = []
#: Set once the command line has begun to exit after a Ctrl-C.
EXITING = threading.Event()


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) until the block ends, then raise ``KeyboardInterrupt``.

    Does nothing outside the main thread (signals are only handled there) or when
    SIGINT's handler is not Python's default one (someone else handles it).

    Examples
    --------
    >>> with deferred_interrupt():
    ...     total = sum(range(10))
    >>> total
    45
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    pending: list[int] = []

    def hold(signum, frame) -> None:
        pending.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending:  # the interrupt wins over whatever else the block raised
            raise KeyboardInterrupt


def terminate_children() -> None:
    """Kill this process's child processes (a MILP backend, a shape-inference worker).

    Ctrl-C at a terminal reaches them too, but ``kill -INT`` sent to placer alone does
    not, and an orphaned solver would run on until its own time limit.  Linux only (it
    reads ``/proc``); elsewhere it does nothing.
    """
    import os
    from pathlib import Path

    me = os.getpid()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            # the parent pid is the second field after the parenthesised command name
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
