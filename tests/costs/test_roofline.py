"""The roofline cost model, the training graph and the memory figures."""

from __future__ import annotations

import json
import math
import os
import time
import warnings

import pytest

from placer.choices import DType, Fusion, Mode, Optimizer
from placer.costs.cluster_file import parse_cluster
from placer.costs.roofline import (
    BACKWARD_FLOP_FACTOR,
    CostOptions,
    build_problem,
    bytes_per_param,
    forward_times,
    read_measured_costs,
)
from placer.errors import InputError, ModelLoadError
from placer.frontends.onnx_graph import IN_PLACE_SHARE, GraphEdge, GraphNode, OpGraph
from placer.frontends.opcost import OpClass, ProductShape
from tests.conftest import ROOT, one_line_error

CLUSTER = parse_cluster(
    """
devices:
  - name: fast
    peak_flops: {fp32: 10TFLOPS, fp16: 40TFLOPS}
    memory: 16GiB
    memory_bandwidth: 1TB/s
    efficiency: 0.5
    overhead: 10us
    count: 2
  - name: host
    class: cpu
    peak_flops: 1TFLOPS
    memory: 64GiB
    memory_bandwidth: 100GB/s
    efficiency: 0.5
    overhead: 1us
links:
  default: {bandwidth: 10GB/s, latency: 10us}
  pairs:
    - {between: [fast, fast], bandwidth: 100GB/s, latency: 2us}
""",
    "test.yaml",
)


def graph() -> OpGraph:
    # matmul (1 GFLOP, 10 MB moved, 1M params) -> relu (0 FLOPs counted, 8 MB moved)
    nodes = (
        GraphNode("mm", "MatMul", 1e9, 6e6, 4e6, 1_000_000, 4e6, 4e6, True),
        GraphNode("relu", "Relu", 1e6, 4e6, 4e6, 0, 0.0, 4e6, True),
    )
    return OpGraph("g", nodes, (GraphEdge(0, 1, "t", 4e6),), 2e6, 4, ())


def test_roofline_latency_and_link_costs() -> None:
    problem = build_problem(graph(), CLUSTER, CostOptions())
    mm, relu = problem.ops
    # compute bound on the accelerator: 1e9 / (10e12 * 0.5) = 200 us, memory 10e6/0.5e12 = 20 us
    assert mm.latency[0] == pytest.approx(200e-6 + 10e-6)
    # memory bound: 8e6 / (1e12 * 0.5) = 16 us > 1e6 / 5e12
    assert relu.latency[0] == pytest.approx(16e-6 + 10e-6)
    # the CPU: 1e9 / 0.5e12 = 2 ms
    assert mm.latency[1] == pytest.approx(2e-3 + 1e-6)
    assert mm.output_bytes == 4e6
    assert problem.transfer(0, 0, 0) == pytest.approx(2e-6 + 4e6 / 100e9)
    assert problem.transfer(0, 0, 1) == pytest.approx(10e-6 + 4e6 / 10e9)
    assert problem.samples_per_step == 1 and problem.time_unit == "s"
    assert mm.size_bytes == 4e6  # its weights; activations are the devices' working memory
    # the input (2 MB), the product's output and the relu's output live at once
    assert problem.reserved_bytes == 2e6 + 4e6 + 4e6
    assert problem.kinds[0].memory_bytes == 16 * 2**30 - problem.reserved_bytes
    assert problem.capacity(0) == 16 * 2**30


def test_fp16_uses_its_peak_and_halves_bytes() -> None:
    problem = build_problem(graph(), CLUSTER, CostOptions(dtype=DType.FP16))
    mm, relu = problem.ops
    assert mm.latency[0] == pytest.approx(1e9 / 20e12 + 10e-6)
    assert relu.latency[0] == pytest.approx(4e6 / 0.5e12 + 10e-6)
    assert mm.output_bytes == 2e6


def test_tf32_moves_fp32_bytes_at_its_own_peak_and_falls_back_without_one() -> None:
    ampere = parse_cluster(
        "devices: [{name: ampere, peak_flops: {fp32: 10TFLOPS, tf32: 80TFLOPS}, memory: 16GiB,"
        " memory_bandwidth: 1TB/s, efficiency: 0.5, overhead: 10us},"
        " {name: volta, peak_flops: {fp32: 10TFLOPS, fp16: 80TFLOPS}, memory: 16GiB,"
        " memory_bandwidth: 1TB/s, efficiency: 0.5, overhead: 10us}]"
    )
    problem = build_problem(graph(), ampere, CostOptions(dtype=DType.TF32))
    mm, relu = problem.ops
    assert mm.latency[0] == pytest.approx(1e9 / 40e12 + 10e-6)  # the tensor cores
    assert mm.latency[1] == pytest.approx(1e9 / 5e12 + 10e-6)  # none: fp32's rate
    assert relu.latency[0] == pytest.approx(8e6 / 0.5e12 + 10e-6)  # fp32's 4 bytes
    assert mm.output_bytes == 4e6


