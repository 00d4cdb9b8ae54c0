"""One stage of ``placer run``: an OS process that runs its submodel in onnxruntime on its
own device, microbatch after microbatch, and hands activations on through shared memory.

Activations travel over a :class:`Channel` per pair of stages: the sender copies the
tensors into one of two memory-mapped slots (files in ``/dev/shm`` where it exists) and
sends a few bytes of metadata through a pipe; the receiver copies them out and hands the
slot back.  The copies are the transfer placer predicts (a copy reads and writes every
byte); waiting for data or for a free slot is idle time and is not counted.

The stage reports to the coordinator (:mod:`placer.runtime.runner`) through its status pipe:
``("ready",)`` once its session is built, ``("tick", m)`` after each microbatch, the
outputs of the first microbatch when asked to (``--check``), and ``("done", records)``
or ``("error", message)``.  It ignores Ctrl-C (the coordinator stops every stage) and
dies with the coordinator (``PR_SET_PDEATHSIG`` on Linux), so none is ever orphaned.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

#: Slots per channel: the sender may run one microbatch ahead of its receiver.
SLOTS = 2


@dataclass(frozen=True)
class StageSpec:
    """What a stage process needs: its submodel, where it runs, what it reads and writes."""

    index: int  # in pipeline order, from 0
    device: str
    model_file: str
    providers: tuple[Any, ...]  # onnxruntime's providers, with their options
    cores: tuple[int, ...]  # pin to these (empty: no pinning)
    threads: int
    feeds: dict[str, np.ndarray]  # the graph inputs it reads
    outputs: tuple[str, ...]  # what its session computes
    graph_outputs: tuple[str, ...]  # those of ``outputs`` the model returns
    iterations: int  # warm-up plus measured microbatches
    check: bool  # send the first microbatch's graph outputs to the coordinator
    slow: float = 0.0  # seconds of extra sleep per microbatch (tests: a hung stage)
    crash_at: int = -1  # microbatch at which to die (tests: a crashed stage)


@dataclass
class Channel:
    """One direction of activations from stage ``source`` to stage ``target``.

    ``data`` carries ``(slot, size, [(name, dtype, shape, offset)])`` to the target;
    ``acks`` carries freed slot numbers back.  ``names`` are the tensors it carries.
    """

    source: int
    target: int
    names: tuple[str, ...]
    prefix: str  # slot files are f"{prefix}.{slot}"
    data: Connection
    acks: Connection
    _maps: dict[int, tuple[int, mmap.mmap]] = field(default_factory=dict)
    _busy: list[bool] = field(default_factory=lambda: [False] * SLOTS)
    _next: int = 0

    def _map(self, slot: int, size: int, create: bool) -> mmap.mmap:
        held = self._maps.get(slot)
        if held is not None and held[0] >= size:
            return held[1]
        if held is not None:
            held[1].close()
        path = f"{self.prefix}.{slot}"
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
        try:
            if create and os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            mapped = mmap.mmap(fd, max(size, 1))
        finally:
            os.close(fd)
        self._maps[slot] = (size, mapped)
        return mapped

    def send(self, values: dict[str, np.ndarray]) -> float:
        """Copy ``values`` into a free slot and tell the target; returns the seconds
        spent copying (not those spent waiting for a free slot)."""
        slot = self._next
        self._next = (slot + 1) % SLOTS
        while self._busy[slot]:
            self._busy[self.acks.recv()] = False
        start = time.perf_counter()
        layout, offset = [], 0
        arrays = [np.ascontiguousarray(values[name]) for name in self.names]
        for name, array in zip(self.names, arrays, strict=True):
            layout.append((name, array.dtype.str, array.shape, offset))
            offset += (array.nbytes + 63) // 64 * 64
        mapped = self._map(slot, offset, create=True)
        for (_, _, _, at), array in zip(layout, arrays, strict=True):
            np.frombuffer(mapped, np.uint8, array.nbytes, at)[:] = array.reshape(-1).view(
                np.uint8
            )
        self._busy[slot] = True
        self.data.send((slot, offset, layout))
        return time.perf_counter() - start

    def receive(self) -> tuple[dict[str, np.ndarray], float]:
        """Wait for the next microbatch's tensors; returns them and the seconds spent
        copying them out."""
        self.data.poll(None)
        start = time.perf_counter()
        slot, size, layout = self.data.recv()
        mapped = self._map(slot, size, create=False)
        values = {}
        for name, dtype, shape, at in layout:
            count = int(np.prod(shape, dtype=np.int64))
            values[name] = np.frombuffer(mapped, np.dtype(dtype), count, at).reshape(shape).copy()
        self.acks.send(slot)
        return values, time.perf_counter() - start

    def close(self) -> None:
        for _, mapped in self._maps.values():
            with contextlib.suppress(BufferError):
                mapped.close()
        self._maps.clear()


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (no orphans)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def stage_main(
    spec: StageSpec, inbound: list[Channel], outbound: list[Channel], status: Connection
) -> None:
    """The body of a stage process (the target of :class:`multiprocessing.Process`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator stops the stages
    _die_with_parent()
    try:
        _run(spec, inbound, outbound, status)
    except BaseException as err:  # reported to the coordinator, which names the stage
        with contextlib.suppress(Exception):
            text = str(err).strip().splitlines()
            status.send(("error", f"{type(err).__name__}: {text[0] if text else ''}"))
        raise SystemExit(1) from None
    finally:
        for channel in (*inbound, *outbound):
            channel.close()


def _run(spec: StageSpec, inbound, outbound, status: Connection) -> None:
    if spec.cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, spec.cores)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = spec.threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(spec.model_file, options, providers=list(spec.providers))
    wanted = [i.name for i in session.get_inputs()]
    status.send(("ready",))
    if status.recv() != "go":
        return
    records = []
    clock = time.perf_counter
    for m in range(spec.iterations):
        if m == spec.crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
        feeds = dict(spec.feeds)
        start = clock()
        receive = 0.0
        for channel in inbound:
            values, seconds = channel.receive()
            feeds.update(values)
            receive += seconds
        began, cpu = clock(), time.process_time()
        results = session.run(list(spec.outputs), {name: feeds[name] for name in wanted})
        compute, cpu = clock() - began, time.process_time() - cpu
        if spec.slow:
            time.sleep(spec.slow)
        values = dict(zip(spec.outputs, results, strict=True))
        send = sum(channel.send(values) for channel in outbound)
        records.append((m, start, clock(), receive, compute, cpu, send))
        status.send(("tick", m))
        if spec.check and m == 0 and spec.graph_outputs:
            status.send(("outputs", {name: values[name] for name in spec.graph_outputs}))
    status.send(("done", records))
    status.recv()  # held until the coordinator has read everything, so slots stay valid
