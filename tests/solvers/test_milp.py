"""The MILP: its statuses, bounds, warm starts, deadlines and the auto solver (its optima
against brute force are in test_battery.py, with every other exact solver)."""

from __future__ import annotations

import math
import os
import random
import signal
import time

import pulp
import pytest
from hypothesis import HealthCheck, given, settings

from placer.errors import InfeasiblePlacement, NoPlacementFound
from placer.evaluator import evaluate
from placer.frontends.workload import parse_workload, read_workload
from placer.problem import DeviceClass, DeviceKind, LinkCost, Op, Placement, Problem
from placer.solvers import SolverOptions, get_solver
from placer.solvers.auto import solve_auto
from placer.solvers.dp.search import solve_dp
from placer.solvers.milp.solve import solve_milp
from tests.conftest import EXPECTED, REFERENCE
from tests.solvers.test_dp_links import cluster_problems
from tests.strategies import brute_force, describe, workloads

HIGHS = pytest.param("highs", marks=pytest.mark.skipif(
    not pulp.HiGHS().available(), reason="highspy is not installed"))  # fmt: skip
BACKENDS = [HIGHS, "cbc"]


def optimum_or_none(problem, contiguous=True):
    try:
        return brute_force(problem, contiguous=contiguous)
    except InfeasiblePlacement:
        return None


def check_claim(problem, result, contiguous=True) -> None:
    evaluation = evaluate(problem, result.placement, require_contiguous=contiguous)
    assert evaluation.valid, evaluation.violations
    assert evaluation.max_load == pytest.approx(result.objective, rel=1e-9, abs=1e-9)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=workloads(max_forward=7))
def test_warm_start_from_any_valid_plan_keeps_the_optimum(problem) -> None:
    try:
        start = solve_dp(problem, SolverOptions(max_ideals=1))
    except InfeasiblePlacement:
        return
    exact = solve_dp(problem)
    for contiguous in (True, False):
        result = solve_milp(
            problem, SolverOptions(warm_start=start.placement, contiguous=contiguous)
        )
        assert not any("ignored" in note for note in result.notes)
        check_claim(problem, result, contiguous)
        assert result.objective <= start.objective + 1e-9
        if contiguous:
            assert result.objective == pytest.approx(exact.objective, rel=1e-6, abs=1e-6)


@pytest.mark.slow
def test_cbc_finds_the_reference_optimum() -> None:
    name = "layer-graphs/bert24_training"
    problem = read_workload(REFERENCE / f"{name}.json")
    result = solve_milp(problem, SolverOptions(mip_solver="cbc", time_limit=120))
    assert result.optimal
    assert result.objective == pytest.approx(EXPECTED["optimal"][name], rel=1e-5)


def hard() -> tuple:
    problem = read_workload(REFERENCE / "layer-graphs/resnet50_training.json")
    start = solve_dp(problem, SolverOptions(max_ideals=1))
    return problem, start


@pytest.mark.parametrize("backend", BACKENDS)
def test_time_limit_is_reported_as_a_gap(backend) -> None:
    problem, start = hard()
    result = solve_milp(
        # the limit covers building the model too: leave HiGHS a second or two of it
        problem, SolverOptions(mip_solver=backend, time_limit=3, warm_start=start.placement)
    )
    check_claim(problem, result)
    assert not result.optimal
    assert result.objective <= start.objective + 1e-9
    assert result.lower_bound is not None and 0 < result.lower_bound < result.objective
    assert result.gap == pytest.approx((result.objective - result.lower_bound) / result.objective)
    assert 0 < result.gap < 1
    assert any("not proven optimal" in note for note in result.notes)
    assert result.seconds < 30


def test_ctrl_c_stops_the_solve_at_once() -> None:
    """Ctrl-C reaches the caller as KeyboardInterrupt within a second, however busy HiGHS
    is (it is asked to stop and left to do so in its thread)."""
    # BERT-L12's operator graph keeps HiGHS busy for minutes; Ctrl-C once it is solving
    problem = read_workload(REFERENCE / "operator-graphs/bert_l-12_inference.json")
    start = solve_dp(problem, SolverOptions(max_ideals=1))
    sent: list[float] = []

    def interrupt(elapsed, incumbent, bound) -> None:
        if elapsed >= 0.5 and not sent:
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

    options = SolverOptions(time_limit=120, warm_start=start.placement, progress=interrupt)
    with pytest.raises(KeyboardInterrupt):
        solve_milp(problem, options)
    assert sent
    assert time.monotonic() - sent[0] < 1.0


