"""The MILP solver, :func:`solve_milp`: it builds the model, runs the backend and
assembles the result, with the bound it proves and the gap."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import pulp

from placer.errors import InfeasiblePlacement, NoPlacementFound, OverTotalMemory
from placer.evaluator import Evaluation, evaluate
from placer.problem import Placement, Problem
from placer.solvers.base import BoundSource, MipBackend, SolveResult, SolverOptions, relative_gap
from placer.solvers.blocks import BlockGraph, colour_blocks, contract
from placer.solvers.bounds import trivial_bound, volume_bound
from placer.solvers.feasibility import check_feasible, explain_infeasible
from placer.solvers.milp.backends import Outcome, mip_gap, pick_backend, run_backend
from placer.solvers.milp.build import MAX_MILP_TERMS, build_model, estimated_terms
from placer.solvers.milp.model import MilpModel, OutOfTime
from placer.solvers.milp.readback import valid_placement
from placer.solvers.milp.warm_start import set_warm_start
from placer.util.units import format_bytes

_PROVEN = 1e-6  # a gap this small (after rounding in the backend) counts as optimal


def solve_milp(problem: Problem, options: SolverOptions | None = None) -> SolveResult:
    """Place ``problem`` with a MILP solved by HiGHS or CBC through PuLP.

    Parameters
    ----------
    problem : Problem
    options : SolverOptions, optional
        ``contiguous`` picks the model; ``mip_solver``, ``time_limit``, ``mip_gap`` and
        ``threads`` go to the backend; ``warm_start`` seeds it; ``progress`` is called
        with (elapsed, incumbent, bound) while HiGHS solves.

    Returns
    -------
    SolveResult
        ``optimal`` when the backend proved optimality (to a relative 1e-6);
        otherwise the best placement found, with ``lower_bound`` and ``gap``.

    Raises
    ------
    InfeasiblePlacement
        No placement satisfies memory, support and device counts.
    NoPlacementFound
        The model is too large to build
        (:data:`~placer.solvers.milp.build.MAX_MILP_TERMS`), or the time limit or
        ``deadline`` passed before a placement was found (model building included).
    KeyboardInterrupt
        Ctrl-C: the backend is stopped (HiGHS is left to stop in its thread, CBC is
        killed) and the interrupt propagates at once.

    Notes
    -----
    The contiguous model has O(B · T · K) binaries and O((B · K + arcs + pins) · T)
    rows for B blocks, T devices, K kinds and the hyperedges' total size ``pins``.
    HiGHS reports its dual bound; for CBC the bound is read from its log ("Lower
    bound"), and when the log has none the trivial bound of :mod:`placer.solvers.bounds` is
    reported instead.

    Examples
    --------
    >>> from placer.frontends.workload import parse_workload
    >>> doc = {"maxSizePerFPGA": 10, "maxFPGAs": 2, "maxCPUs": 0, "edges": [
    ...        {"sourceId": 1, "destId": 2, "cost": 0.5}], "nodes": [
    ...        {"id": i, "supportedOnFpga": 1, "cpuLatency": 9.0, "fpgaLatency": 2.0,
    ...         "isBackwardNode": 0} for i in (1, 2)]}
    >>> solve_milp(parse_workload(doc)).objective
    2.5
    """
    options = options or SolverOptions()
    started = time.perf_counter()
    blocks = contract(problem) if options.contiguous else colour_blocks(problem)
    check_feasible(problem, blocks)
    if options.time_limit is not None and options.deadline is None:
        options = replace(options, deadline=time.monotonic() + options.time_limit)
    if options.warm_start is None:  # a contiguous placement is one of the free model too
        seed_blocks = blocks if options.contiguous else contract(problem)
        options = replace(options, warm_start=_seed(problem, seed_blocks, options))
    job = _Job(problem, blocks, options, started)
    building = time.perf_counter()
    try:
        model = _build(job)
    except _BuildOutOfTime as err:
        return _start_as_answer(job, str(err))
    stats: dict[str, float] = {
        "blocks": blocks.n_blocks,
        "variables": model.prob.numVariables(),
        "constraints": model.prob.numConstraints(),
    }
    notes: list[str] = []
    warm = _warm_start(job, model, notes)
    built = time.perf_counter() - building
    left = options.seconds_left()
    if left is not None and left < HAND_OVER_SHARE * built:
        return _start_as_answer(job, f"the model took {built:.1f} s to build and {left:.1f} s "
                                     "were left, too few to hand it to the backend")  # fmt: skip
    backend = pick_backend(options.mip_solver, notes)
    outcome = run_backend(backend, model, _with_scaled_progress(options, model), warm)
    stats["solve_seconds"] = outcome.seconds
    solved = _solution(job, model, outcome, backend)
    return _result(job, solved, backend, notes, stats)


def _seed(problem: Problem, blocks: BlockGraph, options: SolverOptions) -> Placement | None:
    """A start for a MILP given none: the best split of one topological order (the
    partitioner of PipeDream, :func:`~placer.solvers.dp.search.best_split`, its exact
    pass held to a share of the time), so that a short time limit still answers with a plan
    where one order fits (HiGHS found none in 5 s on BERT-base on a loaded machine);
    None where none fits."""
    from placer.solvers.dp.costing import costings
    from placer.solvers.dp.search import best_split

    left = options.seconds_left()
    budget = SEED_SHARE * left if left is not None else SEED_SECONDS
    held = replace(options, deadline=time.monotonic() + budget)
    order = list(range(blocks.n_blocks))  # blocks are numbered in a topological order
    return best_split(problem, blocks, costings(problem, blocks), order, held, share=1.0)


#: Handing a built model to the backend and reading its answer back take about this
#: share of the time building it took, and nothing interrupts them: with less time left,
#: the start is the answer.  Llama's training MILP over 2x A100 + 4x T4 + CPU: built in
#: 15.0 s, then 5.4 s in the backend under a 0.1 s limit and 0.8 s to read it back.
HAND_OVER_SHARE = 0.5
#: The share of the time left (or the seconds, without a time limit) that the seed's
#: exact pass over the order's prefixes may take before the sweep's split is the seed:
#: that pass took 30 s on a 2,552-block GPT-2 (48 layers, unoptimised export), where
#: the sweep took 0.2 s and its split was 0.4% worse.
SEED_SHARE = 0.1
SEED_SECONDS = 5.0


@dataclass(frozen=True)
class _Job:
    """What one solve works on: the problem, its blocks, the options (with the deadline
    the time limit sets) and when the solve started (``time.perf_counter()``)."""

    problem: Problem
    blocks: BlockGraph
    options: SolverOptions
    started: float


def _warm_start(job: _Job, model: MilpModel, notes: list[str]) -> bool:
    """Set the start ``job.options.warm_start`` gives, if any; whether one was set (a
    note says when one was given but does not fit)."""
    options = job.options
    warm = options.warm_start is not None and set_warm_start(
        job.problem, model, options.warm_start
    )
    if options.warm_start is not None and not warm:
        notes.append("the warm start was ignored: it is not a valid placement of this model")
    return warm


def _with_scaled_progress(options: SolverOptions, model: MilpModel) -> SolverOptions:
    """``options`` whose progress callback, if any, is fed the problem's times from
    the model's (scaled) ones."""
    if options.progress is not None and model.time_scale != 1.0:
        return replace(options, progress=_rescaled(options.progress, model.time_scale))
    return options


def _result(job: _Job, solved: _Solved, backend: MipBackend, notes, stats) -> SolveResult:
    """The result of the solve: the placement found, the bound proven and the gap
    between them (a note says why it is not proven optimal)."""
    objective = solved.evaluation.max_load
    bound = _bound(job, solved, backend, notes)
    gap = relative_gap(objective, bound)
    status_optimal = solved.sol_status == pulp.LpSolutionOptimal
    optimal = gap <= _PROVEN and (status_optimal or bound >= objective)
    if not optimal:
        stop = "stopped at the requested gap" if status_optimal else "time limit reached"
        notes.append(f"{stop}: not proven optimal, gap {gap:.3%} to its bound")
    return SolveResult(
        solver="milp",
        placement=solved.placement,
        objective=objective,
        optimal=optimal,
        seconds=time.perf_counter() - job.started,
        stats=stats,
        notes=tuple(notes),
        lower_bound=bound,
        gap=gap,
        bound_source=BoundSource.MILP_DUAL,
    )


def _build(job: _Job) -> MilpModel:
    """The :class:`MilpModel`, with ``options.lower_bound`` as a row; refused (no
    placement found) when it would be too large or its building outlasts the time."""
    problem, blocks, options = job.problem, job.blocks, job.options
    terms = estimated_terms(problem, blocks, options.contiguous)
    if terms > MAX_MILP_TERMS:
        raise NoPlacementFound(
            f"MILP: the model would have about {terms:.2g} terms ({blocks.n_blocks:,} blocks "
            f"on {problem.total_devices:,} devices), more than placer builds "
            f"({MAX_MILP_TERMS:.2g}, about 1 GiB); use --solver dp, or fewer devices"
        )
    try:
        model = build_model(
            problem, blocks, contiguous=options.contiguous, deadline=options.deadline
        )
    except OutOfTime:
        raise _BuildOutOfTime(
            f"the time limit ran out while building the model "
            f"({time.perf_counter() - job.started:.1f} s)"
        ) from None
    if options.lower_bound is not None and math.isfinite(options.lower_bound):
        # a hair below, so that rounding never cuts off the optimum
        model.prob += (
            model.max_load >= options.lower_bound / model.time_scale * (1 - 1e-9),
            "max_load_is_at_least_the_proven_bound",
        )
    return model


class _BuildOutOfTime(Exception):
    """The deadline passed while the model was being built."""


def _start_as_answer(job: _Job, why: str) -> SolveResult:
    """The answer when the model could not be built in time: the start (given, or the
    seed), with the bounds known without the model.

    Raises
    ------
    NoPlacementFound
        There is no valid start to answer with.
    """
    problem, blocks, options = job.problem, job.blocks, job.options
    start = options.warm_start
    evaluation = None
    if start is not None and len(start.device_of_op) == len(problem.ops):
        evaluation = evaluate(problem, start, require_contiguous=options.contiguous)
    if evaluation is None or not evaluation.valid:
        raise NoPlacementFound(f"MILP: {why}; raise --time-limit")
    objective = evaluation.max_load
    bound = min(_known_bound(job), objective)
    gap = relative_gap(objective, bound)
    return SolveResult(
        solver="milp",
        placement=start,
        objective=objective,
        optimal=bound >= objective,
        seconds=time.perf_counter() - job.started,
        stats={"blocks": blocks.n_blocks},
        notes=(f"{why}: the start is the answer, gap {gap:.3%} to its bound",),
        lower_bound=bound,
        gap=gap,
    )


@dataclass(frozen=True)
class _Solved:
    """What the backend left: the placement read back with its evaluation, the solution
    status (integer feasible when it came from the last reported incumbent), and the
    backend's bound in the model's scaled time (None if it gave none)."""

    placement: Placement
    evaluation: Evaluation
    sol_status: int
    bound: float | None


def _solution(job: _Job, model: MilpModel, outcome: Outcome, backend: MipBackend) -> _Solved:
    """The placement the backend found.

    Raises
    ------
    InfeasiblePlacement
        The backend proved that no placement exists.
    NoPlacementFound
        It stopped without one.
    """
    problem, blocks, options = job.problem, job.blocks, job.options
    sol_status = model.prob.sol_status
    # CBC proves some models infeasible in presolve and says so in the status alone
    proven = sol_status == pulp.LpSolutionInfeasible or model.prob.status == pulp.LpStatusInfeasible
    if proven and not outcome.abandoned:
        if options.contiguous:
            raise explain_infeasible(problem, blocks)
        raise _explain_packing(problem, blocks)
    found = None
    if sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        found = valid_placement(problem, model, options.contiguous)
        if found is None and sol_status == pulp.LpSolutionOptimal:
            raise RuntimeError("MILP: the backend's optimal solution is not a valid placement")
    if found is None and outcome.incumbent is not None:
        # stopped in a phase with no integer solution of its own (HiGHS left running,
        # or interrupted in an LP, whose values PuLP reads as "integer feasible"): the
        # last placement HiGHS reported, or the warm start
        # values by column, in the order of prob.variables() (PuLP numbers HiGHS's so)
        for column, var in enumerate(model.prob.variables()):
            var.varValue = float(outcome.incumbent[column])
        found = valid_placement(problem, model, options.contiguous)
        sol_status = pulp.LpSolutionIntegerFeasible
    if found is None:
        why = (
            f"no placement found within {options.time_limit:g} s"
            if options.time_limit is not None
            else "the solver found no placement"
        )
        raise NoPlacementFound(f"MILP ({backend.value}): {why}; raise --time-limit")
    placement, evaluation = found
    raw = None if outcome.bound is None else outcome.bound * model.time_scale
    return _Solved(placement, evaluation, sol_status, raw)


def _bound(job: _Job, solved: _Solved, backend: MipBackend, notes: list[str]) -> float:
    """The lower bound the MILP proves: the backend's (never below the trivial and
    volume bounds, or ``options.lower_bound``), the objective itself at "optimal" within
    the gap asked for; a note says when the backend reported none."""
    options = job.options
    objective = solved.evaluation.max_load
    status_optimal = solved.sol_status == pulp.LpSolutionOptimal
    bound = solved.bound
    if bound is None or not math.isfinite(bound):
        if status_optimal:
            bound = objective
        else:
            notes.append(f"{backend.value} reported no bound: the volume bound is shown")
            bound = _known_bound(job)
    else:  # a search stopped early may not have lifted its bound past the trivial one
        bound = max(bound, _known_bound(job))
    if status_optimal:
        # the backend stops at "optimal" only within its relative gap, whatever dual
        # bound it reports (HiGHS can leave that at a bound it was given as a row)
        bound = max(bound, objective * (1 - mip_gap(options)))
    return min(bound, objective)


def _known_bound(job: _Job) -> float:
    """The bound known without the model's solve: the trivial and volume bounds, and
    ``options.lower_bound`` if given."""
    problem, blocks, options = job.problem, job.blocks, job.options
    bound = max(trivial_bound(problem, blocks), volume_bound(problem, blocks))
    if options.lower_bound is not None:
        bound = max(bound, options.lower_bound)
    return bound


def _rescaled(progress, scale: float):
    """``progress`` fed the problem's times from a model whose times are ``/ scale``."""

    def report(elapsed: float, incumbent: float | None, bound: float | None) -> None:
        progress(
            elapsed,
            None if incumbent is None else incumbent * scale,
            None if bound is None else bound * scale,
        )

    return report


def _explain_packing(problem: Problem, blocks: BlockGraph) -> InfeasiblePlacement:
    """The error when colour classes, each fitting somewhere, cannot all be packed."""
    error = explain_infeasible(problem, blocks)
    if isinstance(error, OverTotalMemory):
        return error
    biggest = int(blocks.size.argmax())
    return InfeasiblePlacement(
        f"the {blocks.n_blocks} colour classes cannot be packed into the devices' memory "
        f"(the largest needs {format_bytes(blocks.size[biggest])})"
    )