def test_tensor_core_convolutions_on_nchw_tensors_pay_their_conversion() -> None:
    """A conv reading 4 MB of activations (and 1 MB of weights) and writing 4 MB: in
    fp16 on NCHW tensors it also moves 2 x 8 MB (fp32 figures, halved) through the
    group's transpose bandwidth; channels-last, fp32 (no tensor cores) and a CPU do not."""
    conv = GraphNode("conv", "Conv", 1e6, 5e6, 4e6, 250_000, 1e6, 4e6, True)
    one = OpGraph("c", (conv,), (), 1e6, 4, ())

    def latency(dtype: DType, layout: str, kind: str = "") -> float:
        cluster = parse_cluster(
            f"devices: [{{name: g, {kind}peak_flops: {{fp32: 10TFLOPS, fp16: 80TFLOPS}},"
            " memory: 16GiB, memory_bandwidth: 1TB/s, efficiency: 0.5, overhead: 0us,"
            f" layout: {layout}}}]"
        )
        return build_problem(one, cluster, CostOptions(dtype=dtype)).ops[0].latency[0]

    converted = 2 * (5e6 - 1e6 + 4e6) / 2  # fp16: half the model's fp32 bytes
    assert latency(DType.FP16, "nchw") == pytest.approx(
        latency(DType.FP16, "nhwc") + converted / 0.5e12
    )
    assert latency(DType.FP32, "nchw") == latency(DType.FP32, "nhwc")
    cpu = "class: cpu, "
    assert latency(DType.FP16, "nchw", cpu) == latency(DType.FP16, "nhwc", cpu)


def test_training_graph_mirrors_the_forward_one() -> None:
    options = CostOptions(mode=Mode.TRAINING, optimizer=Optimizer.ADAM)
    problem = build_problem(graph(), CLUSTER, options)
    keys = [op.key for op in problem.ops]
    assert keys == ["mm", "relu", "mm/grad", "relu/grad"]
    mm, relu, mm_grad, relu_grad = problem.ops
    assert mm_grad.backward and mm_grad.color == mm.color
    assert relu_grad.color == relu.color != mm.color
    # weighted ops cost 2x forward FLOPs backward; the ReLU's backward reads its output
    # and the gradient and writes one (12 MB, memory-bound at 0.5 TB/s)
    assert mm_grad.latency[0] == pytest.approx(2 * 200e-6 + 10e-6)
    assert relu_grad.latency[0] == pytest.approx(24e-6 + 10e-6)
    assert set(problem.edges) == {(0, 1), (3, 2)}
    # weights + gradients + Adam state (16 B/param in fp32) + activations for the
    # microbatches in flight (3 devices: the 1F1B worst case)
    assert mm.size_bytes == pytest.approx(1_000_000 * 16 + 4e6 * 3)


def test_training_batch_norm_and_activations_move_what_their_passes_read() -> None:
    """In training a BatchNorm sweeps its input for the batch's statistics before it
    normalises (the input read twice), and its backward reads input and gradient twice
    and writes one: five activation-sized tensors.  A ReLU's backward reads its saved
    output and the gradient and writes one: three.  Inference moves what it counts."""
    act, params = 4e6, 4e3  # fp32 activations; scale, bias, mean and variance
    nodes = (
        GraphNode("bn", "BatchNormalization", 1e6, act + params, act, 512, params, act, True),
        GraphNode("relu", "Relu", 1e6, act, act, 0, 0.0, act, True),
    )
    graph = OpGraph("g", nodes, (GraphEdge(0, 1, "t", act),), 0.0, 4, ())
    gpu = parse_cluster(
        "devices: [{name: g, peak_flops: 1PFLOPS, memory: 16GiB, memory_bandwidth: 1TB/s,"
        " efficiency: 1.0, overhead: 0us}]"
    )

    def moved(mode: Mode) -> list[float]:  # bytes, at 1 TB/s, no overhead, no cache
        problem = build_problem(graph, gpu, CostOptions(mode=mode, fusion=Fusion.NONE))
        return [op.latency[0] * 1e12 for op in problem.ops]

    assert moved(Mode.INFERENCE) == pytest.approx([2 * act + params, 2 * act])
    bn, relu, bn_grad, relu_grad = moved(Mode.TRAINING)
    assert bn == pytest.approx(3 * act + params)
    assert relu == pytest.approx(2 * act)
    assert bn_grad == pytest.approx(5 * act + 2 * params)
    assert relu_grad == pytest.approx(3 * act)


