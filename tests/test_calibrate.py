"""``placer calibrate``: microbenchmarks in onnxruntime, and the cluster file they give."""

from __future__ import annotations

from pathlib import Path

import pytest

from placer.calibrate import _CHAIN, _SWEEP_BYTES, Measurement, _derive, cluster_yaml
from placer.cluster import load_cluster, parse_cluster
from tests.conftest import one_line_error

GPT2 = Path(__file__).resolve().parents[1] / "sample_models" / "gpt2_small.onnx"


def synthetic() -> list[Measurement]:
    """Measurements of a made-up device: a run costs 4 us beyond its ops, an op 0.5 us
    more, GEMMs reach 100 GFLOP/s, streaming 100 GB/s in traffic up to 1 MiB and 20 GB/s
    beyond, depthwise Conv 5 GFLOP/s (1 GFLOP/s with the runtime's optimisations off),
    data movement half the streaming bandwidth."""
    run, op = 4e-6, 0.5e-6

    def timed(name, kind, flops, moved, seconds):
        return Measurement(name, kind, flops, moved, run + op + seconds)

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
        timed("Conv dw", "grouped_conv", 1e8, 1e6, 1e8 / 5e9),
        timed("Conv dw alone", "unfused.grouped_conv", 1e8, 1e6, 1e8 / 1e9),
        timed("Transpose", "movement", 0, 6e6, 6e6 / 10e9),  # memory regime: half of 20
        timed("Concat", "movement", 0, 6e5, 6e5 / 50e9),  # cache regime: half of 100
    ]
    return out


def test_figures_are_derived_from_the_measurements() -> None:
    c = _derive("cpu", 1, 2, "fp32", "thread CPU time", "1.0", synthetic())
    assert c.overhead == pytest.approx(0.5e-6)
    assert c.peak_flops == pytest.approx(100e9)  # the best GEMM
    assert c.efficiency["gemm"] == pytest.approx(0.9)  # median of 100 and 80
    assert c.efficiency["grouped_conv"] == pytest.approx(0.05)
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
    assert cluster.link("made-up", "made-up").bandwidth == pytest.approx(10e9, rel=1e-3)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """One real calibration of this machine's CPU (a few seconds)."""
    from placer.cli import main

    path = tmp_path_factory.mktemp("calibrate") / "local-cpu.yaml"
    with pytest.raises(SystemExit) as done:
        main(["calibrate", "-o", str(path)])
    assert done.value.code in (0, None)
    return path


def test_calibrate_writes_a_cluster_file_that_places_a_model(calibrated, run_placer) -> None:
    group = load_cluster(calibrated).group("local-cpu")
    assert 1e9 < group.peak("fp32") < 1e14  # a GEMM rate some CPU reaches
    assert group.class_efficiency["gemm"] > 0.5
    assert group.class_efficiency["grouped_conv"] < group.class_efficiency["gemm"]
    assert group.cache_bandwidth == 0 or group.cache_bandwidth > group.memory_bandwidth
    assert 0 < group.overhead < 1e-4
    result = run_placer("place", GPT2, "--input-shape", "input_ids=1,16", "--cluster",
                        calibrated, "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    # two such devices, named by reference from another file beside it
    pair = calibrated.parent / "pair.yaml"
    pair.write_text("devices: [{type: ./local-cpu.yaml, count: 2}]\n")
    result = run_placer("place", GPT2, "--input-shape", "input_ids=1,16", "--cluster", pair)
    assert result.exit_code == 0, result.stderr
    assert "local-cpu:1" in result.stdout


def test_calibrate_refuses_what_it_cannot_measure(run_placer, tmp_path) -> None:
    import onnxruntime

    out = tmp_path / "x.yaml"
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        one_line_error(run_placer("calibrate", "--device", "cuda", "-o", out),
                       "no CUDA execution provider")  # fmt: skip
    one_line_error(run_placer("calibrate", "--dtype", "fp16", "-o", out), "--dtype fp16")
    one_line_error(run_placer("calibrate", "--device", "tpu", "-o", out), "expected cpu")
    one_line_error(run_placer("calibrate", "--name", "a\tb", "-o", out), "--name")
    assert not out.exists()


def test_the_half_efficiency_length_is_fitted_from_convolutions_of_several_lengths() -> None:
    from placer.calibrate import _half_at

    # rate = 100 GFLOP/s · K / (K + 20), measured at four lengths
    points = [(k, 100e9 * k / (k + 20)) for k in (16, 27, 256, 576)]
    assert _half_at(points) == pytest.approx(20)
    assert _half_at([(576, 1e9)]) == 0.0  # one length shows nothing
    flat = [(k, 50e9) for k in (16, 576)]
    assert _half_at(flat) == 0.0  # no slowdown: none modelled


def test_a_short_reduction_runs_slower_where_the_file_says_so() -> None:
    group = parse_cluster(
        "devices: [{name: cpu, class: cpu, peak_flops: 100GFLOPS, memory: 1GiB, "
        "memory_bandwidth: 10GB/s, efficiency: {default: 1, half_at: {conv: 20}}}]",
        "cpu.yaml",
    ).group("cpu")
    assert group.compute_rate("fp32", "conv", inner=20) == pytest.approx(50e9)
    assert group.compute_rate("fp32", "conv", inner=580) == pytest.approx(100e9 * 580 / 600)
    assert group.compute_rate("fp32", "gemm", inner=20) == pytest.approx(100e9)  # not given
    assert group.efficiency_spec == {"default": 1.0, "half_at": {"conv": 20.0}}
