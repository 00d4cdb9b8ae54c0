"""``--solver auto``: the exact DP where it fits, else the MILP warm-started from it.

The DP over ideals ([1]_, Section 4) is exact and fast while the pipeline DAG has few
ideals; a wide graph (many parallel branches) has exponentially many, and the DP then
falls back to a linear order without a certificate.  The MILP ([1]_, Section 5) has no
such wall: seeded with that linear-order placement it can only improve on it, and its
bound says how far from optimal the answer may be.  With links of different speeds the
DP may only bracket the optimum (:mod:`placer.solvers.dp.neighbours`); its plan and
certified gap are the answer, and given a time limit the MILP, exact over links,
searches on from them for the time left.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import time
from dataclasses import replace

from placer.errors import NoPlacementFound, SearchGaveUp
from placer.problem import Problem
from placer.solvers.base import BoundSource, SolveResult, SolverOptions, relative_gap
from placer.solvers.dp.search import solve_dp
from placer.solvers.milp.solve import solve_milp

#: Seconds the MILP gets when the options set no time limit.
DEFAULT_MILP_SECONDS = 60.0


def solve_auto(problem: Problem, options: SolverOptions | None = None) -> SolveResult:
    """Solve with the DP when it is exact within its limits, else with the MILP.

    Parameters
    ----------
    problem : Problem
    options : SolverOptions, optional
        ``max_ideals`` and ``max_pairs`` decide whether the DP is exact;
        ``time_limit`` bounds the MILP (default :data:`DEFAULT_MILP_SECONDS`).  With
        ``contiguous=False`` the MILP always runs (the DP only knows contiguous
        placements), warm-started from the DP's plan.

    Returns
    -------
    SolveResult
        The chosen solver's result; its first note says which solver and why.

    Raises
    ------
    InfeasiblePlacement
        No placement satisfies memory, support and device counts.

    Notes
    -----
    The DP's time is that of :func:`~placer.solvers.dp.search.solve_dp` (its ideal and pair
    limits cap it); the MILP's is at most the time limit plus model building.
    """
    options = options or SolverOptions()
    started = time.perf_counter()
    if options.time_limit is not None and options.deadline is None:
        # the limit covers the whole solve, the DP included
        options = replace(options, deadline=time.monotonic() + options.time_limit)
    time_limit = options.time_limit if options.time_limit is not None else DEFAULT_MILP_SECONDS
    target = options.mip_gap if options.mip_gap is not None else BRACKET_GAP
    try:
        dp = solve_dp(problem, replace(options, accept_gap=target))
    except NoPlacementFound:  # too many device kinds for the DP's tables
        milp = solve_milp(problem, _milp_options(options, time_limit))
        return _choose(milp, "milp: the DP's tables cannot hold this many device kinds", started)
    except SearchGaveUp:
        # the DP gave up and its linear order fits no memory cap; a placement may exist
        # (any other InfeasiblePlacement is the DP's proof that none does)
        milp = solve_milp(problem, _milp_options(options, time_limit))
        why = "milp: the DP gave up and no linear order fits the memory caps"
        return _choose(milp, why, started)
    if options.contiguous and dp.optimal:
        return _choose(dp, _why_optimal(dp), started)
    if options.contiguous and dp.bracketed:
        by = (", raised by the DP with its side branches in a fixed order,"
              if dp.stats.get("relaxed_branches") else "")  # fmt: skip
        why = f"dp: its bracket{by} proves the plan within {dp.gap:.2%} of the optimum"
        return _after_bracket(problem, dp, options, time_limit, started, why)
    if options.contiguous and dp.bound_source is BoundSource.DP_RELAXED:
        why = f"dp: the DP gave up ({dp.gave_up}); {_relaxed(dp)} it proves a lower bound"
        return _after_bracket(problem, dp, options, time_limit, started, why)
    if options.contiguous and dp.lower_bound is not None:
        why = f"dp: links differ in speed and its plan is proven within {dp.gap:.2%} of the optimum"
        if options.time_limit is not None:
            # a time budget given: the MILP, exact over links, searches from the plan
            return _after_bracket(problem, dp, options, time_limit, started, why)
        if dp.gap is not None and dp.gap > target:
            why += " (with --time-limit S the MILP searches on from this plan)"
        return _choose(dp, why, started)
    # the note names the solver whose plan is the answer: the MILP's where it found a
    # better one, else the DP's (with what the MILP proved about it)
    if not options.contiguous:
        why = "non-contiguous placements are the MILP's alone"
    else:
        why = f"the DP gave up ({dp.gave_up or 'the DP is not exact'})"
    milp_options = replace(_milp_options(options, time_limit), warm_start=dp.placement)
    if milp_options.out_of_time():
        plan = _dp_plan(dp, options, None)
        return _choose(plan, f"dp: {why}, and the time limit ran out before the MILP", started)
    try:
        milp = solve_milp(problem, milp_options)
    except NoPlacementFound as err:
        plan = _dp_plan(dp, options, None)
        reason = str(err).removeprefix("MILP: ")
        return _choose(plan, f"dp: {why}; the MILP gave no placement ({reason})", started)
    if milp.objective > dp.objective:  # a start the backend rejected, then a worse find
        plan = _dp_plan(dp, options, milp.lower_bound)
        return _choose(plan, f"dp: {why}; the MILP found only worse plans", started)
    if milp.objective == dp.objective:  # its start: the DP's plan, with the MILP's proof
        plan = replace(_dp_plan(dp, options, milp.lower_bound), optimal=milp.optimal,
                       bound_source=milp.bound_source, notes=milp.notes,
                       stats={**dp.stats, **milp.stats})  # fmt: skip
        found = "proved it optimal" if milp.optimal else "found nothing better"
        return _choose(plan, f"dp: {why}; the MILP, warm-started from its plan, {found}",
                       started)  # fmt: skip
    return _choose(milp, f"milp: {why}; warm-started from the DP's plan, it found a better one",
                   started)  # fmt: skip


def _why_optimal(dp: SolveResult) -> str:
    """Why the DP's plan is proven optimal: its exact DP, or the DP on a relaxation of the
    graph that is narrow (:mod:`placer.solvers.dp.relax`, :mod:`placer.solvers.dp.branches`)."""
    if dp.bound_source is BoundSource.DP_RELAXED:
        return f"dp: the DP gave up ({dp.gave_up}); {_relaxed(dp)} it proves its plan optimal"
    return "dp: the exact DP finished within its limits"


def _relaxed(dp: SolveResult) -> str:
    """The relaxation whose DP proved ``dp``'s bound: the graph with its side branches in
    a fixed order (:mod:`placer.solvers.dp.branches`), or without its widest blocks."""
    if dp.stats.get("relaxed_branches"):
        return "with its side branches in a fixed order"
    return "without its widest blocks"


#: Certified gap under which auto keeps the DP's bracketed plan without the MILP.
BRACKET_GAP = 0.01


def _after_bracket(problem: Problem, dp: SolveResult, options: SolverOptions,
                   time_limit: float, started: float, why: str) -> SolveResult:  # fmt: skip
    """The DP bracketed the optimum (``why`` says how): keep its plan when its certified
    gap is small, else let the MILP search from it for the time left, keeping the better
    plan and the higher of the two proven bounds."""
    target = options.mip_gap if options.mip_gap is not None else BRACKET_GAP
    milp_options = replace(
        _milp_options(options, time_limit), warm_start=dp.placement, lower_bound=dp.lower_bound
    )
    if dp.gap is not None and dp.gap <= target:
        return _choose(dp, why, started)
    if milp_options.out_of_time():
        return _choose(dp, f"{why}; no time was left for the MILP", started)
    try:
        milp = solve_milp(problem, milp_options)
    except NoPlacementFound:
        return _choose(dp, f"{why}; the MILP found nothing better", started)
    lower = max(b for b in (dp.lower_bound, milp.lower_bound) if b is not None)
    better = milp.objective < dp.objective
    best = milp if better else dp
    # the MILP's bound closed the gap, or the MILP proved optimal the plan it answers
    # with (by its backend's tolerance, where no better plan exists)
    proven = best.objective <= lower * (1 + 1e-9) + 1e-15 or (
        milp.optimal and milp.objective <= best.objective)
    best = replace(best, lower_bound=lower, gap=relative_gap(best.objective, lower),
                   optimal=best.optimal or proven)  # fmt: skip
    closed = " and proved it optimal" if proven else ""
    if better:
        why = f"milp: warm-started from the DP's plan, it found a better one{closed}"
        return _choose(best, why, started)
    if proven:
        return _choose(best, f"{why}; the MILP proved it optimal", started)
    return _choose(best, f"{why}; the MILP found nothing better in the time", started)


def _milp_options(options: SolverOptions, time_limit: float) -> SolverOptions:
    """The MILP's options: its time limit, and a deadline that many seconds from now
    unless the whole solve has one already."""
    if options.deadline is None:
        options = replace(options, deadline=time.monotonic() + time_limit)
    return replace(options, time_limit=time_limit)


def _dp_plan(dp: SolveResult, options: SolverOptions, bound: float | None) -> SolveResult:
    """The DP's plan as the answer for the MILP's model, with the MILP's bound.

    The DP proves things about contiguous placements only: for ``--no-contiguous`` its
    optimality and bound say nothing, so only the MILP's bound (or none) is kept.
    """
    if options.contiguous and bound is None:
        return dp
    optimal = dp.optimal and options.contiguous
    source = BoundSource.MILP_DUAL if bound is not None else dp.bound_source
    gap = relative_gap(dp.objective, bound)
    return replace(dp, optimal=optimal, lower_bound=bound, gap=gap, bound_source=source)


def _choose(result: SolveResult, why: str, started: float) -> SolveResult:
    return replace(
        result, seconds=time.perf_counter() - started, notes=(f"auto chose {why}", *result.notes)
    )