@pytest.mark.parametrize(
    ("dtype", "optimizer", "expected"),
    [(DType.FP32, Optimizer.ADAM, 16), (DType.FP16, Optimizer.ADAM, 16),
     (DType.FP32, Optimizer.SGD, 12), (DType.BF16, Optimizer.SGD, 12),
     (DType.TF32, Optimizer.ADAM, 16), (DType.TF32, Optimizer.SGD, 12)],
)  # fmt: skip
def test_bytes_per_param(dtype, optimizer, expected) -> None:
    assert bytes_per_param(dtype, optimizer) == expected


def test_measured_costs_override(tmp_path) -> None:
    csv = tmp_path / "costs.csv"
    csv.write_text("op,device,seconds\nmm,fast,0.001\nmm/grad,fast,0.003\n")
    table = read_measured_costs(csv)
    reordered = tmp_path / "reordered.csv"
    reordered.write_text("seconds,op,device\n0.001,mm,fast\n\n3e-3,mm/grad,fast\n")
    assert read_measured_costs(reordered) == table  # columns in any order, blank lines skipped
    options = CostOptions(mode=Mode.TRAINING, measured=table)
    problem = build_problem(graph(), CLUSTER, options)
    assert problem.ops[0].latency == (0.001, pytest.approx(2e-3 + 1e-6))
    assert problem.ops[2].latency[0] == 0.003
    as_json = tmp_path / "costs.json"
    as_json.write_text(json.dumps({"mm": {"fast": 0.001}}))
    assert read_measured_costs(as_json) == {("mm", "fast"): 0.001}


def test_a_backward_op_without_a_time_takes_its_forward_time_scaled(tmp_path) -> None:
    csv = tmp_path / "costs.csv"
    csv.write_text("op,device,seconds\nmm,fast,0.001\nrelu,host,0.002\nrelu/grad,fast,5e-4\n")
    options = CostOptions(mode=Mode.TRAINING, measured=read_measured_costs(csv))
    problem = build_problem(graph(), CLUSTER, options)
    estimated = build_problem(graph(), CLUSTER, CostOptions(mode=Mode.TRAINING))
    _, _, mm_grad, relu_grad = problem.ops
    assert mm_grad.latency[0] == pytest.approx(0.001 * BACKWARD_FLOP_FACTOR["weighted"])
    assert mm_grad.latency[1] == estimated.ops[2].latency[1]  # nothing measured on host
    assert relu_grad.latency == (5e-4, pytest.approx(0.002 * BACKWARD_FLOP_FACTOR["other"]))


def test_a_coarsened_op_takes_the_sum_of_its_members_times() -> None:
    from placer.frontends.coarsen import coarsen

    merged = coarsen(graph())
    assert [node.members for node in merged.nodes] == [("mm", "relu")]
    measured = {("mm", "fast"): 0.001, ("relu", "fast"): 0.0005, ("mm", "host"): 0.01}
    problem = build_problem(merged, CLUSTER, CostOptions(measured=measured))
    estimated = build_problem(merged, CLUSTER, CostOptions())
    # on host, relu has no time: the merged op is estimated as a whole
    assert problem.ops[0].latency == (pytest.approx(0.0015), estimated.ops[0].latency[1])


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("c.csv", "op,seconds\nmm,1\n", "header"),
        ("c.csv", "op,device,seconds\nmm,fast,-1\n", "line 2"),
        ("c.csv", 'op,device,seconds\nmm,fast,1\n"relu,fast,1\nx,y,2\n',
         r"c.csv:3: not valid CSV: .* \(a quote opened here is never closed\)"),
        ("c.csv", "op,device,seconds\nmm,fast,1\nrelu,fast\n",
         "c.csv:3: expected op, device and seconds, got 2 field"),
        ("c.json", "{", "not valid JSON"),
        ("c.txt", "", ".csv or .json"),
        # an extra field would be dropped unread
        ("c.csv", "op,device,seconds\nmm,fast,1\nrelu,fast,1,2\n",
         "^.*c.csv:3: expected op, device and seconds, got 4 fields$"),
        ("c.csv", "op,device,seconds\nmm\n", "c.csv:2: .*got 1 field$"),
        # a second time for one op on one device would silently replace the first
        ("c.csv", "op,device,seconds\nmm,fast,1\nrelu,fast,1\n\nmm,fast,2\n",
         r"c.csv:5: op 'mm' on device 'fast' given twice \(first at line 2\)$"),
        ("c.csv", 'op,device,seconds\n"m\nm",fast,1\nx,fast,1\n"m\nm",fast,2\n',
         r"c.csv:5: op 'm\\nm' on device 'fast' given twice \(first at line 2\)$"),
        ("c.json", '{"mm": {"fast": 1},\n "mm": {"slow": 2}}',
         r"c.json:2: field 'mm' given twice \(first at line 1\)"),
        ("c.csv", "op,device,seconds,notes\nmm,fast,1,warm\n",
         "c.csv:1: the CSV header must name op, device and seconds, once each, got "
         "'op,device,seconds,notes'"),
        ("c.csv", "op,device,seconds,seconds\nmm,fast,1,2\n", "c.csv:1: the CSV header"),
        ("c.csv", "", "c.csv:1: the CSV header must name op, device and seconds, once each, "
         "got nothing"),
        ("c.csv", "op,device,seconds\nmm,fast,\u0661\n", r"line 2: seconds .* got '\u0661'"),
        ("c.csv", "op,device,seconds\nmm,fast,1_0\n", r"line 2: seconds .* got '1_0'"),
        # after a comment line (placer profile's header), lines are still the file's
        ("c.csv", "# measured\nop,device,seconds\nmm,fast,1\nmm,fast,2\n",
         r"c.csv:4: op 'mm' on device 'fast' given twice \(first at line 3\)$"),
        ("c.csv", "# measured\nop,device\n", "c.csv:2: the CSV header"),
        ("c.csv", "# measured\r\nop,device,seconds\r\nmm,fast\r\n", "c.csv:3: expected op"),
        # only the first line may be a comment
        ("c.csv", "# one\n# two\nop,device,seconds\n", "c.csv:2: the CSV header"),
    ],
    ids=["header", "negative", "open-quote", "short-row", "json", "suffix", "long-row",
         "one-field", "repeated-row", "repeated-multiline-row", "repeated-json-op",
         "extra-column", "repeated-column", "empty", "arabic-indic-digit", "underscore",
         "after-comment", "header-after-comment", "crlf-after-comment", "two-comments"],
)  # fmt: skip
def test_bad_measured_costs(tmp_path, name, text, fragment) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=fragment) as info:
        read_measured_costs(path)
    assert "\n" not in str(info.value) and "object mapping" not in str(info.value)


