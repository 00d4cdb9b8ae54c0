"""``placer calibrate``: measure the local device in onnxruntime, per op class.

Each op class of :class:`placer.frontends.opcost.OpClass` gets a microbenchmark: small ONNX
models, built here, run by onnxruntime on the local device with warm-up runs and
repeats.  FLOPs and bytes of every benchmark node come from :func:`placer.frontends.opcost.cost_of`,
the formulas placer costs models with, so a rate measured here is exactly the rate that
reproduces the measured time under placer's own counting.  The figures:

* ``peak_flops``: the best rate of a dense kernel (a MatMul with a constant weight,
  which runtimes pre-pack, or a convolution in onnxruntime's blocked layout), so the
  ``gemm`` and ``conv`` efficiencies are close to 1 and every other class's efficiency
  is its measured rate over that peak;
* ``conv`` and ``grouped_conv`` twice: as a chain of convolutions and activations at the
  runtime's default optimisation level (onnxruntime converts them to its blocked NCHWc
  layout, 1.5 to 5 times faster here), and one by one with the optimisations off
  (``efficiency.unfused``, used by ``--fusion none``); a depthwise convolution of stride
  2 besides stride 1 (``efficiency.strided``: its rate's share); and plain convolutions
  of the GEMM shapes CNNs have (16 to 4,608 multiply-adds per output ``K``, 16 to 384
  output channels ``M``, 49 to 12,544 output positions ``N``), at batch 8 so that their
  tensors outgrow the cache as a model's do, to which
  ``rate = A · K/(K + K0) · M/(M + M0) · N/(N + N0)`` is fitted (``efficiency.half_at``,
  ``half_at_channels``, ``half_at_positions``; the class's efficiency is then ``A``
  over the peak).  ``M0``, ``N0`` and ``strided`` are charged to the plain kernels
  alone: the chains in the blocked layout are scaled by ``K0`` only, as they are
  charged;
* ``matmul`` (a product of two activations, nothing to pre-pack): at attention's shape
  (``K`` = 64) and at a linear layer's (``K`` = 768, a weight the graph computes, as
  ``--fusion none`` runs it), ``K0`` fitted to the two (``half_at``);
* ``memory_bandwidth`` and the cache: an elementwise ``Add`` over a sweep of sizes, its
  bytes moved over its time.  The smallest size gives the cache's bandwidth, the largest
  memory's; the cache's size is the largest traffic still streaming at more than the
  geometric mean of the two;
* ``movement``: Transpose (of whole rows), Concat and Gather, their bandwidth as a
  fraction of the regime's (cache or memory) for their traffic; ``transpose``: the same
  for a Transpose that moves the last axis (element by element);
* ``kernels.skip_norm``: onnxruntime's ``SkipLayerNormalization`` (bias, residual
  ``Add`` and ``LayerNormalization`` in one kernel, as the runtime fuses BERT's), the
  FLOPs placer counts for the three nodes over its time: on this kind of machine's
  CPU five times slower than the nodes one by one (left out where the runtime cannot
  run the kernel: a build without its own ops);
* ``overhead``: a chain of single-element ``Add`` nodes, its time per node beyond one;
* on a CPU, ``cores``: the first ``count × threads`` cores this process may run on,
  ``threads`` for each device; and with ``count`` of 2 or more, ``shared_bandwidth``:
  the sweep's largest ``Add`` run by ``count`` processes at once, each pinned to its
  device's cores (:mod:`placer.costs.contention`), the sum of their bytes over their times.

Times are medians of the repeats, taken in three passes over all the benchmarks on
inputs at three addresses (:data:`_PASSES`, :func:`_shifted`); where one thread runs the
benchmark (the default), its thread CPU time, which other processes on a shared machine
barely disturb.  Each
benchmark's time has that of a one-op run of a single element taken out (the run's own
cost and one op's overhead) before its rate is computed: the cost model adds the
overhead back.  The design follows the profiling-based cost models of
FlexFlow [1]_ and Alpa [2]_, which measure operators on the target device instead of
trusting datasheet peaks.

References
----------
.. [1] Jia, Zaharia, Aiken (2019). Beyond Data and Model Parallelism for Deep Neural
   Networks. MLSys.
.. [2] Zheng et al. (2022). Alpa: Automating Inter- and Intra-Operator Parallelism for
   Distributed Deep Learning. OSDI.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from placer.costs.cluster import (
    HALF_AT,
    HALF_AT_CHANNELS,
    HALF_AT_POSITIONS,
    KERNEL_KEYS,
    KERNELS,
    NESTED_EFFICIENCY,
    STRIDED,
    UNFUSED,
    narrowing,
)
from placer.costs.contention import StreamJob, available_cores, stream_together
from placer.costs.cores import format_core_list
from placer.costs.sessions import Runner, require_cuda
from placer.errors import InputError
from placer.frontends.fusion import SKIP_NORM
from placer.frontends.opcost import UNSHAPED, OpClass, ProductShape, TensorInfo, cost_of

#: The runtime calibration files are measured with (``calibration.runtime``).
RUNTIME = "onnxruntime"
_OPSET = 17
#: onnxruntime's own ops (its fused kernels).
CONTRIB_DOMAIN = "com.microsoft"
#: Total traffic (bytes read and written) of the elementwise sweep.
_SWEEP_BYTES = (48 * 2**10, 192 * 2**10, 768 * 2**10, 3 * 2**20, 12 * 2**20, 96 * 2**20)
#: Nodes in the overhead chain.
_CHAIN = 64
#: Convolutions in a chain measured at the runtime's default optimisation level.
_CONV_CHAIN = 4
#: Nodes of each elementwise chain.
_ELEMENTWISE_CHAIN = 16
#: Classes measured both ways: the runtime's optimisations change their kernels
#: (onnxruntime's blocked NCHWc convolutions), so a file gives both figures.
_SPLIT = {OpClass.CONV.value: True, OpClass.GROUPED_CONV.value: True}
#: ``--dtype``: ONNX element type, numpy type, bytes per element.
_DTYPES = {"fp32": (1, np.float32, 4), "fp16": (10, np.float16, 2)}


@dataclass(frozen=True)
class Measurement:
    """One benchmark: what it runs, its counted FLOPs and bytes, its median seconds."""

    name: str
    op_class: str
    flops: float
    bytes: float
    seconds: float
    shape: ProductShape = UNSHAPED  # the GEMM a product or convolution runs as
    #: Nodes of the op the run's time is shared by (``seconds`` is the run's time over
    #: them): a chain's run costs its own time once, the per-op overhead each node.
    nodes: int = 1


@dataclass(frozen=True)
class Setup:
    """What a calibration ran on: the device, its threads, how many such devices the
    cluster file describes and the cores they are pinned to, the data type, the timer
    and the runtime's version."""

    device: str
    threads: int
    count: int
    dtype: str
    timer: str
    runtime_version: str
    cores: tuple[int, ...] = ()  # count equal slices, one per device


