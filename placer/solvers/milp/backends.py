"""Solving the built model with a backend: HiGHS through highspy, in a thread of its own
(warm start, progress reports, a deadline, a prompt Ctrl-C), or PuLP's CBC in a process
of its own; and the choice between them."""

from __future__ import annotations

import contextlib
import math
import re
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pulp

from placer.solvers.base import MipBackend, SolverOptions
from placer.solvers.highs import silence_highs_banner
from placer.solvers.milp.model import MilpModel
from placer.util.interrupts import LEFT_RUNNING, terminate_children

#: Relative gap HiGHS and CBC stop at unless ``mip_gap`` says otherwise (HiGHS's own
#: default, 1e-4, would let optima differ from the DP's in the fifth digit).
DEFAULT_GAP = 1e-7
_PROGRESS_EVERY = 0.5  # seconds between progress reports from the interrupt callback
#: HiGHS's MIP presolve checks the time limit seldom and takes no interrupt (15 to 30 s
#: over a 2 s limit on a 56,000-column model), so under a shorter limit it is off.
_PRESOLVE_MIN_SECONDS = 30.0
#: Seconds HiGHS may run past the deadline (it checks its time limit only now and then)
#: before placer stops waiting for it, at most; a short limit gets a tenth of itself (a
#: 3 s limit overran by 0.9 s with the whole second).
_GRACE = 1.0
_GRACE_SHARE = 0.1


def _grace(options: SolverOptions) -> float:
    """Seconds placer waits for a backend to stop once it was asked to."""
    limit = options.time_limit
    return _GRACE if limit is None else min(_GRACE, _GRACE_SHARE * limit)


def _held(options: SolverOptions) -> SolverOptions:
    """``options`` with the deadline a grace earlier: the backend is asked to stop then,
    and abandoned (or killed) at the deadline itself, so that the time kept after the
    solve (the command's reserve: the evaluation, writing the plan) stays whole.  HiGHS
    on Llama's MILP (2x A100 + 4x T4 + CPU) took the whole second to stop, and the
    command ended 0.6 s past its limit."""
    if options.deadline is None:
        return options
    return replace(options, deadline=options.deadline - _grace(options))


@dataclass
class Outcome:
    """What a backend's run left: its dual bound in the model's time (None if it gave
    none) and the seconds it ran."""

    bound: float | None
    seconds: float
    abandoned: bool = False  # HiGHS overran the deadline and was left running
    incumbent: np.ndarray | None = None  # then: its last reported solution, if any


def mip_gap(options: SolverOptions) -> float:
    """The relative gap the backend stops at."""
    return DEFAULT_GAP if options.mip_gap is None else options.mip_gap


def pick_backend(requested: MipBackend, notes: list[str]) -> MipBackend:
    """The backend asked for, or CBC when that is HiGHS and highspy is not installed (a
    note says so)."""
    backend = MipBackend(requested)
    if backend is MipBackend.HIGHS and not pulp.HiGHS().available():
        notes.append("HiGHS (highspy) is not installed: solved with PuLP's CBC instead")
        backend = MipBackend.CBC
    return backend


def run_backend(
    backend: MipBackend, model: MilpModel, options: SolverOptions, warm: bool
) -> Outcome:
    """Solve ``model`` with ``backend`` (from its warm start if ``warm``)."""
    run = _run_highs if backend is MipBackend.HIGHS else _run_cbc
    return run(model, options, warm)


class _Abandoned(Exception):
    """HiGHS overran the deadline and its grace; nothing of it may be read."""


