"""Exact dynamic program over the ideals of the pipeline DAG ([1]_, Section 4).

A contiguous placement is a chain of ideals (down-sets) ``∅ = I_0 ⊆ I_1 ⊆ ... ⊆ I_s =
V``: stage ``t`` holds ``I_t \\ I_{t-1}``.  The DP tabulates, for every ideal and every
count of devices used per kind, the least max-load, so it is exact over all contiguous
placements.  Differences from the reference code of [1]_, all exactness-preserving:

* the problem is first contracted into blocks (:mod:`placer.solvers.blocks`);
* a stage's latency, memory and support come from prefix sums over ideals in O(1), and
  its communication from the hyperedges cut by the larger ideal (a handful, the width of
  the graph) instead of an O(n) rescan of the stage;
* the max-load of the best placement over a few topological orders is an upper bound,
  and stages whose latency exceeds it on every kind are never generated;
* any number of device kinds (state: how many devices of each kind are used);
* per-link transfer costs: when links differ in speed the DP runs once per set of
  kinds a placement may use and brackets the optimum (:mod:`placer.solvers.dp.costing`).

When the ideals outnumber ``max_ideals`` or the visited pairs ``max_pairs``, the exact
DP gives up and the same DP runs over linear (topological) orders of the blocks, whose
ideals are their prefixes, and over the ideals of a *narrowed* block DAG (each block off
the longest path tied to just before the first block of it that it leads to,
:func:`narrowed_split`), a coarser search than the exact DP's; the best of these
placements is reported with ``optimal = False`` and the best bound placer proves (the
bracket's, or :func:`placer.solvers.bounds.volume_bound`).

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np

from placer.errors import InfeasiblePlacement, NoPlacementFound, SearchGaveUp
from placer.evaluator import evaluate
from placer.graphs import depth_first_order, topological_order
from placer.problem import Placement, Problem
from placer.solvers.base import (
    BoundSource,
    OutOfTime,
    SolveResult,
    SolverOptions,
    relative_gap,
)
from placer.solvers.blocks import BlockGraph, contract
from placer.solvers.dp import _ideal_kernels as kernels
from placer.solvers.dp.bracket import Bracket, bracket
from placer.solvers.dp.branches import ordered_bound
from placer.solvers.dp.chain import MAX_STATES, States, capacity, solve_order
from placer.solvers.dp.costing import Costing, Role, costings, lower_bound_of, lowest
from placer.solvers.dp.lattice import BackPointers, Lattice, backtrack, make_lattice, slices
from placer.solvers.dp.neighbours import NeighbourRun, neighbour_run, solve_neighbours
from placer.solvers.dp.polish import polish
from placer.solvers.dp.refine import refined_plans
from placer.solvers.dp.relax import Relaxation, relaxation_bound
from placer.solvers.dp.windows import Pruning, pruning
from placer.solvers.feasibility import check_feasible, explain_infeasible
from placer.util.interrupts import deferred_interrupt

#: (ideal, sub-ideal) pairs per kernel call: about 0.1 s, so that Ctrl-C, the pair
#: budget and the deadline are checked often.
_CALL_PAIRS = 1_000_000
#: Bitset words compared per call of the ideal enumeration (about 0.1 s).
_CALL_WORDS = 50_000_000
#: Most memory the ideals' bitsets may take; caps the ideals of a graph with many blocks.
MAX_LATTICE_BYTES = 2**30
#: Work of the ideal DP over a linear order's prefixes (pairs of prefixes times the
#: transfers each cuts, times the runs' device-count states) it does per second, about:
#: 2.0-2.7·10⁸ measured on GPT-2-48 unoptimised (8 and 22 s an order, 17 and 64 states).
ORDER_WORK_PER_SECOND = 2e8
#: Seconds that pass may be estimated at, without a time limit, for a linear order whose
#: transfers skip over blocks to be split by it, exactly; above, by the sweep of
#: :mod:`placer.solvers.dp.chain`.  Under a time limit: :data:`ORDER_SHARE` of the time left.
EXACT_ORDER_SECONDS = 2.0
ORDER_SHARE = 0.1
#: Ideal pairs the exact DP visits in a few seconds: beyond, a bracket already within
#: ``SolverOptions.accept_gap`` is the answer.
QUICK_PAIRS = 20_000_000
#: Ideal pairs the exact DP visits per second, about, on one core of a 2-core machine.
PAIRS_PER_SECOND = 2_000_000
#: Cap on DP table cells (ideals x device-count states): about 13 bytes each.
MAX_TABLE_CELLS = 60_000_000
_SLACK = 1e-9  # relative slack on the pruning bound, against rounding in prefix sums
#: Lattices with more ideals than this many per block are pruned by a linear order's plan.
_PRUNE_ABOVE = 4
#: Above this many ideals, the pairs a run would visit are estimated before it runs.
_ESTIMATE_ABOVE = 20_000
#: The gap :meth:`_Search.probe` settles when the options name none (``accept_gap``).
PROBE_GAP = 0.01
#: How far inside that gap the probe's bound sits, against rounding (a relative share).
_PROBE_MARGIN = 1e-3
#: The neighbour DP's states that cost it as much per pair as one exact run: measured on
#: Llama (210 states: 2.4-4.8 million pairs a second) and GPT-2-48 (1,200 states: 0.9
#: million) against the exact runs' :data:`PAIRS_PER_SECOND`.
NEIGHBOUR_STATES_PER_RUN = 500
#: Cap on the neighbour DP's table cells (ideals x states): 25 bytes each, a gigabyte.
NEIGHBOUR_TABLE_CELLS = 40_000_000
_SAMPLE = 256  # ideals sampled for that estimate
#: Seconds :meth:`_Search.polish` may take at most, and its share of the time left.
POLISH_SECONDS = 5.0
POLISH_SHARE = 0.15
#: Seconds the DP without the widest blocks (:mod:`placer.solvers.dp.relax`) may take
#: without a time limit, and its share of the time left under one.
RELAX_SECONDS = 20.0
RELAX_SHARE = 0.5


def solve_dp(problem: Problem, options: SolverOptions | None = None) -> SolveResult:
    """Place ``problem`` optimally among contiguous placements.

    Parameters
    ----------
    problem : Problem
    options : SolverOptions, optional
        ``max_ideals`` and ``max_pairs`` bound the exact DP.

    Returns
    -------
    SolveResult
        ``optimal`` is True when the exact DP finished and, with links of different
        speeds, its best plan meets the lower bound of :mod:`placer.solvers.dp.costing`;
        otherwise ``notes`` says why and ``stats["contiguous_lower_bound"]`` bounds
        the contiguous optimum.

    Raises
    ------
    InfeasiblePlacement
        No contiguous placement satisfies memory, support and device counts.
    NoPlacementFound
        The device kinds have more count states than the DP's tables hold
        (:data:`placer.solvers.dp.chain.MAX_STATES`), and the DP over fewer devices
        (:func:`_fewer_devices`) finds no placement.

    Notes
    -----
    Time O(R · (S · K · P + N · m · w)) and memory O(S · N + N · w) words, for R runs
    (one without mixed links), N ideals, P (ideal, sub-ideal) pairs within the bound, S
    device-count states, K kinds, m blocks and w = m / 64.
    """
    return _solve(problem, options or SolverOptions(), refine=True)


def _solve(problem: Problem, options: SolverOptions, *, refine: bool,
           fallback: bool = True) -> SolveResult | None:  # fmt: skip
    """:func:`solve_dp`; ``refine``: whether a graph too wide for the exact DP also gets
    the plans split by layers and refined around their cuts (the DP those run is this
    one without); ``fallback``: whether such a graph gets the fallback's answer at all
    (else None)."""
    counts = _counts_within_states(problem)
    if counts != [kind.count for kind in problem.kinds]:
        return _fewer_devices(problem, counts, options)
    search = _Search(problem, options, refine)
    if _is_chain(search.blocks):
        swept = search.chain()
        if swept is not None:
            return swept
    lattice = _ideal_lattice(search.blocks, search.max_ideals, options)
    if lattice is None:
        return search.without_lattice() if fallback else None
    return search.over(lattice)


class _Search:
    """One run of :func:`solve_dp`: the problem contracted, its DP runs, the best plan
    seen, the figures and notes of the answer, and the steps that lead to it."""

    def __init__(self, problem: Problem, options: SolverOptions, refine: bool = False) -> None:
        self.started = time.perf_counter()
        self.problem, self.options, self.refine = problem, options, refine
        self.blocks = contract(problem)
        check_feasible(problem, self.blocks)
        self.runs = costings(problem, self.blocks)
        self.stats: dict[str, float] = {"blocks": self.blocks.n_blocks}
        if len(self.runs) > 1:
            self.stats["dp_runs"] = len(self.runs)
        self.notes: list[str] = []
        self.best = _Best(problem)
        self.polished: Placement | None = None  # the last plan polish found no move from
        self.relaxation: Relaxation | None = None  # the bound of the DP without wide blocks
        # where links differ, the DP that knows its stages' neighbours replaces the
        # subsets' upper and lower runs over the ideals (not along linear orders)
        self.neighbour = None
        if any(run.role is not Role.EXACT for run in self.runs):
            self.neighbour = neighbour_run(problem, self.blocks)
        states = max(States.of(run.counts).n_states for run in self.runs)
        masks = max(run.weights.shape[1] for run in self.runs)
        per_ideal = states + 2 * len(problem.kinds) * masks  # table cells + cut totals
        self.max_ideals = min(options.max_ideals, max(1, MAX_TABLE_CELLS // per_ideal))

    def chain(self) -> SolveResult | None:
        """The answer on a chain, whose ideals are the prefixes of its one topological
        order (no lattice to build), if every run's sweep is exact."""
        problem, blocks = self.problem, self.blocks
        order = np.arange(blocks.n_blocks)
        swept = [solve_order(problem, blocks, run, order) for run in self.runs]
        if not all(exact for _, _, exact in swept):
            return None
        self.stats["ideals"] = blocks.n_blocks + 1
        for placement, _, _ in swept:
            self.best.offer(placement)
        values = [value for _, value, _ in swept]
        found = zip(self.runs, values, [math.inf] * len(values), strict=True)
        return self.conclude(list(found))

    def linear_orders(self) -> None:
        """Offer the best split of each linear order: an upper bound to prune stages with
        (and the fallback answer).  With binding memory caps a linear order may find
        nothing although a placement exists."""
        for order in _topological_orders(self.blocks):
            if self.best.placement is not None and self.options.out_of_time():
                break  # one order's plan is enough to answer with
            self.best.offer(best_split(self.problem, self.blocks, self.runs, order, self.options))

    def narrowed(self) -> None:
        """Where the exact DP will not run: offer the narrowed graph's plan."""
        if not self.options.out_of_time():
            bound = self.best.value * (1 + _SLACK) + _SLACK
            self.best.offer(narrowed_split(self.problem, self.blocks, self.runs,
                                           self.max_ideals, self.options, bound))  # fmt: skip

    def refined(self) -> None:
        """Where the exact DP will not run: offer the plans split by whole layers and
        refined around their cuts (:mod:`placer.solvers.dp.refine`)."""
        if not self.refine or self.options.out_of_time():
            return
        for plan in refined_plans(self.problem, self.options, _unrefined):
            self.best.offer(plan)

    def without_lattice(self) -> SolveResult:
        """The answer when the ideals are too many to enumerate (or time ran out)."""
        options, max_ideals = self.options, self.max_ideals
        if options.out_of_time():
            why, hint = "the time limit ran out", "raise --time-limit"
        elif max_ideals == options.max_ideals:
            why, hint = f"more than {max_ideals:,} ideals", "raise --max-ideals to try the exact DP"
        else:
            why = f"more than {max_ideals:,} ideals"
            hint = "the ideals' tables would not fit in memory"
        self.linear_orders()
        self.narrowed()
        self.relaxed()
        self.refined()
        return self.fallback(why, hint)

    def relaxed(self) -> None:
        """Where the exact DP will not run: a proven bound from the DP on the graph
        without the blocks that widen it (:mod:`placer.solvers.dp.relax`), and its plan
        with them put back."""
        options = self.options
        if options.out_of_time():
            return
        left = options.seconds_left()
        seconds = RELAX_SECONDS if left is None else RELAX_SHARE * left
        within = replace(options, deadline=time.monotonic() + seconds)
        # interchangeable branches kept in a fixed order first: they keep the work that
        # dropping them loses; then the widest blocks dropped, in the time left
        ways = (partial(ordered_bound, dps=(_narrow_only, _absorbing)),
                partial(relaxation_bound, solve=_narrow_only, totals=_absorbing))  # fmt: skip
        for relax in ways:
            if within.out_of_time():
                break
            found = relax(self.problem, self.blocks, within, upper=self.best.value)
            if found is None:
                continue
            self.best.offer(found.placement)
            if self.relaxation is None or found.lower > self.relaxation.lower:
                self.relaxation = found
            if relative_gap(self.best.value, self.relaxation.lower) <= PROBE_GAP:
                break

    def over(self, lattice: Lattice) -> SolveResult:
        """The answer over the ideals of ``lattice``: the exact runs where their pairs
        fit the limits and the time, else the bracket's."""
        blocks, options = self.blocks, self.options
        pruned = lattice.bits.shape[0] > _PRUNE_ABOVE * (blocks.n_blocks + 1)
        self.stats["ideals"] = lattice.bits.shape[0]
        stages = _Stages(blocks, lattice)
        found_bracket = None
        if pruned:
            if options.deadline is not None:
                # seconds, with a plan and a proven bound, before the linear orders, which
                # may take the time left (24 s of 30 on GPT-2-48 unoptimised, 8 runs)
                found_bracket = self.bracket(stages)
            self.linear_orders()
        if lattice.bits.shape[0] > _ESTIMATE_ABOVE or pruned or options.deadline is not None:
            found_bracket, answer = self.screen(stages, pruned, found_bracket)
            if answer is not None:
                return answer
        return self.exact(stages, pruned, found_bracket)

    def estimate_pairs(self, stages: _Stages, bound: float | None = None) -> float:
        """About how many pairs the exact runs would visit within ``bound`` (default:
        the best plan's max-load; every run may visit about as many as the first), the
        neighbour DP counted as one run per :data:`NEIGHBOUR_STATES_PER_RUN` of its
        states, and at least one (what its pairs cost against a run's)."""
        counts = np.array([kind.count for kind in self.problem.kinds], dtype=np.int64)
        if bound is None:
            bound = self.best.value * (1 + _SLACK) + _SLACK
        runs = len(self.runs)
        neighbour = self.neighbour_over(stages)
        if neighbour is not None:
            exact = sum(run.role is Role.EXACT for run in self.runs)
            runs = exact + max(1.0, neighbour.n_states / NEIGHBOUR_STATES_PER_RUN)
        cap, states = capacity(self.problem, counts), States.of(counts)
        pruned = pruning(self.blocks.latency, stages.sums.lat, counts, states.strides, bound)
        return stages.estimate_pairs(cap, bound, pruned, states) * runs

    def screen(self, stages: _Stages, pruned: bool, found_bracket: Bracket | None = None):
        """``(bracket or None, answer or None)``: before the exact runs on a wide lattice,
        the bracket (``found_bracket`` if already made) where they may take minutes or
        more time than is left, and the bracket's answer where it is close enough or
        their pairs are too many."""
        options = self.options
        if options.out_of_time() and self.best.placement is not None:
            # no time to estimate or to run anything: the plan found, with what is known
            return found_bracket, self.bracketed(stages, "the time limit ran out", found_bracket)
        estimate = self.estimate_pairs(stages)
        left = options.seconds_left()
        # and where the exact runs may not finish in the time left: a bound to answer with
        late = left is not None and estimate > PAIRS_PER_SECOND * left / 2
        if (pruned and estimate > QUICK_PAIRS) or late:
            # seconds, where the exact DP may need minutes: a plan to prune with, and the
            # answer (with a proven bound) if the exact DP runs out of pairs or time
            if found_bracket is None:
                found_bracket = self.bracket(stages)
            self.narrowed()
            # and its moves, while there is time: a better plan prunes the runs below
            self.polish(found_bracket.lower)
            estimate = self.estimate_pairs(stages)
            gap = relative_gap(self.best.value, found_bracket.lower)
            close = options.accept_gap is not None and gap <= options.accept_gap
            if close and estimate > QUICK_PAIRS:
                self.stats["pairs_estimate"] = estimate
                why = f"about {estimate:.2g} ideal pairs (estimated) for the exact DP"
                return found_bracket, self.bracketed(stages, why, found_bracket)
        if not self.fits(estimate):
            # the whole exact DP will not finish: the part of it that settles the target gap
            answer = self.probe(stages, pruned, found_bracket)
            if answer is not None:
                return found_bracket, answer
        if estimate > options.max_pairs:
            self.stats["pairs_estimate"] = estimate
            if not pruned:
                self.linear_orders()
            why = f"about {estimate:.2g} ideal pairs (estimated), {self.too_wide}"
            return found_bracket, self.bracketed(stages, why, found_bracket)
        return found_bracket, None

    def probe(self, stages: _Stages, pruned: bool, found_bracket: Bracket | None):
        """The exact runs over the splits of max-load at most a cap, where their pairs
        fit the budget and the time: their work windows
        (:mod:`placer.solvers.dp.windows`) hold a few percent of a wide lattice's
        ideals.  A run within a cap finds a plan within it (the optimum, where the links
        are alike) or proves none exists.

        The caps climb from the proven lower bound by the target gap (``accept_gap``,
        else :data:`PROBE_GAP`) at a time, up to that gap below the best plan, where the
        runs are cheapest: each raises the bound to its cap or finds the plan under it.
        Once the gap is within the target, one more run capped at the best plan proves
        it optimal if that fits too.  None where no run would fit, or the plan is
        already within the target; else the last answer (the neighbour DP's bound may
        stop short of the target)."""
        options, best = self.options, self.best
        target = options.accept_gap if options.accept_gap is not None else PROBE_GAP
        floor = found_bracket.lower if found_bracket is not None else 0.0
        if best.placement is None or not target > 0 or relative_gap(best.value, floor) <= target:
            return None
        step = target * (1 - _PROBE_MARGIN)
        answer, pairs, kept = None, 0, len(self.notes)
        while True:
            within = relative_gap(best.value, floor) <= target
            cap = best.value * (1 - step)
            if within:
                cap = best.value
            elif floor > 0:
                cap = min(floor * (1 + step), cap)
            if not self.fits(self.estimate_pairs(stages, cap)):
                return answer
            # the last answer keeps its figures; its notes give way to this run's
            self.stats = dict(self.stats)
            del self.notes[kept:]
            self.stats["probe_bound"] = cap
            found = self.exact(stages, pruned, found_bracket, cap, floor)
            if found.gave_up is not None and answer is not None:
                return answer  # ran out of time or pairs: the last answer stands
            pairs += int(self.stats.get("pairs", 0))
            self.stats["pairs"] = pairs
            answer = found
            if found.gave_up is not None or found.optimal or within:
                return answer
            if found.lower_bound <= floor * (1 + 1e-9):
                return answer  # the neighbour DP's charges stop short of this cap
            floor = found.lower_bound

    def neighbour_over(self, stages: _Stages) -> NeighbourRun | None:
        """The neighbour DP, if the problem has one and its tables over ``stages``'
        ideals fit :data:`NEIGHBOUR_TABLE_CELLS` (else the subsets' upper and lower runs
        take its place)."""
        n = stages.lattice.bits.shape[0]
        if self.neighbour is None or self.neighbour.n_states * n > NEIGHBOUR_TABLE_CELLS:
            return None
        return self.neighbour

    def fits(self, estimate: float) -> bool:
        """Whether exact runs estimated at ``estimate`` pairs fit the pair budget and,
        at :data:`PAIRS_PER_SECOND`, the time left."""
        left = self.options.seconds_left()
        return estimate <= self.options.max_pairs and (
            left is None or estimate <= PAIRS_PER_SECOND * left
        )

    @property
    def too_wide(self) -> str:
        return f"more than {self.options.max_pairs:,} ideal pairs"

    def exact(self, stages: _Stages, pruned: bool, found_bracket,
              cap: float | None = None, floor: float = 0.0) -> SolveResult:  # fmt: skip
        """Every run of the exact DP, each pruned by the best plan so far, or by ``cap``
        where that is lower (where links differ: the runs of the subsets whose links
        are alike, then the neighbour DP); the bracket's answer if their pairs or the
        time run out."""
        options, best = self.options, self.best
        limit = math.inf if cap is None else cap
        found = []
        pairs = 0
        neighbour = self.neighbour_over(stages)
        runs = [run for run in self.runs if neighbour is None or run.role is Role.EXACT]
        for run in runs:
            bound = min(best.value * (1 + _SLACK) + _SLACK, limit)
            left = replace(options, max_pairs=options.max_pairs - pairs)
            placement, value, run_pairs = _run(self.problem, self.blocks, run, stages, bound, left)
            pairs += run_pairs
            if pairs > options.max_pairs or placement is _OUT_OF_TIME:
                return self.gave_up(stages, pairs, pruned, found_bracket,
                                    placement is _OUT_OF_TIME)  # fmt: skip
            best.offer(placement)
            found.append((run, value, bound))
        neighbours, n_runs = None, len(runs)
        # the plain state first (under half the states), naming transfers in flight only
        # where its plan does not meet its bound
        for through in sorted({0, neighbour.through}) if neighbour is not None else ():
            bound = min(best.value * (1 + _SLACK) + _SLACK, limit)
            left = replace(options, max_pairs=options.max_pairs - pairs)
            run = replace(neighbour, through=through)
            placement, value, run_pairs = solve_neighbours(self.problem, self.blocks, run,
                                                           stages, bound, left)  # fmt: skip
            pairs += run_pairs
            if value is None:
                if neighbours is not None:
                    break  # out of time or pairs: the plain state's bound stands
                return self.gave_up(stages, pairs, pruned, found_bracket, options.out_of_time())
            best.offer(placement)
            neighbours = max(neighbours or 0.0, min(value, bound))
            n_runs += 1
            self.stats["dp_runs"] = n_runs
            if value >= bound or best.value <= neighbours * (1 + 1e-9) + 1e-15:
                break  # nothing within the bound, or the plan is proven
        self.stats["pairs"] = pairs
        floor = max(floor, found_bracket.lower if found_bracket is not None else 0.0)
        return self.conclude(found, floor, neighbours, cap)

    def gave_up(self, stages: _Stages, pairs: int, pruned: bool, found_bracket,
                timed_out: bool) -> SolveResult:  # fmt: skip
        """The answer when the exact runs ran out of pairs or time: the bracket's."""
        self.stats["pairs"] = pairs
        if not pruned:
            self.linear_orders()
        if timed_out:
            why = "the time limit ran out"
            if found_bracket is None:
                return self.fallback(why, "raise --time-limit")
        else:
            why = self.too_wide
        return self.bracketed(stages, why, found_bracket)

    def conclude(self, found, floor: float = 0.0, neighbours: float | None = None,
                 cap: float | None = None) -> SolveResult:  # fmt: skip
        """The result once every run finished: ``found`` holds each run's (run, value,
        pruning bound), and ``best`` has been offered their placements; ``floor`` is
        another proven lower bound (the bracket's), and ``neighbours`` the neighbour
        DP's, which bounds every placement (the runs then cover only some); ``cap``, the
        bound that pruned the runs below the best plan (:meth:`probe`), if any."""
        problem, best = self.problem, self.best
        lower = math.inf
        if neighbours is not None:
            lower = neighbours
        else:
            for run, value, bound in found:
                proven = lower_bound_of(run.role, value, bound)
                if proven is not None:
                    lower = min(lower, proven)
        lower = max(lower, floor) if math.isfinite(lower) else lower
        if best.placement is None:
            raise explain_infeasible(problem, self.blocks)
        alone = neighbours is None and len(found) == 1 and found[0][0].role is Role.EXACT
        if alone and found[0][1] <= found[0][2]:  # within its bound: the run's optimum
            return self.result(True)
        self.polish(lower)
        self.stats["contiguous_lower_bound"] = lower
        if best.value <= lower * (1 + 1e-9) + 1e-15:
            return self.result(True)
        scale, unit = (1e3, " ms") if problem.time_unit == "s" else (1.0, "")
        if cap is not None:
            self.notes.append(
                f"the exact DP searched only the splits of max-load at most {cap * scale:.6g}"
                f"{unit}, {relative_gap(best.value, cap):.2%} below this plan: the best "
                f"contiguous placement has a max-load between {lower * scale:.6g}{unit} and "
                f"this plan's {best.value * scale:.6g}{unit}"
            )
            return self.result(False, lower, bound_source=BoundSource.DP_PRUNED)
        self.notes.append(
            "links differ in speed: the best contiguous placement has a max-load between "
            f"{lower * scale:.6g}{unit} and this plan's {best.value * scale:.6g}{unit}"
        )
        return self.result(False, lower, bound_source=BoundSource.DP_LINKS)

    def fallback(self, why: str, hint: str) -> SolveResult:
        """The linear-order answer when the exact DP gave up (or no placement if none)."""
        if self.best.placement is None:
            raise SearchGaveUp(
                f"no placement found: {why} for the exact DP ({hint}), and no linear order "
                "of the graph fits the devices' memory"
            )
        relaxation = self.relaxation
        if relaxation is None:
            self.notes.append(
                f"{why}: fell back to the DP over linear orders and a narrowed graph (not "
                f"proven optimal; {hint})"
            )
            return self.result(False, gave_up=why)
        self.polish(relaxation.lower)
        lower = min(relaxation.lower, self.best.value)
        self.stats["contiguous_lower_bound"] = lower
        self.stats["relaxed_blocks"] = relaxation.dropped
        if relaxation.branches:
            self.stats["relaxed_branches"] = relaxation.branches
        proven = self.best.value <= lower * (1 + 1e-9) + 1e-15
        # the gap is the answer's to print: later bounds (the MILP's, the LP's) may close it
        claim = "the plan optimal" if proven else f"a lower bound ({hint})"
        if relaxation.branches:
            relaxed = (
                f"the graph with its {relaxation.branches} interchangeable side branches in "
                f"a fixed order and {relaxation.dropped} blocks left out "
                f"({relaxation.share:.1%} of the work)"
            )
        else:
            relaxed = (f"the graph without its {relaxation.dropped} widest blocks "
                       f"({relaxation.share:.1%} of the work)")  # fmt: skip
        self.notes.append(
            f"{why}: fell back to linear orders, a narrowed graph and {relaxed}, whose DP "
            f"proves {claim}"
        )
        return self.result(proven, lower, gave_up=why, bound_source=BoundSource.DP_RELAXED)

    def polish(self, lower: float) -> None:
        """Where the best plan does not meet the proven bound ``lower``, the plan of
        :func:`~placer.solvers.dp.polish.polish`'s moves out of its bottleneck stage (a
        tie of the neighbour DP's that its charges fall short on)."""
        best = self.best
        if best.placement is None or best.value <= lower * (1 + 1e-9) + 1e-15:
            return
        if best.placement is self.polished:
            return  # every move from this plan was tried: none helped
        left = self.options.seconds_left()
        share = POLISH_SECONDS if left is None else min(POLISH_SECONDS, POLISH_SHARE * left)
        # at most the time left: before the solve's own deadline
        options = replace(self.options, deadline=time.monotonic() + share)
        start = best.placement
        best.offer(polish(self.problem, self.blocks, start, options, lower))
        if best.placement is start and not options.out_of_time():
            self.polished = start

    def bracket(self, stages: _Stages) -> Bracket:
        """The bracket of :mod:`placer.solvers.dp.bracket`, its plan offered."""
        found = bracket(self.problem, self.blocks, stages, self.options)
        self.best.offer(found.placement)
        return found

    def bracketed(self, stages: _Stages, why: str, found: Bracket | None) -> SolveResult:
        """The answer when the exact DP's pairs (or time) ran out: the best plan seen,
        with the bracket's lower bound."""
        if found is None:
            found = self.bracket(stages)
        best = self.best
        if best.placement is None or found.lower <= 0:
            timed_out = self.options.out_of_time()
            hint = "raise --time-limit" if timed_out else "the graph is too wide"
            return self.fallback(why, hint)
        self.polish(found.lower)
        lower, branches = self.ordered(found.lower)
        lower = min(lower, best.value)
        self.stats["contiguous_lower_bound"] = lower
        if branches and best.value <= lower * (1 + 1e-9) + 1e-15:
            self.stats["relaxed_branches"] = branches
            self.notes.append(
                f"{why}: the DP with its {branches} interchangeable side branches in a fixed "
                "order proves the plan optimal"
            )
            return self.result(True, gave_up=why, bound_source=BoundSource.DP_RELAXED)
        self.notes.append(
            f"{why}: split by a bracket over the {stages.lattice.bits.shape[0]:,} ideals "
            f"instead (not proven optimal: within {relative_gap(best.value, lower):.2%} of "
            "the optimum)"
        )
        if branches:
            self.stats["relaxed_branches"] = branches
            self.notes.append(
                f"with its {branches} interchangeable side branches in a fixed order, the DP "
                "proves a higher bound than the bracket's"
            )
        return self.result(False, lower, bracketed=True, gave_up=why,
                           bound_source=BoundSource.DP_BRACKET)  # fmt: skip

    def ordered(self, lower: float) -> tuple[float, int]:
        """``(lower, 0)``, or the higher bound of the DP with the graph's interchangeable
        branches in a fixed order (:mod:`placer.solvers.dp.branches`), whose ideals are
        fewer (Llama's 48,394 are 7,486), and how many branches it reordered, where the
        plan is not already within the target gap; its plan is offered.  It takes at
        most its share of the time left, in the top search alone."""
        options, best = self.options, self.best
        target = options.accept_gap if options.accept_gap is not None else PROBE_GAP
        if not self.refine:
            return lower, 0  # a subproblem's search (the relaxations' own included)
        if options.out_of_time() or relative_gap(best.value, lower) <= target:
            return lower, 0
        left = options.seconds_left()
        seconds = RELAX_SECONDS if left is None else RELAX_SHARE * left
        within = replace(options, deadline=time.monotonic() + seconds)
        found = ordered_bound(self.problem, self.blocks, within, (_narrow_only, _absorbing),
                              best.value, every=True)  # fmt: skip
        if found is None:
            return lower, 0
        best.offer(found.placement)
        if found.lower <= lower:
            return lower, 0
        return found.lower, found.branches

    def result(self, optimal: bool, lower: float | None = None, **typed) -> SolveResult:
        """The DP's answer; ``typed``: the :class:`SolveResult` fields that say how it
        ended (``bound_source``, ``gave_up``, ``bracketed``)."""
        objective = self.best.value
        if optimal:
            lower = objective
            typed.setdefault("bound_source", BoundSource.DP_EXACT)
        return SolveResult(
            solver="dp",
            placement=self.best.placement,
            objective=objective,
            optimal=optimal,
            seconds=time.perf_counter() - self.started,
            stats=self.stats,
            notes=tuple(self.notes),
            lower_bound=lower,
            gap=relative_gap(objective, lower),
            **typed,
        )