@pytest.mark.parametrize("mode", [Mode.INFERENCE, Mode.TRAINING])
def test_device_counts_are_capped_at_the_colour_classes(mode) -> None:
    many = parse_cluster(
        "devices:\n  - {type: t4, count: 100000}\n  - {type: cpu, count: 1000000000000}\n"
    )
    problem = build_problem(graph(), many, CostOptions(mode=mode))
    classes = len(graph().nodes)  # a backward op shares its forward op's class
    assert len({op.color for op in problem.ops}) == classes
    assert [kind.count for kind in problem.kinds] == [classes, classes]
    # training memory charges one microbatch per usable device, not per device listed
    mm = problem.ops[0]
    # (inference: its weights alone; activations are each device's working memory)
    expected = 4e6 * 2 * classes if mode is Mode.TRAINING else 4e6
    assert mm.size_bytes == pytest.approx(expected + (16e6 if mode is Mode.TRAINING else 0))


def test_many_devices_place_fast(run_placer, tmp_path) -> None:
    model = ROOT / "sample_models" / "mobilenet_v2.onnx"
    cluster = tmp_path / "many.yaml"
    cluster.write_text("devices:\n  - {type: t4, count: 100000}\n  - type: cpu\n")
    started = time.perf_counter()
    result = run_placer("place", model, "--cluster", cluster, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("c.csv", b"op,device,seconds\nmm,fast,1\n\xff\xfe,fast,1\n",
         r"c.csv:3: not UTF-8 text \(byte 0xff"),
        ("c.csv", b"op,device,seconds\nmm,fast,nan\n", r"line 2: seconds must be a non-negative"),
        ("c.csv", b"op,device,seconds\nmm,fast,1e400\n", r"line 2: .* got '1e400'"),
        ("c.csv", b"op,device,seconds\nmm,fast,5e-324\n", r"\(0, or from 1e-12 to 86400 s\)"),
        ("c.csv", b"op,device,seconds\nmm,fast,90000\n", r"got '90000'"),
        ("c.json", b'{"mm": {"fast": NaN}}', r"c.json:1:17: not valid JSON: NaN"),
        ("c.json", b'{"mm": {"fast": 1e999}}', r"the number 1e999 is out of range"),
        ("c.json", b'{"mm": {"fast": ' + b"1" * 400 + b"}}", r"the number 111.* out of range"),
        ("c.json", b'{"mm": {"fast": 99999999999}}', r"mm.fast: seconds .* got 99999999999"),
        ("c.json", b'{"mm": {"fast": true}}', r"mm.fast: seconds .* got True"),
        ("c.json", b'{"mm": {"fast": [' + b"0," * 10_000 + b"0]}}", r"got \[0, 0, .*\.\.\."),
    ],
    ids=["not-utf8", "nan", "overflow", "subnormal", "over-a-day", "json-nan", "json-overflow",
         "json-int-past-float", "json-too-long", "json-bool", "json-long-list"],
)  # fmt: skip
def test_measured_costs_refuse_what_is_no_time(tmp_path, name, data, fragment) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError, match=fragment) as info:
        read_measured_costs(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_measured_costs_that_are_no_regular_file_are_refused_at_once(tmp_path) -> None:
    fifo = tmp_path / "c.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"is a FIFO \(named pipe\), not a measured-costs file"):
        read_measured_costs(fifo)
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    with pytest.raises(InputError, match="is a character device"):
        read_measured_costs(zero)


def test_cli_costs_file_not_utf8_is_one_line(run_placer, tmp_path) -> None:
    costs = tmp_path / "c.csv"
    costs.write_bytes(b"op,device,seconds\nconv\xe9,cpu,1\n")
    model = ROOT / "sample_models" / "mobilenet_v2.onnx"
    one_line_error(run_placer("place", model, "--costs", costs), "c.csv:2: not UTF-8 text")


EXTREME = parse_cluster(
    """
devices:
  - {name: slow, peak_flops: 1kFLOPS, memory: 8PiB, memory_bandwidth: 1kB/s,
     efficiency: 0.001, overhead: 86400, count: 2}
  - {name: fast, class: cpu, peak_flops: 1e21, memory: 1, memory_bandwidth: 1e16,
     efficiency: 1, overhead: 0}
links:
  default: {bandwidth: 1kB/s, latency: 86400}
  pairs: [{between: [slow, slow], bandwidth: 1e16, latency: 1e-12}]
"""
)


@pytest.mark.parametrize("mode", [Mode.INFERENCE, Mode.TRAINING])
def test_extreme_figures_in_range_give_finite_costs(mode) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy overflow would warn
        problem = build_problem(graph(), EXTREME, CostOptions(mode=mode, batch_size=2**31 - 1))
    figures = [t for op in problem.ops for t in (*op.latency, op.size_bytes, op.output_bytes)]
    figures += [problem.transfer(0, a, b) for a in range(2) for b in range(2)]
    assert all(math.isfinite(x) for x in figures)
    assert max(op.latency[0] for op in problem.ops) > 1e9  # 1 GFLOP at 1 FLOP/s: slow indeed


def _huge(flops: float, size: float, sent: float) -> OpGraph:
    nodes = tuple(
        GraphNode(f"n{i}", "MatMul", flops, 1.0, 1.0, 0, size, 1.0, True) for i in range(3)
    )
    edges = (GraphEdge(0, 1, "t", sent), GraphEdge(0, 2, "u", sent), GraphEdge(1, 2, "v", 1.0))
    return OpGraph("huge", nodes, edges, 0, 4, ())


@pytest.mark.parametrize(
    ("flops", "size", "sent", "fragment"),
    [
        (math.inf, 1.0, 1.0, "huge: the ops' time on fast is past the float range (op n0"),
        (1.0, 2.0**52, 1.0, "huge: the ops need 12 PiB of memory in all, more than placer handles"),
        (1.0, 2.0**53 / 3 + 1, 1.0, "huge: the ops need 8.000000000000002 PiB of memory in all, "
         "more than placer handles (8 PiB,"),  # not "need 8 PiB, more than ... (8 PiB"
        (1.0, math.inf, 1.0, "huge: the ops' memory is past the float range"),
        (1.0, 1.0, 1e308, "huge: the ops' bytes sent is past the float range (op n0 alone: inf)"),
    ],
    ids=["time", "memory", "memory-just-over", "memory-inf", "bytes-sent"],
)
def test_costs_that_overflow_once_summed_are_refused(flops, size, sent, fragment) -> None:
    # only shapes past what any model has get here: they are refused, not read as an
    # unsupported op or a stage that fits nowhere
    with pytest.raises(ModelLoadError) as info:
        build_problem(_huge(flops, size, sent), CLUSTER, CostOptions())
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("group", "fragment"),
    [
        ("{name: g, peak_flops: 1e-20, memory: 80GiB, memory_bandwidth: 1TB/s, count: 2}",
         "devices[0].peak_flops: 1e-20 is out of range"),
        ("{type: t4, count: 2, memory_bandwidth: 5e-324}",
         "devices[0].memory_bandwidth: 5e-324 is out of range"),
    ],
)  # fmt: skip
def test_figures_that_crashed_the_solvers_are_refused(run_placer, tmp_path, group, fragment):
    # these ended in IndexError (HiGHS) or PulpError: now out of range, one line
    cluster = tmp_path / "c.yaml"
    cluster.write_text(f"devices:\n  - {group}\nlinks: {{default: {{bandwidth: 5e-324}}}}\n")
    model = ROOT / "sample_models" / "mobilenet_v2.onnx"
    result = run_placer("place", model, "--cluster", cluster, "--solver", "milp")
    one_line_error(result, f"c.yaml:2: {fragment}")


