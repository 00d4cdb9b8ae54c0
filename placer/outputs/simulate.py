"""A pipeline simulator: microbatches through the stages of a plan and the links between
them, one event at a time.

The max-load of :mod:`placer.evaluator` is a steady state: the time per step of the
busiest stage when the pipeline is full.  A run of ``N`` microbatches also pays the
fill and drain bubbles of its schedule, and links that several stages share slow the
transfers that cross them.  This module simulates both, from the same costs the
evaluator reads, so that its figures and the max-load agree where they must.

What a stage does for each pass (forward or backward) of each microbatch, in order:

1. *receive* each transfer into it: the transfer holds its link for the link's time
   and, when the stage's kind pays for communication, the stage for as long (the share
   of the stage's communication the evaluator charges it as a receiver);
2. *compute* its ops (and the side computations it recomputes);
3. *send*: the sender's share of communication (once per op whose output leaves the
   stage, at the slowest link it crosses, as the evaluator charges it), after which the
   transfers out of the stage may start.

A stage takes its activities in the order its schedule gives and never preempts one.
A transfer that its receiver does not pay for holds only its link, and starts as soon as
the data and the link are ready.  Links are directed and point-to-point between two
devices of one host; a transfer between hosts holds the sending host's uplink and the
receiving host's downlink, which every transfer leaving (entering) the host shares.
Whenever several activities could start, the one that can start first does (ties: the
earlier stage), as a discrete-event simulation of these resources does.

Schedules: inference *streams* (every stage takes microbatch after microbatch as they
come).  Training runs *GPipe* [1]_ (every forward, then every backward) or *1F1B* [2]_
(stage ``s`` of ``S`` runs ``min(S - s - 1, N)`` forwards, then alternates one forward
and one backward, then drains its backwards).  The data a backward needs from a later
stage travels as a backward transfer; activations a backward op reads from an earlier
stage travel with the forward pass.

Figures: the makespan of ``N`` microbatches; each stage's busy time (the activities
that hold it) and idle time (the rest of the makespan); the bubble fraction (the idle
share of all stages' time); and the *steady-state* period, the time per microbatch of a
pipeline that never drains, measured as the slope of the makespan between two longer
runs and never below the busiest resource's time per microbatch (which, in steady
state, is the max-load when no link is busier than the stages it joins).

References
----------
.. [1] Huang et al. (2019). GPipe: Efficient Training of Giant Neural Networks using
   Pipeline Parallelism. NeurIPS.
.. [2] Narayanan et al. (2021). Memory-Efficient Pipeline-Parallel DNN Training. ICML.
.. [3] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from dataclasses import dataclass
from enum import Enum
from typing import Any

from placer.errors import InputError
from placer.evaluator import Evaluation
from placer.problem import Placement, Problem

#: The most microbatches one simulation takes (its cost grows with their number).
MAX_MICROBATCHES = 4096


class Schedule(str, Enum):
    """The order in which each stage takes its passes of the microbatches."""

    STREAM = "stream"  # inference: microbatch after microbatch
    GPIPE = "gpipe"  # training: all forwards, then all backwards
    ONE_F_ONE_B = "1f1b"  # training: PipeDream-Flush's one forward, one backward


class Pass(str, Enum):
    """Which half of a training step an activity belongs to."""

    FORWARD = "forward"
    BACKWARD = "backward"


class Work(str, Enum):
    """What an activity does."""

    RECEIVE = "receive"
    COMPUTE = "compute"
    SEND = "send"


@dataclass(frozen=True)
class Transfer:
    """The data stage ``source`` hands stage ``target`` in one pass of a microbatch."""

    source: int  # index into the stages
    target: int
    source_pass: Pass  # the pass after whose send the data is ready
    pass_: Pass  # the pass of the target that needs it
    seconds: float  # the link's time for it
    paid: bool  # whether the receiver spends that time too (its kind pays)
    resources: tuple[str, ...]  # the links it holds


@dataclass(frozen=True)
class StageWork:
    """What one stage does per microbatch, split as the evaluator charges it.

    ``compute``, ``send`` and ``receive`` are indexed by :class:`Pass` (forward first);
    their sum is the stage's load in :func:`placer.evaluator.evaluate`.
    """

    device: str
    compute: tuple[float, float]
    send: tuple[float, float]
    receive: tuple[float, float]

    @property
    def load(self) -> float:
        return sum(self.compute) + sum(self.send) + sum(self.receive)


@dataclass(frozen=True)
class Activity:
    """``work`` of ``pass_`` of microbatch ``microbatch`` from ``start`` to ``end``.

    ``stage`` is the stage it runs on (the receiver for a transfer); ``holds_stage`` is
    false for a transfer its receiver does not pay for; ``source`` is the sending stage
    of a transfer (None otherwise).
    """

    stage: int
    work: Work
    pass_: Pass
    microbatch: int
    start: float
    end: float
    holds_stage: bool = True
    source: int | None = None


@dataclass(frozen=True)
class StageTime:
    """One stage's share of a simulated run."""

    device: str
    busy: float
    idle: float
    load: float  # per microbatch, as the evaluator charges it