@dataclass(frozen=True)
class Calibration:
    """What ``placer calibrate`` measured, and the device figures it derives."""

    setup: Setup
    peak_flops: float
    memory_bandwidth: float
    cache_bytes: float
    cache_bandwidth: float
    overhead: float
    memory_bytes: float
    efficiency: dict[str, float]
    measurements: tuple[Measurement, ...] = field(default_factory=tuple)
    shared_bandwidth: float = 0.0  # 0: not measured (one device, or not a CPU)


def calibrate(
    device: str = "cpu",
    threads: int = 1,
    count: int = 1,
    dtype: str = "fp32",
    progress: Callable[[str, int, int], None] | None = None,
) -> Calibration:
    """Measure the local ``device`` (``cpu`` or ``cuda[:N]``) with ``threads`` threads,
    at ``dtype`` (``fp32``; ``fp16`` on CUDA only), for a group of ``count`` such
    devices.  ``progress(step, done, total)`` is called before each benchmark.

    Raises
    ------
    InputError
        ``device`` names no device onnxruntime can run here (no CUDA provider in this
        build, or no GPU), or ``dtype`` is not measured on it, or this process may run
        on fewer than ``count × threads`` CPU cores.
    """
    import onnxruntime as ort

    providers = _providers(device, ort)
    if dtype not in _DTYPES or (dtype != "fp32" and device == "cpu"):
        raise InputError(
            f"--dtype {dtype}: calibrate measures fp32 on cpu (onnxruntime's CPU provider "
            "has no fp16 kernels for most ops) and fp32 or fp16 on cuda"
        )
    cores = _cores(count, threads) if device == "cpu" else ()
    runner = Runner(ort, providers, threads, device)
    benches = _benchmarks(dtype)
    together = count > 1 and bool(cores)  # a step more: the devices streaming at once
    timed = _PASSES * len(benches)
    steps = timed + together
    shared: list[Measurement] = []
    if together:  # first: what fails in the processes it starts fails within a second
        largest = next(b for b in benches if b.name == f"Add {_SWEEP_BYTES[-1]} B")
        if progress is not None:
            progress(f"{largest.name} on {count} devices at once", 0, steps)
        shared = _shared(largest, threads, count, cores)
    sessions: list[object] = [None] * len(benches)
    lacking: set[int] = set()  # a runtime's own kernel this build or device cannot run
    samples: list[list[float]] = [[] for _ in benches]
    for pass_ in range(_PASSES):
        for index, bench in enumerate(benches):
            if progress is not None:
                progress(bench.name, together + pass_ * len(benches) + index, steps)
            if index in lacking:
                continue
            if sessions[index] is None:
                try:
                    sessions[index] = runner.session(bench.model, bench.optimised)
                except InputError:
                    if not bench.op_class.startswith(KERNELS):
                        raise
                    lacking.add(index)  # no figure: its nodes are charged their classes
                    continue
            session, feeds = sessions[index], _shifted(bench.feeds, pass_)
            for _ in range(2 if pass_ == 0 else 1):  # warm-up
                session.run(None, feeds)
            samples[index] += runner.samples(session, feeds, share=1 / _PASSES)
    sessions.clear()
    results: list[Measurement] = []
    for index, (bench, times) in enumerate(zip(benches, samples, strict=True)):
        if index in lacking:
            continue
        seconds = statistics.median(times) / bench.nodes
        kind = f"{UNFUSED}{bench.op_class}" if _SPLIT.get(bench.op_class) and not bench.optimised \
            else bench.op_class
        results.append(Measurement(bench.name, kind, bench.flops, bench.bytes, seconds,
                                   bench.shape, bench.nodes))  # fmt: skip
    results += shared
    if progress is not None:
        progress("done", steps, steps)
    setup = Setup(device, threads, count, dtype, runner.timer, ort.__version__, cores)
    return _derive(setup, results)


#: Passes over the benchmarks, each taking a third of a benchmark's repeats, pooled for
#: its median: a benchmark is measured at three moments of the calibration, not in one
#: burst (this shared machine's rates drift over seconds), and on inputs at three
#: addresses (:func:`_shifted`).
_PASSES = 3
#: Bytes between where one pass's inputs start in a page and the next's: a page and 17
#: cache lines, so that each pass meets other cache sets.
_SHIFT = 4096 + 17 * 64