def _unrefined(problem: Problem, options: SolverOptions) -> SolveResult:
    return _solve(problem, options, refine=False)


def _absorbing(problem: Problem, options: SolverOptions, packing):
    """Where ``problem``'s ideals fit, ``(absorbed, used)``: ``used[s, k]`` the devices
    of kind ``k`` that count state ``s`` uses, and ``absorbed(bound)`` the pair
    ``(stages, idle)``: per state, the least ``-Σ pack(stage, bound - charge)`` over the
    stages of the contiguous placements on exactly those devices whose stages are each
    charged at most ``bound`` (``inf`` where there is none; the charges of
    :func:`~placer.solvers.dp.costing.lowest`, at most the evaluator's), and per kind
    what a device holding no op of ``problem`` packs in ``bound``
    (:func:`~placer.solvers.dp._ideal_kernels.pack` of the blocks of ``packing``, a
    :class:`~placer.solvers.dp.relax.Knapsack`, left out of ``problem``); or None once
    ``options``' deadline passed.  None where the ideals do not fit.  For
    :func:`placer.solvers.dp.relax.slack_bound`.

    Free leaves stay blocks of their own: absorbing one changes no optimum, but a device
    holding only such a leaf has the room of a whole stage for the blocks left out, and
    the test must see it (a plan with a free op and a left-out block on one device was
    missed, and a bound proven above the optimum)."""
    blocks = contract(problem, absorb_free_leaves=False)
    run = lowest(problem, blocks)
    states = States.of(run.counts)
    # its table, ideals times count states, is capped as the exact DP's is
    max_ideals = min(options.max_ideals, max(1, MAX_TABLE_CELLS // states.n_states))
    lattice = _ideal_lattice(blocks, max_ideals, options)
    if lattice is None:
        return None
    stages = _Stages(blocks, lattice)
    try:
        cuts, weights, cut_total = stages.charged(run.hyperedges, run.weights,
                                                  options.out_of_time)  # fmt: skip
    except OutOfTime:
        return None
    pays = weights.reshape(len(run.counts), -1).any(axis=1)
    cap = capacity(problem, run.counts)
    n = lattice.bits.shape[0]
    unpruned = pruning(blocks.latency, stages.sums.lat, run.counts, states.strides, math.inf)
    used = (np.arange(states.n_states)[:, None] // states.strides[None, :]) % (run.counts + 1)
    early, late = _availability(blocks, lattice, packing)

    def absorbed(bound: float) -> tuple[np.ndarray, np.ndarray] | None:
        arrays = kernels.RunArrays(states, cap, pays, False, cuts, weights, run.memory,
                                   cut_total, bound, unpruned)  # fmt: skip
        absorbing = kernels.Absorbing(arrays, packing.time, packing.value, packing.order,
                                      early, late)  # fmt: skip
        table = kernels.DPTable(
            np.full((states.n_states, n), np.inf),
            np.full((states.n_states, n), -1, dtype=np.int32),
            np.full((states.n_states, n), -1, dtype=np.int8),
            np.full(n, -1, dtype=np.int64),
            np.empty(n, dtype=np.int64),
        )
        lo = 0
        while lo < n:
            if options.out_of_time():
                return None
            with deferred_interrupt():
                _, lo = kernels.absorb_range(lo, n, stages.sums, absorbing, table, _CALL_PAIRS)
        with deferred_interrupt():
            idle = kernels.idle_room(absorbing, bound)
        return table.dp[:, n - 1].copy(), idle

    return absorbed, used


def _availability(blocks: BlockGraph, lattice: Lattice, packing) -> tuple[np.ndarray, np.ndarray]:
    """``(early, late)``: per ideal of ``lattice``, the bitset over ``packing``'s blocks
    of those whose kept ancestors it holds, and of those none of whose kept descendants
    it holds."""
    bits = lattice.bits
    n, words = bits.shape
    n_dropped = len(packing.before)
    early = np.zeros((n, (n_dropped + 63) // 64), dtype=np.uint64)
    late = np.zeros_like(early)

    def mask(ops: np.ndarray) -> np.ndarray:
        found = np.zeros(words, dtype=np.uint64)
        members = np.unique(blocks.block_of_op[ops]) if len(ops) else np.zeros(0, np.int64)
        np.bitwise_or.at(found, members >> 6, np.uint64(1) << (members & 63).astype(np.uint64))
        return found

    for b in range(n_dropped):
        word, bit = b >> 6, np.uint64(1) << np.uint64(b & 63)
        before, after = mask(packing.before[b]), mask(packing.after[b])
        holds = ~np.any(before[None, :] & ~bits, axis=1)
        clear = ~np.any(after[None, :] & bits, axis=1)
        early[holds, word] |= bit
        late[clear, word] |= bit
    return early, late


def _narrow_only(problem: Problem, options: SolverOptions) -> SolveResult | None:
    """The DP's answer where its ideals fit (exact, or bracketed where their pairs do
    not), None where they do not or it finds no placement: a subproblem's bound for
    :func:`placer.solvers.dp.relax.relaxation_bound`, without the fallbacks of a graph
    too wide."""
    try:
        return _solve(problem, options, refine=False, fallback=False)
    except (InfeasiblePlacement, NoPlacementFound, SearchGaveUp):
        return None


def _counts_within_states(problem: Problem) -> list[int]:
    """Device counts whose states fit the DP's tables (:data:`MAX_STATES`): the
    problem's own, or fewer -- the largest count lowered first, then the slowest kinds
    (most unsupported ops, then most latency) left out."""
    counts = [kind.count for kind in problem.kinds]
    slowness = [
        (sum(not op.supported[k] for op in problem.ops),
         math.fsum(op.latency[k] for op in problem.ops if op.supported[k]))
        for k in range(len(counts))
    ]  # fmt: skip
    while math.prod(c + 1 for c in counts) > MAX_STATES:
        largest = max(range(len(counts)), key=lambda k: counts[k])
        if counts[largest] > 1:
            counts[largest] -= 1
        else:
            used = [k for k, c in enumerate(counts) if c > 0]
            counts[max(used, key=lambda k: slowness[k])] = 0
    return counts


def _fewer_devices(problem: Problem, counts: list[int], options: SolverOptions) -> SolveResult:
    """The DP over ``counts`` devices of each kind: a real placement of ``problem``
    (the others left unused), not proven optimal for it.

    Raises
    ------
    NoPlacementFound
        No placement on that many devices.
    """
    kinds = tuple(replace(kind, count=c) for kind, c in zip(problem.kinds, counts, strict=True))
    try:
        solved = solve_dp(replace(problem, kinds=kinds), options)
    except InfeasiblePlacement as err:
        raise NoPlacementFound(
            f"the DP's tables hold {MAX_STATES:,} device-count states, and on the "
            f"{sum(counts):,} devices they allow it finds no placement ({err}); use "
            "--solver milp"
        ) from err
    # device i of kind k on the smaller problem is device i of kind k here
    first_small = np.cumsum([0, *counts])
    first_full = np.cumsum([0, *(kind.count for kind in problem.kinds)])
    kind_of = np.repeat(np.arange(len(counts)), counts)
    device_of_op = np.asarray(solved.placement.device_of_op)
    kind_of_op = kind_of[device_of_op]
    wide = first_full[kind_of_op] + device_of_op - first_small[kind_of_op]
    placement = Placement(tuple(int(d) for d in wide))
    used = ", ".join(
        f"{c} of {kind.count} {kind.name}" for kind, c in zip(problem.kinds, counts, strict=True)
        if c < kind.count
    )  # fmt: skip
    limit = f"the DP's tables hold {MAX_STATES:,} device-count states"
    note = f"{limit}: it placed on fewer devices ({used}); not proven optimal"
    stats = {key: value for key, value in solved.stats.items() if key != "contiguous_lower_bound"}
    return replace(
        solved,
        placement=placement,
        objective=evaluate(problem, placement).max_load,
        optimal=False,
        lower_bound=None,
        gap=None,
        bound_source=None,
        stats=stats,
        notes=(note, *solved.notes),
        gave_up=limit,
    )


def _is_chain(blocks: BlockGraph) -> bool:
    """Whether the blocks (numbered in a topological order) have no other order: each
    block is an arc away from the next, so the ideals are the prefixes."""
    m = blocks.n_blocks
    if m <= 1:
        return True
    edges = blocks.edges
    consecutive = edges[:, 1] - edges[:, 0] == 1
    return int(np.count_nonzero(consecutive)) == m - 1


class _Best:
    """The best placement seen so far, by the evaluator's max-load."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.placement: Placement | None = None
        self.value = math.inf

    def offer(self, placement: Placement | None) -> None:
        if placement is None:
            return
        evaluation = evaluate(self.problem, placement)
        # the bracket's plan ignores memory caps: the evaluator has the last word
        if evaluation.valid and evaluation.max_load < self.value:
            self.placement, self.value = placement, evaluation.max_load


def _ideal_lattice(blocks: BlockGraph, max_ideals: int, options: SolverOptions) -> Lattice | None:
    """The ideals of the block DAG, or None when there are more than ``max_ideals`` (or
    more than fit in :data:`MAX_LATTICE_BYTES`) or the deadline passes first."""
    m = blocks.n_blocks
    words = (m + 64) // 64  # a bit for the phantom block of the covers, never set
    max_ideals = min(max_ideals, max(1, MAX_LATTICE_BYTES // (8 * words)))
    if _has_wide_antichain(blocks, max_ideals):
        return None
    pred = np.zeros((m, words), np.uint64)
    if len(blocks.edges):
        u, v = blocks.edges[:, 0], blocks.edges[:, 1]
        np.bitwise_or.at(pred, (v, u >> 6), np.uint64(1) << (u & 63).astype(np.uint64))
    zobrist = np.random.default_rng(20201206).integers(
        0, np.iinfo(np.uint64).max, size=m, dtype=np.uint64, endpoint=True
    )
    state = np.array([1, 0, 0, 0], dtype=np.int64)
    arrays = kernels.new_ideal_arrays(words)
    while state[3] == 0:
        if options.out_of_time():
            return None
        with deferred_interrupt():
            arrays = kernels.generate_ideals(pred, zobrist, max_ideals, state, arrays, _CALL_WORDS)
    if state[3] == 2:
        return None
    n, e = int(state[0]), int(state[1])
    return make_lattice(arrays.bits[:n], arrays.sub_child[:e], arrays.sub_parent[:e],
                        arrays.added[:n], arrays.creator[:n])  # fmt: skip


def _has_wide_antichain(blocks: BlockGraph, max_ideals: int) -> bool:
    """Whether some blocks of equal depth (an antichain: no path joins two of them)
    are so many that their subsets alone give more than ``max_ideals`` ideals.

    A cheap certificate, O(blocks + arcs), that spares enumerating the ideals of a
    graph far too wide for them (a 100,000-wide graph would fill gigabytes first).
    """
    m = blocks.n_blocks
    edges = blocks.edges
    # the arcs by the position of their tail in a topological order: the numbering
    # itself, unless some arcs run against it (a narrowed DAG's)
    position = np.arange(m)
    if len(edges) and np.any(edges[:, 0] >= edges[:, 1]):
        arcs = {(int(u), int(v)) for u, v in edges}
        position[topological_order(list(range(m)), arcs)] = np.arange(m)
    depth = np.zeros(m, dtype=np.int64)
    for u, v in edges[np.argsort(position[edges[:, 0]], kind="stable")]:
        depth[v] = max(depth[v], depth[u] + 1)
    widest = int(np.bincount(depth).max()) if m else 0
    return widest >= 63 or 2**widest > max_ideals


def best_split(problem, blocks, runs, order, options=None,
               share: float = ORDER_SHARE) -> Placement | None:  # fmt: skip
    """The best placement whose stages are consecutive runs of ``order``, by the runs
    that charge at least the truth (scored by the evaluator); None if none fits.

    When the sweep's charges are exact along ``order`` (no transfer skips a block), or
    the ideal DP over the prefixes is estimated at more than ``share`` of the time left
    (:data:`EXACT_ORDER_SECONDS` without a deadline), the sweep of
    :mod:`placer.solvers.dp.chain` splits it (optimally in the first case, under charges
    that may over-count transfers in the second); otherwise the ideal DP over its
    prefixes does, optimally.  The ideal DP stops at ``options``' deadline.
    """
    options = options or SolverOptions()
    best = _Best(problem)
    upper = [run for run in runs if run.role is not Role.LOWER]
    swept = [solve_order(problem, blocks, run, order) for run in upper]
    for placement, _, _ in swept:
        best.offer(placement)
    if all(exact for _, _, exact in swept) or not _order_fits(blocks, order, upper, options, share):
        return best.placement
    lattice = _chain_lattice(order, blocks.n_blocks)
    stages = _Stages(blocks, lattice)
    for run in upper:
        unlimited = replace(options, max_pairs=math.inf)
        placement = _run(problem, blocks, run, stages, math.inf, unlimited)[0]
        best.offer(None if placement is _OUT_OF_TIME else placement)
    return best.placement


def narrowed_split(problem, blocks, runs, max_ideals: int, options,
                   bound: float = math.inf) -> Placement | None:  # fmt: skip
    """The best placement whose cuts are ideals of the *narrowed* block DAG
    (:func:`_narrowed_edges`), by the ideal DP over them and the runs that charge at
    least the truth, stages over ``bound`` pruned (a plan already found); None if
    they are too many too, or nothing fits within ``bound``.

    Every ideal of the narrowed DAG is one of the block DAG, so this is a real
    placement; it searches far more cuts than a linear order (each layer's parallel
    branches stay free) at a fraction of the full lattice's ideals.
    """
    narrowed = replace(blocks, edges=_narrowed_edges(blocks))
    lattice = _ideal_lattice(narrowed, max_ideals, options)
    if lattice is None:
        return None
    stages = _Stages(blocks, lattice)
    best = _Best(problem)
    for run in runs:
        if run.role is Role.LOWER or options.out_of_time():
            continue
        quick = replace(options, max_pairs=QUICK_PAIRS)
        placement = _run(problem, blocks, run, stages, bound, quick)[0]
        best.offer(None if placement is _OUT_OF_TIME else placement)
    return best.placement


def _narrowed_edges(blocks: BlockGraph) -> np.ndarray:
    """The block DAG's arcs plus one per block off its longest path (the *spine*, by
    block count): from the spine block just before the first spine block it leads to.
    A block that may float beside many spine blocks (T5's decoder self-attention beside
    the whole encoder, a cross-attention's projection beside the decoder) then runs just
    before it is needed.  The arcs added only lead from the spine, to blocks none of whose
    descendants lies earlier on it, so the result stays acyclic."""
    m = blocks.n_blocks
    succ: list[list[int]] = [[] for _ in range(m)]
    pred: list[list[int]] = [[] for _ in range(m)]
    for u, v in blocks.edges:
        succ[int(u)].append(int(v))
        pred[int(v)].append(int(u))
    depth = [0] * m
    parent = [-1] * m
    for v in range(m):  # blocks are numbered topologically
        for u in pred[v]:
            if depth[u] + 1 > depth[v]:
                depth[v], parent[v] = depth[u] + 1, u
    end = max(range(m), key=depth.__getitem__) if m else -1
    spine: list[int] = []
    while end != -1:
        spine.append(end)
        end = parent[end]
    spine.reverse()
    position = {b: i for i, b in enumerate(spine)}
    first = [len(spine)] * m  # the first spine position among each block's descendants
    for v in reversed(range(m)):
        if v in position:
            first[v] = position[v]
        else:
            first[v] = min((first[w] for w in succ[v]), default=len(spine))
    added = [
        (spine[first[b] - 1], b)
        for b in range(m)
        if b not in position and first[b] > 0
    ]
    if not added:
        return blocks.edges
    return np.concatenate([blocks.edges, np.array(added, dtype=np.int64).reshape(-1, 2)])


def _order_fits(blocks: BlockGraph, order, runs, options: SolverOptions, share: float) -> bool:
    """Whether the ideal DP over the prefixes of ``order``, for ``runs``, is estimated
    to take at most ``share`` of the time left (:data:`EXACT_ORDER_SECONDS` without a
    deadline).  On GPT-2-48 unoptimised it took 8 s an order (16 of ``auto``'s 30 s for
    two orders) for no better plan than the sweep's; without it, the exact DP over the
    ideals proves the optimum in the time it leaves."""
    states = sum(States.of(run.counts).n_states for run in runs)
    seconds = _prefix_work(blocks, order) * states / ORDER_WORK_PER_SECOND
    left = options.seconds_left()
    return seconds <= (EXACT_ORDER_SECONDS if left is None else share * left)


def _prefix_work(blocks: BlockGraph, order) -> float:
    """Pairs of prefixes of ``order`` times the hyperedges a prefix cuts on average: the
    work of the ideal DP over them."""
    m = len(order)
    position = np.empty(blocks.n_blocks, dtype=np.int64)
    position[np.asarray(order, dtype=np.int64)] = np.arange(1, m + 1)
    spans = sum(
        int(position[list(h)].max() - position[list(h)].min()) for h in blocks.hyperedges
    )
    spans += sum(int(position[list(c)].max()) for c in blocks.covers)  # cut from the start
    return m * m / 2 * (1 + spans / max(m, 1))


def _chain_lattice(order, m: int) -> Lattice:
    """The lattice of prefixes of ``order`` (the ideals of the chain it forms)."""
    words = (m + 64) // 64  # a bit for the phantom block of the covers, never set
    bits = np.zeros((m + 1, words), np.uint64)
    for t, b in enumerate(order, start=1):
        bits[t] = bits[t - 1]
        bits[t, b >> 6] |= np.uint64(1) << np.uint64(b & 63)
    child = np.arange(1, m + 1, dtype=np.int64)
    parent = np.arange(0, m, dtype=np.int64)
    added = np.array([-1, *order], dtype=np.int64)
    creator = np.arange(-1, m, dtype=np.int64)
    return make_lattice(bits, child, parent, added, creator)


def solve_chain(problem: Problem, blocks: BlockGraph, order: list[int]) -> Placement | None:
    """The least max-load placement whose stages are consecutive runs of ``order``.

    ``order`` is a linear extension of the block DAG; its prefixes are the only ideals
    the DP sees (the partitioner of PipeDream, generalised to device kinds).  Returns
    None when no split of the order fits the devices' memory and support.
    """
    return best_split(problem, blocks, costings(problem, blocks), order)


class _Stages:
    """What every run on one lattice shares: prefix sums of latency, unsupported ops and
    memory over its ideals (:attr:`sums`, with the lattice, as the kernels take them),
    and the hyperedges each ideal cuts (per hyperedge set)."""

    def __init__(self, blocks: BlockGraph, lattice: Lattice) -> None:
        self.lattice = lattice
        finite = np.where(np.isfinite(blocks.latency), blocks.latency, 0.0)
        unsupported = (~np.isfinite(blocks.latency)).astype(np.float64)
        with deferred_interrupt():  # linear in the ideals: milliseconds
            lat = kernels.prefix_sums(lattice.added, lattice.creator, finite)
            unsup = kernels.prefix_sums(lattice.added, lattice.creator, unsupported)
            size = kernels.prefix_sums(lattice.added, lattice.creator, blocks.size[None, :])
        self.sums = kernels.StageSums(lattice, lat, unsup, size[0])
        self._cuts: dict[tuple, kernels.Cuts] = {}

    def cuts(self, hyperedges: tuple[tuple[int, ...], ...],
             out_of_time: Callable[[], bool] | None = None) -> kernels.Cuts:  # fmt: skip
        """The cut lists of ``hyperedges``; raises :class:`OutOfTime` if ``out_of_time``
        says so between slices of the ideals."""
        if hyperedges not in self._cuts:
            h_start = np.zeros(len(hyperedges) + 1, np.int64)
            np.cumsum([len(h) for h in hyperedges], out=h_start[1:])
            h_members = np.array([b for h in hyperedges for b in h], dtype=np.int64)
            n = self.lattice.bits.shape[0]
            starts, items = [np.zeros(1, np.int64)], []
            for lo, hi in slices(n):
                if out_of_time is not None and out_of_time():
                    raise OutOfTime
                with deferred_interrupt():
                    start, chunk = kernels.cut_lists(self.lattice.bits, h_start, h_members, lo, hi)
                starts.append(start[1:] + starts[-1][-1])
                items.append(chunk)
            cut_start = np.concatenate(starts)
            cut_items = np.concatenate(items) if items else np.zeros(0, np.int64)
            self._cuts[hyperedges] = kernels.Cuts(h_start, h_members, cut_start, cut_items)
        return self._cuts[hyperedges]

    def charged(self, hyperedges: tuple[tuple[int, ...], ...], weights: np.ndarray,
                out_of_time: Callable[[], bool] | None = None):  # fmt: skip
        """``(cuts, weights, cut_total)``: the cut lists of ``hyperedges``, their
        ``weights[k, m, h]`` (contiguous, as the kernels take them) and the summed weights
        each ideal cuts, ``cut_total[k, m, i]``; :class:`OutOfTime` as :meth:`cuts`."""
        cuts = self.cuts(hyperedges, out_of_time)
        weights = np.ascontiguousarray(weights)
        with deferred_interrupt():  # linear in the cut lists
            cut_total = kernels.cut_totals(cuts.cut_start, cuts.cut_items, weights)
        return cuts, weights, cut_total

    def estimate_pairs(self, cap: np.ndarray, bound: float, pruned: Pruning,
                       states: States) -> float:  # fmt: skip
        """About how many (ideal, sub-ideal) pairs a run within ``bound`` visits, with
        ``pruned`` the work windows of that bound over ``states``' count states and
        their band (:func:`~placer.solvers.dp.windows.pruning`).

        Counts the pairs of a uniform sample of ideals and scales up: an order of
        magnitude, enough to see that a run would exceed its budget before spending it.
        """
        n = self.lattice.bits.shape[0]
        rng = np.random.default_rng(20201206)
        sample = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, _SAMPLE), replace=False))
        with deferred_interrupt():  # a capped count per sampled ideal
            counted = kernels.count_pairs(sample, self.sums, cap, bound, pruned, states)
        return float(counted.mean()) * (n - 1) if len(sample) else 0.0


#: What :func:`_run` returns for its placement when the deadline passed.
_OUT_OF_TIME = Placement(())


def _run(problem, blocks, run: Costing, stages: _Stages, bound, options):
    """Run the DP on a lattice, visiting at most ``options.max_pairs`` pairs; returns
    (placement or None, max-load, pairs).

    The placement is None when nothing fits within ``bound``, and :data:`_OUT_OF_TIME`
    when ``options``' deadline passed first.
    """
    lattice = stages.lattice
    n = lattice.bits.shape[0]
    cuts, weights, cut_total = stages.charged(run.hyperedges, run.weights)
    states = States.of(run.counts)
    n_states = states.n_states
    pays = weights.reshape(len(run.counts), -1).any(axis=1)
    pruned = pruning(blocks.latency, stages.sums.lat, run.counts, states.strides, bound)
    arrays = kernels.RunArrays(states, capacity(problem, run.counts), pays, run.at_most, cuts,
                               weights, run.memory, cut_total, bound, pruned)  # fmt: skip
    table = kernels.DPTable(
        np.full((n_states, n), np.inf),
        np.full((n_states, n), -1, dtype=np.int32),
        np.full((n_states, n), -1, dtype=np.int8),
        np.full(n, -1, dtype=np.int64),
        np.empty(n, dtype=np.int64),
    )
    dp = table.dp
    pairs = 0
    lo = 0
    while lo < n:
        if options.out_of_time():
            return _OUT_OF_TIME, math.inf, pairs
        with deferred_interrupt():
            visited, lo = kernels.dp_range(lo, n, stages.sums, arrays, table, _CALL_PAIRS)
        pairs += visited
        if pairs > options.max_pairs:
            return None, math.inf, pairs
    full = n - 1  # the whole set is the last ideal generated
    if run.at_most:
        final = n_states - 1
    else:
        complete = (states.used_mask & run.required) == run.required
        final = int(np.argmin(np.where(complete, dp[:, full], np.inf)))
    value = dp[final, full]
    if not math.isfinite(value):
        return None, math.inf, pairs
    pointers = BackPointers(table.back_ideal, table.back_kind, states.strides)
    placement = backtrack(problem, blocks, lattice, pointers, final)
    return placement, value, pairs


def _topological_orders(blocks: BlockGraph) -> list[list[int]]:
    """Two linear extensions of the block DAG: by block index, and depth first."""
    by_index = list(range(blocks.n_blocks))  # blocks are numbered topologically already
    depth_first = depth_first_order(blocks.n_blocks, blocks.edges)
    return [by_index, depth_first] if depth_first != by_index else [by_index]