def test_progress_is_reported() -> None:
    problem, start = hard()
    seen = []
    solve_milp(problem, SolverOptions(time_limit=2, warm_start=start.placement,
                                      progress=lambda *report: seen.append(report)))  # fmt: skip
    assert seen
    elapsed, incumbent, _ = seen[-1]
    assert elapsed >= 0
    assert incumbent is None or incumbent >= start.objective * 0.5


def test_invalid_warm_start_is_ignored() -> None:
    problem = read_workload(REFERENCE / "layer-graphs/bert24_inference.json")
    # alternating devices: every stage feeds the other, so the stage graph has a cycle
    bad = Placement(tuple(i % 2 for i in range(len(problem.ops))))
    assert not evaluate(problem, bad).contiguous
    result = solve_milp(problem, SolverOptions(warm_start=bad))
    assert any("warm start was ignored" in note for note in result.notes)
    assert result.optimal


@pytest.mark.parametrize("contiguous", [True, False])
def test_infeasible_memory_raises(contiguous) -> None:
    document = {
        "maxSizePerFPGA": 2.0, "maxFPGAs": 2, "maxCPUs": 0,
        "nodes": [{"id": i, "supportedOnFpga": 1, "cpuLatency": 1.0, "fpgaLatency": 1.0,
                   "size": 1.5, "isBackwardNode": 0} for i in range(3)],
        "edges": [{"sourceId": u, "destId": u + 1, "cost": 0.1} for u in range(2)],
    }  # fmt: skip
    with pytest.raises(InfeasiblePlacement, match=r"need 4\.5 B but all devices together hold 4 B"):
        solve_milp(parse_workload(document), SolverOptions(contiguous=contiguous))


def wide_dag(branches: int = 40, seed: int = 0):
    """A fork-join graph: 2**branches ideals, far more than the DP's limit."""
    rng = random.Random(seed)

    def node(i, cpu, fpga):
        return {"id": i, "supportedOnFpga": 1, "cpuLatency": cpu, "fpgaLatency": fpga,
                "size": 1.0, "isBackwardNode": 0}  # fmt: skip

    sink = branches + 1
    nodes = [node(0, 1.0, 0.5), node(sink, 1.0, 0.5)]
    edges = []
    for i in range(1, branches + 1):
        nodes.append(node(i, round(rng.uniform(2, 8), 2), round(rng.uniform(0.5, 3), 2)))
        edges.append({"sourceId": 0, "destId": i, "cost": 0.3})
        edges.append({"sourceId": i, "destId": sink, "cost": round(rng.uniform(0.05, 0.5), 2)})
    document = {"maxSizePerFPGA": 16.0, "maxFPGAs": 3, "maxCPUs": 1, "nodes": nodes, "edges": edges}
    return parse_workload(document, name="wide")


def test_auto_certifies_a_wide_dag_the_dp_cannot() -> None:
    problem = wide_dag()
    fallback = solve_dp(problem)
    assert not fallback.optimal
    assert "ideals" in fallback.notes[0]
    # stop at a 4% gap, with time to reach it on a loaded machine (2.5 s unloaded)
    result = solve_auto(problem, SolverOptions(time_limit=30, mip_gap=0.04))
    assert result.solver == "milp"
    # the DP gave up; its bound, where a relaxation proves one, is the MILP's start
    assert result.notes[0].startswith("auto chose milp:")
    check_claim(problem, result)
    assert result.objective <= fallback.objective + 1e-9
    assert result.lower_bound is not None and result.lower_bound <= result.objective
    assert result.gap is not None and result.gap < 0.05
    assert result.seconds < 30 + 20  # the time limit plus building the model and the DP