@dataclass(frozen=True)
class LinkTime:
    """How long a link was busy over the run, and per microbatch."""

    name: str
    busy: float
    per_microbatch: float


@dataclass(frozen=True)
class Simulation:
    """The simulated run of ``microbatches`` microbatches (times in the problem's unit).

    ``period`` is the steady-state time per microbatch; ``throughput`` and
    ``steady_throughput`` are samples per time unit over the run and in steady state.
    """

    schedule: Schedule
    microbatches: int
    samples_per_step: int
    period: float
    stages: tuple[StageTime, ...]
    links: tuple[LinkTime, ...]
    activities: tuple[Activity, ...]

    @functools.cached_property
    def makespan(self) -> float:
        """When the last activity ends."""
        return max((a.end for a in self.activities), default=0.0)

    @property
    def throughput(self) -> float:
        if self.makespan <= 0:
            return math.inf
        return self.samples_per_step * self.microbatches / self.makespan

    @property
    def steady_throughput(self) -> float:
        if self.period <= 0:
            return math.inf
        return self.samples_per_step / self.period

    @property
    def bubble_fraction(self) -> float:
        """The idle share of the stages' time over the makespan."""
        total = self.makespan * len(self.stages)
        if total <= 0:
            return 0.0
        return sum(stage.idle for stage in self.stages) / total

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the JSON/YAML output (no activities: they grow with ``N``)."""
        return {
            "schedule": self.schedule.value,
            "microbatches": self.microbatches,
            "makespan": self.makespan,
            "throughput": _finite(self.throughput),
            "steady_period": self.period,
            "steady_throughput": _finite(self.steady_throughput),
            "bubble_fraction": self.bubble_fraction,
            "stages": [
                {"device": s.device, "busy": s.busy, "idle": s.idle, "load": s.load}
                for s in self.stages
            ],
            "links": [
                {"link": link.name, "busy": link.busy, "per_microbatch": link.per_microbatch}
                for link in self.links
            ],
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def default_schedule(training: bool) -> Schedule:
    """1F1B for training (it stashes the fewest activations), streaming for inference."""
    return Schedule.ONE_F_ONE_B if training else Schedule.STREAM


def check_schedule(schedule: Schedule, training: bool) -> None:
    """Refuse a schedule that does not fit the plan's mode.

    Raises
    ------
    InputError
        A training schedule for an inference plan, or streaming for a training one.
    """
    if training and schedule is Schedule.STREAM:
        raise InputError(
            "--schedule stream is for inference; a training plan runs gpipe or 1f1b"
        )
    if not training and schedule is not Schedule.STREAM:
        raise InputError(
            f"--schedule {schedule.value} is a training schedule; an inference plan "
            "streams its microbatches (--schedule stream)"
        )


def is_training(problem: Problem) -> bool:
    return any(op.backward for op in problem.ops)


def stage_work(
    problem: Problem, placement: Placement, evaluation: Evaluation
) -> tuple[tuple[StageWork, ...], tuple[Transfer, ...]]:
    """Each stage's compute, send and receive time per microbatch and pass, and the
    transfers between stages, from the costs the evaluator reads [3]_.

    Stages are ``evaluation.stages``, in pipeline order.

    Raises
    ------
    InputError
        The placement is not contiguous: its stages form no pipeline to simulate.
    """
    if not evaluation.contiguous:
        raise InputError(
            "the plan is not contiguous: its stages form no pipeline to simulate"
        )
    devices, kinds = problem.devices, problem.kinds
    assignment = placement.device_of_op
    index = {stage.device: s for s, stage in enumerate(evaluation.stages)}
    count = len(evaluation.stages)
    compute = [[0.0, 0.0] for _ in range(count)]
    send = [[0.0, 0.0] for _ in range(count)]
    receive = [[0.0, 0.0] for _ in range(count)]
    for i, op in enumerate(problem.ops):
        d = assignment[i]
        compute[index[d]][1 if op.backward else 0] += op.latency[devices[d].kind]
    for replica in problem.replicas:  # forward side computations, once per stage
        for d in {assignment[i] for i in replica.readers}:
            compute[index[d]][0] += replica.latency[devices[d].kind]

    # (source stage, target stage, source pass, target pass) -> link seconds
    link_seconds: dict[tuple[int, int, int, int], float] = defaultdict(float)
    for u, succ in enumerate(problem.successors):
        home = assignment[u]
        crossed = sorted({assignment[v] for v in succ} - {home})
        if not crossed:
            continue
        p = 1 if problem.ops[u].backward else 0
        home_kind = devices[home].kind
        costs = [problem.transfer(u, home_kind, devices[d].kind) for d in crossed]
        if kinds[home_kind].pays_communication:
            send[index[home]][p] += max(costs)
        for d, cost in zip(crossed, costs, strict=True):
            # needed by the target's forward if a forward op there reads it
            needed = 0 if any(assignment[v] == d and not problem.ops[v].backward
                              for v in succ) else 1  # fmt: skip
            link_seconds[(index[home], index[d], p, needed)] += cost
            if kinds[devices[d].kind].pays_communication:
                receive[index[d]][needed] += cost

    stages = tuple(
        StageWork(
            devices[stage.device].name,
            (compute[s][0], compute[s][1]),
            (send[s][0], send[s][1]),
            (receive[s][0], receive[s][1]),
        )
        for s, stage in enumerate(evaluation.stages)
    )
    transfers = []
    passes = (Pass.FORWARD, Pass.BACKWARD)
    for (a, b, p, q), seconds in sorted(link_seconds.items()):
        da, db = evaluation.stages[a].device, evaluation.stages[b].device
        ka, kb = devices[da].kind, devices[db].kind
        if kinds[ka].host == kinds[kb].host:
            resources = (f"{devices[da].name}->{devices[db].name}",)
        else:
            resources = (f"{kinds[ka].host} uplink", f"{kinds[kb].host} downlink")
        paid = kinds[kb].pays_communication
        transfers.append(Transfer(a, b, passes[p], passes[q], seconds, paid, resources))
    return stages, tuple(transfers)


def simulate(
    problem: Problem,
    placement: Placement,
    evaluation: Evaluation,
    microbatches: int,
    schedule: Schedule | None = None,
) -> Simulation:
    """Simulate ``microbatches`` microbatches of the plan under ``schedule``.

    Parameters
    ----------
    problem, placement, evaluation
        The plan and its evaluation (:func:`placer.evaluator.evaluate`).
    microbatches : int
        How many microbatches (pipeline steps of ``problem.samples_per_step`` samples)
        go through, 1 to :data:`MAX_MICROBATCHES`.
    schedule : Schedule, optional
        Default: :func:`default_schedule` of the plan's mode.

    Returns
    -------
    Simulation

    Raises
    ------
    InputError
        A non-contiguous plan, or a schedule that does not fit its mode.

    Notes
    -----
    Each step scans every stage's next activity and the transfers ready to start:
    O(A · (S + T)) for A activities, S stages and T transfers in flight.  The steady
    state takes two more runs of ``4 S + 8`` and ``8 S + 16`` microbatches.
    """
    if not 1 <= microbatches <= MAX_MICROBATCHES:
        raise InputError(
            f"microbatches must be 1 to {MAX_MICROBATCHES}, not {microbatches}"
        )
    training = is_training(problem)
    schedule = schedule or default_schedule(training)
    check_schedule(schedule, training)
    stages, transfers = stage_work(problem, placement, evaluation)
    activities = run(stages, transfers, microbatches, schedule)
    makespan = max((a.end for a in activities), default=0.0)

    busy = [0.0] * len(stages)
    link_busy: dict[str, float] = defaultdict(float)
    for activity in activities:
        if activity.holds_stage:
            busy[activity.stage] += activity.end - activity.start
    for transfer in transfers:
        for resource in transfer.resources:
            link_busy[resource] += transfer.seconds
    links = tuple(
        LinkTime(name, per * microbatches, per) for name, per in sorted(link_busy.items())
    )
    stage_times = tuple(
        StageTime(work.device, busy[s], max(0.0, makespan - busy[s]), work.load)
        for s, work in enumerate(stages)
    )

    # steady state: the makespan's slope between two runs long enough to be periodic,
    # never below the busiest resource's time per microbatch
    short = 4 * len(stages) + 8
    spans = [
        max((a.end for a in run(stages, transfers, n, schedule)), default=0.0)
        for n in (short, 2 * short)
    ]
    bound = max(
        [work.load for work in stages] + [link.per_microbatch for link in links], default=0.0
    )
    period = max((spans[1] - spans[0]) / short, bound)
    return Simulation(
        schedule, microbatches, problem.samples_per_step, period, stage_times, links,
        tuple(activities),
    )  # fmt: skip


def orders(count: int, microbatches: int, schedule: Schedule) -> list[list[tuple[Pass, int]]]:
    """Each stage's passes in the order its schedule takes them."""
    result = []
    for s in range(count):
        if schedule is Schedule.STREAM:
            result.append([(Pass.FORWARD, m) for m in range(microbatches)])
        elif schedule is Schedule.GPIPE:
            result.append(
                [(Pass.FORWARD, m) for m in range(microbatches)]
                + [(Pass.BACKWARD, m) for m in range(microbatches)]
            )
        else:
            warmup = min(count - s - 1, microbatches)
            order = [(Pass.FORWARD, m) for m in range(warmup)]
            forward = warmup
            for backward in range(microbatches):
                if forward < microbatches:
                    order.append((Pass.FORWARD, forward))
                    forward += 1
                order.append((Pass.BACKWARD, backward))
            result.append(order)
    return result