@pytest.mark.parametrize("solver", ["auto", "pipedream", "greedy", "params", "uniform"])
@pytest.mark.parametrize("mode", ["inference", "training"])
def test_extreme_clusters_in_range_place_without_warnings(run_placer, tmp_path, solver, mode):
    cluster = tmp_path / "c.yaml"
    cluster.write_text(
        "devices:\n"
        "  - {name: slow, peak_flops: 1kFLOPS, memory: 8PiB, memory_bandwidth: 1kB/s,"
        " efficiency: 0.001, overhead: 86400, count: 2}\n"
        "  - {name: fast, peak_flops: 1e21, memory: 8PiB, memory_bandwidth: 1e16,"
        " efficiency: 1, overhead: 1e-12, count: 3}\n"
        "links:\n  default: {bandwidth: 1kB/s, latency: 86400}\n"
        "  pairs: [{between: [fast, fast], bandwidth: 1e16, latency: 0}]\n"
    )
    model = ROOT / "sample_models" / "mobilenet_v2.onnx"
    args = ["place", model, "--cluster", cluster, "--mode", mode, "--solver", solver,
            "--batch-size", "65536", "--format", "json", "--time-limit", "30"]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning would be a line on stderr
        result = run_placer(*args)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document["valid"] and math.isfinite(document["max_load"]) and document["throughput"]