def test_auto_credits_the_dp_when_the_milp_answers_with_its_start(monkeypatch) -> None:
    """The plan's solver is the one that found it: a MILP that returns its warm start
    (out of time, or nothing better) leaves the DP's plan, with the MILP's bound; the
    note says so (it said "auto chose milp" over a header saying dp)."""
    from dataclasses import replace

    from placer.solvers import auto
    from placer.solvers.base import BoundSource

    def start_back(problem, options):
        value = evaluate(problem, options.warm_start).max_load
        found = solve_dp(problem)
        return replace(found, solver="milp", placement=options.warm_start, objective=value,
                       optimal=False, lower_bound=value * 0.9, gap=0.1 / 0.9,
                       bound_source=BoundSource.MILP_DUAL, notes=("the start is the answer",))

    monkeypatch.setattr(auto, "solve_milp", start_back)
    # the DP with no bound of its own (its branches in order prove one on this graph)
    monkeypatch.setattr("placer.solvers.dp.search.ordered_bound", lambda *args, **kw: None)
    result = solve_auto(wide_dag(), SolverOptions(time_limit=30))
    assert result.solver == "dp"
    assert result.notes[0].startswith("auto chose dp: the DP gave up")
    assert "the MILP, warm-started from its plan, found nothing better" in result.notes[0]
    assert result.lower_bound == pytest.approx(result.objective * 0.9)
    assert result.bound_source is BoundSource.MILP_DUAL and not result.optimal


def test_auto_uses_the_dp_when_it_is_exact() -> None:
    name = "layer-graphs/bert24_training"
    problem = read_workload(REFERENCE / f"{name}.json")
    result = get_solver("auto")(problem, SolverOptions())
    assert result.solver == "dp" and result.optimal and result.gap == 0
    assert "auto chose dp" in result.notes[0]
    assert result.objective == pytest.approx(EXPECTED["optimal"][name], rel=1e-5)


def test_highs_banner_stays_off_stdout(capfd) -> None:
    problem = read_workload(REFERENCE / "layer-graphs/bert24_inference.json")
    solve_milp(problem, SolverOptions())
    assert "HiGHS" not in capfd.readouterr().out


def test_objective_is_finite_gap_on_tiny_problem() -> None:
    document = {
        "maxSizePerFPGA": 10, "maxFPGAs": 2, "maxCPUs": 1,
        "nodes": [{"id": 1, "supportedOnFpga": 1, "cpuLatency": 2.0, "fpgaLatency": 1.0,
                   "isBackwardNode": 0}],
        "edges": [],
    }  # fmt: skip
    result = solve_milp(parse_workload(document), SolverOptions())
    assert result.objective == 1.0 and result.gap == 0.0 and math.isfinite(result.lower_bound)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=workloads(max_forward=7))
def test_auto_is_exact_when_the_dp_gives_up(problem) -> None:
    # max_ideals=1 forces the DP's fallback, whose linear order may fit no memory cap
    expected = optimum_or_none(problem)
    try:
        result = solve_auto(problem, SolverOptions(max_ideals=1, time_limit=20))
    except InfeasiblePlacement:
        assert expected is None, describe(problem)
        return
    assert expected is not None, describe(problem)
    check_claim(problem, result)
    assert result.notes[0].startswith("auto chose")
    assert result.objective == pytest.approx(expected, rel=1e-6, abs=1e-6), describe(problem)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=cluster_problems())
def test_the_dp_bracket_is_a_valid_start_and_bound(problem) -> None:
    try:
        dp_result = solve_dp(problem)
    except InfeasiblePlacement:
        return
    low = dp_result.stats.get("contiguous_lower_bound", dp_result.objective)
    options = SolverOptions(warm_start=dp_result.placement, lower_bound=low)
    result = solve_milp(problem, options)
    check_claim(problem, result)
    assert result.optimal
    assert result.objective == pytest.approx(brute_force(problem), rel=1e-6, abs=1e-6)


def test_auto_claims_nothing_for_a_dp_plan_standing_in_for_a_non_contiguous_one(
    monkeypatch,
) -> None:
    """When the MILP finds nothing, the DP's plan is returned, but its proof is about
    contiguous placements only: not optimal, no bound for the non-contiguous model."""
    import placer.solvers.auto as auto

    def nothing(problem, options):
        raise NoPlacementFound("no placement found in time")

    monkeypatch.setattr(auto, "solve_milp", nothing)
    problem = read_workload(REFERENCE / "layer-graphs/bert24_training.json")
    contiguous = solve_auto(problem, SolverOptions())
    assert contiguous.optimal  # the DP's proof holds for the contiguous model
    free = solve_auto(problem, SolverOptions(contiguous=False))
    assert free.solver == "dp" and "gave no placement (no placement found in time)" in free.notes[0]
    assert not free.optimal and free.lower_bound is None and free.gap is None


