"""Moves out of a plan's bottleneck stage (placer.solvers.dp.polish): only ever a valid
plan of lower max-load, found where one block sits on the wrong side of a cut, and the
tie of the neighbour DP on MobileNetV2 training that it settles."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from placer import api as app
from placer.evaluator import evaluate
from placer.problem import DeviceClass, DeviceKind, Op, Placement, Problem
from placer.solvers import SolverOptions
from placer.solvers.blocks import contract
from placer.solvers.dp.polish import polish
from placer.solvers.dp.search import solve_dp
from tests.conftest import ROOT
from tests.solvers.test_dp_links import cluster_problems


def _chain(latencies: list[float], devices: int = 2) -> Problem:
    ops = tuple(
        Op(key=i, name=f"op{i}", latency=(t,), supported=(True,), size_bytes=0.0,
           transfer_cost=0.0, color=i)
        for i, t in enumerate(latencies)
    )  # fmt: skip
    return Problem(
        name="chain", ops=ops, edges=tuple((i, i + 1) for i in range(len(ops) - 1)),
        time_unit="", samples_per_step=1,
        kinds=(DeviceKind("accel", DeviceClass.ACCELERATOR, devices, math.inf, True),),
    )  # fmt: skip


def test_blocks_move_out_of_the_bottleneck_until_no_move_helps() -> None:
    problem = _chain([1.0, 1.0, 3.0, 3.0])
    start = Placement((0, 1, 1, 1))  # loads 1 and 7
    moved = polish(problem, contract(problem), start, SolverOptions())
    # op 1 moves back (2 and 6), then op 2 (5 and 3); moving op 2 again would give 6
    assert moved is not None and moved.device_of_op == (0, 0, 0, 1)
    assert evaluate(problem, moved).max_load == 5.0


def test_it_stops_at_the_bound_and_where_no_move_helps() -> None:
    problem = _chain([1.0, 1.0, 3.0, 3.0])
    best = Placement((0, 0, 0, 1))  # 5 and 3: moving op 2 gives 2 and 6, worse
    assert polish(problem, contract(problem), best, SolverOptions()) is None
    worse = Placement((0, 1, 1, 1))
    moved = polish(problem, contract(problem), worse, SolverOptions(), target=6.0)
    assert moved is not None and moved.device_of_op == (0, 0, 1, 1)  # one move: 6


def test_work_travels_through_a_stage_towards_one_with_room() -> None:
    """Two stages share the max-load and the room is at the other end: unloading one
    keeps the max (the sorted loads still fall), and the other's work reaches the room
    through the stage between (a pair of moves)."""
    problem = _chain([1.0] * 12, devices=3)
    start = Placement((0,) * 2 + (1,) * 5 + (2,) * 5)  # loads 2, 5, 5
    moved = polish(problem, contract(problem), start, SolverOptions())
    assert moved is not None and evaluate(problem, moved).max_load == 4.0


@settings(max_examples=100, deadline=None)
@given(cluster_problems(training=True), st.randoms(use_true_random=False))
def test_it_returns_a_valid_plan_of_lower_max_load_or_none(problem, rng) -> None:
    blocks = contract(problem)
    devices = len(problem.devices)
    # a random placement of the blocks (whole colour classes), valid or not
    device_of_block = [rng.randrange(devices) for _ in range(blocks.n_blocks)]
    start = Placement(tuple(device_of_block[b] for b in blocks.block_of_op))
    before = evaluate(problem, start)
    moved = polish(problem, blocks, start, SolverOptions())
    if not before.valid:
        assert moved is None
        return
    if moved is not None:
        after = evaluate(problem, moved)
        assert after.valid, after.violations
        assert after.max_load < before.max_load


def test_mobilenet_training_over_three_kinds_is_proven_optimal() -> None:
    """The neighbour DP's plan here ties with another at its value, and its charges fall
    short on the one it keeps by a residual ``Add``: moved across the cut, the plan
    meets the bound."""
    options = app.ModelOptions(cluster=str(ROOT / "examples" / "2xa100_4xt4.yaml"),
                               mode="training")  # fmt: skip
    problem = app.load_problem(ROOT / "sample_models" / "mobilenet_v2.onnx", options)
    solved = solve_dp(problem, SolverOptions())
    assert solved.optimal, solved.notes
    assert evaluate(problem, solved.placement).max_load == solved.objective
