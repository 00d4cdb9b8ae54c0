"""``placer run``: run a plan as a real pipeline of stage processes, and set what it
measures beside what placer predicted, as PipeDream checks its planner [1]_.

The model is split as ``placer split`` splits it (:func:`placer.outputs.split.build_split`),
into a temporary directory; one process per stage (:mod:`placer.runtime.stage_worker`) runs its
submodel in onnxruntime on its device: a CPU device pinned to the cores its cluster
group gives it (``cores:``, docs/cluster.md) with one onnxruntime thread per core, an
accelerator through onnxruntime's CUDA provider.  Microbatches stream through: a few
to warm up, then the measured ones.  Per stage placer reports the median time per
microbatch spent receiving, computing and sending (wall time, and the process's CPU
time while it computes), against the stage's predicted load; for the whole pipeline the
throughput (samples per second between the first and the last measured microbatch's
completion) against the pipeline simulator's steady state (:mod:`placer.outputs.simulate`),
and the bottleneck measured against the one predicted.

A stage that fails, dies or stops progressing ends the run with a one-line error that
names it; every stage is stopped before ``run_plan`` returns or raises, Ctrl-C
included.

References
----------
.. [1] Narayanan et al. (2019). PipeDream: Generalized Pipeline Parallelism for DNN
   Training. SOSP.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import numpy as np

from placer.errors import InputError, PlanFormatError, StageFailed
from placer.outputs.result import PlacementResult
from placer.outputs.simulate import Schedule, simulate
from placer.outputs.split import Split
from placer.problem import DeviceClass
from placer.runtime.stage_worker import Channel, StageSpec, stage_main

#: Seconds ``placer run`` waits for any stage to make progress before it calls the
#: furthest-behind stage hung (``--timeout``).
DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class RunOptions:
    """How to run: microbatches measured and warm-up ones, inputs, checks, patience."""

    microbatches: int = 32
    warmup: int = 4
    inputs: Mapping[str, np.ndarray] | None = None  # --inputs FILE.npz, checked
    check: bool = False
    timeout: float = DEFAULT_TIMEOUT
    # tests only: make a stage hang or die
    slow_stage: int = -1
    crash_stage: int = -1


@dataclass(frozen=True)
class StageRun:
    """One stage's prediction and medians of what it measured (seconds per microbatch)."""

    device: str
    predicted: float
    receive: float
    compute: float
    send: float
    cpu: float

    @property
    def measured(self) -> float:
        return self.receive + self.compute + self.send

    @property
    def transfer(self) -> float:
        return self.receive + self.send

    @property
    def error(self) -> float:
        """Relative error of the prediction, ``(predicted - measured) / measured``."""
        return (self.predicted - self.measured) / self.measured if self.measured > 0 else 0.0


@dataclass(frozen=True)
class RunReport:
    """What ``placer run`` measured beside what placer predicted."""

    model: str
    samples_per_step: int
    microbatches: int
    warmup: int
    predicted_throughput: float  # the simulator's steady state, samples/s
    max_load_throughput: float  # samples / max-load
    predicted_bottleneck: str
    measured_throughput: float
    stages: tuple[StageRun, ...]
    wall_seconds: float
    check_error: float | None = None  # largest scaled difference from the whole model
    cores: int = 0  # cores this process may run on (0: not known)

    @property
    def measured_bottleneck(self) -> str:
        return max(self.stages, key=lambda s: s.measured).device

    @property
    def period(self) -> float:
        """Seconds between microbatches leaving the pipeline, measured."""
        measured = self.measured_throughput
        return self.samples_per_step / measured if measured > 0 else 0.0

    @property
    def outside(self) -> float:
        """How much longer the measured period is than the slowest stage's measured
        receive, compute and send: time the stages spent outside all three (waiting for
        the coordinator, or for a core), as a share of that stage's time."""
        slowest = max((s.measured for s in self.stages), default=0.0)
        return self.period / slowest - 1.0 if slowest > 0 and self.period > 0 else 0.0

    @property
    def throughput_error(self) -> float:
        measured = self.measured_throughput
        return (self.predicted_throughput - measured) / measured if measured > 0 else 0.0

    @property
    def bottleneck_clear(self) -> bool:
        """Whether the predicted loads single out the bottleneck: its load is more than
        5% above every other stage's."""
        loads = sorted((s.predicted for s in self.stages), reverse=True)
        return len(loads) < 2 or loads[0] > 1.05 * loads[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "samples_per_step": self.samples_per_step,
            "microbatches": self.microbatches,
            "warmup": self.warmup,
            "predicted": {
                "throughput": self.predicted_throughput,
                "max_load_throughput": self.max_load_throughput,
                "bottleneck": self.predicted_bottleneck,
                "stages": [{"device": s.device, "seconds": s.predicted} for s in self.stages],
            },
            "measured": {
                "throughput": self.measured_throughput,
                "bottleneck": self.measured_bottleneck,
                "stages": [
                    {
                        "device": s.device,
                        "seconds": s.measured,
                        "cpu_seconds": s.cpu,
                        "compute_seconds": s.compute,
                        "transfer_seconds": s.transfer,
                        "error": s.error,
                    }
                    for s in self.stages
                ],
            },
            "throughput_error": self.throughput_error,
            "bottleneck_clear": self.bottleneck_clear,
            "seconds_per_microbatch": self.period,
            "outside_stages": self.outside,
            "cores": self.cores,
            "check": (
                None if self.check_error is None
                else {"max_scaled_difference": self.check_error}
            ),
            "wall_seconds": self.wall_seconds,
        }