def _giant_problem():
    """Ops of 1e15 s and 4 TB each: past the matrix values HiGHS takes (1e15)."""
    from placer.costs.cluster_file import parse_cluster
    from placer.costs.roofline import CostOptions, build_problem
    from placer.frontends.onnx_graph import GraphEdge, GraphNode, OpGraph

    cluster = parse_cluster(
        "devices:\n"
        "  - {name: slow, peak_flops: 1kFLOPS, efficiency: 0.001, memory: 8TB,"
        " memory_bandwidth: 1e16, overhead: 0, count: 3}\n"
        "links:\n  default: {bandwidth: 1kB/s, latency: 1}\n"
    )
    nodes = tuple(
        GraphNode(f"n{i}", "MatMul", flops, 1.0, 1.0, 0, 2e12, 1e3, True)
        for i, flops in enumerate((3e15, 1e15, 2e15, 2e15, 1e15))
    )
    edges = tuple(GraphEdge(i, i + 1, f"t{i}", 1e3) for i in range(4))
    return build_problem(OpGraph("giant", nodes, edges, 0, 4, ()), cluster, CostOptions())


@pytest.mark.parametrize("contiguous", [True, False])
def test_times_and_sizes_past_what_highs_takes_are_scaled(contiguous) -> None:
    from placer.solvers.milp.relaxation import lower_bound

    problem = _giant_problem()
    options = SolverOptions(contiguous=contiguous, time_limit=60)
    milp = solve_milp(problem, options)
    check_claim(problem, milp, contiguous)
    if contiguous:
        assert milp.objective == pytest.approx(solve_dp(problem, options).objective, rel=1e-9)
    assert milp.optimal and milp.objective > 1e15
    # the memory (8 TB, 2 TB an op) allows at most 4 ops a device; 3 devices must share
    assert len(set(milp.placement.device_of_op)) >= 2
    bound = lower_bound(problem, contiguous=contiguous)
    assert 0 < bound <= milp.objective * (1 + 1e-9)


def test_a_solve_left_running_past_the_deadline_keeps_its_incumbent(monkeypatch) -> None:
    """HiGHS checks its time limit only now and then: when it overruns placer's deadline,
    placer stops waiting and answers with the last placement HiGHS reported."""
    import placer.solvers.milp.backends as backends
    from placer.util.interrupts import LEFT_RUNNING

    monkeypatch.setattr(backends, "_GRACE", 0.0)  # no patience at all
    monkeypatch.setattr(backends, "_time_limit", lambda options: 600.0)  # HiGHS won't stop itself
    problem, start = hard()
    left = len(LEFT_RUNNING)
    began = time.monotonic()
    options = SolverOptions(warm_start=start.placement, deadline=began + 3)
    result = solve_milp(problem, options)
    assert time.monotonic() - began < 6
    assert len(LEFT_RUNNING) == left + 1  # it was left running
    check_claim(problem, result)
    assert result.objective <= start.objective + 1e-9
    assert not result.optimal and result.lower_bound is not None


def test_a_backend_is_asked_to_stop_a_grace_before_the_deadline(monkeypatch) -> None:
    """HiGHS and CBC are asked to stop a grace before the solve's deadline and abandoned
    (or killed) at the deadline itself: the command's reserve after the solve stays
    whole (a second's grace past it left Llama's command 0.6 s over its limit)."""
    from placer.solvers.milp.backends import _grace, _held

    options = SolverOptions(time_limit=3, deadline=time.monotonic() + 3)
    held = _held(options)
    assert held.deadline == pytest.approx(options.deadline - 0.3)
    assert held.deadline + _grace(held) == pytest.approx(options.deadline)
    long = SolverOptions(time_limit=60, deadline=time.monotonic() + 60)
    assert _held(long).deadline == pytest.approx(long.deadline - 1.0)
    assert _held(SolverOptions()).deadline is None
    # and HiGHS is handed that earlier deadline, and a time limit that ends there
    from placer.solvers.milp import backends

    seen = {}
    real = backends._HiGHS.__init__

    def spy(self, *args, **kwargs):
        seen.update(kwargs, at=time.monotonic())
        real(self, *args, **kwargs)

    problem = read_workload(REFERENCE / "layer-graphs/bert24_inference.json")
    options = SolverOptions(time_limit=20, deadline=time.monotonic() + 20)
    monkeypatch.setattr(backends._HiGHS, "__init__", spy)
    solve_milp(problem, options)
    assert seen["deadline"] == pytest.approx(options.deadline - 1.0)
    assert seen["grace"] == 1.0
    assert seen["timeLimit"] <= options.deadline - 1.0 - seen["at"] + 0.05