class _HiGHS(pulp.HiGHS):
    """PuLP's HiGHS with a warm start, progress reports, a deadline and a prompt Ctrl-C.

    PuLP's HiGHS interface builds the model inside ``actualSolve`` and has no warm
    start, so the start solution is handed to highspy just before it runs.  The solve
    runs in a thread of its own so that the main thread stays responsive.  At the
    ``deadline`` (or on Ctrl-C) placer asks HiGHS to stop through its interrupt
    callbacks, which it checks in the LPs and the branch and bound but not in presolve
    or every heuristic; if it has not stopped :func:`_grace` seconds later, placer stops
    waiting (the thread is left to finish, or to end with the process) and keeps the
    last solution HiGHS reported (:attr:`incumbent`), or the warm start.
    """

    def __init__(self, *, warm: bool, progress, presolve: bool = True, deadline=None,
                 grace: float = _GRACE, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.warm = warm
        self.progress = progress
        self.presolve = presolve
        self.deadline = deadline
        self.grace = grace
        self.abandoned = False
        self.bound: float | None = None
        #: The best solution HiGHS reported (column values) and its dual bound then:
        #: what is left of a solve that overran the deadline and was abandoned.
        self.incumbent: np.ndarray | None = None

    def callSolver(self, lp):
        highs = lp.solverModel
        if not self.presolve:
            highs.setOptionValue("presolve", "off")
        columns = len(lp.variables())
        if self.warm:
            self._start_from(highs, lp, columns)
        stop = threading.Event()
        self._listen(highs, stop, columns)
        # highspy's own startSolve keeps its "running" lock on the class, shared by every
        # Highs: one solve left running would refuse all later ones in the process
        done = threading.Event()

        def run() -> None:
            try:
                highs.run()  # releases the interpreter lock while HiGHS works
            finally:
                done.set()

        worker = threading.Thread(target=run, name="placer-highs", daemon=True)
        worker.start()
        self._wait(highs, worker, done, stop)
        info = highs.getInfo()
        self.bound = _finite(info.mip_dual_bound)

    def _start_from(self, highs, lp, columns: int) -> None:
        """Hand HiGHS the variables' values as its start; the start is the incumbent
        until HiGHS reports a better one."""
        given = [(v.index, v.varValue) for v in lp.variables() if v.varValue is not None]
        self.incumbent = np.zeros(columns)
        for index, value in given:
            self.incumbent[index] = value
        highs.setSolution(
            len(given),
            np.array([i for i, _ in given], dtype=np.int32),
            np.array([x for _, x in given], dtype=np.float64),
        )

    def _listen(self, highs, stop: threading.Event, columns: int) -> None:
        """Subscribe to HiGHS's callbacks: they interrupt it once ``stop`` is set, keep
        its dual bound and its last solution, and report progress."""
        last = [-math.inf]

        def on_interrupt_check(event):
            if stop.is_set():
                event.interrupt()
            out = event.data_out
            self.bound = _finite(out.mip_dual_bound)
            if self.progress is not None and out.running_time - last[0] >= _PROGRESS_EVERY:
                last[0] = out.running_time
                self._report(out)

        def on_improving(event):
            out = event.data_out
            solution = np.array(out.mip_solution, dtype=np.float64)
            if solution.shape == (columns,):  # a solution of the model as placer built it
                self.incumbent = solution
            self.bound = _finite(out.mip_dual_bound)
            if self.progress is not None:
                self._report(out)

        highs.cbMipInterrupt.subscribe(on_interrupt_check)
        highs.cbMipImprovingSolution.subscribe(on_improving)
        for lp_check in (highs.cbSimplexInterrupt, highs.cbIpmInterrupt):
            lp_check.subscribe(lambda event: event.interrupt() if stop.is_set() else None)

    def _report(self, out) -> None:
        """Pass HiGHS's running time, incumbent and bound to the progress callback."""
        self.progress(out.running_time, _finite(out.mip_primal_bound), _finite(out.mip_dual_bound))

    def _wait(self, highs, worker: threading.Thread, done: threading.Event, stop) -> None:
        """Wait for the solve in ``worker`` to end: past the deadline ask HiGHS to stop,
        and past the grace (or on Ctrl-C) leave it running.

        Raises
        ------
        _Abandoned
            HiGHS overran the deadline and its grace.
        """
        try:
            while not done.wait(0.1):
                now = time.monotonic()
                if self.deadline is not None and now > self.deadline:
                    stop.set()  # the callbacks stop the search at their next check
                    if now > self.deadline + self.grace:
                        self._abandon(highs, worker)
                        raise _Abandoned
        except KeyboardInterrupt:
            stop.set()
            self._abandon(highs, worker)
            raise

    def _abandon(self, highs, worker: threading.Thread) -> None:
        self.abandoned = True
        LEFT_RUNNING.append((highs, worker))


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) and abs(value) < 1e300 else None


def _time_limit(options: SolverOptions) -> float | None:
    """Seconds the backend may run: the time limit, cut to what the deadline leaves."""
    left = options.seconds_left()
    if left is None:
        return options.time_limit
    return max(0.01, left if options.time_limit is None else min(left, options.time_limit))