#: ``--check``: outputs agree when ``|pipeline - whole| <= CHECK_TOLERANCE * max(1, |whole|)``.
CHECK_TOLERANCE = 1e-5


def seconds_per_unit(unit: str) -> float:
    """Seconds in one of the problem's time units ("s" for ONNX models)."""
    return {"s": 1.0, "ms": 1e-3, "us": 1e-6}.get(unit, 1.0)


def check_runnable(result: PlacementResult, plan: str) -> None:
    """Refuse a plan ``placer run`` cannot execute.

    Raises
    ------
    PlanFormatError
        A training plan (``run`` executes inference), or one that is not a pipeline.
    """
    if any(op.backward for op in result.problem.ops):
        raise PlanFormatError(
            f"{plan}: a training plan; placer run executes inference plans only (place the "
            "model with --mode inference)"
        )
    if not result.evaluation.contiguous:
        raise PlanFormatError(f"{plan}: the plan is not contiguous, so it is no pipeline to run")


def _providers(result: PlacementResult, cluster) -> list[tuple[tuple, tuple[int, ...], int]]:
    """Per stage in pipeline order: onnxruntime providers, cores to pin to, threads.

    Raises
    ------
    InputError
        A stage on an accelerator where onnxruntime has no CUDA provider.
    """
    import onnxruntime as ort

    problem = result.problem
    accelerators: dict[str, int] = {}  # device name -> CUDA device id, in file order
    for device in problem.devices:
        if problem.kinds[device.kind].device_class is DeviceClass.ACCELERATOR:
            accelerators[device.name] = len(accelerators)
    chosen = []
    for stage in result.evaluation.stages:
        device = problem.devices[stage.device]
        kind = problem.kinds[device.kind]
        index = int(device.name.rsplit(":", 1)[1])
        if kind.device_class is DeviceClass.ACCELERATOR:
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise InputError(
                    f"stage on {device.name} needs a GPU, and this onnxruntime has no "
                    "CUDAExecutionProvider; run a plan for this machine's devices (placer "
                    "calibrate --count N writes a cluster of them)"
                )
            cuda = ("CUDAExecutionProvider", {"device_id": accelerators[device.name]})
            chosen.append(((cuda, "CPUExecutionProvider"), (), 1))
            continue
        cores: tuple[int, ...] = ()
        if cluster is not None:
            with contextlib.suppress(KeyError):
                cores = tuple(cluster.group(kind.name).device_cores(index))
        chosen.append((("CPUExecutionProvider",), cores, max(1, len(cores))))
    return chosen