def test_a_model_built_too_late_to_hand_over_answers_with_its_start(monkeypatch) -> None:
    """Handing a model to the backend and reading it back cannot be interrupted (5.4 s
    past the deadline for Llama's training MILP, built in 15 s): when the building
    leaves less than half its own time, the start is the answer, before the deadline."""
    import placer.solvers.milp.solve as milp_solve

    problem, start = hard()
    real = milp_solve._build
    began = time.monotonic()
    deadline = began + 3.0

    def slow(job):
        model = real(job)
        time.sleep(max(0.0, deadline - 0.5 - time.monotonic()))  # "built" in about 2.5 s
        return model

    def no_backend(*args, **kwargs):
        raise AssertionError("the backend ran with too little time left")

    monkeypatch.setattr(milp_solve, "_build", slow)
    monkeypatch.setattr(milp_solve, "run_backend", no_backend)
    result = solve_milp(problem, SolverOptions(warm_start=start.placement, deadline=deadline))
    assert time.monotonic() < deadline
    assert result.placement == start.placement
    assert result.objective == pytest.approx(start.objective)
    assert "too few to hand it to the backend" in result.notes[0]
    check_claim(problem, result)


def test_cbc_is_held_to_the_deadline() -> None:
    """CBC's preprocessing ignores its time limit (16 s under 1 s on BERT-L12): placer
    kills it at the deadline (its own limit ends a grace earlier) and answers with the
    warm start."""
    problem = read_workload(REFERENCE / "operator-graphs/bert_l-12_inference.json")
    start = solve_dp(problem, SolverOptions(max_ideals=1))
    began = time.monotonic()
    options = SolverOptions(mip_solver="cbc", time_limit=2, warm_start=start.placement)
    result = solve_milp(problem, options)
    assert time.monotonic() - began < 6
    check_claim(problem, result)
    assert result.objective <= start.objective + 1e-9
    # given no start, it starts from the best split of one topological order (it used
    # to answer NoPlacementFound here), held to the deadline all the same; the split is
    # at least the sweep's (the exact pass over the prefixes may run out of its share)
    from placer.evaluator import evaluate
    from placer.solvers.blocks import contract
    from placer.solvers.dp.costing import costings
    from placer.solvers.dp.search import best_split

    began = time.monotonic()
    seeded = solve_milp(problem, SolverOptions(mip_solver="cbc", time_limit=2))
    assert time.monotonic() - began < 6
    check_claim(problem, seeded)
    blocks = contract(problem)
    order = list(range(blocks.n_blocks))
    swept_only = SolverOptions(deadline=time.monotonic() - 1.0)  # no time for the exact pass
    sweep = best_split(problem, blocks, costings(problem, blocks), order, swept_only)
    assert seeded.objective <= evaluate(problem, sweep).max_load * (1 + 1e-9)


@pytest.mark.parametrize("backend", ["highs", "cbc"])
def test_a_model_proven_infeasible_in_presolve_is_infeasible(backend) -> None:
    """Op 2 (2 bytes) fills one device; ops 1 and 4 (1 byte each) would then share the
    other, before and after op 2: a cycle, so no contiguous placement exists.  CBC proves
    it in presolve and reports it in its status only (found by hypothesis)."""
    from placer.problem import DeviceClass, DeviceKind, Op, Problem

    ops = tuple(
        Op(key=i, name=str(i), latency=(0.0,), supported=(True,), size_bytes=float(size),
           transfer_cost=0.0, color=i)
        for i, size in enumerate([0, 1, 2, 0, 1, 0, 0, 0])
    )  # fmt: skip
    problem = Problem(
        name="cycle", ops=ops, edges=((0, 2), (1, 2), (2, 4)), time_unit="",
        kinds=(DeviceKind("accel", DeviceClass.ACCELERATOR, 2, 2.0, True),),
    )  # fmt: skip
    with pytest.raises(InfeasiblePlacement):
        solve_milp(problem, SolverOptions(mip_solver=backend))


