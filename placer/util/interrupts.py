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

import atexit
import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["CTRL_C", "EXITING", "LEFT_RUNNING", "deferred_interrupt", "terminate_children"]

#: Work left running in threads that placer stopped waiting for (a HiGHS solve that
#: overran its deadline or was interrupted, asked to stop): ``(object, thread)`` pairs,
#: kept referenced so that nothing is destroyed under its thread.  The command line
#: ends with ``os._exit``; a program using the library waits for them at exit
#: (:func:`_wait_for_work_left_running`), since tearing HiGHS down under its running
#: thread aborts the process.
LEFT_RUNNING: list[tuple[object, threading.Thread]] = []


@atexit.register
def _wait_for_work_left_running() -> None:
    for _, thread in LEFT_RUNNING:
        thread.join()
#: Set once the command line has begun to exit after a Ctrl-C.
EXITING = threading.Event()
#: Set when the command line's SIGINT handler raised :class:`KeyboardInterrupt`.  Native
#: code may turn that exception into another on its way out (pybind11 reports one raised
#: while it converts arguments, as highspy's ``addRow`` does, as a ``TypeError``); an
#: error that follows a Ctrl-C is then the interruption, not a failure of placer's.
CTRL_C = threading.Event()


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) while a step that must not stop half-way runs.

    A SIGINT that arrives meanwhile is recorded, and delivered to the previous handler
    when the step is over (Python's raises :class:`KeyboardInterrupt`; an enclosing
    :func:`deferred_interrupt` records it in turn), even if the step raised.  Outside
    the main thread, where no signal handler can be set (and to which Python delivers
    no SIGINT), it does nothing.

    Examples
    --------
    >>> with deferred_interrupt():
    ...     total = sum(range(10))
    >>> total
    45
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []

    def hold(signum, frame):
        received.append(frame)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        # None: a handler set outside Python, which cannot be put back; use the default
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, received[-1])
            elif previous in (signal.SIG_DFL, None):
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