def make_feeds(split: Split, model: Path, inputs: Mapping[str, np.ndarray] | None) -> dict:
    """The graph inputs: ``inputs`` (checked against the model's inputs and the shapes
    the plan was costed at), else random tensors of those shapes.

    Raises
    ------
    InputError
        ``inputs`` lacks an input, has one the model does not take, or one of another
        shape or dtype.
    """
    from placer.costs.profiling import _feeds
    from placer.frontends.onnx_graph import read_model_with_weights

    main = read_model_with_weights(model).graph
    made = _feeds(main, split.input_shapes, model)
    if inputs is None:
        return made
    extra = sorted(set(inputs) - set(made))
    if extra:
        raise InputError(f"--inputs: the model has no input named {extra[0]!r}")
    for name, value in made.items():
        if name not in inputs:
            raise InputError(f"--inputs: no array for the model's input {name!r}")
        given = inputs[name]
        if tuple(given.shape) != tuple(value.shape):
            raise InputError(
                f"--inputs: {name!r} has shape {tuple(given.shape)}, and the plan was made "
                f"for {tuple(value.shape)}"
            )
        if given.dtype != value.dtype:
            raise InputError(f"--inputs: {name!r} is {given.dtype}, the model takes {value.dtype}")
    return {name: np.asarray(inputs[name]) for name in made}


def run_plan(
    result: PlacementResult,
    split: Split,
    model: Path,
    cluster,
    options: RunOptions,
    progress: Callable[[str, int, int], None] | None = None,
) -> RunReport:
    """Run ``split`` (the submodels of ``result``'s plan) as a pipeline of processes.

    Parameters
    ----------
    result : PlacementResult
        The plan evaluated for the model (its stages in pipeline order).
    split : Split
        The plan's submodels, in the same order.
    model : Path
        The model file (for its inputs and ``--check``).
    cluster : Cluster or None
        Where the plan's devices are (their ``cores``).
    options : RunOptions
    progress : callable, optional
        Told ``(what, done, total)`` as microbatches complete.

    Returns
    -------
    RunReport

    Raises
    ------
    InputError
        Inputs that do not fit, a device this machine lacks.
    StageFailed
        A stage failed, died or hung (the message names it).
    """
    problem, evaluation = result.problem, result.evaluation
    stages = evaluation.stages
    if len(stages) != len(split.manifest.stages):
        raise PlanFormatError("the split and the plan disagree on the stages")  # internal
    placing = _providers(result, cluster)
    feeds = make_feeds(split, model, options.inputs)
    unit = seconds_per_unit(problem.time_unit)
    # the steady state does not depend on how many microbatches are simulated
    simulated = simulate(problem, result.placement, evaluation, 16, Schedule.STREAM)
    total = options.warmup + options.microbatches
    context = multiprocessing.get_context("spawn")
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    began = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="placer-run-", ignore_cleanup_errors=True) as files,
        tempfile.TemporaryDirectory(prefix="placer-run-", dir=shm,
                                    ignore_cleanup_errors=True) as slots,  # fmt: skip
    ):
        channels = _channels(split, context, slots)
        processes, statuses = [], []
        try:
            specs = _specs(split, placing, feeds, files, options)
            for spec in specs:
                _start(spec, channels, context, processes, statuses)
            records, outputs = _coordinate(processes, statuses, split, options, total, progress)
        finally:
            _stop(processes, statuses)
    wall = time.perf_counter() - began

    runs, throughput = _measured(problem, stages, records, options)
    check_error = _compare(model, feeds, outputs) if options.check else None
    bottleneck = evaluation.bottleneck
    return RunReport(
        model=model.name,
        samples_per_step=problem.samples_per_step,
        microbatches=options.microbatches,
        warmup=options.warmup,
        predicted_throughput=simulated.steady_throughput / unit,
        max_load_throughput=result.throughput / unit,
        predicted_bottleneck=problem.devices[bottleneck.device].name if bottleneck else "",
        measured_throughput=throughput,
        stages=tuple(runs),
        wall_seconds=wall,
        check_error=check_error,
        cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0,
    )


def _specs(split: Split, placing, feeds, files: str, options: RunOptions) -> list[StageSpec]:
    """What each stage process runs: its submodel (written under ``files``), device,
    cores and threads (``placing``), graph inputs and outputs."""
    graph_outputs = set(split.manifest.graph_outputs)
    total = options.warmup + options.microbatches
    specs = []
    for s, (stage, (providers, cores, threads)) in enumerate(
        zip(split.manifest.stages, placing, strict=True)
    ):
        path = Path(files, stage.file)
        path.write_bytes(split.contents[s])
        specs.append(StageSpec(
            index=s, device=stage.device, model_file=str(path), providers=providers,
            cores=cores, threads=threads,
            feeds={n: feeds[n] for n in stage.inputs if n in feeds},
            outputs=stage.outputs,
            graph_outputs=tuple(n for n in stage.outputs if n in graph_outputs),
            iterations=total, check=options.check,
            slow=3600.0 if s == options.slow_stage else 0.0,
            crash_at=1 if s == options.crash_stage else -1,
        ))  # fmt: skip
    return specs