def _shifted(feeds: dict[str, np.ndarray], pass_: int) -> dict[str, np.ndarray]:
    """``feeds`` copied to start ``pass_ × _SHIFT`` bytes past a page boundary.  A
    kernel's time depends on where its tensors lie: one depthwise convolution took 3.6
    to 8.3 ms here as its input moved by 0 to 8 KiB, so a median over one placement
    would charge the cost model with that placement's luck."""
    shifted = {}
    for name, array in feeds.items():
        start = pass_ * _SHIFT
        raw = np.empty(array.nbytes + start + 4096, dtype=np.uint8)
        start += -raw.ctypes.data % 4096  # to the page boundary first
        copy = raw[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
        copy[...] = array
        shifted[name] = copy
    return shifted


def _cores(count: int, threads: int) -> tuple[int, ...]:
    """The cores ``count`` devices of ``threads`` threads each are pinned to: the first
    of those this process may run on."""
    available = available_cores()
    needed = count * threads
    if len(available) < needed:
        raise InputError(
            f"--count {count} --threads {threads}: {count} devices of {threads} thread(s) "
            f"need {needed} cores, and this process may run on {len(available)} "
            f"({format_core_list(available)})"
        )
    return tuple(available[:needed])


def _shared(bench: _Bench, threads: int, count: int, cores: tuple[int, ...]) -> list[Measurement]:
    """``bench`` timed in ``count`` processes at once, one per device, each on its own
    slice of ``cores``: a measurement of each, of class ``shared``."""
    job = StreamJob(
        model=bench.model.SerializeToString(),
        inputs=tuple((name, tuple(array.shape)) for name, array in bench.feeds.items()),
        dtype=str(next(iter(bench.feeds.values())).dtype),
        threads=threads,
    )
    slices = [cores[i * threads : (i + 1) * threads] for i in range(count)]
    medians = stream_together(job, slices)
    return [
        Measurement(f"{bench.name}, device {i} of {count} at once", "shared", bench.flops,
                    bench.bytes, seconds)
        for i, seconds in enumerate(medians)
    ]  # fmt: skip


def _providers(device: str, ort) -> list[str]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda" or device.startswith("cuda:"):
        require_cuda(ort, device)
        return ["CUDAExecutionProvider"]
    raise InputError(f"--device {device!r}: expected cpu, cuda or cuda:N")


@dataclass(frozen=True)
class _Bench:
    name: str
    op_class: str  # an OpClass value, or "sweep" / "overhead"
    model: object
    feeds: dict[str, np.ndarray]
    flops: float
    bytes: float
    optimised: bool = False  # run at the runtime's default optimisation level
    nodes: int = 1  # nodes of the op the time is shared by
    shape: ProductShape = UNSHAPED  # the GEMM a product or convolution runs as


def _benchmarks(dtype: str) -> list[_Bench]:
    """Every benchmark at ``dtype``, cheapest first."""
    b = _Builder(dtype)
    benches = [b.chain(1), b.chain(_CHAIN)]
    for total in _SWEEP_BYTES:
        n = max(1, int(total // (3 * b.itemsize)))  # two inputs and one output
        benches.append(b.single("Add", "sweep", [(n,), (n,)], (n,), name=f"Add {total} B"))
    transcendental = OpClass.TRANSCENDENTAL.value
    reduction, movement = OpClass.REDUCTION.value, OpClass.MOVEMENT.value
    vector = (65536,)
    benches += [
        b.matmul(1024, 768, 768),
        b.matmul(1024, 768, 3072),
        b.matmul(512, 1024, 1024),
        b.single("MatMul", OpClass.MATMUL.value, [(8, 12, 128, 64), (8, 12, 64, 128)],
                 (8, 12, 128, 128), name="MatMul of two activations"),
        # a linear layer whose weight is computed (not a constant to pre-pack), as
        # --fusion none runs a model whose weights the graph generates
        b.single("MatMul", OpClass.MATMUL.value, [(1024, 768), (768, 768)], (1024, 768),
                 name="MatMul of two activations 1024x768x768"),
        # the plain convolutions at batch 8, their tensors larger than the cache as a
        # model's are: over a warm cache at batch 1, a 1x1 one of 16 output channels
        # ran twice as fast as in MobileNetV2, and the fits of five calibrations ranged
        # M0 from 1 to 13 (it is 32 in the models)
        b.conv((8, 64, 56, 56), 64, 3, 1),
        b.conv((8, 256, 56, 56), 64, 1, 1),
        b.conv((8, 1024, 14, 14), 256, 1, 1),
        b.conv((1, 256, 14, 14), 256, 3, 1),  # many multiply-adds per output
        b.conv((1, 512, 7, 7), 512, 3, 1),
        b.conv((8, 16, 112, 112), 96, 1, 1),  # few input channels: 16 multiply-adds
        b.conv((8, 24, 56, 56), 144, 1, 1),
        b.conv((8, 256, 28, 28), 256, 1, 1),  # many output channels
        b.conv((8, 64, 14, 14), 384, 1, 1),
        b.conv((8, 128, 56, 56), 16, 1, 1),  # few output channels
        b.conv((8, 32, 112, 112), 16, 1, 1),
        b.conv((8, 144, 56, 56), 24, 1, 1),
        b.conv((8, 192, 28, 28), 32, 1, 1),
        b.conv((8, 256, 7, 7), 256, 1, 1),  # few output positions
        # strided: a stem of 3 input channels (27 multiply-adds), a 1x1 and a 3x3
        b.conv((8, 3, 224, 224), 32, 3, 1, stride=2),
        b.conv((8, 256, 56, 56), 512, 1, 1, stride=2),
        b.conv((8, 128, 56, 56), 128, 3, 1, stride=2),
        # depthwise: over maps of 56x56 to 7x7 (its cost per channel), and strided
        b.conv((8, 144, 56, 56), 144, 3, 144),
        b.conv((8, 192, 28, 28), 192, 3, 192),
        b.conv((8, 384, 14, 14), 384, 3, 384),
        b.conv((8, 960, 7, 7), 960, 3, 960),
        b.conv((8, 144, 56, 56), 144, 3, 144, stride=2),
        b.conv((8, 576, 14, 14), 576, 3, 576, stride=2),
        b.conv_chain((1, 64, 56, 56), 3, 1),
        b.conv_chain((1, 256, 28, 28), 1, 1),
        b.conv_chain((1, 144, 56, 56), 3, 144),
        b.conv_chain((1, 144, 56, 56), 3, 144, stride=2),
        # each in three sessions of its own: one session's buffers ran a chain at 5 G
        # elements/s, another's at 12 (where they fall in the cache, it seems)
        *(b.elementwise_chain(op, vector, session=i) for op in ("Mul", "Relu") for i in range(3)),
        # likewise the transcendental ops, whose chains stay in range (Exp's would
        # overflow): one Tanh alone took 0.85 ns an element, 0.46 in a chain as in GPT-2
        *(b.elementwise_chain(op, vector, session=i, op_class=transcendental)
          for op in ("Tanh", "Erf", "Sigmoid") for i in range(3)),
        b.single("Softmax", reduction, [(1536, 128)], (1536, 128), axis=-1),
        b.single("ReduceMean", reduction, [(1024, 768)], (1024, 1), axes=[-1]),
        b.layer_norm((1024, 768)),
        b.skip_layer_norm((1024, 768)),
        # a window across channels and a scalar pow per element (Inception v1's LRN)
        b.single("LRN", OpClass.SCALAR.value, [(1, 16, 56, 56)], (1, 16, 56, 56), size=5,
                 alpha=1e-4, beta=0.75, bias=1.0),
        b.single("Transpose", movement, [(8, 128, 12, 64)], (8, 12, 128, 64), perm=[0, 2, 1, 3]),
        b.single("Transpose", OpClass.TRANSPOSE.value, [(8, 128, 12, 64)], (8, 12, 64, 128),
                 perm=[0, 2, 3, 1], name="Transpose of the last axis"),
        b.single("Concat", movement, [(8, 128, 384), (8, 128, 384)], (8, 128, 768), axis=-1),
        b.gather(30522, 768, (8, 128)),
    ]
    return benches


class _Builder:
    """Benchmark models at one dtype, each with placer's count of its FLOPs and bytes."""

    def __init__(self, dtype: str) -> None:
        self.elem_type, self.numpy_type, self.itemsize = _DTYPES[dtype]
        self.rng = np.random.default_rng(20261129)

    def model(self, nodes, inputs, outputs, initializers=(), domains=()):
        from onnx import helper

        def value(name, shape, elem_type=self.elem_type):
            return helper.make_tensor_value_info(name, elem_type, list(shape))

        graph = helper.make_graph(
            nodes,
            "bench",
            [value(*entry) for entry in inputs],
            [value(n, s) for n, s in outputs],
            initializer=list(initializers),
        )
        opsets = [helper.make_opsetid("", _OPSET), *(helper.make_opsetid(d, 1) for d in domains)]
        return helper.make_model(graph, opset_imports=opsets)

    def random(self, shape) -> np.ndarray:
        return self.rng.standard_normal(shape).astype(self.numpy_type)

    def info(self, shape) -> TensorInfo:
        return TensorInfo(tuple(shape), self.itemsize)

    def constant(self, array: np.ndarray, name: str):
        from onnx import numpy_helper

        return numpy_helper.from_array(array.astype(self.numpy_type), name)

    @staticmethod
    def bench(name: str, op_class: str, model, feeds, cost) -> _Bench:
        """A benchmark of one op whose FLOPs and bytes are placer's ``cost`` of it."""
        moved = cost.bytes_read + cost.bytes_written
        return _Bench(name, op_class, model, feeds, cost.flops, moved, shape=cost.product_shape)

    def single(self, op_type: str, op_class: str, shapes, out, name: str | None = None,
               **attrs) -> _Bench:  # fmt: skip
        from onnx import helper

        names = [f"x{i}" for i in range(len(shapes))]
        nodes = [helper.make_node(op_type, names, ["y"], **attrs)]
        model = self.model(nodes, list(zip(names, shapes, strict=True)), [("y", out)])
        feeds = {n: self.random(shape) for n, shape in zip(names, shapes, strict=True)}
        infos = [self.info(shape) for shape in shapes]
        cost = cost_of(op_type, infos, [self.info(out)], attrs)
        return self.bench(name or op_type, op_class, model, feeds, cost)

    def matmul(self, m: int, k: int, n: int) -> _Bench:
        """A product with a constant weight, as in a linear layer."""
        from onnx import helper

        nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
        weight = self.constant(self.random((k, n)), "w")
        model = self.model(nodes, [("x", (m, k))], [("y", (m, n))], [weight])
        cost = cost_of("MatMul", [self.info((m, k)), self.info((k, n))], [self.info((m, n))])
        return self.bench(f"MatMul {m}x{k}x{n}", OpClass.GEMM.value, model,
                          {"x": self.random((m, k))}, cost)  # fmt: skip

    def conv(self, shape, out_channels: int, kernel: int, group: int, stride: int = 1) -> _Bench:
        """One convolution, with the runtime's optimisations off."""
        from onnx import helper

        n, c, h, w = shape
        weight_shape = (out_channels, c // group, kernel, kernel)
        pad = kernel // 2
        attrs = {"kernel_shape": [kernel, kernel], "pads": [pad] * 4, "group": group,
                 "strides": [stride, stride]}  # fmt: skip
        nodes = [helper.make_node("Conv", ["x", "w"], ["y"], **attrs)]
        out = (n, out_channels, -(-h // stride), -(-w // stride))
        weight = self.constant(self.random(weight_shape), "w")
        model = self.model(nodes, [("x", shape)], [("y", out)], [weight])
        kind = OpClass.GROUPED_CONV if group > 1 else OpClass.CONV
        label = f"Conv {kernel}x{kernel} {c} to {out_channels} at {h}x{w}"
        label += " depthwise" if group > 1 else ""
        label += f" stride {stride}" if stride > 1 else ""
        cost = cost_of("Conv", [self.info(shape), self.info(weight_shape)], [self.info(out)],
                       attrs)  # fmt: skip
        return self.bench(label, kind.value, model, {"x": self.random(shape)}, cost)

    def conv_chain(self, shape, kernel: int, group: int, stride: int = 1,
                   length: int = _CONV_CHAIN) -> _Bench:  # fmt: skip
        """``length`` convolutions each followed by a ``Relu``, at the runtime's default
        optimisation level: onnxruntime runs them in its blocked (NCHWc) layout with the
        activation fused, converting the layout once at each end of the chain.  The
        first convolution has ``stride``; the time is shared by the ``length`` nodes."""
        from onnx import helper

        n, c, h, w = shape
        weight_shape = (c, c // group, kernel, kernel)
        pad = kernel // 2
        nodes, initializers, flops, moved = [], [], 0.0, 0.0
        current, size = "x", (h, w)
        for i in range(length):
            step = stride if i == 0 else 1
            attrs = {"kernel_shape": [kernel, kernel], "pads": [pad] * 4, "group": group,
                     "strides": [step, step]}  # fmt: skip
            out = (n, c, -(-size[0] // step), -(-size[1] // step))
            nodes.append(helper.make_node("Conv", [current, f"w{i}"], [f"c{i}"], **attrs))
            nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
            initializers.append(self.constant(self.random(weight_shape), f"w{i}"))
            cost = cost_of("Conv", [self.info((n, c, *size)), self.info(weight_shape)],
                           [self.info(out)], attrs)  # fmt: skip
            flops += cost.flops
            moved += cost.bytes_read + cost.bytes_written
            product = cost.product_shape
            current, size = f"r{i}", out[2:]
        model = self.model(nodes, [("x", shape)], [(current, (n, c, *size))], initializers)
        kind = OpClass.GROUPED_CONV if group > 1 else OpClass.CONV
        label = f"{length} Conv {kernel}x{kernel} {c} to {c}" + (" depthwise" if group > 1 else "")
        label += f" stride {stride}" if stride > 1 else ""
        return _Bench(label + ", optimised", kind.value, model, {"x": self.random(shape)},
                      flops / length, moved / length, optimised=True, nodes=length,
                      shape=product)  # fmt: skip

    def elementwise_chain(self, op_type: str, shape, length: int = _ELEMENTWISE_CHAIN,
                          session: int = 0,
                          op_class: str = OpClass.ELEMENTWISE.value) -> _Bench:  # fmt: skip
        """``length`` ``op_type`` nodes in a row over a tensor of ``shape`` (a ``Mul``
        by a constant of that shape, near 1), with the runtime's optimisations off: each node
        reads what the last one wrote, from the memory the runtime reuses for
        intermediate tensors, as a model's elementwise ops do.  One node alone writes
        the graph's output, a buffer of its own at every run: at 65,536 elements
        onnxruntime's ``Relu`` ran at 1.7 G elements/s alone against 15 in a chain.
        ``op_class``: the class the measurement is of (``Tanh``, ``Erf`` and ``Sigmoid``
        chains measure the transcendental one)."""
        if op_type != "Mul":  # one input: Relu, or a transcendental op that stays in range
            model = self._chain_model(op_type, shape, length)
            infos = [self.info(shape)]
        else:
            # near 1, so that sixteen products stay normal numbers (a denormal takes
            # a slow path in the multiplier)
            model = self._chain_model(op_type, shape, length, 1.0 + 0.1 * self.random(shape))
            infos = [self.info(shape), self.info(shape)]
        cost = cost_of(op_type, infos, [self.info(shape)], {})
        name = f"{length} {op_type}, session {session + 1}"
        return _Bench(name, op_class, model, {"x": self.random(shape)},
                      cost.flops, cost.bytes_read + cost.bytes_written, nodes=length)  # fmt: skip

    def layer_norm(self, shape) -> _Bench:
        from onnx import helper

        width = shape[-1]
        nodes = [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)]
        initializers = [self.constant(np.ones(width), "g"), self.constant(np.zeros(width), "b")]
        model = self.model(nodes, [("x", shape)], [("y", shape)], initializers)
        infos = [self.info(shape), self.info((width,)), self.info((width,))]
        cost = cost_of("LayerNormalization", infos, [self.info(shape)], {"axis": -1})
        return self.bench("LayerNormalization", OpClass.REDUCTION.value, model,
                          {"x": self.random(shape)}, cost)  # fmt: skip

    def skip_layer_norm(self, shape) -> _Bench:
        """onnxruntime's fused residual ``Add``, bias and ``LayerNormalization``
        (``SkipLayerNormalization``, as it runs BERT's), charged the FLOPs and bytes
        placer counts for the two ``Add`` nodes and the ``LayerNormalization`` it
        replaces (:mod:`placer.frontends.fusion`)."""
        from onnx import helper

        width = shape[-1]
        nodes = [helper.make_node("SkipLayerNormalization", ["x", "skip", "g", "b", "bias"],
                                  ["y"], domain=CONTRIB_DOMAIN, epsilon=1e-12)]  # fmt: skip
        initializers = [self.constant(np.ones(width), "g"), self.constant(np.zeros(width), "b"),
                        self.constant(self.random(width), "bias")]  # fmt: skip
        model = self.model(nodes, [("x", shape), ("skip", shape)], [("y", shape)], initializers,
                           domains=(CONTRIB_DOMAIN,))  # fmt: skip
        tensor, vector = self.info(shape), self.info((width,))
        added = cost_of("Add", [tensor, vector], [tensor], {})
        summed = cost_of("Add", [tensor, tensor], [tensor], {})
        norm = cost_of("LayerNormalization", [tensor, vector, vector], [tensor], {"axis": -1})
        flops = added.flops + summed.flops + norm.flops
        moved = 2 * tensor.nbytes + 3 * vector.nbytes + tensor.nbytes  # in: x, skip; out: y
        feeds = {"x": self.random(shape), "skip": self.random(shape)}
        return _Bench("SkipLayerNormalization", KERNELS + SKIP_NORM, model, feeds, flops, moved)

    def gather(self, rows: int, width: int, indices: tuple[int, ...]) -> _Bench:
        """Rows of an embedding table."""
        from onnx import TensorProto, helper

        nodes = [helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)]
        out = (*indices, width)
        table = self.constant(self.random((rows, width)), "table")
        model = self.model(nodes, [("ids", indices, TensorProto.INT64)], [("y", out)], [table])
        ids = self.rng.integers(0, rows, size=indices, dtype=np.int64)
        cost = cost_of("Gather", [self.info((rows, width)), TensorInfo(indices, 8)],
                       [self.info(out)], {"axis": 0})  # fmt: skip
        return self.bench("Gather", OpClass.MOVEMENT.value, model, {"ids": ids}, cost)

    def chain(self, length: int) -> _Bench:
        """``length`` single-element ``Add`` nodes in a row: one of them times what a
        run costs beyond its ops (the binding, the feeds), and the longer chain adds the
        per-op overhead once per node."""
        model = self._chain_model("Add", (1,), length, np.ones(1))
        return _Bench(f"{length} one-element Add", "overhead", model, {"x": self.random((1,))},
                      0.0, 0.0)  # fmt: skip

    def _chain_model(self, op_type: str, shape, length: int, operand=None):
        """A graph of ``length`` ``op_type`` nodes in a row over a tensor of ``shape``,
        each reading the last one's output (and the constant ``operand``, if given)."""
        from onnx import helper

        names = ["x", *(f"t{i}" for i in range(length - 1)), "y"]
        extra = [] if operand is None else ["c"]
        nodes = [helper.make_node(op_type, [names[i], *extra], [names[i + 1]])
                 for i in range(length)]  # fmt: skip
        initializers = [] if operand is None else [self.constant(operand, "c")]
        return self.model(nodes, [("x", shape)], [("y", shape)], initializers)


# -- from measurements to figures ----------------------------------------------------------


def _derive(setup: Setup, results: list[Measurement]) -> Calibration:
    """The device figures ``results`` show: the per-op overhead, the memory levels, the
    peak rate and each op class's share of it."""
    timings = _Timings.of(results)
    memory = _MemoryLevels.of(timings)
    peak, efficiency = _efficiencies(timings, memory)
    # the socket: what the devices streaming at once move in all
    shared = sum((timings.rate(r, r.bytes) for r in timings.of_class("shared")), 0.0)
    return Calibration(
        setup, peak, memory.memory_bandwidth, float(memory.cache_bytes),
        memory.cache_bandwidth, timings.overhead, _memory_bytes() / max(setup.count, 1),
        efficiency, tuple(results), shared,
    )  # fmt: skip


@dataclass(frozen=True)
class _Timings:
    """The measurements by class, each op's time net of what a run costs beyond its ops
    (the run of one tiny op), and the fixed per-op overhead."""

    by_class: dict[str, list[Measurement]]
    single: float  # the run of one one-element op
    overhead: float

    @classmethod
    def of(cls, results: list[Measurement]) -> _Timings:
        single, chain = (r.seconds for r in results if r.op_class == "overhead")
        by_class: dict[str, list[Measurement]] = {}
        for r in results:
            by_class.setdefault(r.op_class, []).append(r)
        return cls(by_class, single, max(chain - single, 0.0) / (_CHAIN - 1))

    def of_class(self, key: str) -> list[Measurement]:
        return self.by_class.get(key, [])

    def rate(self, r: Measurement, what: float) -> float:
        """``what`` (FLOPs or bytes, per node) per second of ``r``'s time beyond the
        run's own and its ops' overheads (a chain's run and the overheads of all nodes
        but one, as the one-element run holds one, shared by its nodes)."""
        beyond = self.single + (r.nodes - 1) * self.overhead
        return what / max(r.seconds - beyond / r.nodes, r.seconds * 0.05)


@dataclass(frozen=True)
class _MemoryLevels:
    """The bandwidths of the elementwise sweep: from cache (the best) and from memory
    (the largest size's), and the largest size still served at cache speed (0 when the
    two hardly differ)."""

    cache_bytes: float
    cache_bandwidth: float
    memory_bandwidth: float

    @classmethod
    def of(cls, timings: _Timings) -> _MemoryLevels:
        sweep = timings.of_class("sweep")
        bandwidths = [timings.rate(r, r.bytes) for r in sweep]
        cache_bandwidth, memory_bandwidth = max(bandwidths), bandwidths[-1]
        middle = math.sqrt(cache_bandwidth * memory_bandwidth)
        fits = [r.bytes for r, bw in zip(sweep, bandwidths, strict=True) if bw >= middle]
        cache_bytes = max(fits) if fits else 0.0
        if cache_bandwidth <= memory_bandwidth * 1.2:
            cache_bytes = 0.0  # no cache level worth modelling
        return cls(cache_bytes, cache_bandwidth, memory_bandwidth)

    def regime(self, nbytes: float) -> float:
        """The bandwidth an op moving ``nbytes`` streams at."""
        if self.cache_bytes and nbytes <= self.cache_bytes:
            return self.cache_bandwidth
        return self.memory_bandwidth


def _efficiencies(timings: _Timings, memory: _MemoryLevels) -> tuple[float, dict[str, float]]:
    """The peak rate (the best dense kernel's) and each class's median share of it; for
    the data-movement classes, the share of their regime's bandwidth."""
    # convolutions slow down as their GEMM narrows: its half-efficiency lengths from the
    # convolutions measured one by one, and the share a strided one keeps
    conv, grouped = OpClass.CONV.value, OpClass.GROUPED_CONV.value
    halves = {
        kind: _shape_fit([(r.shape, timings.rate(r, r.flops))
                          for r in timings.of_class(UNFUSED + kind) if r.shape.stride == 1])
        for kind in (conv, grouped)
    }  # fmt: skip
    # and a product of two activations (no weight to pre-pack) with its reduction length:
    # attention's heads (K = 64) run well below a linear layer's (K = 768)
    matmul = OpClass.MATMUL.value
    halves[matmul] = _shape_fit([(r.shape, timings.rate(r, r.flops))
                                 for r in timings.of_class(matmul)])  # fmt: skip

    def asymptote(r: Measurement) -> float:
        """The rate ``r``'s class reaches on a wide GEMM, from ``r``'s own: over every
        length for a plain kernel, over ``K`` alone for one in the runtime's layout (as
        :meth:`~placer.costs.cluster.DeviceGroup.compute_rate` charges them)."""
        kind = r.op_class.removeprefix(UNFUSED)
        share = narrowing(r.shape, halves.get(kind, (0.0, 0.0, 0.0)), kind,
                          plain=r.op_class.startswith(UNFUSED))  # fmt: skip
        return timings.rate(r, r.flops) / share

    # the best rate of a dense kernel: a GEMM, or a convolution in the runtime's layout
    dense = timings.by_class[OpClass.GEMM.value] + timings.of_class(conv)
    peak = max(asymptote(r) for r in dense)
    efficiency: dict[str, float] = {}
    computing = (OpClass.GEMM, OpClass.MATMUL, OpClass.CONV, OpClass.GROUPED_CONV,
                 OpClass.ELEMENTWISE, OpClass.TRANSCENDENTAL, OpClass.REDUCTION,
                 OpClass.SCALAR)  # fmt: skip
    keys = [kind.value for kind in computing] + [UNFUSED + key for key in _SPLIT]
    keys += [KERNELS + key for key in KERNEL_KEYS]
    strided: dict[str, float] = {}
    for key in keys:
        points = [r for r in timings.of_class(key) if r.flops > 0]
        plain = [asymptote(r) for r in points if not key.startswith(UNFUSED) or r.shape.stride == 1]
        if plain:
            efficiency[key] = _fraction(statistics.median(plain) / peak)
        strides = [asymptote(r) for r in points if key.startswith(UNFUSED) and r.shape.stride > 1]
        if plain and strides:
            share = statistics.median(strides) / statistics.median(plain)
            strided[key.removeprefix(UNFUSED)] = share
    for kind, (k0, m0, n0) in halves.items():
        for prefix, half in ((HALF_AT, k0), (HALF_AT_CHANNELS, m0), (HALF_AT_POSITIONS, n0)):
            if half:
                efficiency[prefix + kind] = half
    # a strided convolution that keeps its rate needs no figure
    efficiency.update((STRIDED + kind, _fraction(share)) for kind, share in strided.items()
                      if share < 0.95)  # fmt: skip
    for key in _SPLIT:  # where the optimised kernels were not measured: the unfused ones
        if key not in efficiency and UNFUSED + key in efficiency:
            efficiency[key] = efficiency[UNFUSED + key]
    for kind in (OpClass.MOVEMENT, OpClass.TRANSPOSE):
        moves = [timings.rate(r, r.bytes) / memory.regime(r.bytes)
                 for r in timings.of_class(kind.value)]  # fmt: skip
        if moves:
            efficiency[kind.value] = _fraction(statistics.median(moves))
    efficiency["memory"] = 1.0  # the bandwidths are the elementwise sweep's own
    return peak, efficiency


#: Half-efficiency lengths :func:`_shape_fit` tries for each of ``K``, ``M``, ``N``.
_LENGTHS = np.concatenate([[0.0], np.geomspace(1.0, 4096.0, 49)])


def _shape_fit(points: list[tuple[ProductShape, float]]) -> tuple[float, float, float]:
    """``(K0, M0, N0)`` of ``rate = A · K/(K+K0) · M/(M+M0) · N/(N+N0)`` fitted to
    ``(shape, rate)`` points: the least squares of the log rates over a grid of lengths
    (:data:`_LENGTHS`; 0 for none), ``A`` in closed form for each.  A length is fitted
    only where the points show two values of it at least; 0 where nothing is shown."""
    points = [(shape, rate) for shape, rate in points if rate > 0]
    if len(points) < 2:
        return 0.0, 0.0, 0.0
    dims = np.array([[s.inner, s.channels, s.positions] for s, _ in points], dtype=float)
    logs = np.log([rate for _, rate in points])
    grids = []
    for d in range(3):
        known = dims[:, d][dims[:, d] > 0]
        grids.append(_LENGTHS if len(set(known.tolist())) >= 2 else np.zeros(1))
    k0, m0, n0 = np.meshgrid(*grids, indexing="ij")
    halves = np.stack([k0.ravel(), m0.ravel(), n0.ravel()], axis=1)  # (candidates, 3)
    lengths = np.where(dims > 0, dims, np.inf)  # an unknown length: no factor
    with np.errstate(invalid="ignore"):  # inf / inf where a length is unknown: masked
        ratio = lengths[None, :, :] / (lengths[None, :, :] + halves[:, None, :])
    shares = np.log(np.where(np.isfinite(lengths)[None], ratio, 1.0)).sum(axis=2)
    residual = logs[None, :] - shares
    residual -= residual.mean(axis=1, keepdims=True)  # log A: the mean
    best = int(np.argmin((residual**2).sum(axis=1)))
    return tuple(float(h) for h in halves[best])  # type: ignore[return-value]


def _fraction(value: float) -> float:
    """A measured efficiency held to the cluster format's range [0.0001, 1]."""
    return float(min(1.0, max(1e-4, value)))


def _memory_bytes() -> float:
    """This machine's physical memory."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8.0 * 2**30


def cluster_yaml(calibration: Calibration, name: str) -> str:
    """A cluster file of ``calibration``'s devices: ``placer place --cluster`` reads
    it as it is, and other cluster files name it as a group's ``type``
    (``type: ./local-cpu.yaml``).  Checked by the cluster parser before it is returned.
    """
    import yaml

    from placer.costs.cluster_file import parse_cluster

    c, setup = calibration, calibration.setup
    document = {
        "name": name,
        "devices": [_group(c, name)],
        "links": _links(c, name),
        "calibration": {
            "runtime": RUNTIME,
            "version": setup.runtime_version,
            "device": setup.device,
            "dtype": setup.dtype,
            "threads": setup.threads,
            "timer": setup.timer,
            "machine": platform.machine() or "unknown",
            "measured": [
                {"name": r.name, "class": r.op_class, "seconds": float(f"{r.seconds:.6g}")}
                for r in c.measurements
            ],
        },
    }
    header = (
        f"# placer calibrate: {setup.device}, {setup.threads} thread(s), {setup.dtype}, "
        f"medians of {setup.timer} in onnxruntime {setup.runtime_version}.\n"
        "# A cluster file: use it with --cluster, or name it as a group's type\n"
        f"# (type: ./{name}.yaml) in another cluster file.  See docs/cluster.md.\n"
    )
    text = header + yaml.safe_dump(document, sort_keys=False, allow_unicode=False)
    parse_cluster(text, f"<calibration of {setup.device}>")  # what it writes, placer reads
    return text


def _group(c: Calibration, name: str) -> dict[str, object]:
    """The cluster file's one device group: ``count`` calibrated devices."""
    setup = c.setup
    group: dict[str, object] = {
        "name": name,
        "class": "cpu" if setup.device == "cpu" else "accelerator",
        "count": setup.count,
        "peak_flops": {setup.dtype: f"{c.peak_flops / 1e9:.4g} GFLOP/s"},
        "memory": f"{c.memory_bytes / 2**30:.4g} GiB",
        "memory_bandwidth": f"{c.memory_bandwidth / 1e9:.4g} GB/s",
    }
    if c.cache_bytes:
        group["cache"] = {
            "size": f"{c.cache_bytes / 2**10:.4g} KiB",
            "bandwidth": f"{c.cache_bandwidth / 1e9:.4g} GB/s",
        }
    group["efficiency"] = _efficiency_entry(c.efficiency)
    group["overhead"] = f"{c.overhead * 1e6:.4g} us"
    if c.shared_bandwidth:
        group["shared_bandwidth"] = f"{c.shared_bandwidth / 1e9:.4g} GB/s"
    if setup.cores:
        group["cores"] = format_core_list(setup.cores)
    return group


def _efficiency_entry(efficiency: dict[str, float]) -> dict[str, object]:
    """The group's ``efficiency`` mapping: a default (the median class), one figure per
    class, and the unfused rates and the convolutions' ``K0`` nested under their own
    keys."""
    nested = tuple(NESTED_EFFICIENCY.values())
    plain = {k: v for k, v in efficiency.items() if not k.startswith(nested)}
    entry: dict[str, object] = {
        "default": round(statistics.median(plain.values()), 4),
        **{key: round(value, 4) for key, value in plain.items()},
    }
    for prefix in nested:
        entries = {k[len(prefix):]: round(v, 4) for k, v in efficiency.items()
                   if k.startswith(prefix)}  # fmt: skip
        if entries:
            entry[prefix[:-1]] = entries
    return entry


def _links(c: Calibration, name: str) -> dict[str, object]:
    """The link between two of the devices: stages on one machine hand activations over
    through memory, and a copy reads and writes every byte, so it moves half of what one
    device streams while all of them do (:attr:`DeviceGroup.dram_bandwidth`)."""
    streams = c.memory_bandwidth
    if c.shared_bandwidth:
        streams = min(streams, c.shared_bandwidth / c.setup.count)
    pair = {"between": [name, name], "bandwidth": f"{streams / 2e9:.4g} GB/s",
            "latency": "10 us"}  # fmt: skip
    return {"pairs": [pair]}