@pytest.mark.parametrize(
    ("unknown", "note"),
    [(("Mystery",), "no FLOP formula for op type Mystery: costed"),
     (("B", "A", "B"), "no FLOP formula for op types A, B: costed")],
)  # fmt: skip
def test_the_note_on_ops_without_a_formula_counts_in_words(unknown, note) -> None:
    from dataclasses import replace

    problem = build_problem(replace(graph(), unknown_ops=unknown), CLUSTER, CostOptions())
    assert any(n.startswith(note) for n in problem.notes), problem.notes


def test_each_op_class_runs_at_its_own_rate_and_small_ops_stream_from_cache() -> None:
    cluster = parse_cluster(
        """
devices:
  - name: dev
    peak_flops: 100GFLOPS
    memory: 16GiB
    memory_bandwidth: 10GB/s
    cache: {size: 1MiB, bandwidth: 100GB/s}
    efficiency: {default: 0.5, gemm: 1.0, grouped_conv: 0.05, memory: 0.8}
    overhead: 1us
""",
        "classes.yaml",
    )
    nodes = (
        GraphNode("mm", "MatMul", 1e9, 4e6, 4e6, 1_000, 4e3, 4e6, True),  # a weight: gemm
        GraphNode("dw", "Conv", 1e8, 4e6, 4e6, 1_000, 4e3, 4e6, True,
                  op_class=OpClass.GROUPED_CONV),
        GraphNode("big", "Add", 1e6, 8e6, 4e6, 0, 0.0, 4e6, True),  # 12 MB: memory
        GraphNode("small", "Add", 1e3, 8e3, 4e3, 0, 0.0, 4e3, True),  # 12 kB: cache
        GraphNode("view", "Reshape", 0.0, 0.0, 0.0, 0, 0.0, 4e3, True),
    )
    edges = tuple(GraphEdge(i, i + 1, f"t{i}", 4e3) for i in range(len(nodes) - 1))
    graph = OpGraph("g", nodes, edges, 0.0, 4, ())
    # node by node: a runtime would fuse the Add into the Conv before it
    problem = build_problem(graph, cluster, CostOptions(fusion=Fusion.NONE))
    mm, dw, big, small, view = (op.latency[0] for op in problem.ops)
    assert mm == pytest.approx(1e9 / 100e9 + 1e-6)  # GEMM at the full peak
    assert dw == pytest.approx(1e8 / (100e9 * 0.05) + 1e-6)  # depthwise at 5% of it
    assert big == pytest.approx(12e6 / (10e9 * 0.8) + 1e-6)  # from memory
    assert small == pytest.approx(12e3 / (100e9 * 0.8) + 1e-6)  # from the cache
    assert view == pytest.approx(1e-6)  # aliased: the dispatch alone


#: A CPU with a 1 MiB cache 10 times as fast as its memory.
_CACHED_CPU = """
devices:
  - name: cpu
    class: cpu
    peak_flops: 100GFLOPS
    memory: 16GiB
    memory_bandwidth: 10GB/s
    cache: {size: 1MiB, bandwidth: 100GB/s}
    efficiency: {default: 1.0, memory: 0.8, movement: 0.5}
    overhead: 1us
"""


