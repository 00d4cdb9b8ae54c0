"""Devices of one CPU socket streaming from memory at once, each in its own pinned process.

``placer calibrate --count N`` measures the memory bandwidth the ``N`` devices it
writes share (``shared_bandwidth`` in ``docs/cluster.md``): the same large ``Add`` as
its sweep's last, run by ``N`` processes at once, one per device, each pinned to its
device's cores (``os.sched_setaffinity``) with the device's intra-op threads, as the
stages of a pipeline would run.  Each process times its own repeats with the timer
the rest of calibration uses (:class:`placer.costs.sessions.Runner`), then keeps streaming,
untimed, until every process has its repeats, so that no repeat is timed on a quieter
socket than the others'.

The processes are started by ``multiprocessing`` in its ``spawn`` context, so they
are this process's own children (``forkserver``'s would be the server's, out of reach
of :func:`placer.util.interrupts.terminate_children`), and nothing of this process's state
is copied into them.  They start with SIGINT blocked and then ignore it: a Ctrl-C at a
terminal, which reaches the whole process group, is this process's to handle, and it
kills them before it lets the interrupt go on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from placer.errors import InputError
from placer.util.interrupts import deferred_interrupt

__all__ = ["StreamJob", "available_cores", "stream_together"]

#: Seconds the whole step may take before the processes are killed: each needs a
#: second or two (start-up, a session, its repeats), far less than this.
DEADLINE = 120.0
#: Seconds a process keeps streaming for the others at most (its parent gone quiet).
_LINGER = 30.0


@dataclass(frozen=True)
class StreamJob:
    """What each process runs: a serialised ONNX model, its inputs (name, shape), their
    numpy type, and the intra-op threads of one device."""

    model: bytes
    inputs: tuple[tuple[str, tuple[int, ...]], ...]
    dtype: str
    threads: int


def available_cores() -> list[int]:
    """The cores this process may run on (``os.sched_getaffinity``), ascending; every
    core the machine has where the platform cannot say."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def stream_together(job: StreamJob, device_cores: Sequence[Sequence[int]]) -> list[float]:
    """Median seconds of a run of ``job`` in each of ``len(device_cores)`` processes
    running at once, the ``i``-th pinned to ``device_cores[i]``.

    Raises
    ------
    InputError
        A process failed (the message is its error's first line), died, or the step
        took longer than :data:`DEADLINE`.
    KeyboardInterrupt
        Ctrl-C; every process is killed first.
    """
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe() for _ in device_cores]
    processes = [
        context.Process(target=_stream, args=(job, tuple(cores), child), daemon=True,
                        name=f"placer-stream-{index}")
        for index, ((_, child), cores) in enumerate(zip(pipes, device_cores, strict=True))
    ]  # fmt: skip
    ends = [parent for parent, _ in pipes]
    try:
        # a Ctrl-C while they start lands once all are started (and are killed below)
        with deferred_interrupt(), _sigint_blocked():
            for process in processes:
                process.start()
        for _, child in pipes:
            child.close()
        deadline = time.monotonic() + DEADLINE
        _gather(ends, processes, deadline, wait)  # each is ready
        _tell(ends, "go")  # one that cannot hear it has died: gathering says so
        medians = _gather(ends, processes, deadline, wait)
        _tell(ends, "stop")
        for process in processes:
            process.join(max(deadline - time.monotonic(), 0.1))
        return [float(m) for m in medians]
    finally:
        for process in processes:
            if process.pid is not None and process.exitcode is None:
                with contextlib.suppress(OSError):
                    process.kill()
                process.join()
        for end in ends:
            end.close()


def _tell(ends, message: str) -> None:
    for end in ends:
        with contextlib.suppress(OSError):
            end.send(message)


def _gather(ends, processes, deadline: float, wait) -> list[object]:
    """The next message of every process, in order; an error of any stops it all."""
    got: dict[int, object] = {}
    while len(got) < len(ends):
        left = deadline - time.monotonic()
        if left <= 0:
            raise InputError(
                f"the {len(ends)} processes measuring the shared memory bandwidth did not "
                f"finish within {DEADLINE:g} s"
            )
        waiting = [end for i, end in enumerate(ends) if i not in got]
        for end in wait(waiting, timeout=min(left, 0.25)):
            index = ends.index(end)
            try:
                kind, value = end.recv()
            except (EOFError, OSError):
                code = processes[index].exitcode
                raise InputError(
                    f"a process measuring the shared memory bandwidth ended early (status "
                    f"{code})"
                ) from None
            if kind == "error":
                raise InputError(f"measuring the shared memory bandwidth: {value}")
            got[index] = value
    return [got[i] for i in range(len(ends))]


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread: a process started meanwhile inherits the mask,
    so no Ctrl-C can reach it before it ignores SIGINT (:func:`_stream`)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    from multiprocessing import resource_tracker

    # the first spawn starts multiprocessing's resource tracker, and starting it
    # unblocks SIGINT again (it blocks SIGINT for its own start): start it first
    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stream(job: StreamJob, cores: tuple[int, ...], end) -> None:
    """One process: pin, load, say ready, time repeats on "go", send their median, then
    keep streaming until "stop" (or until the parent is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        try:
            if cores and hasattr(os, "sched_setaffinity"):
                # before onnxruntime starts its threads, which inherit it
                os.sched_setaffinity(0, cores)
            session, feeds, runner = _load(job)
            for _ in range(2):
                session.run(None, feeds)
        except Exception as err:  # reported to the parent, in one line
            from placer.util.text import first_line

            end.send(("error", first_line(err)))
            return
        end.send(("ready", None))
        if end.recv() != "go":
            return
        end.send(("median", statistics.median(runner.samples(session, feeds))))
        until = time.monotonic() + _LINGER
        while not end.poll() and time.monotonic() < until:
            session.run(None, feeds)
    except (EOFError, OSError):  # the parent is gone: nothing to report to
        return


def _load(job: StreamJob):
    """``(session, feeds, runner)`` of ``job`` on this process's CPU."""
    import numpy as np
    import onnxruntime as ort

    from placer.costs.sessions import Runner

    runner = Runner(ort, ["CPUExecutionProvider"], job.threads, "cpu")
    session = runner.session(job.model)
    # the values do not change an Add's speed; ones are quicker to make than random ones
    feeds = {name: np.ones(shape, dtype=job.dtype) for name, shape in job.inputs}
    return session, feeds, runner