def _start(spec: StageSpec, channels, context, processes: list, statuses: list) -> None:
    """Start the process of stage ``spec`` with its channels; add it and the parent's
    end of its status pipe to ``processes`` and ``statuses``."""
    s = spec.index
    inbound = [rx for (a, b), (_, rx) in sorted(channels.items()) if b == s]
    outbound = [tx for (a, b), (tx, _) in sorted(channels.items()) if a == s]
    mine, theirs = context.Pipe()
    process = context.Process(
        target=stage_main, args=(spec, inbound, outbound, theirs),
        name=f"placer stage {s + 1}", daemon=True,
    )  # fmt: skip
    process.start()
    theirs.close()
    processes.append(process)
    statuses.append(mine)


def _channels(split: Split, context, slots: str) -> dict[tuple[int, int], tuple[Channel, Channel]]:
    """One channel per (producer, consumer) pair of stages, in pipeline order: its two
    ends (sender, receiver), with their slots under ``slots``."""
    produced = {name: s for s, stage in enumerate(split.manifest.stages) for name in stage.outputs}
    channels: dict[tuple[int, int], tuple[Channel, Channel]] = {}
    for b, stage in enumerate(split.manifest.stages):
        by_source: dict[int, list[str]] = {}
        for name in stage.inputs:
            if name in produced:
                by_source.setdefault(produced[name], []).append(name)
        for a, names in sorted(by_source.items()):
            data_r, data_w = context.Pipe(duplex=False)
            ack_r, ack_w = context.Pipe(duplex=False)
            prefix = str(Path(slots, f"{a}-{b}"))
            sender = Channel(a, b, tuple(names), prefix, data_w, ack_r)
            receiver = Channel(a, b, tuple(names), prefix, data_r, ack_w)
            channels[(a, b)] = (sender, receiver)
    return channels


def _measured(problem, stages, records, options: RunOptions) -> tuple[list[StageRun], float]:
    """Each stage's medians over the measured microbatches (after the warm-up), and the
    samples per second between the completions of the first and last of them."""
    total = options.warmup + options.microbatches
    measured = slice(options.warmup, total)
    unit = seconds_per_unit(problem.time_unit)
    runs = []
    for s, stage in enumerate(stages):
        rows = records[s][measured]
        runs.append(
            StageRun(
                device=problem.devices[stage.device].name,
                predicted=stage.load * unit,
                receive=statistics.median(r[3] for r in rows),
                compute=statistics.median(r[4] for r in rows),
                send=statistics.median(r[6] for r in rows),
                cpu=statistics.median(r[5] for r in rows),
            )
        )
    done = [max(records[s][m][2] for s in range(len(stages))) for m in range(total)][measured]
    span = done[-1] - done[0]
    samples = problem.samples_per_step
    throughput = samples * (len(done) - 1) / span if len(done) > 1 and span > 0 else 0.0
    if len(done) == 1:  # one measured microbatch: its own time through the pipeline
        first = min(records[s][options.warmup][1] for s in range(len(stages)))
        throughput = samples / max(done[0] - first, 1e-12)
    return runs, throughput


def _name(split: Split, s: int) -> str:
    return f"stage {s + 1} ({split.manifest.stages[s].device})"


@dataclass
class _Follow:
    """What the coordinator knows of the stages: which are ready, how far each has got,
    their records once done, and the pipeline's outputs."""

    split: Split
    ready: list[bool]
    finished: list[list | None]
    ticks: list[int]
    outputs: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, split: Split, count: int) -> _Follow:
        return cls(split, [False] * count, [None] * count, [-1] * count)

    def handle(self, message, s: int) -> None:
        """Take stage ``s``'s ``message``.

        Raises
        ------
        StageFailed
            The stage reported an error.
        """
        kind = message[0]
        if kind == "ready":
            self.ready[s] = True
        elif kind == "tick":
            self.ticks[s] = message[1]
        elif kind == "outputs":
            self.outputs.update(message[1])
        elif kind == "done":
            self.finished[s] = message[1]
        elif kind == "error":
            raise StageFailed(f"{_name(self.split, s)} failed: {message[1]}; stopped every stage")

    def last_words(self, conn, s: int) -> None:
        """Read what stage ``s`` said before it ended."""
        while self.finished[s] is None:
            try:
                if not conn.poll():
                    break
                message = conn.recv()
            except (EOFError, OSError):
                break
            self.handle(message, s)