def test_on_a_cpu_an_op_writing_a_fresh_buffer_streams_from_memory_whatever_its_size() -> None:
    """A model's non-in-place elementwise ops meet cold lines (their output's, and
    operands written long before): on a CPU they stream at the memory's bandwidth even
    where their traffic fits the cache; an in-place activation and data movement keep the
    cache's."""
    cluster = parse_cluster(_CACHED_CPU, "cpu.yaml")
    nodes = (
        GraphNode("add", "Add", 1e3, 8e3, 4e3, 0, 0.0, 4e3, True),  # 12 kB
        GraphNode("relu", "Relu", 1e3, 4e3, 4e3, 0, 0.0, 4e3, True, in_place=True),
        GraphNode("copy", "Transpose", 0.0, 4e3, 4e3, 0, 0.0, 4e3, True,
                  op_class=OpClass.MOVEMENT),
    )  # fmt: skip
    edges = tuple(GraphEdge(i, i + 1, f"t{i}", 4e3) for i in range(len(nodes) - 1))
    graph = OpGraph("g", nodes, edges, 0.0, 4, ())
    problem = build_problem(graph, cluster, CostOptions(fusion=Fusion.NONE))
    add, relu, copy = (op.latency[0] for op in problem.ops)
    assert add == pytest.approx(12e3 / (10e9 * 0.8) + 1e-6)  # from memory
    assert relu == pytest.approx(8e3 * IN_PLACE_SHARE / (100e9 * 0.8) + 1e-6)  # the cache
    assert copy == pytest.approx(8e3 / (100e9 * 0.5) + 1e-6)  # the cache, at its share
    # the same ops on an accelerator: the cache for each
    gpu = parse_cluster(
        "devices: [{name: gpu, class: accelerator, peak_flops: 100GFLOPS, memory: 16GiB, "
        "memory_bandwidth: 10GB/s, cache: {size: 1MiB, bandwidth: 100GB/s}, "
        "efficiency: {default: 1.0, memory: 0.8}, overhead: 1us}]", "gpu.yaml")  # fmt: skip
    add = build_problem(graph, gpu, CostOptions(fusion=Fusion.NONE)).ops[0].latency[0]
    assert add == pytest.approx(12e3 / (100e9 * 0.8) + 1e-6)


def _conv_latencies(shapes: list[ProductShape], device: str = "cpu", backward: bool = False,
                    **options) -> list[float]:  # fmt: skip
    """Each forward (or ``backward``) op's latency in a chain of 1x1 convolutions of
    ``shapes`` (fp32), the first without a bias."""
    nodes = tuple(
        GraphNode(f"c{i}", "Conv", 1e6, 1e6, 4e6, 0, 0.0, 4e6, True, op_class=OpClass.CONV,
                  product_shape=shape)
        for i, shape in enumerate(shapes)
    )  # fmt: skip
    edges = tuple(GraphEdge(i, i + 1, f"t{i}", 4e6) for i in range(len(nodes) - 1))
    cluster = parse_cluster(_CACHED_CPU.replace("class: cpu", f"class: {device}"), "c.yaml")
    graph = OpGraph("g", nodes, edges, 0.0, 4, ())
    problem = build_problem(graph, cluster, CostOptions(**options))
    latencies = [op.latency[0] for op in problem.ops if op.name.endswith("/grad") == backward]
    if not backward:  # what --costs-detail shows: the same times, the sweep among the passes
        shown = [times[0] for _, times in forward_times(graph, cluster, CostOptions(**options))]
        assert [t.seconds for t in shown] == pytest.approx(latencies)
        assert [t.passes for t in shown] == pytest.approx([t - latencies[0] for t in latencies])
    return latencies


def test_on_a_cpu_a_pointwise_convolutions_bias_costs_a_sweep_of_its_output() -> None:
    """Unfused, onnxruntime's CPU kernel for a 1x1 convolution with a bias adds the bias
    in a pass of its own over each image's output: its output once more, at the cache's
    bandwidth where one image's block fits the cache, else at memory's.  Not in the
    runtime's optimised graph, nor on an accelerator, nor for a backward pass."""
    plain = ProductShape(16, 96, 1e4, 1)
    big = ProductShape(16, 96, 1e4, 1, 16e6, 2e6)  # 2 MB per image: past the cache
    small = ProductShape(16, 96, 1e4, 1, 4e6, 0.5e6)  # 0.5 MB per image: in it
    none = {"fusion": Fusion.NONE}
    base, swept, cached = _conv_latencies([plain, big, small], **none)
    assert swept - base == pytest.approx(16e6 / (10e9 * 0.8))  # from memory
    assert cached - base == pytest.approx(4e6 / (100e9 * 0.8))  # from the cache
    for latencies in (
        _conv_latencies([plain, big]),  # the runtime's blocked kernels add it as they write
        _conv_latencies([plain, big], device="accelerator", **none),
        _conv_latencies([plain, big], backward=True, mode=Mode.TRAINING, **none),
    ):
        assert latencies[0] == pytest.approx(latencies[1])


