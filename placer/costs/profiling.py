"""Per-op times measured with onnxruntime (``placer profile``), for ``--costs``.

The model runs in onnxruntime with its profiler on (``SessionOptions.enable_profiling``),
on random inputs of the shapes placer costs it at: a few warm-up runs, then the timed
ones.  The profile gives each node's time in each run (its ``<node>_kernel_time``
events, in microseconds); each op of placer's graph gets the median over the timed runs,
in seconds.  The nodes placer folds (constants) are left out, as are nodes that copy
tensors between host and device.

- ``--fusion none`` turns onnxruntime's graph optimisations off (``ORT_DISABLE_ALL``),
  so the nodes it runs are the model's, one for one.
- ``--fusion runtime`` keeps its default level (``ORT_ENABLE_ALL``) and maps each node
  it ran back to the op it stands for (:mod:`placer.frontends.runtime_graph`): a fused
  node's time goes to one member, the others get 0.

Ops are named by :func:`placer.frontends.onnx_graph.op_name`.  onnxruntime reports each node
under its ONNX name, so a model whose names are not placer's (unnamed or repeated
names) is handed to onnxruntime with its nodes renamed to placer's.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from onnx import AttributeProto, GraphProto, ModelProto, TensorProto, numpy_helper

from placer.choices import Fusion
from placer.costs.measured import Measurement
from placer.costs.sessions import require_cuda
from placer.errors import InputError, ModelLoadError
from placer.frontends.onnx_graph import (
    OpGraph,
    folded_nodes,
    op_positions,
    read_checked_model,
    read_model_with_weights,
)
from placer.frontends.runtime_graph import COPY_OPS, attribute
from placer.util.interrupts import LEFT_RUNNING
from placer.util.text import printable

__all__ = [
    "Device",
    "Fusion",
    "Profile",
    "ProfileOptions",
    "check_device",
    "profile_model",
]

#: Integer inputs (token ids) are drawn from ``0 .. MAX_INDEX - 1``, or fewer when they
#: index a smaller table (a token-type embedding of 2 rows).
MAX_INDEX = 100
#: Largest model onnxruntime can take from memory (protobuf's limit); a model placer
#: must rename is handed over that way.
MAX_MODEL_BYTES = 2**31 - 1
#: Seconds between two looks at the worker that runs onnxruntime (Ctrl-C, progress).
POLL_SECONDS = 0.1

_KERNEL_SUFFIX = "_kernel_time"


@dataclass(frozen=True)
class Device:
    """Where the model runs: the CPU, or a CUDA GPU by index (``--device``)."""

    kind: str  # "cpu" or "cuda"
    index: int | None = None  # a CUDA device's, when given (else the first)

    @classmethod
    def parse(cls, text: str) -> Device:
        """``cpu``, ``cuda`` or ``cuda:N``.

        Raises
        ------
        InputError
            Anything else.

        Examples
        --------
        >>> Device.parse("cuda:1")
        Device(kind='cuda', index=1)
        """
        match = re.fullmatch(r"(cpu|cuda)(?::([0-9]{1,4}))?", text)
        if match is None or (match[1] == "cpu" and match[2] is not None):
            raise InputError(f"--device: expected cpu, cuda or cuda:N, got {printable(text)!r}")
        return cls(match[1], None if match[2] is None else int(match[2]))

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


@dataclass(frozen=True)
class ProfileOptions:
    """How to run the model (``placer profile`` options).

    ``device_name`` is what the ``device`` column says (a group name or a device type
    of the cluster the times are for); by default the device's kind, ``cpu`` or
    ``cuda``.
    """

    device: Device = Device("cpu")
    threads: int = 1
    repeat: int = 10
    warmup: int = 3
    fusion: Fusion = Fusion.RUNTIME
    device_name: str | None = None

    @property
    def column(self) -> str:
        return self.device_name or self.device.kind


@dataclass(frozen=True)
class Profile:
    """Measured per-op times of one model, and how they were measured.

    ``seconds`` holds each op of placer's graph that got a time, in graph order;
    ``run_seconds`` is the median wall time of a timed run; ``notes`` say what was left
    out.
    """

    measurement: Measurement
    seconds: tuple[tuple[str, float], ...]
    ops: int
    run_seconds: float
    notes: tuple[str, ...] = ()

    def to_csv(self) -> str:
        """The costs file: the header line, then ``op,device,seconds`` rows."""
        out = io.StringIO()
        out.write(self.measurement.header_line())
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["op", "device", "seconds"])
        for op, seconds in self.seconds:
            writer.writerow([op, self.measurement.device, repr(seconds)])
        return out.getvalue()


#: Called with what is being done, how many runs are done and how many there are.
Progress = Callable[[str, int, int], None]


def profile_model(
    path: str | Path,
    graph: OpGraph,
    fingerprint: str,
    batch_size: int,
    options: ProfileOptions,
    progress: Progress | None = None,
) -> Profile:
    """Run the model at ``path`` in onnxruntime and measure each op of ``graph``.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file (its external weights beside it).
    graph : OpGraph
        placer's graph of the model at the shapes to run it at (not coarsened).
    fingerprint : str
        The model's fingerprint, for the header.
    batch_size : int
        Samples per run, for the header.
    options : ProfileOptions
    progress : callable, optional
        Told ``(what, runs done, runs in all)`` as the runs go.

    Returns
    -------
    Profile

    Raises
    ------
    InputError
        ``--device cuda`` where this onnxruntime has no CUDA provider or finds no GPU;
        an input of a type placer cannot make up (strings).
    ModelLoadError
        onnxruntime cannot load or run the model, or the model must be renamed and is
        over 2 GiB with its weights.
    """
    import onnxruntime as ort

    path = Path(path)
    providers = check_device(options.device)
    main = read_checked_model(path)
    positions = op_positions(main.graph, graph, path)
    folded = folded_nodes(main.graph, graph)
    names = _names(main.graph, positions)
    source = _source(path, main, names)
    shapes = dict(graph.input_shapes)
    feeds = _feeds(main.graph, shapes, path)
    op_names = [positions[i] for i in sorted(positions)]
    left_out = {names[i] for i in folded}
    # a Ctrl-C may come while onnxruntime writes there: what cannot be removed then stays
    scratch_dir = tempfile.TemporaryDirectory(prefix="placer-profile-", ignore_cleanup_errors=True)
    with scratch_dir as scratch:
        session_options = _session_options(ort, options, Path(scratch))
        if options.device.kind == "cuda":
            # every kernel launch waits for the kernel: a node's time on the host is
            # then its time on the GPU, not the time to queue it
            os.environ.setdefault("CUDA_LAUNCH_BLOCKING", "1")
        worker = _Worker(
            lambda: ort.InferenceSession(source, session_options, providers=providers),
            feeds,
            options.warmup + options.repeat,
        )
        outcome = _wait(worker, progress)
        _check_outcome(outcome, options.device, path)
        events = _read_profile(outcome.profile_file, path)
        optimized = None
        if options.fusion is Fusion.RUNTIME:
            optimized = _read_optimized(Path(scratch) / "optimized.onnx", path)
    timed = _node_times(events, options.warmup, options.repeat, path)
    seconds, notes = _per_op(
        timed, op_names, left_out, main.graph, optimized, {n.name: n.flops for n in graph.nodes}
    )
    dtype = _dtype(main, graph.dtype_bytes)
    measurement = Measurement(
        model=path.name,
        fingerprint=fingerprint,
        device=options.column,
        threads=options.threads,
        shapes=shapes,
        batch_size=batch_size,
        dtype=dtype,
        fusion=options.fusion.value,
        onnxruntime=ort.__version__,
        repeat=options.repeat,
        warmup=options.warmup,
        provider=outcome.provider,
    )
    return Profile(
        measurement=measurement,
        seconds=tuple(seconds),
        ops=len(op_names),
        run_seconds=statistics.median(outcome.walls[options.warmup :]),
        notes=tuple(notes),
    )


def check_device(device: Device) -> list:
    """onnxruntime's providers for ``device``; call it first, to refuse at once a
    device this onnxruntime cannot run on.

    Raises
    ------
    InputError
        A CUDA device where this onnxruntime build has no CUDA provider.
    """
    import onnxruntime as ort

    if device.kind == "cpu":
        return ["CPUExecutionProvider"]
    require_cuda(ort, str(device))
    return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]


def _session_options(ort: Any, options: ProfileOptions, scratch: Path) -> Any:
    session = ort.SessionOptions()
    session.enable_profiling = True
    session.profile_file_prefix = str(scratch / "profile")
    session.intra_op_num_threads = options.threads
    session.inter_op_num_threads = 1
    session.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session.log_severity_level = 4  # fatal only: placer says what went wrong, in one line
    if options.fusion is Fusion.NONE:
        session.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    else:
        session.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # the graph it runs, to map its nodes back to the model's; weights beside it
        session.optimized_model_filepath = str(scratch / "optimized.onnx")
        session.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", "optimized.weights"
        )
        session.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
        )
    return session


# -- names -------------------------------------------------------------------------


def _names(main: GraphProto, positions: Mapping[int, str]) -> list[str]:
    """The name each node of ``main`` runs under: placer's for an op, its own for a
    folded node unless that is empty or taken (then a new one)."""
    taken = set(positions.values())
    names = []
    for index, node in enumerate(main.node):
        if index in positions:
            names.append(positions[index])
            continue
        name = node.name
        if not name or name in taken:
            name = _fresh(f"{node.name or node.op_type}.placer_folded_{index}", taken)
        taken.add(name)
        names.append(name)
    return names


def _fresh(name: str, taken: set[str]) -> str:
    candidate, n = name, 0
    while candidate in taken:
        n += 1
        candidate = f"{name}.{n}"
    return candidate


def _subgraph_nodes(graph: GraphProto):
    for node in graph.node:
        for attr in node.attribute:
            subs = [attr.g] if attr.type == AttributeProto.GRAPH else list(attr.graphs)
            for sub in subs:
                yield from sub.node
                yield from _subgraph_nodes(sub)


def _clashes(main: GraphProto, taken: set[str]) -> bool:
    """Whether a node inside a subgraph has the name of an op (its time would count)."""
    return any(node.name in taken for node in _subgraph_nodes(main))


def _source(path: Path, main: ModelProto, names: list[str]) -> str | bytes:
    """What to hand onnxruntime: the file, or, where its node names are not ``names``
    (or a subgraph's clash with them), the model renamed (``main`` too), in memory.

    Raises
    ------
    ModelLoadError
        The model must be renamed, and is over 2 GiB with its weights.
    """
    named = all(node.name == name for node, name in zip(main.graph.node, names, strict=True))
    if named and not _clashes(main.graph, set(names)):
        return str(path)
    model = read_model_with_weights(path)
    _rename(model.graph, names)
    _rename(main.graph, names)
    if model.ByteSize() > MAX_MODEL_BYTES:
        raise ModelLoadError(
            f"{path}: onnxruntime names ops by their ONNX names, and this model's are not "
            "placer's (unnamed or repeated); renaming them means handing it over in memory, "
            "which protobuf allows up to 2 GiB, and with its weights it is larger"
        )
    return model.SerializeToString()


def _rename(main: GraphProto, names: list[str]) -> None:
    """Give the nodes of ``main`` ``names``, and those of its subgraphs names no op has."""
    for node, name in zip(main.node, names, strict=True):
        node.name = name
    taken = set(names)
    for node in _subgraph_nodes(main):
        if node.name in taken:
            node.name = _fresh(f"{node.name}.placer_inner", taken)
            taken.add(node.name)


# -- inputs ------------------------------------------------------------------------


def _feeds(main: GraphProto, shapes: Mapping[str, tuple[int, ...]], path: Path) -> dict:
    """Random inputs of the shapes placer costs the model at: floats from a standard
    normal, token ids from 0 to :data:`MAX_INDEX` (fewer for a smaller table they
    index), masks (an integer or boolean input named ``*mask*``) and booleans all ones.

    Raises
    ------
    InputError
        An input of a type that cannot be made up (strings, sequences).
    """
    from onnx.helper import tensor_dtype_to_np_dtype

    rng = np.random.default_rng(0)
    feeds = {}
    weights = {init.name for init in main.initializer}
    for value in main.input:
        if value.name in weights:
            continue
        elem_type = value.type.tensor_type.elem_type if value.type.HasField("tensor_type") else 0
        if value.name not in shapes or elem_type in (0, TensorProto.STRING):
            raise InputError(
                f"{path}: input {printable(value.name)} is not a numeric tensor; placer "
                "feeds the model random numeric tensors only (profile and run)"
            )
        shape = shapes[value.name]
        dtype = tensor_dtype_to_np_dtype(elem_type)
        if elem_type == TensorProto.BOOL or (
            np.issubdtype(dtype, np.integer) and "mask" in value.name.lower()
        ):
            feeds[value.name] = np.ones(shape, dtype)
        elif np.issubdtype(dtype, np.integer):
            feeds[value.name] = rng.integers(0, _index_bound(main, value.name), shape).astype(
                dtype
            )
        else:
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def _index_bound(main: GraphProto, name: str) -> int:
    """How many values the integer input ``name`` may take: :data:`MAX_INDEX`, or the
    size of the smallest table a ``Gather`` indexes with it, where that size is known."""
    sizes = _constant_shapes(main)
    bound = MAX_INDEX
    for node in main.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == name:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            dims = sizes.get(node.input[0])
            if dims and -len(dims) <= axis < len(dims) and dims[axis] > 0:
                bound = min(bound, dims[axis])
    return bound


def _constant_shapes(main: GraphProto) -> dict[str, tuple[int, ...]]:
    """Shapes of the initializers, ``Constant`` outputs, and ``ConstantOfShape``
    outputs of a constant shape."""
    shapes = {init.name: tuple(init.dims) for init in main.initializer}
    values = {init.name: init for init in main.initializer}
    for node in main.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = tuple(attr.t.dims)
                    values[node.output[0]] = attr.t
        elif node.op_type == "ConstantOfShape" and node.input and node.input[0] in values:
            shape = values[node.input[0]]
            if math.prod(shape.dims) <= 8:
                with contextlib.suppress(Exception):  # a malformed shape: no bound from it
                    shapes[node.output[0]] = tuple(int(d) for d in numpy_helper.to_array(shape))
    return shapes


def _dtype(model: ModelProto, dtype_bytes: int) -> str:
    """The model's floating-point type as ``--dtype`` names it (``fp64`` beyond them),
    from the size placer found (:attr:`OpGraph.dtype_bytes`); 2 bytes is ``bf16`` when
    the model's weights hold more bfloat16 than float16 elements."""
    if dtype_bytes != 2:
        return "fp64" if dtype_bytes == 8 else "fp32"
    elements = {TensorProto.FLOAT16: 0, TensorProto.BFLOAT16: 0}
    for init in model.graph.initializer:
        if init.data_type in elements:
            elements[init.data_type] += math.prod(init.dims)
    return "bf16" if elements[TensorProto.BFLOAT16] > elements[TensorProto.FLOAT16] else "fp16"


# -- running -----------------------------------------------------------------------


@dataclass
class _Outcome:
    profile_file: str = ""
    provider: str = ""
    walls: list[float] | None = None
    error: BaseException | None = None
    phase: str = "loading"


class _Worker(threading.Thread):
    """Runs onnxruntime off the main thread, so that Ctrl-C stays prompt: the main
    thread waits in Python, where the signal is raised, while onnxruntime works (it
    releases the interpreter lock)."""

    def __init__(self, make_session: Callable[[], Any], feeds: dict, runs: int) -> None:
        super().__init__(name="placer-profile", daemon=True)
        self.make_session = make_session
        self.feeds = feeds
        self.runs = runs
        self.done = 0
        self.outcome = _Outcome(walls=[])
        self.finished = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            session = self.make_session()
            self.outcome.provider = session.get_providers()[0]
            self.outcome.phase = "running"
            for _ in range(self.runs):
                if self.stop.is_set():
                    return
                began = time.perf_counter()
                session.run(None, self.feeds)
                self.outcome.walls.append(time.perf_counter() - began)
                self.done += 1
            self.outcome.profile_file = session.end_profiling()
        except Exception as err:  # onnxruntime's errors: reported by the main thread
            self.outcome.error = err
        finally:
            self.finished.set()


def _wait(worker: _Worker, progress: Progress | None) -> _Outcome:
    """Start ``worker`` and wait for it, telling ``progress``; Ctrl-C leaves it to stop
    after its current run (placer exits without waiting for it)."""
    worker.start()
    try:
        while not worker.finished.wait(POLL_SECONDS):
            if progress is not None:
                what = "loading the model" if worker.outcome.phase == "loading" else "running"
                progress(what, worker.done, worker.runs)
    except KeyboardInterrupt:
        worker.stop.set()
        LEFT_RUNNING.append((worker.feeds, worker))
        raise
    if progress is not None:
        progress("running", worker.done, worker.runs)
    return worker.outcome


def _check_outcome(outcome: _Outcome, device: Device, path: Path) -> None:
    """Raise what went wrong in the worker, in one line."""
    if outcome.error is not None:
        reason = _first_line(outcome.error)
        if outcome.phase == "loading":
            raise ModelLoadError(f"{path}: onnxruntime cannot load the model: {reason}")
        raise ModelLoadError(
            f"{path}: onnxruntime failed to run the model on random inputs: {reason}"
        )
    if device.kind == "cuda" and outcome.provider != "CUDAExecutionProvider":
        raise InputError(
            f"--device {device}: no GPU: onnxruntime's CUDA provider did not start (a GPU, "
            "its driver and the CUDA and cuDNN libraries onnxruntime-gpu needs)"
        )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    # onnxruntime's messages start with "[ONNXRuntimeError] : 1 : FAIL : "
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    return printable(text.splitlines()[0][:300]) if text else type(err).__name__


# -- reading the profile -----------------------------------------------------------


def _read_profile(profile_file: str, path: Path) -> list[dict]:
    try:
        with open(profile_file, encoding="utf-8") as handle:
            events = json.load(handle)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{path}: cannot read onnxruntime's profile: {err}") from err
    if not isinstance(events, list):
        raise ModelLoadError(f"{path}: onnxruntime's profile is not a list of events")
    return events


def _read_optimized(optimized: Path, path: Path) -> GraphProto:
    import onnx

    try:
        return onnx.load(str(optimized), load_external_data=False).graph
    except Exception as err:  # onnx raises many unrelated types here
        raise ModelLoadError(
            f"{path}: cannot read the graph onnxruntime optimised: {_first_line(err)}"
        ) from err


def _node_times(
    events: list[dict], warmup: int, repeat: int, path: Path
) -> dict[str, list[float]]:
    """Microseconds of each node in each timed run (the runs after ``warmup``).

    A node event belongs to the run (a ``model_run`` session event) whose span holds it.
    """
    runs = sorted(
        (e["ts"], e["ts"] + e["dur"]) for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )  # fmt: skip
    if len(runs) != warmup + repeat:
        raise ModelLoadError(
            f"{path}: onnxruntime's profile holds {len(runs)} runs, not {warmup + repeat}; "
            "its profiler keeps at most a million events: use fewer --repeat"
        )
    starts = [start for start, _ in runs]
    times: dict[str, list[float]] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith(_KERNEL_SUFFIX):
            continue
        run = _run_of(starts, runs, event["ts"])
        if run is None or run < warmup:
            continue
        if event.get("args", {}).get("op_name") in COPY_OPS:
            continue  # a transfer, which placer charges by the cluster's links
        node = name[: -len(_KERNEL_SUFFIX)]
        times.setdefault(node, [0.0] * repeat)[run - warmup] += float(event["dur"])
    return times


def _run_of(starts: list[int], runs: list[tuple[int, int]], ts: int) -> int | None:
    import bisect

    k = bisect.bisect_right(starts, ts) - 1
    return k if k >= 0 and ts <= runs[k][1] else None


def _per_op(
    timed: dict[str, list[float]],
    op_names: list[str],
    left_out: set[str],
    main: GraphProto,
    optimized: GraphProto | None,
    flops: Mapping[str, float],
) -> tuple[list[tuple[str, float]], list[str]]:
    """Each op's median time in seconds (graph order), and notes on what was left out."""
    notes = []
    if optimized is None:
        owner = {name: name for name in op_names}
        absorbed: frozenset[str] = frozenset()
    else:
        attribution = attribute(main, optimized, flops, left_out)
        owner, absorbed = dict(attribution.owner), attribution.absorbed
    per_run: dict[str, list[float]] = {}
    unmapped = []
    for node, times in timed.items():
        op = owner.get(node)
        if op is None:
            if node not in left_out:
                unmapped.append((node, sum(times)))
            continue
        total = per_run.setdefault(op, [0.0] * len(times))
        for k, t in enumerate(times):
            total[k] += t
    rows = []
    missing = []
    for op in op_names:
        if op in per_run:
            rows.append((op, statistics.median(per_run[op]) / 1e6))
        elif op in absorbed:
            rows.append((op, 0.0))
        else:
            missing.append(op)
    if missing:
        named = ", ".join(printable(op) for op in missing[:3])
        notes.append(
            f"onnxruntime's profile has no time for {len(missing):,} of {len(op_names):,} "
            f"ops ({named}{', ...' if len(missing) > 3 else ''}); they have no row, and "
            "the cost model estimates them"
        )
    if unmapped:
        everything = sum(sum(t) for t in timed.values()) or 1.0
        share = sum(t for _, t in unmapped) / everything
        named = ", ".join(printable(n) for n, _ in unmapped[:3])
        notes.append(
            f"{len(unmapped):,} nodes onnxruntime ran map to no op of the model ({named}"
            f"{', ...' if len(unmapped) > 3 else ''}): their time, {share:.1%} of the "
            "total, is left out"
        )
    return rows, notes