@dataclass(frozen=True)
class _Step:
    """One activity to schedule: what it waits for and what it holds."""

    key: tuple
    work: Work
    pass_: Pass
    microbatch: int
    seconds: float
    needs: tuple[tuple, ...]
    resources: tuple[str, ...] = ()
    source: int | None = None


def _earliest(sequences, position, done, stage_free, resource_free, floating):
    """``(start, stage, floating index or -1)`` of the step that can start first: each
    stage's next step whose inputs are done, or a floating transfer (ties: the lower
    stage, then a stage's own step); None if none can start."""
    best: tuple[float, int, int] | None = None
    for s, steps in enumerate(sequences):
        if position[s] == len(steps):
            continue
        step = steps[position[s]]
        if any(need not in done for need in step.needs):
            continue
        start = max([stage_free[s], *(done[n] for n in step.needs),
                     *(resource_free[r] for r in step.resources)])  # fmt: skip
        if best is None or (start, s, -1) < best:
            best = (start, s, -1)
    for f, (target, step) in enumerate(floating):
        start = max([done[step.needs[0]], *(resource_free[r] for r in step.resources)])
        if best is None or (start, target, f) < best:
            best = (start, target, f)
    return best


def _transfer_key(t: Transfer, m: int) -> tuple:
    """The key of transfer ``t`` of microbatch ``m`` among the simulated steps."""
    return ("x", t.source, t.target, t.source_pass, t.pass_, m)