def test_the_catalog_cpu_runs_lrn_at_its_scalar_rate() -> None:
    """onnxruntime's LRN calls a scalar pow per element: on the catalog's CPU it costs
    several times an exponential over as many elements, which streams its bytes from
    memory (vector code on 40 cores)."""
    cluster = parse_cluster("devices: [{type: cpu}]", "cpu.yaml")
    elements = 64 * 56 * 56
    moved = 8.0 * elements  # read and written once, fp32
    nodes = (
        GraphNode("lrn", "LRN", 13.0 * elements, moved / 2, moved / 2, 0, 0.0, moved / 2,
                  True, op_class=OpClass.SCALAR),
        GraphNode("exp", "Exp", 4.0 * elements, moved / 2, moved / 2, 0, 0.0, moved / 2,
                  True, op_class=OpClass.TRANSCENDENTAL),
    )  # fmt: skip
    graph = OpGraph("g", nodes, (GraphEdge(0, 1, "t", moved / 2),), 0.0, 4, ())
    lrn, exp = (op.latency[0] for op in build_problem(graph, cluster, CostOptions()).ops)
    assert lrn > 4 * exp
    # 31 ns an element on one core, spread over the socket's 40 (an estimate)
    assert lrn == pytest.approx(31e-9 * elements / 40, rel=0.2)


def test_a_number_for_efficiency_costs_every_class_alike() -> None:
    problem = build_problem(graph(), CLUSTER, CostOptions())
    conv = GraphNode("mm", "MatMul", 1e9, 6e6, 4e6, 1_000_000, 4e6, 4e6, True,
                     op_class=OpClass.GROUPED_CONV)  # fmt: skip
    other = build_problem(OpGraph("g", (conv,), (), 0.0, 4, ()), CLUSTER, CostOptions())
    assert other.ops[0].latency == problem.ops[0].latency


def test_inference_keeps_the_peak_of_live_activations_not_their_sum(resnet50_any_batch) -> None:
    """ResNet-50 at batch 256 holds 36 GiB of outputs in all, but a runtime frees them as
    it goes: about 2.4 GiB are live at once, and with 98 MiB of weights one 16 GiB T4
    holds it (which it does in practice); summing every output refused it."""
    from placer.api import ModelOptions, load_graph, load_problem
    from placer.evaluator import evaluate
    from placer.problem import Placement

    resnet = resnet50_any_batch
    options = ModelOptions(cluster=parse_cluster("devices: [{type: t4}]", "t4.yaml"),
                           input_shapes={"gpu_0/data_0": (256, 3, 224, 224)})  # fmt: skip
    graph = load_graph(resnet, options)
    assert graph.activation_bytes > 30 * 2**30
    assert graph.peak_activation_bytes < 4 * 2**30
    problem = load_problem(resnet, options)
    assert problem.reserved_bytes == graph.peak_activation_bytes
    evaluation = evaluate(problem, Placement((0,) * len(problem.ops)))
    assert evaluation.valid
    (stage,) = evaluation.stages
    weights = sum(op.size_bytes for op in problem.ops)
    assert stage.memory_bytes == pytest.approx(weights + problem.reserved_bytes)
    assert weights == pytest.approx(graph.total_param_bytes)
    # training stashes every activation for the backward pass: no reservation then
    trained = load_problem(resnet, ModelOptions(cluster=options.cluster, mode="training",
                                                input_shapes=options.input_shapes))  # fmt: skip
    assert trained.reserved_bytes == 0.0


def test_a_costs_device_the_cluster_lacks_is_refused_with_the_way_out(run_placer, tmp_path):
    model = ROOT / "sample_models" / "gpt2_small.onnx"
    costs = tmp_path / "costs.csv"
    costs.write_text("op,device,seconds\ntransformer.wte/Gather,cpu,0.001\n")
    cluster = tmp_path / "mine.yaml"
    cluster.write_text("devices: [{name: local-cpu, class: cpu, peak_flops: 100GFLOPS, "
                       "memory: 8GiB, memory_bandwidth: 20GB/s}]\n")  # fmt: skip
    line = one_line_error(
        run_placer("place", model, "--input-shape", "input_ids=1,16", "--cluster", cluster,
                   "--costs", costs),
        "device 'cpu' is neither a group nor a type of the cluster (local-cpu)",
        "placer profile --device-name local-cpu",
    )
    assert "custom" not in line