def _coordinate(processes, statuses, split: Split, options: RunOptions, total: int, progress):
    """Start the stages together, follow them to the end, and collect their records.

    Raises
    ------
    StageFailed
        A stage reported an error, exited, or no stage progressed for ``options.timeout``.
    """
    follow = _Follow.of(split, len(processes))
    finished = follow.finished
    started = False
    last = time.monotonic()
    by_conn = {conn: s for s, conn in enumerate(statuses)}
    by_sentinel = {p.sentinel: s for s, p in enumerate(processes)}
    while any(f is None for f in finished):
        left = options.timeout - (time.monotonic() - last)
        if left <= 0:
            _no_progress(follow, options, started, total)
        waiting = [c for c, s in by_conn.items() if finished[s] is None]
        waiting += [x for x, s in by_sentinel.items() if finished[s] is None]
        for item in wait(waiting, timeout=min(left, 0.5)):
            if item in by_sentinel:
                s = by_sentinel[item]
                follow.last_words(statuses[s], s)
                if finished[s] is None:
                    _died(processes[s], split, s)
                continue
            s = by_conn[item]
            try:
                message = item.recv()
            except (EOFError, OSError):
                continue  # its sentinel tells how it ended
            follow.handle(message, s)
            last = time.monotonic()
            if message[0] == "tick" and progress is not None:
                progress("microbatches", min(follow.ticks) + 1, total)
        if not started and all(follow.ready):
            for conn in statuses:
                conn.send("go")
            started = True
            last = time.monotonic()
    return finished, follow.outputs


def _no_progress(follow: _Follow, options: RunOptions, started: bool, total: int) -> None:
    """Raise :class:`StageFailed` for the stage furthest behind."""
    ticks = follow.ticks
    behind = min(range(len(ticks)), key=lambda s: (ticks[s], s))
    what = "starting" if not started else f"microbatch {ticks[behind] + 2} of {total}"
    raise StageFailed(
        f"{_name(follow.split, behind)} made no progress for {options.timeout:g} s "
        f"({what}); stopped every stage (--timeout sets the patience)"
    )


def _died(process, split: Split, s: int) -> None:
    """Raise :class:`StageFailed` for stage ``s``, whose process has ended."""
    process.join(1.0)  # its sentinel is ready: it has ended
    code = process.exitcode
    how = f"signal {-code}" if code is not None and code < 0 else f"status {code}"
    raise StageFailed(f"{_name(split, s)} died ({how}); stopped every stage")


def _stop(processes, statuses) -> None:
    """Release every stage and make sure none outlives the run (within about a second)."""
    for conn in statuses:
        with contextlib.suppress(OSError, ValueError):
            conn.send("stop")
    deadline = time.monotonic() + 0.25  # a stage mid-microbatch reads "stop" too late
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + 0.5
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1.0)
    for conn in statuses:
        conn.close()


def _compare(model: Path, feeds: dict, outputs: dict[str, np.ndarray]) -> float:
    """The largest ``|pipeline - whole| / max(1, |whole|)`` over the model's outputs,
    the whole model run in one onnxruntime session on the same inputs.

    Raises
    ------
    StageFailed
        An output the pipeline did not return.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    whole = session.run(names, {i.name: feeds[i.name] for i in session.get_inputs()})
    worst = 0.0
    for name, expected in zip(names, whole, strict=True):
        if name not in outputs:
            raise StageFailed(f"--check: the pipeline returned no {name!r}")
        got = np.asarray(outputs[name], dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        if got.shape != expected.shape:
            raise StageFailed(f"--check: {name!r} has shape {got.shape}, not {expected.shape}")
        if got.size:
            scaled = np.abs(got - expected) / np.maximum(1.0, np.abs(expected))
            worst = max(worst, float(np.nanmax(scaled)))
    return worst