def _sequences(stages, transfers, microbatches: int, schedule: Schedule) -> list[list[_Step]]:
    """Each stage's steps in its schedule's order: per pass of a microbatch, the
    transfers it pays to receive, its compute, then its send if anything leaves it."""
    inbound: dict[tuple[int, Pass], list[Transfer]] = defaultdict(list)
    outbound: dict[tuple[int, Pass], list[Transfer]] = defaultdict(list)
    for transfer in transfers:
        inbound[(transfer.target, transfer.pass_)].append(transfer)
        outbound[(transfer.source, transfer.source_pass)].append(transfer)
    sequences: list[list[_Step]] = []
    for s, order in enumerate(orders(len(stages), microbatches, schedule)):
        steps = []
        for pass_, m in order:
            p = 0 if pass_ is Pass.FORWARD else 1
            arriving = inbound[(s, pass_)]
            for t in arriving:
                if t.paid:
                    steps.append(_Step(_transfer_key(t, m), Work.RECEIVE, pass_, m, t.seconds,
                                       (("s", t.source, t.source_pass, m),), t.resources,
                                       t.source))  # fmt: skip
            compute = ("c", s, pass_, m)
            steps.append(_Step(compute, Work.COMPUTE, pass_, m, stages[s].compute[p],
                               tuple(_transfer_key(t, m) for t in arriving)))  # fmt: skip
            if outbound[(s, pass_)]:
                steps.append(_Step(("s", s, pass_, m), Work.SEND, pass_, m, stages[s].send[p],
                                   (compute,)))  # fmt: skip
        sequences.append(steps)
    return sequences


