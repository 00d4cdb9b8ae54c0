"""``placer calibrate``: microbenchmarks in onnxruntime, and the cluster file they give."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from placer.costs.calibrate import (
    _CHAIN,
    _PASSES,
    _SHIFT,
    _SWEEP_BYTES,
    Measurement,
    Setup,
    _derive,
    _shifted,
    cluster_yaml,
)
from placer.costs.cluster_file import load_cluster, parse_cluster
from placer.costs.contention import available_cores
from placer.frontends.opcost import UNSHAPED, ProductShape
from placer.outputs.schema import load_schema, schema_errors
from tests.conftest import ROOT, one_line_error

#: Devices the real calibration writes: two (pinned, their shared bandwidth measured)
#: where this process may run on two cores.
COUNT = 2 if len(available_cores()) >= 2 else 1

GPT2 = ROOT / "sample_models" / "gpt2_small.onnx"


def synthetic() -> list[Measurement]:
    """Measurements of a made-up device: a run costs 4 us beyond its ops, an op 0.5 us
    more, GEMMs reach 100 GFLOP/s, streaming 100 GB/s in traffic up to 1 MiB and 20 GB/s
    beyond, depthwise Conv 5 GFLOP/s (1 GFLOP/s with the runtime's optimisations off),
    data movement half the streaming bandwidth."""
    run, op = 4e-6, 0.5e-6

    def timed(name, kind, flops, moved, seconds, shape=UNSHAPED):
        return Measurement(name, kind, flops, moved, run + op + seconds, shape)

    out = [
        Measurement("1 one-element Add", "overhead", 0, 0, run + op),
        Measurement("64 one-element Add", "overhead", 0, 0, run + _CHAIN * op),
    ]
    for total in _SWEEP_BYTES:
        bandwidth = 100e9 if total <= 2**20 else 20e9
        out.append(timed(f"Add {total}", "sweep", total / 12, total, total / bandwidth))
    out += [
        timed("MatMul a", "gemm", 2e9, 1e6, 2e9 / 100e9),
        timed("MatMul b", "gemm", 4e9, 1e6, 4e9 / 80e9),
        # products of two activations: 80 GFLOP/s · K/(K + 16), at K = 64 and 768
        timed("MatMul heads", "matmul", 1e8, 1e6, 1e8 / 64e9, ProductShape(64)),
        timed("MatMul layer", "matmul", 1e9, 1e6, 1e9 / (80e9 * 768 / 784), ProductShape(768)),
        timed("Conv dw", "grouped_conv", 1e8, 1e6, 1e8 / 5e9),
        timed("Conv dw alone", "unfused.grouped_conv", 1e8, 1e6, 1e8 / 1e9),
        timed("LRN", "scalar", 1e6, 1e5, 1e6 / 0.4e9),  # a scalar pow per element
        # onnxruntime's fused residual Add and LayerNorm, well below either alone
        timed("SkipLayerNormalization", "kernels.skip_norm", 8e6, 1e7, 8e6 / 1.6e9),
        # 16 Relu nodes in a row, each 65,536 elements at 20 G/s: the run's time and the
        # overheads of 16 nodes, shared by them
        Measurement("16 Relu", "elementwise", 65536, 65536 * 8,
                    (run + 16 * op + 16 * 65536 / 20e9) / 16, nodes=16),
        timed("Transpose", "movement", 0, 6e6, 6e6 / 10e9),  # memory regime: half of 20
        timed("Concat", "movement", 0, 6e5, 6e5 / 50e9),  # cache regime: half of 100
    ]
    return out


def test_figures_are_derived_from_the_measurements() -> None:
    c = _derive(Setup("cpu", 1, 2, "fp32", "thread CPU time", "1.0"), synthetic())
    assert c.overhead == pytest.approx(0.5e-6)
    assert c.peak_flops == pytest.approx(100e9)  # the best GEMM
    assert c.efficiency["gemm"] == pytest.approx(0.9)  # median of 100 and 80
    assert c.efficiency["grouped_conv"] == pytest.approx(0.05)
    assert c.efficiency["scalar"] == pytest.approx(0.004)
    assert c.efficiency["kernels.skip_norm"] == pytest.approx(0.016)
    assert c.efficiency["elementwise"] == pytest.approx(0.2)  # a chain's node: 20 G/s
    assert c.efficiency["movement"] == pytest.approx(0.5)
    assert c.memory_bandwidth == pytest.approx(20e9)
    assert c.cache_bandwidth == pytest.approx(100e9)
    assert c.cache_bytes == 768 * 2**10  # the largest sweep size within 1 MiB
    cluster = parse_cluster(cluster_yaml(c, "made-up"), "made-up.yaml")
    group = cluster.group("made-up")
    assert group.count == 2
    assert group.compute_rate("fp32", "grouped_conv") == pytest.approx(5e9, rel=1e-3)
    # with the runtime's optimisations off, its measured rate; a class not measured
    # that way keeps its one figure
    unfused = group.compute_rate("fp32", "grouped_conv", unfused=True)
    assert unfused == pytest.approx(1e9, rel=1e-3)
    assert group.compute_rate("fp32", "gemm", unfused=True) == group.compute_rate("fp32", "gemm")
    assert group.stream_rate(10e6, "movement") == pytest.approx(10e9, rel=1e-3)
    # inside the fused kernel, the kernel's rate for every class of its nodes
    for kind in ("elementwise", "reduction"):
        rate = group.compute_rate("fp32", kind, kernel="skip_norm")
        assert rate == pytest.approx(1.6e9, rel=1e-3)
    # a product of two activations: its rate at each reduction length, from the fit
    for inner, rate in ((64, 64e9), (768, 80e9 * 768 / 784), (4096, 80e9 * 4096 / 4112)):
        shape = ProductShape(inner)
        assert group.compute_rate("fp32", "matmul", shape=shape) == pytest.approx(rate, rel=0.05)
    assert cluster.link("made-up", "made-up").bandwidth == pytest.approx(10e9, rel=1e-3)


def test_the_devices_streaming_at_once_give_the_shared_bandwidth() -> None:
    # two devices each moving the largest sweep's bytes in 1.5x its time alone
    largest = _SWEEP_BYTES[-1]
    run = 4e-6 + 0.5e-6  # the one-element run's time, taken out as for every benchmark
    together = [Measurement(f"Add {largest}, device {i} of 2 at once", "shared",
                            largest / 12, largest, run + 1.5 * largest / 20e9)
                for i in range(2)]  # fmt: skip
    c = _derive(Setup("cpu", 1, 2, "fp32", "thread CPU time", "1.0", cores=(4, 5)),
                synthetic() + together)  # fmt: skip
    assert c.shared_bandwidth == pytest.approx(2 * 20e9 / 1.5)
    group = parse_cluster(cluster_yaml(c, "made-up"), "made-up.yaml").group("made-up")
    assert group.cores == (4, 5) and group.device_cores(1) == (5,)
    assert group.shared_bandwidth == pytest.approx(26.67e9)
    assert group.dram_bandwidth == pytest.approx(20e9 / 1.5, rel=1e-3)
    # alone: nothing shared, nothing pinned
    alone = _derive(Setup("cpu", 1, 1, "fp32", "thread CPU time", "1.0"), synthetic())
    group = parse_cluster(cluster_yaml(alone, "made-up"), "made-up.yaml").group("made-up")
    assert (group.cores, group.shared_bandwidth) == ((), 0.0)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """One real calibration of this machine's CPU (a few seconds), of :data:`COUNT`
    devices."""
    from placer.cli import main

    path = tmp_path_factory.mktemp("calibrate") / "local-cpu.yaml"
    with pytest.raises(SystemExit) as done:
        main(["calibrate", "--count", str(COUNT), "-o", str(path)])
    assert done.value.code in (0, None)
    return path


class FakeSession:
    """A session that runs nothing."""

    def run(self, _outputs, feeds):
        return None


class FakeRunner:
    """A runner on no device: sessions that run nothing, each timed at 1 ms."""

    timer = "fake"

    def __init__(self, *_args) -> None:
        pass

    def session(self, model, optimised=False):
        return FakeSession()

    def samples(self, session, feeds, share=1.0):
        return [1e-3]


def test_each_benchmark_is_timed_in_passes_on_inputs_at_other_addresses(monkeypatch) -> None:
    """Every benchmark is timed in each of :data:`_PASSES` passes over them all (its
    samples pooled), each pass on copies of its inputs starting elsewhere in a page."""
    import numpy as np

    from placer.costs import calibrate as module

    seen: dict[int, list[tuple[int, int]]] = {}  # session -> (pass, input's page offset)
    order: list[int] = []

    class Runner(FakeRunner):
        def samples(self, session, feeds, share=1.0):
            order.append(id(session))
            array = next(iter(feeds.values()))
            seen.setdefault(id(session), []).append(array.ctypes.data % 4096)
            assert share == pytest.approx(1 / _PASSES)
            return [1e-3 * len(seen[id(session)])]  # 1, 2, 3 ms: median 2 ms

    monkeypatch.setattr(module, "Runner", Runner)
    calibration = module.calibrate()
    assert len(seen) == len(module._benchmarks("fp32"))
    for offsets in seen.values():
        assert len(offsets) == _PASSES and len(set(offsets)) == _PASSES
    # passes over all the benchmarks, not one benchmark's repeats in a burst
    assert order[: len(seen)] == order[len(seen) : 2 * len(seen)]
    single = next(m for m in calibration.measurements if m.name == "1 one-element Add")
    assert single.seconds == pytest.approx(2e-3)
    feeds = {"x": np.arange(12, dtype=np.float32).reshape(3, 4)}
    for pass_ in range(_PASSES):
        copy = _shifted(feeds, pass_)["x"]
        assert copy.ctypes.data % 4096 == pass_ * _SHIFT % 4096
        assert copy.shape == (3, 4) and (copy == feeds["x"]).all()


def test_calibrate_writes_a_cluster_file_that_places_a_model(calibrated, run_placer) -> None:
    group = load_cluster(calibrated).group("local-cpu")
    assert 1e9 < group.peak("fp32") < 1e14  # a GEMM rate some CPU reaches
    assert group.class_efficiency["gemm"] > 0.5
    assert group.class_efficiency["grouped_conv"] < group.class_efficiency["gemm"]
    # onnxruntime's LRN: a pow per element, far below the vector exponentials
    assert group.class_efficiency["scalar"] < group.class_efficiency["transcendental"] / 3
    assert group.cache_bandwidth == 0 or group.cache_bandwidth > group.memory_bandwidth
    assert 0 < group.overhead < 1e-4
    assert 0 < group.class_efficiency["kernels.skip_norm"] <= 1
    result = run_placer("place", GPT2, "--input-shape", "input_ids=1,16", "--cluster",
                        calibrated, "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    # the plan records the calibrated device, every fitted figure included
    assert schema_errors(json.loads(result.stdout), load_schema("plan")) == []
    # two such devices, named by reference from another file beside it
    pair = calibrated.parent / "pair.yaml"
    pair.write_text("devices: [{type: ./local-cpu.yaml, count: 2}]\n")
    result = run_placer("place", GPT2, "--input-shape", "input_ids=1,16", "--cluster", pair)
    assert result.exit_code == 0, result.stderr
    assert "local-cpu:1" in result.stdout


def test_a_calibration_older_than_a_class_is_noted_where_the_model_has_its_ops(
    calibrated, run_placer, tmp_path
) -> None:
    """A file calibrated before placer timed LRN costs it at its default efficiency,
    far off: each command placing a model with an LRN says so, by reference too."""
    from tests.frontends.test_onnx_graph import LIGHT_MODELS

    old = tmp_path / "old-cpu.yaml"
    text = calibrated.read_text()
    assert "    scalar: " in text
    old.write_text("".join(line for line in text.splitlines(keepends=True)
                           if not line.startswith("    scalar: ")))  # fmt: skip
    pair = tmp_path / "pair.yaml"
    pair.write_text("devices: [{type: ./old-cpu.yaml, count: 2}]\n")
    inception = next(p for p in LIGHT_MODELS if p.stem == "light_inception_v1")
    for cluster in (old, pair):
        result = run_placer("place", inception, "--cluster", cluster)
        assert result.exit_code == 0, result.stderr
        assert "old-cpu.yaml: calibrated before placer timed LRN" in result.stdout
    # a model without LRN hears nothing of it, and a fresh calibration says nothing
    result = run_placer("place", GPT2, "--input-shape", "input_ids=1,16", "--cluster", old)
    assert result.exit_code == 0 and "calibrated before" not in result.stdout
    result = run_placer("place", inception, "--cluster", calibrated)
    assert result.exit_code == 0 and "calibrated before" not in result.stdout


def test_calibrate_pins_the_devices_and_measures_their_shared_bandwidth(calibrated) -> None:
    group = load_cluster(calibrated).group("local-cpu")
    first = tuple(available_cores()[:COUNT])
    assert group.count == COUNT and group.cores == first
    assert [group.device_cores(i) for i in range(COUNT)] == [(core,) for core in first]
    if COUNT == 1:
        assert group.shared_bandwidth == 0  # one device shares nothing
        return
    # two devices at once move about as much as one alone (one core saturates the
    # socket) to twice as much (each streams as fast as alone); noise either way
    assert 0.5 < group.shared_bandwidth / group.memory_bandwidth < 3
    measured = yaml.safe_load(calibrated.read_text())["calibration"]["measured"]
    shared = [entry for entry in measured if entry["class"] == "shared"]
    assert [entry["name"] for entry in shared] == [
        f"Add {_SWEEP_BYTES[-1]} B, device {i} of 2 at once" for i in range(2)
    ]


def test_calibrate_refuses_more_devices_than_cores(run_placer, tmp_path) -> None:
    out = tmp_path / "x.yaml"
    cores = len(available_cores())
    one_line_error(run_placer("calibrate", "--count", cores + 1, "-o", out),
                   f"--count {cores + 1} --threads 1", f"need {cores + 1} cores")  # fmt: skip
    one_line_error(run_placer("calibrate", "--count", cores, "--threads", 2, "-o", out),
                   f"need {2 * cores} cores", f"may run on {cores}")  # fmt: skip
    assert not out.exists()


def test_calibrate_refuses_what_it_cannot_measure(run_placer, tmp_path) -> None:
    import onnxruntime

    out = tmp_path / "x.yaml"
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        one_line_error(run_placer("calibrate", "--device", "cuda", "-o", out),
                       "no CUDA provider in this onnxruntime build")  # fmt: skip
    one_line_error(run_placer("calibrate", "--dtype", "fp16", "-o", out), "--dtype fp16")
    one_line_error(run_placer("calibrate", "--device", "tpu", "-o", out), "expected cpu")
    one_line_error(run_placer("calibrate", "--name", "a\tb", "-o", out), "--name")
    # a cluster file is YAML: a name that says otherwise is refused before measuring
    for name in ("local.json", "local.txt"):
        wrong = tmp_path / name
        one_line_error(run_placer("calibrate", "-o", wrong), str(wrong), ".yaml or .yml")
        assert not wrong.exists()
    assert not out.exists()


def test_the_half_efficiency_lengths_are_fitted_from_convolutions_of_several_shapes() -> None:
    from placer.costs.calibrate import _shape_fit

    # rate = 100 GFLOP/s · K/(K + 16) · M/(M + 32) · N/(N + 64), at seven shapes
    shapes = [ProductShape(576, 64, 3136), ProductShape(256, 64, 3136),
              ProductShape(16, 96, 12544), ProductShape(256, 256, 784),
              ProductShape(128, 16, 3136), ProductShape(256, 256, 49),
              ProductShape(27, 32, 12544)]  # fmt: skip

    def rate(s: ProductShape) -> float:
        return 100e9 * s.inner / (s.inner + 16) * s.channels / (s.channels + 32) \
            * s.positions / (s.positions + 64)

    assert _shape_fit([(s, rate(s)) for s in shapes]) == pytest.approx((16, 32, 64))
    assert _shape_fit([(shapes[0], 1e9)]) == (0, 0, 0)  # one point shows nothing
    flat = [(s, 50e9) for s in shapes]
    assert _shape_fit(flat) == (0, 0, 0)  # no slowdown: none modelled
    # a depthwise convolution's K and M never vary: only N is fitted
    depthwise = [ProductShape(9, 1, n) for n in (3136, 49)]
    fitted = _shape_fit([(s, 10e9 * s.positions / (s.positions + 128)) for s in depthwise])
    assert fitted == pytest.approx((0, 0, 128))


def test_a_strided_depthwise_convolution_is_charged_its_share_without_the_cost_per_channel(
) -> None:
    # the plain depthwise kernel: 4 GFLOP/s · N/(N + 128) at stride 1; a strided one
    # expands its input and runs as a GEMM at a flat 2 GFLOP/s, over a 7x7 map too
    run, op = 4e-6, 0.5e-6

    def dw(n: int, stride: int, rate: float) -> Measurement:
        flops = 9 * 2 * 96 * n
        return Measurement(f"dw {n} {stride}", "unfused.grouped_conv", flops, 1e5,
                           run + op + flops / rate, ProductShape(9, 1, n, stride))

    plain = [dw(n, 1, 4e9 * n / (n + 128)) for n in (3136, 784, 49)]
    others = [m for m in synthetic() if m.op_class != "unfused.grouped_conv"]
    c = _derive(Setup("cpu", 1, 1, "fp32", "thread CPU time", "1.0"),
                others + plain + [dw(784, 2, 2e9), dw(49, 2, 2e9)])  # fmt: skip
    assert c.efficiency["half_at_positions.grouped_conv"] == pytest.approx(128)
    assert c.efficiency["strided.grouped_conv"] == pytest.approx(0.5, rel=0.02)
    group = parse_cluster(cluster_yaml(c, "made-up"), "made-up.yaml").group("made-up")
    for n in (784, 49):
        strided = ProductShape(9, 1, n, 2)
        rate = group.compute_rate("fp32", "grouped_conv", unfused=True, shape=strided)
        assert rate == pytest.approx(2e9, rel=0.02)
    # stride 1 keeps the cost per channel
    small = group.compute_rate("fp32", "grouped_conv", unfused=True, shape=ProductShape(9, 1, 49))
    assert small == pytest.approx(4e9 * 49 / 177, rel=0.02)


def test_a_short_reduction_runs_slower_where_the_file_says_so() -> None:
    group = parse_cluster(
        "devices: [{name: cpu, class: cpu, peak_flops: 100GFLOPS, memory: 1GiB, "
        "memory_bandwidth: 10GB/s, efficiency: {default: 1, half_at: {conv: 20}}}]",
        "cpu.yaml",
    ).group("cpu")
    def rate(kind: str, **shape) -> float:
        return group.compute_rate("fp32", kind, shape=ProductShape(**shape))

    assert rate("conv", inner=20) == pytest.approx(50e9)
    assert rate("conv", inner=580) == pytest.approx(100e9 * 580 / 600)
    assert rate("gemm", inner=20) == pytest.approx(100e9)  # not given
    assert group.efficiency_spec == {"default": 1.0, "half_at": {"conv": 20.0}}


def test_few_channels_few_positions_and_strides_run_slower_where_the_file_says_so() -> None:
    text = ("devices: [{name: cpu, class: cpu, peak_flops: 100GFLOPS, memory: 1GiB, "
            "memory_bandwidth: 10GB/s, efficiency: {default: 1, unfused: {grouped_conv: 0.5}, "
            "half_at_channels: {conv: 32}, half_at_positions: {conv: 49, grouped_conv: 100}, "
            "strided: {grouped_conv: 0.4}}}]")  # fmt: skip
    group = parse_cluster(text, "cpu.yaml").group("cpu")

    def rate(kind: str, unfused: bool = False, **shape) -> float:
        return group.compute_rate("fp32", kind, unfused=unfused, shape=ProductShape(**shape))

    # the plain kernels (optimisations off) slow down as the file says
    assert rate("conv", unfused=True, channels=32) == pytest.approx(50e9)
    assert rate("conv", unfused=True, channels=32, positions=49) == pytest.approx(25e9)
    assert rate("conv", unfused=True) == pytest.approx(100e9)  # a shape not known: none
    assert rate("grouped_conv", unfused=True, positions=100) == pytest.approx(25e9)
    assert rate("grouped_conv", unfused=True, stride=2) == pytest.approx(20e9)
    # a strided depthwise one runs another kernel: its share, not the cost per channel
    assert rate("grouped_conv", unfused=True, positions=100, stride=2) == pytest.approx(20e9)
    assert rate("conv", unfused=True, stride=2) == pytest.approx(100e9)  # none for conv
    # a dense one keeps its narrow GEMM's factors whatever its stride
    assert rate("conv", unfused=True, positions=49, stride=2) == pytest.approx(50e9)
    # the blocked-layout kernels of the default level depend on K alone
    assert rate("conv", channels=32, positions=49) == pytest.approx(100e9)
    assert rate("grouped_conv", positions=100, stride=2) == pytest.approx(100e9)
    spec = group.efficiency_spec
    assert spec["half_at_positions"] == {"conv": 49.0, "grouped_conv": 100.0}
    assert spec["strided"] == {"grouped_conv": 0.4}
    # what a cluster file gives back reads the same
    device = {"name": "cpu", "class": "cpu", "peak_flops": "100GFLOPS", "memory": "1GiB",
              "memory_bandwidth": "10GB/s", "efficiency": spec}  # fmt: skip
    again = parse_cluster(yaml.safe_dump({"devices": [device]}), "again.yaml").group("cpu")
    assert again.class_efficiency == group.class_efficiency


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux: read from /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError):
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie left for init to reap does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(COUNT < 2 or not Path("/proc/self/stat").exists(),
                    reason="needs two cores and Linux's /proc")  # fmt: skip
@pytest.mark.parametrize("after", [0.0, 0.05, 0.3])
def test_ctrl_c_while_the_devices_stream_leaves_no_process_and_no_file(tmp_path, after) -> None:
    """Ctrl-C at a terminal (SIGINT to the whole process group) ``after`` seconds into
    the parallel step: exit 130 within a second, one line, no output, and none of the
    processes it started still running."""
    out = tmp_path / "local-cpu.yaml"
    process = subprocess.Popen(
        [sys.executable, "-m", "placer", "calibrate", "--count", "2", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group of its own, as a terminal's job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    began = time.monotonic()
    started: set[int] = set()
    # the step has begun once both streaming processes exist (beside the resource tracker)
    while len(started) < 3 and process.poll() is None and time.monotonic() - began < 120:
        started |= set(_children(process.pid))
        time.sleep(0.005)
    assert process.poll() is None, "calibrate ended before its parallel step"
    time.sleep(after)
    started |= set(_children(process.pid))
    sent = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("Ctrl-C did not end calibrate within 30 s")
    took = time.monotonic() - sent
    stderr = err.decode(errors="replace")
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["placer: interrupted"], stderr
    assert took < 1.0
    assert not out.exists() and list(tmp_path.iterdir()) == []
    deadline = time.monotonic() + 2
    while any(_running(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [pid for pid in started if _running(pid)] == []


def test_a_calibration_older_than_the_skip_norm_kernel_is_noted_where_the_runtime_fuses_one(
    calibrated, run_placer, tmp_path
) -> None:
    """BERT-base's residual Adds and LayerNorms run as onnxruntime's SkipLayerNormalization
    under --fusion runtime: a file calibrated before placer timed that kernel charges
    them their classes' rates, and each command says so; with --fusion none, nothing."""
    old = tmp_path / "old-cpu.yaml"
    text = calibrated.read_text()
    assert "    kernels:\n      skip_norm: " in text
    old.write_text(re.sub(r"    kernels:\n      skip_norm: .*\n", "", text))
    bert = ROOT / "sample_models" / "bert_base.onnx"
    shape = ("--input-shape", "input_ids=1,16")
    result = run_placer("place", bert, *shape, "--cluster", old)
    assert result.exit_code == 0, result.stderr
    assert ("old-cpu.yaml: calibrated before placer timed SkipLayerNormalization (no "
            "'kernels.skip_norm' efficiency): the model's SkipLayerNormalization kernels are "
            "charged their nodes' classes") in " ".join(result.stdout.split())
    result = run_placer("place", bert, *shape, "--cluster", old, "--fusion", "none")
    assert result.exit_code == 0 and "calibrated before" not in result.stdout


def test_a_fused_kernel_the_runtime_cannot_run_leaves_its_figure_out(monkeypatch) -> None:
    """A build or device without onnxruntime's SkipLayerNormalization still calibrates:
    the figure is left out (its nodes then run at their classes' rates), where a
    benchmark of a standard op that fails stops the calibration."""
    from placer.costs import calibrate as module
    from placer.errors import InputError

    failing = {"SkipLayerNormalization"}

    class Runner(FakeRunner):
        def session(self, model, optimised=False):
            if {node.op_type for node in model.graph.node} & failing:
                raise InputError("onnxruntime cannot run on this device: no such kernel")
            return super().session(model, optimised)

    monkeypatch.setattr(module, "Runner", Runner)
    calibration = module.calibrate()
    assert "kernels.skip_norm" not in calibration.efficiency
    assert not any(m.op_class == "kernels.skip_norm" for m in calibration.measurements)
    assert "gemm" in calibration.efficiency
    failing = {"Softmax"}
    with pytest.raises(InputError, match="no such kernel"):
        module.calibrate()
