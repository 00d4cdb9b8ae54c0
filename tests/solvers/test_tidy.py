"""A CPU stage that gains nothing is folded into an accelerator stage beside it, and a
plan that leaves devices unused says why when one op bounds it."""

from __future__ import annotations

from placer.evaluator import evaluate
from placer.outputs.explain import explanations
from placer.outputs.result import from_solve
from placer.problem import DeviceClass, DeviceKind, Op, Placement, Problem
from placer.solvers.base import SolveResult
from placer.solvers.tidy import fold_cpu_stages

#: Device 0 and 1: accelerators (kind 0, two of them); device 2: the CPU (kind 1).
KINDS = (DeviceKind("gpu", DeviceClass.ACCELERATOR, 2),
         DeviceKind("cpu", DeviceClass.CPU, 1))  # fmt: skip


def _chain(latencies: list[tuple[float, float]]) -> Problem:
    """A chain of ops with ``(gpu, cpu)`` latencies, each output 0.1 s to move."""
    ops = tuple(Op(i, f"op{i}", latency, (True, True), 0.0, 0.1, i)
                for i, latency in enumerate(latencies))  # fmt: skip
    edges = tuple((i, i + 1) for i in range(len(ops) - 1))
    return Problem("chain", ops, edges, KINDS, time_unit="s")


def _solved(problem: Problem, devices: tuple[int, ...], bound: float) -> SolveResult:
    placement = Placement(devices)
    value = evaluate(problem, placement).max_load
    return SolveResult("dp", placement, value, False, 0.0, lower_bound=bound, gap=None)


def test_a_cpu_stage_that_gains_nothing_is_folded() -> None:
    # gpu0: op0 | cpu: op1 | gpu1: op2, op3 (the bottleneck, 10 s of compute)
    problem = _chain([(1, 5), (1, 5), (5, 50), (5, 50)])
    solved = _solved(problem, (0, 2, 1, 1), bound=10.0)
    assert solved.objective == 10.1  # gpu1 receives op1's output
    tidy = fold_cpu_stages(problem, solved)
    assert tidy.placement.device_of_op == (0, 0, 1, 1)
    assert tidy.objective == evaluate(problem, tidy.placement).max_load <= solved.objective
    assert tidy.gap == (tidy.objective - 10.0) / tidy.objective
    assert tidy.notes[-1] == ("cpu:0's stage folded into gpu:0's: the same max-load without a "
                              "CPU stage")


def test_a_cpu_stage_that_pays_stays() -> None:
    # the CPU takes 4 s of work that would make gpu0 (6 s) the bottleneck over gpu1 (5 s)
    problem = _chain([(2, 20), (4, 4.5), (5, 50)])
    solved = _solved(problem, (0, 2, 1), bound=5.0)
    assert fold_cpu_stages(problem, solved) == solved
    # and nothing to fold without a CPU stage, or on a plan that is not contiguous
    assert fold_cpu_stages(problem, _solved(problem, (0, 0, 1), 5.0)).notes == ()
    assert fold_cpu_stages(problem, _solved(problem, (0, 1, 0), 5.0)).notes == ()


def test_a_cpu_stage_an_idle_accelerator_can_take_moves_there() -> None:
    # gpu0: op0, op1 | cpu: op2 | gpu1 idle: folding op2 into gpu0 makes it 12 s, over
    # the 10.1 s bound by op2's own stage, but gpu1 runs op2 in 10 s where it stands
    problem = _chain([(1, 5), (1, 5), (10, 10)])
    solved = _solved(problem, (0, 0, 2), bound=10.0)
    tidy = fold_cpu_stages(problem, solved)
    assert tidy.placement.device_of_op == (0, 0, 1)
    assert tidy.objective == evaluate(problem, tidy.placement).max_load <= solved.objective
    assert tidy.notes[-1] == ("cpu:0's stage moved onto gpu:1, which held none: the same "
                              "max-load without a CPU stage")
    # where the idle accelerator would be slower, the CPU stage stays
    slower = _chain([(1, 5), (1, 5), (11, 10)])
    kept = _solved(slower, (0, 0, 2), bound=10.0)
    assert fold_cpu_stages(slower, kept) == kept


def test_unused_devices_are_explained_when_one_op_bounds_the_plan() -> None:
    problem = _chain([(1, 5), (1, 5), (9, 90)])
    solved = _solved(problem, (0, 0, 1), bound=9.0)
    result = from_solve(problem, solved, 9.0)
    assert explanations(result) == [
        "only 2 devices hold a stage: the bottleneck gpu:1 holds a single op, op2, that no "
        "split divides, so more stages cannot lower the max-load"
    ]
    assert result.to_dict()["explanations"] == explanations(result)
    # a bottleneck of two ops: nothing to say
    spread = from_solve(problem, _solved(problem, (0, 1, 1), 9.0), 9.0)
    assert explanations(spread) == []


def test_place_tidies_its_own_solvers_plans_and_leaves_the_baselines_as_they_are(
    monkeypatch,
) -> None:
    import placer.api as api

    tidied = []
    monkeypatch.setattr(api, "fold_cpu_stages",
                        lambda problem, solved: tidied.append(solved.solver) or solved)  # fmt: skip
    problem = _chain([(1, 5), (1, 5), (5, 50), (5, 50)])
    for solver in ("dp", "auto", "uniform", "pipedream", "greedy"):
        api.place(problem, solver)
    assert tidied == ["dp", "dp"]  # auto answers with the DP here