def run(
    stages: tuple[StageWork, ...],
    transfers: tuple[Transfer, ...],
    microbatches: int,
    schedule: Schedule,
) -> list[Activity]:
    """The activities of ``microbatches`` microbatches, as the module docstring says.

    Raises
    ------
    RuntimeError
        No activity can start although some are left: the plan's transfers go against
        its schedule (an internal error: contiguous plans never do).
    """
    outbound: dict[tuple[int, Pass], list[Transfer]] = defaultdict(list)
    for transfer in transfers:
        outbound[(transfer.source, transfer.source_pass)].append(transfer)
    sequences = _sequences(stages, transfers, microbatches, schedule)

    done: dict[tuple, float] = {}
    stage_free = [0.0] * len(stages)
    resource_free: dict[str, float] = defaultdict(float)
    position = [0] * len(stages)
    floating: list[tuple[int, _Step]] = []  # unpaid transfers whose data is ready
    activities: list[Activity] = []
    remaining = sum(map(len, sequences))
    while remaining or floating:
        best = _earliest(sequences, position, done, stage_free, resource_free, floating)
        if best is None:
            raise RuntimeError("pipeline simulation deadlocked: a transfer goes against "
                               "the schedule")  # fmt: skip
        start, s, f = best
        if f >= 0:
            _, step = floating.pop(f)
            holds = False
        else:
            step = sequences[s][position[s]]
            position[s] += 1
            remaining -= 1
            holds = True
        end = start + step.seconds
        done[step.key] = end
        if holds:
            stage_free[s] = end
        for r in step.resources:
            resource_free[r] = end
        activities.append(Activity(s, step.work, step.pass_, step.microbatch, start, end,
                                   holds, step.source))  # fmt: skip
        if step.work is Work.SEND:
            for t in outbound[(s, step.pass_)]:
                if not t.paid:
                    ready = _Step(_transfer_key(t, step.microbatch), Work.RECEIVE, t.pass_,
                                  step.microbatch, t.seconds, (step.key,), t.resources,
                                  t.source)  # fmt: skip
                    floating.append((t.target, ready))
    return activities