def _run_highs(model: MilpModel, options: SolverOptions, warm: bool) -> Outcome:
    silence_highs_banner()
    options = _held(options)
    limit = _time_limit(options)
    short = limit is not None and limit < _PRESOLVE_MIN_SECONDS
    solver = _HiGHS(
        warm=warm,
        progress=options.progress,
        # HiGHS 1.16's presolve mistranslates a MIP start: on a 5-op problem over links
        # of different speeds it found the start "feasible in the reduced space:
        # objective value is 0", took its root bound of 0 as closing the gap and answered
        # the start (2.0) as optimal where the optimum is 1.0 (a test in test_milp.py
        # holds the case).  So a warm-started solve runs without presolve: the start is
        # worth more to a large model, and a short limit turns presolve off anyway.
        presolve=not short and not warm,
        deadline=options.deadline,
        grace=_grace(options),
        msg=False,
        timeLimit=limit,
        gapRel=mip_gap(options),
        threads=options.threads,
    )
    started = time.perf_counter()
    with contextlib.suppress(_Abandoned):  # PuLP must not read a solver still running
        model.prob.solve(solver)
    seconds = time.perf_counter() - started
    return Outcome(solver.bound, seconds, solver.abandoned, solver.incumbent)


def solve_relaxation(model: MilpModel, time_limit: float) -> float | None:
    """The optimum of a relaxed model (``build_model(relax=True)``) found by HiGHS
    within ``time_limit`` seconds, or None (not solved to optimality in time)."""
    silence_highs_banner()
    solver = _HiGHS(
        warm=False,
        progress=None,
        presolve=time_limit >= _PRESOLVE_MIN_SECONDS,
        deadline=time.monotonic() + time_limit,
        msg=False,
        mip=False,
        timeLimit=time_limit,
    )
    with contextlib.suppress(_Abandoned):
        model.prob.solve(solver)
    if solver.abandoned or model.prob.sol_status != pulp.LpSolutionOptimal:
        return None
    value = pulp.value(model.prob.objective)
    return None if value is None else float(value)


def _run_cbc(model: MilpModel, options: SolverOptions, warm: bool) -> Outcome:
    """CBC through PuLP, in a process of its own; the bound comes from CBC's log.

    On Ctrl-C the CBC process is killed and the interrupt propagates; its files live in
    a temporary directory that goes with it.  CBC checks its time limit only in the
    branch and bound (its preprocessing ran 16 s under a 1 s limit), so it is also
    killed at the deadline (its own limit ends :func:`_grace` seconds earlier), leaving the
    warm start, if any, as the answer.
    """
    options = _held(options)
    incumbent = None
    if warm:
        incumbent = np.array([var.varValue or 0.0 for var in model.prob.variables()])
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "cbc.log"
        with warnings.catch_warnings():
            # PuLP 3 deprecates its bundled CBC, which pyproject keeps by pinning PuLP < 4
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(
                msg=False,
                timeLimit=_time_limit(options),
                gapRel=mip_gap(options),
                threads=options.threads,
                warmStart=warm,
                logPath=str(log),
            )
        solver.tmpDir = tmp
        started = time.perf_counter()
        left = options.seconds_left()
        watch = _CbcWatch(left + _grace(options)) if left is not None else None
        stopped = False
        try:
            model.prob.solve(solver)
        except KeyboardInterrupt:
            terminate_children()
            raise
        except pulp.PulpSolverError:
            if watch is None or not watch.killed.is_set():
                raise
            stopped = True  # killed at the deadline: PuLP found no solution file
        finally:
            if watch is not None:
                watch.done.set()
        seconds = time.perf_counter() - started
        text = log.read_text(errors="replace") if log.exists() else ""
    if stopped:
        return Outcome(None, seconds, abandoned=True, incumbent=incumbent)  # the warm start
    bound = None
    match = re.search(r"Lower bound:\s*([-+0-9.eE]+)", text)
    if match:
        with contextlib.suppress(ValueError):
            bound = float(match.group(1))
    return Outcome(bound, seconds)


class _CbcWatch:
    """Kills CBC (this process's child processes) ``after`` seconds from now, and again
    every 0.1 s until :attr:`done` is set: PuLP writes the model's file before it starts
    CBC, which on a loaded machine could come after a single kill (BERT-L12's CBC then
    ran 52 s under a 2 s limit).  :attr:`killed` says whether it has begun."""

    def __init__(self, after: float) -> None:
        self.done = threading.Event()
        self.killed = threading.Event()
        thread = threading.Thread(target=self._run, args=(after,), name="placer-cbc-deadline",
                                  daemon=True)  # fmt: skip
        thread.start()

    def _run(self, after: float) -> None:
        if self.done.wait(after):
            return
        self.killed.set()
        while True:
            terminate_children()
            if self.done.wait(0.1):
                return