def test_a_warm_start_over_links_of_different_speeds_leaves_the_optimum_findable() -> None:
    """Found by hypothesis when --solver milp was seeded from a linear-order split: from
    the start (1, 1, 0, 0, 0) HiGHS 1.16 with presolve on answered the start itself,
    claimed optimal (its presolve found the start "feasible in the reduced space:
    objective value is 0"), while the optimum puts op 0 on the fast device.  A
    warm-started HiGHS runs without presolve."""
    from placer.problem import DeviceClass, DeviceKind, LinkCost, Op, Problem

    def op(key, latency, supported, size, out):
        return Op(key=key, name=f"op{key}", latency=latency, supported=supported,
                  size_bytes=size, transfer_cost=0.0, color=key, output_bytes=out)  # fmt: skip

    every, no_slow = (True, True, True), (True, False, True)
    ops = (op(0, (1.0, 2.0, 4.0), every, 0.0, 0.0), op(1, (0.0,) * 3, every, 3.0, 0.0),
           op(2, (0.0,) * 3, no_slow, 0.0, 0.0), op(3, (0.0,) * 3, no_slow, 1.0, 1.0),
           op(4, (0.0,) * 3, every, 1.0, 0.0))  # fmt: skip
    kinds = (DeviceKind("fast", DeviceClass.ACCELERATOR, 1, 3.0, True, ""),
             DeviceKind("slow", DeviceClass.ACCELERATOR, 2, 8.0, True, ""),
             DeviceKind("cpu", DeviceClass.CPU, 0, math.inf, True, ""))  # fmt: skip

    def link(seconds_per_byte):
        return LinkCost(latency=0.0, seconds_per_byte=seconds_per_byte)

    links = ((link(0.1), link(0.1), link(0.1)), (link(0.1), link(0.1), link(0.5)),
             (link(0.1), link(0.5), link(0.1)))  # fmt: skip
    problem = Problem(name="links", ops=ops, edges=((3, 4),), kinds=kinds, links=links)
    assert solve_dp(problem).objective == pytest.approx(1.0)
    assert solve_milp(problem).objective == pytest.approx(1.0)  # without a start: right
    start = Placement((1, 1, 0, 0, 0))
    assert evaluate(problem, start).max_load == pytest.approx(2.0)
    result = solve_milp(problem, SolverOptions(warm_start=start))
    assert result.objective == pytest.approx(1.0) or not result.optimal
    assert result.lower_bound <= 1.0 + 1e-9


def test_a_model_not_built_in_time_answers_with_its_start() -> None:
    """When the deadline passes while the model is built, the start is the answer (not
    claimed optimal, with the bounds known without the model); with no start that fits,
    no placement is found."""
    problem = read_workload(REFERENCE / "operator-graphs/bert_l-3_inference.json")
    start = solve_dp(problem, SolverOptions(max_ideals=1)).placement
    past = time.monotonic() - 1.0
    result = solve_milp(problem, SolverOptions(warm_start=start, deadline=past))
    assert result.placement == start
    check_claim(problem, result)
    assert not result.optimal and result.lower_bound < result.objective
    assert any("ran out while building the model" in note for note in result.notes)
    with pytest.raises(NoPlacementFound, match="while building the model"):
        solve_milp(problem, SolverOptions(warm_start=Placement((0,)), deadline=past))


def test_a_model_of_microseconds_is_solved_to_its_optimum_not_to_highs_tolerance() -> None:
    """Seven ops of about 5 µs (a fresh-clone audit's model, in seconds): HiGHS's
    absolute gap (1e-6) and feasibility tolerance (1e-7) are percents of such a
    max-load, and it answered 31.48 µs as optimal where 31.23 µs is; times are scaled
    near 1 in the model, and the MILP meets brute force."""
    gather, proj, add, head = 5.1664e-06, 5.49152e-06, 5.24576e-06, 1.788192e-05
    latencies = (gather, gather, proj, add, gather, add, head)
    ops = tuple(Op(key=i, name=f"op{i}", latency=(t,), supported=(True,), size_bytes=5.12e5,
                   transfer_cost=0.0, color=i, output_bytes=0.0 if i == 6 else 4096.0)
                for i, t in enumerate(latencies))  # fmt: skip
    kinds = (DeviceKind("dev", DeviceClass.ACCELERATOR, 6, 2**30),)
    problem = Problem("micro", ops, ((0, 2), (2, 3), (1, 3), (3, 5), (4, 5), (5, 6)), kinds,
                      links=((LinkCost(1e-5, 1e-10),),))  # fmt: skip
    expected = brute_force(problem)
    solved = solve_milp(problem, SolverOptions())
    assert solved.optimal
    assert solved.objective == pytest.approx(expected, rel=1e-9)
    assert evaluate(problem, solved.placement).max_load == pytest.approx(expected, rel=1e-9)
