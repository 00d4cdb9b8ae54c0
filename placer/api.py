"""The jobs behind each command: load the input, solve or read a plan, wrap the result.

The command line (:mod:`placer.cli`) only parses options, calls these and renders.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from placer.choices import DType, Fusion, Mode, Optimizer
from placer.errors import InputError, PlanFormatError
from placer.evaluator import evaluate
from placer.frontends.layers import CutRule, Granularity, restrict_cuts, split_group
from placer.frontends.plans import load_plan_document, parse_plan, plan_provenance
from placer.outputs.result import PlacementResult, from_plan, from_solve
from placer.outputs.simulate import Schedule, simulate
from placer.problem import Placement, Problem
from placer.provenance import (
    Costing,
    Provenance,
    cluster_difference,
    costs_fingerprint,
    input_shapes_text,
    onnx_fingerprint,
    short,
    workload_fingerprint,
)
from placer.runtime.runner import RunOptions, RunReport
from placer.solvers import BASELINES, SolveResult, SolverOptions, get_solver
from placer.solvers.base import relative_gap
from placer.solvers.blocks import colour_blocks, contract
from placer.solvers.feasibility import check_feasible
from placer.solvers.tidy import fold_cpu_stages
from placer.util.safe_yaml import shown

if TYPE_CHECKING:
    from placer.costs.cluster import Cluster
    from placer.costs.profiling import Profile, ProfileOptions, Progress
    from placer.frontends.onnx_graph import OpGraph


@dataclass(frozen=True)
class ModelOptions:
    """How to turn an ONNX model into a placement problem (ignored by workloads).

    ``cluster`` is a cluster YAML file, a cluster already read (the one a plan records),
    or None for the built-in default cluster. ``cut`` says which groups of ops stay on
    one device (``--granularity``, ``--cut-at``); ``exclude`` names the device groups or
    types kept out of the pipeline (``--exclude``). ``mode``, ``dtype``, ``optimizer``
    and ``fusion`` are :mod:`placer.choices` enums; their values ("training") are
    accepted and converted, anything else is an :class:`InputError`.
    """

    cluster: str | Cluster | None = None
    mode: Mode = Mode.INFERENCE
    dtype: DType = DType.FP32
    optimizer: Optimizer = Optimizer.ADAM
    batch_size: int | None = None  # None: the first dim of --input-shape, else 1
    input_shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    costs: str | None = None
    coarsen: bool = False
    cut: CutRule = field(default_factory=CutRule)
    exclude: tuple[str, ...] = ()
    fusion: Fusion = Fusion.RUNTIME

    def __post_init__(self) -> None:
        # the choices as enums, whether given so or by their values ("training")
        for name, choice in (("mode", Mode), ("dtype", DType), ("optimizer", Optimizer),
                             ("fusion", Fusion)):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, choice):
                continue
            try:
                object.__setattr__(self, name, choice(value))
            except (ValueError, TypeError):
                allowed = ", ".join(c.value for c in choice)
                raise InputError(
                    f"{FLAGS[name]}: expected one of {allowed}, got {shown(value)}"
                ) from None


def load_problem(path: str | Path, options: ModelOptions | None = None) -> Problem:
    """Load a problem: a profiled workload (``.json``) or an ONNX model (``.onnx``).

    Raises
    ------
    InputError
        The file type is not supported, the file is invalid, a model option was given
        for a workload (which carries its own devices and costs), ``--cut-at`` is not a
        regular expression or matches no scope, or ``--exclude`` names no group.
    """
    return _load_problem(Path(path), options or ModelOptions(), cuts=True)


def _load_problem(path: Path, options: ModelOptions, *, cuts: bool) -> Problem:
    """:func:`load_problem`; with ``cuts`` false, the ops are not yet held to
    ``options.cut`` (their colours are the model's own)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        from placer.frontends.workload import read_workload

        _reject_model_options(path, options)
        problem = read_workload(path)
        return replace(problem, provenance=Provenance(workload_fingerprint(problem)))
    if suffix == ".onnx":
        return _model_problem(path, options, cuts=cuts)
    raise InputError(
        f"{path}: unsupported input type {path.suffix!r}; expected an .onnx model or a "
        ".json workload"
    )


#: The command-line flag of each field of :class:`ModelOptions`, for messages.
FLAGS = {
    "cluster": "--cluster", "mode": "--mode", "dtype": "--dtype",
    "optimizer": "--optimizer", "batch_size": "--batch-size",
    "input_shapes": "--input-shape", "costs": "--costs", "coarsen": "--coarsen",
    "cut": "--granularity", "exclude": "--exclude", "fusion": "--fusion",
}  # fmt: skip


def _costed_kinds(graph, options: ModelOptions, cluster: Cluster) -> set[str]:
    """The op classes of ``graph``'s nodes, and, where ``cluster`` has a calibration
    older than a fused kernel, the fused kernels (keyed as a device's
    ``class_efficiency`` keys them) its nodes run in under ``options.fusion``."""
    from placer.costs.cluster import KERNELS
    from placer.frontends.fusion import fuse

    kinds = {node.op_class.value for node in graph.nodes}
    stale_kernel = any(kind.startswith(KERNELS) for kind, _ in cluster.stale)
    if stale_kernel and options.fusion is Fusion.RUNTIME:
        kinds |= {KERNELS + f.kernel for f in fuse(graph).values() if f.kernel}
    return kinds


def _costing(path: Path, graph, options: ModelOptions, fingerprint: str | None = None):
    """``(cluster, CostOptions, notes)`` to cost ``graph`` with: the cluster less the
    groups kept out, and the measured times checked against the model and cluster."""
    from placer.costs.roofline import CostOptions, read_measured_costs

    cluster = load_cluster(options.cluster).excluding(options.exclude)
    measured = read_measured_costs(options.costs) if options.costs else {}
    costs_notes: tuple[str, ...] = ()
    if options.costs:
        fingerprint = fingerprint or model_fingerprint(path)
        costs_notes = _check_measurement(path, options, graph, measured, fingerprint)
    if measured:
        known = {n for node in graph.nodes for n in node.members}
        known |= {f"{n}/grad" for n in known}
        from placer.costs.cluster import CUSTOM_TYPE

        groups = [g.name for g in cluster.groups]
        devices = set(groups) | {g.type for g in cluster.groups} - {CUSTOM_TYPE}
        for op, device in measured:
            if op not in known:
                raise InputError(f"{options.costs}: op {op!r} is not a node of {path}")
            if device not in devices:
                raise InputError(
                    f"{options.costs}: device {device!r} is neither a group nor a type of "
                    f"the cluster ({', '.join(sorted(devices))}); measure with placer "
                    f"profile --device-name {groups[0]}, or name a group {device!r}"
                )
    cost_options = CostOptions(
        mode=options.mode,
        dtype=options.dtype,
        optimizer=options.optimizer,
        batch_size=samples_per_step(options, graph),
        measured=measured,
        fusion=options.fusion,
    )
    return cluster, cost_options, costs_notes


def _reject_model_options(path: Path, options: ModelOptions) -> None:
    defaults = ModelOptions()
    for name, flag in FLAGS.items():
        if getattr(options, name) != getattr(defaults, name):
            flag = options.cut.option if name == "cut" else flag
            raise InputError(
                f"{path}: {flag} applies to ONNX models; a workload file carries its own "
                "devices and costs"
            )


def batch_size(options: ModelOptions) -> int:
    """Samples per step: ``--batch-size``, else the leading dim the input shapes agree on.

    Raises
    ------
    InputError
        ``--batch-size`` disagrees with a leading dim given by ``--input-shape``.
    """
    from placer.frontends.shapes import leading_dim

    leading = {name: shape[0] for name, shape in options.input_shapes.items() if shape}
    if options.batch_size is None:
        return leading_dim(options.input_shapes)
    for name, dim in leading.items():
        if dim != options.batch_size:
            dims = ",".join(map(str, options.input_shapes[name]))
            raise InputError(
                f"--batch-size {options.batch_size} disagrees with --input-shape {name}={dims}"
            )
    return options.batch_size


def given_batch(options: ModelOptions) -> int | None:
    """:func:`batch_size` where the user gave ``--batch-size`` (which the model's inputs
    must then take), else None: the loader's default, the leading dim of the input
    shapes or 1."""
    size = batch_size(options)
    return size if options.batch_size is not None else None


def samples_per_step(options: ModelOptions, graph) -> int:
    """Samples per step of ``graph`` loaded with ``options``: :func:`batch_size` where
    the user gave a batch or input shapes, else the leading dim the model's own inputs
    fix (a model exported at batch 8 steps 8 samples; one with a symbolic batch, 1)."""
    if options.batch_size is not None or options.input_shapes:
        return batch_size(options)
    from placer.frontends.shapes import leading_dim

    return leading_dim(dict(graph.input_shapes))


def load_graph(path: str | Path, options: ModelOptions):
    """Load an ONNX model as an operator graph (coarsened if asked, never across the
    boundaries of ``options.cut``'s groups)."""
    from placer.frontends.onnx_graph import load_onnx

    graph = load_onnx(path, batch_size=given_batch(options), input_shapes=options.input_shapes)
    return _coarsened(graph, path, options)


def _coarsened(graph, path: str | Path, options: ModelOptions):
    """``graph`` coarsened if ``options`` ask for it."""
    if options.coarsen:
        from placer.frontends.coarsen import coarsen

        labels = None
        if options.cut.active:
            scopes = [node.scopes[0] if node.scopes else "" for node in graph.nodes]
            label = options.cut.labeller(scopes, str(path))
            labels = [label(scope) for scope in scopes]
        graph = coarsen(graph, labels=labels)
    return graph


def load_cluster(path: str | Cluster | None) -> Cluster:
    """The cluster in ``path`` (or ``path`` itself, a cluster already read), or the
    built-in default one."""
    from placer.costs.cluster import Cluster
    from placer.costs.cluster_file import default_cluster, load_cluster

    if isinstance(path, Cluster):
        return path
    return default_cluster() if path is None else load_cluster(path)


def model_fingerprint(path: str | Path) -> str:
    """The fingerprint of the ONNX model at ``path`` (:func:`placer.provenance.onnx_fingerprint`).

    Raises
    ------
    ModelLoadError
        The file is missing, is not an ONNX model, or fails the checks of
        :func:`placer.frontends.onnx_checks.check_model`.
    """
    from placer.frontends.onnx_graph import read_checked_model

    return onnx_fingerprint(read_checked_model(Path(path)))


def load_searched_and_model(
    path: str | Path, options: ModelOptions
) -> tuple[Problem, Problem | None]:
    """The problem to search and, under ``--coarsen``, the model's own problem to score
    the plan on (:func:`on_the_model`), both from one load of the model; None for the
    second without coarsening (the problem searched is the model's own)."""
    path = Path(path)
    if not options.coarsen or path.suffix.lower() != ".onnx":
        return load_problem(path, options), None
    from placer.frontends.onnx_graph import load_onnx

    loaded = load_onnx(path, batch_size=given_batch(options), input_shapes=options.input_shapes)
    fingerprint = model_fingerprint(path)
    model = _model_problem(path, replace(options, coarsen=False), fingerprint, loaded=loaded)
    searched = _model_problem(path, options, fingerprint, loaded=loaded, own=model)
    return searched, model


def _model_problem(
    path: Path,
    options: ModelOptions,
    fingerprint: str | None = None,
    *,
    cuts: bool = True,
    loaded=None,
    own: Problem | None = None,
) -> Problem:
    from placer.costs.roofline import build_problem
    from placer.frontends.onnx_graph import load_onnx

    if options.coarsen and own is None:  # the model's own times, for the merged ops'
        if loaded is None:
            loaded = load_onnx(path, batch_size=given_batch(options),
                               input_shapes=options.input_shapes)  # fmt: skip
        own = _model_problem(path, replace(options, coarsen=False), fingerprint, cuts=False,
                             loaded=loaded)  # fmt: skip
    # ``loaded``: the model's graph as read, uncoarsened, when the caller has it already
    graph = load_graph(path, options) if loaded is None else _coarsened(loaded, path, options)
    cluster, cost_options, costs_notes = _costing(path, graph, options, fingerprint)
    measured = cost_options.measured
    problem = build_problem(graph, cluster, cost_options)
    if options.coarsen:
        problem = _summed_over_members(problem, own)
    costing = Costing(
        mode=options.mode.value,
        dtype=options.dtype.value,
        optimizer=options.optimizer.value,
        batch_size=cost_options.batch_size,
        input_shapes={name: tuple(shape) for name, shape in options.input_shapes.items()},
        coarsen=options.coarsen,
        costs=costs_fingerprint(measured) if options.costs else None,
        cluster=cluster,
        granularity=options.cut.granularity.value,
        cut_at=options.cut.cut_at,
        fusion=options.fusion.value,
    )
    provenance = Provenance(fingerprint or model_fingerprint(path), costing)
    notes = [f"cluster: {cluster.name}", *cluster.notes_for(_costed_kinds(graph, options, cluster))]
    kept_out = [group.name for group in cluster.groups if not group.pipeline]
    if kept_out:
        notes.append(f"kept out of the pipeline: {', '.join(kept_out)}")
    problem = replace(
        problem,
        notes=(*notes, *problem.notes, *costs_notes),
        caveats=(*problem.caveats, *costs_notes),
        provenance=provenance,
    )
    return restrict_cuts(problem, options.cut, str(path)) if cuts else problem


def _summed_over_members(coarse: Problem, own: Problem) -> Problem:
    """``coarse``, the problem of the ``--coarsen`` graph, with each merged op's time on
    each kind the sum of its members' times in ``own``, the model's own problem.

    The roofline of a group's summed FLOPs and bytes charges one per-op overhead for the
    whole group, one regime and the rate of its dearest member's class: Mistral at 1x64
    tokens, 530 ops merged into 92, was searched at a quarter of its time, and the plan
    found was 2.2 times worse than without ``--coarsen`` (audit).  Summed, a merged op
    costs what its members cost where they stay together: the search charges a stage the
    compute the model's own evaluation charges it, and the same transfers but for their
    latency (a merged op that sends several tensors pays one link latency for them, where
    its members pay one each; GPT-2 on four A100s: 0.2% of the max-load).
    """
    times = {op.key: op.latency for op in own.ops}
    ops = []
    for op in coarse.ops:
        members = [times[key] for key in op.input_nodes]
        ops.append(replace(op, latency=tuple(map(math.fsum, zip(*members, strict=True)))))
    side = {replica.key: replica.latency for replica in own.replicas}
    replicas = tuple(replace(r, latency=side.get(r.key, r.latency)) for r in coarse.replicas)
    return replace(coarse, ops=tuple(ops), replicas=replicas)


def _check_measurement(
    path: Path,
    options: ModelOptions,
    graph: OpGraph,
    measured: Mapping[tuple[str, str], float],
    fingerprint: str,
) -> tuple[str, ...]:
    """Refuse measured costs (``options.costs``) whose header says they were taken for
    another model, batch size or input shapes; the notes to warn of: the model's ops the
    file gives no time for, a precision other than this run's."""
    from placer.costs.measured import check_measurement, costs_notes, read_measurement

    measurement = read_measurement(options.costs)
    if measurement is not None:
        check_measurement(
            measurement, options.costs, model=path, fingerprint=fingerprint,
            batch_size=samples_per_step(options, graph), shapes=dict(graph.input_shapes),
        )  # fmt: skip
    ops = [name for node in graph.nodes for name in node.members]
    dtype, fusion = options.dtype.value, options.fusion.value
    return costs_notes(options.costs, measured, ops, measurement, dtype, fusion)


#: Gap above which placer also tries the LP relaxation for a better bound.
LP_BOUND_GAP = 0.01
#: Seconds the LP relaxation may take.
LP_BOUND_SECONDS = 2.0


def proven_bound(
    problem: Problem, solved: SolveResult | None, contiguous: bool, seconds: float | None = None
) -> float:
    """The best lower bound placer can prove on the optimum of the model solved.

    The solver's own proof when it has one (an optimal answer is its own bound; the
    DP's bracket and the MILP's dual bound otherwise), the trivial bounds, the
    fractional volume bound (:func:`placer.solvers.bounds.volume_bound`), and, when
    these leave a gap over :data:`LP_BOUND_GAP`, the LP relaxation of the MILP -- unless
    the DP bracketed the contiguous optimum (its lower bound is never below that
    relaxation) or the MILP ran (its dual bound starts from it), or ``seconds`` (what is
    left of the time limit) is too short for it.
    """
    from placer.solvers.bounds import trivial_bound, volume_bound
    from placer.solvers.milp.relaxation import lower_bound

    if solved is not None and solved.optimal:
        return solved.objective
    # contiguous placements keep the contracted blocks whole; any placement, colour classes
    blocks = contract(problem) if contiguous else colour_blocks(problem)
    candidates = [trivial_bound(problem, blocks), volume_bound(problem, blocks)]
    objective = math.inf
    if solved is not None:
        if solved.lower_bound is not None:
            candidates.append(solved.lower_bound)
        objective = solved.objective
    # the DP's bracket bounds a model at least as tight as the LP relaxation, and the
    # MILP's dual bound starts from that relaxation
    relaxed_already = solved is not None and solved.bound_at_least_relaxation
    best = max(candidates)
    budget = LP_BOUND_SECONDS if seconds is None else min(LP_BOUND_SECONDS, seconds / 2)
    worth_it = objective > 0 and relative_gap(objective, best) > LP_BOUND_GAP
    if not relaxed_already and worth_it and budget >= LP_BOUND_SECONDS / 4:
        best = max(best, lower_bound(problem, contiguous=contiguous, time_limit=budget))
    return best


def place(problem: Problem, solver: str, options: SolverOptions | None = None) -> PlacementResult:
    """Solve ``problem`` with the named solver and evaluate the answer.

    Raises
    ------
    InputError
        Unknown solver name, or ``--no-contiguous`` with a solver that cannot honour it.
    InfeasiblePlacement
        No placement fits.
    """
    options = options or SolverOptions()
    solve = get_solver(solver)
    if not options.contiguous and solver not in ("milp", "auto"):
        raise InputError(f"--no-contiguous needs --solver milp or auto, not {solver}")
    check_feasible(problem, contract(problem))  # linear time: part of building the problem
    if options.time_limit is not None and options.deadline is None:
        # --time-limit bounds everything from here: model building and bounds included
        options = replace(options, deadline=time.monotonic() + options.time_limit)
    solved = solve(problem, options)
    if options.contiguous and solver not in BASELINES:
        # a tie with a CPU stage: without it (a baseline's plan stays as it would be)
        solved = fold_cpu_stages(problem, solved)
    bound = proven_bound(problem, solved, options.contiguous, options.seconds_left())
    result = from_solve(problem, solved, bound, contiguous=options.contiguous)
    return replace(result, notes=(*problem.notes, *result.notes))


def on_the_model(result: PlacementResult, model: Problem) -> PlacementResult:
    """A plan found on the coarsened graph (``--coarsen``), scored on ``model``, the
    same model without coarsening: every figure printed is then the evaluator's for the
    model the user gave.

    Each op of ``model`` goes where the merged op holding it went.  Coarsening sums a
    group's figures before the roofline, so the coarsened costs are not the model's, and
    neither its optimality nor its bound carry over: the plan is not claimed optimal and
    the bound is the model's own trivial one.
    """
    device_of = {
        key: result.placement.device_of_op[i]
        for i, op in enumerate(result.problem.ops)
        for key in op.input_nodes
    }
    placement = Placement(tuple(device_of[op.key] for op in model.ops))
    # the solver's notes speak of the merged ops' problem (its plan's figures, its bound):
    # said so, next to the figures of the model's own that the result gives
    own = len(result.problem.notes)
    notes = result.notes
    if notes[:own] == result.problem.notes:
        notes = (*notes[:own], *(f"on the merged ops: {note}" for note in notes[own:]))
    solved = SolveResult(
        solver=result.solver,
        placement=placement,
        objective=evaluate(model, placement).max_load,
        optimal=False,
        seconds=result.seconds,
        stats=dict(result.stats or {}),
        notes=notes,
    )
    bound = proven_bound(model, solved, result.contiguous_bound, 0.0)
    model = replace(model, provenance=result.problem.provenance)  # made with --coarsen
    scored = from_solve(model, solved, bound, contiguous=result.contiguous_bound)
    note = (
        f"--coarsen: solved on {len(result.problem.ops):,} merged ops; the figures are the "
        f"model's own ({len(model.ops):,} ops), at which the plan is not proven optimal"
    )
    return replace(scored, notes=(*scored.notes, note))


def evaluate_plan(
    problem: Problem, plan: str | Path | Placement, *, bound: bool = True,
    recorded_in: str | Path | None = None,
) -> PlacementResult:  # fmt: skip
    """Evaluate a plan of ``problem``: a placement, or a plan file read as it stands.

    With ``bound``, the result carries the best lower bound placer can prove on the
    optimum (:func:`proven_bound`), else 0.  The notes are the problem's, and, where
    ``recorded_in`` (or ``plan``), the plan file the placement came from, records what
    ``placer place`` proved at this max-load, :func:`recorded_claim`'s.
    """
    document = None
    if isinstance(plan, Placement):
        placement = plan
        if recorded_in is not None:
            document = _plan_document(recorded_in)
    else:
        document = load_plan_document(plan)
        placement = parse_plan(document, problem, str(plan))
    result = replace(from_plan(problem, placement, 0.0), notes=problem.notes)
    if not result.evaluation.contiguous:
        result = replace(result, notes=(*result.notes, NOT_CONTIGUOUS))
    claim = recorded_claim(document, result)
    if claim is not None:
        result = replace(result, notes=(*result.notes, claim))
    if not bound:
        return result
    return replace(result, lower_bound=proven_bound(problem, None, contiguous=False))


#: ``evaluate``'s note on a plan whose stages form no pipeline.
NOT_CONTIGUOUS = (
    "the plan is not contiguous: data flows from a device back to one that feeds it, so "
    "its stages form no pipeline; its max-load is that of a --no-contiguous plan, and "
    "split and run refuse it"
)


def _plan_document(plan: str | Path) -> Any:
    """The decoded plan file, or None where it cannot be read (anymore)."""
    try:
        return load_plan_document(plan)
    except PlanFormatError:
        return None


def recorded_claim(document: Any, result: PlacementResult) -> str | None:
    """A note for ``placer evaluate`` where the decoded plan file ``document`` records
    what ``placer place`` proved (optimality, or a contiguous lower bound) at the
    max-load ``result`` evaluates it at (the same costs): ``evaluate`` searches nothing,
    so its own bound covers every placement and is weaker; the note says what the file
    claims, and that it was not re-proven."""
    if not isinstance(document, dict):
        return None
    recorded, bound = document.get("max_load"), document.get("lower_bound")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (recorded, bound)):
        return None
    if not math.isclose(recorded, result.max_load, rel_tol=1e-9, abs_tol=0.0):
        return None
    scope = "contiguous " if document.get("lower_bound_scope") == "contiguous" else ""
    searched = ("evaluate costs the plan and searches nothing, so its lower bound here "
                "covers every placement, contiguous or not")  # fmt: skip
    if document.get("optimal") is True:
        return (f"the plan file records that placer place proved it optimal among {scope}"
                f"placements at this max-load; {searched}")  # fmt: skip
    if scope and 0 < bound <= recorded:
        from placer.outputs.explain import time_scale

        scale, unit = time_scale(result.problem.time_unit)
        unit = f" {unit}" if unit else ""
        return (f"the plan file records that placer place proved no contiguous placement "
                f"beats {bound * scale:.6g}{unit} (within {relative_gap(recorded, bound):.2%} "
                f"of this plan); {searched}")  # fmt: skip
    return None


def with_simulation(
    result: PlacementResult, microbatches: int, schedule: Schedule | None = None
) -> PlacementResult:
    """``result`` with a simulated run of ``microbatches`` microbatches of its plan
    (:func:`placer.outputs.simulate.simulate`); a plan that is not contiguous forms no pipeline,
    and gets a note instead.

    Raises
    ------
    InputError
        ``schedule`` does not fit the plan's mode (check it before solving with
        :func:`placer.outputs.simulate.check_schedule`).
    """
    if not result.evaluation.contiguous:
        note = "not simulated: the plan is not contiguous, so its stages form no pipeline"
        return replace(result, notes=(*result.notes, note))
    simulation = simulate(result.problem, result.placement, result.evaluation,
                          microbatches, schedule)  # fmt: skip
    return replace(result, simulation=simulation)


def load_plan(
    model: str | Path,
    plan: str | Path,
    options: ModelOptions | None = None,
    given: Collection[str] | None = None,
) -> tuple[Problem, Placement]:
    """Load ``model`` costed as ``plan`` was, and read the plan's placement of it.

    A plan that records its provenance (``placer place`` writes it) must have been made
    for this model, and is costed with the options it records: the cluster it embeds,
    its mode, dtype, optimiser, batch size, input shapes and coarsening. ``given`` names
    the fields of ``options`` the user set (None: those that differ from the defaults);
    each must agree with the plan, and measured costs the plan was costed with must be
    given again (``--costs``), the same ones.
    A plan without provenance (an older plan, an expert split) is read for ``model``
    costed with ``options``, as it stands. The groups of ops a cut rule keeps whole
    (``options.cut`` if given, else the plan's own) must each lie on one device.

    Raises
    ------
    PlanFormatError
        The plan is malformed, was made for another model, was costed with options
        that contradict the ones given (the message names the option and says how to
        re-place), or cuts inside a group its cut rule keeps whole.
    """
    options = options or ModelOptions()
    document = load_plan_document(plan)
    recorded = plan_provenance(document, str(plan))
    if recorded is None:
        problem = _load_problem(Path(model), options, cuts=False)
    else:
        given = _set_fields(options) if given is None else set(given)
        problem, options = _problem_for_plan(
            Path(model), options, given, recorded, document, plan
        )
    placement = parse_plan(document, problem, str(plan))
    split = split_group(problem, placement, options.cut, str(model))
    if split is not None:
        group, device, other = split
        raise PlanFormatError(
            f"{plan}: the plan cuts inside {group!r} (on {device} and {other}), which "
            f"{options.cut.option} keeps on one device; place {model} again with "
            f"{options.cut.option}"
        )
    return restrict_cuts(problem, options.cut, str(model)), placement


def _set_fields(options: ModelOptions) -> set[str]:
    """The fields of ``options`` that differ from the defaults."""
    defaults = ModelOptions()
    return {name for name in FLAGS if getattr(options, name) != getattr(defaults, name)}


def run(
    model: str | Path,
    plan: str | Path,
    options: ModelOptions,
    given: Collection[str],
    how: RunOptions,
    progress: Callable[[str, int, int], None] | None = None,
) -> RunReport:
    """Run ``plan`` for ``model`` as a pipeline of stage processes on this machine and
    measure it against placer's prediction (``placer run``, :mod:`placer.runtime.runner`).

    Raises
    ------
    PlanFormatError
        The plan is for training, not a pipeline, or not for this model.
    InputError
        Inputs that do not fit; a stage on a device this machine lacks.
    StageFailed
        A stage failed, died or hung.
    """
    from placer.outputs.split import build_split
    from placer.runtime.runner import check_runnable, run_plan

    problem, placement = load_plan(model, plan, options, given)
    result = evaluate_plan(problem, placement, bound=False)
    check_runnable(result, str(plan))
    shapes = split_options(model, plan, options, given)
    split = build_split(model, plan, batch_size=given_batch(shapes),
                        input_shapes=shapes.input_shapes)  # fmt: skip
    costing = problem.provenance.costing if problem.provenance else None
    cluster = costing.cluster if costing is not None else load_cluster(options.cluster)
    return run_plan(result, split, Path(model), cluster, how, progress)


def split_options(
    model: str | Path,
    plan: str | Path,
    options: ModelOptions,
    given: Collection[str] | None = None,
) -> ModelOptions:
    """The shapes at which to split ``model`` along ``plan`` (``placer split``): the
    plan's own batch size and input shapes, which ``options`` may repeat, not contradict.

    Raises
    ------
    PlanFormatError
        As :func:`load_plan`: the plan was made for another model, or with another
        batch size or other input shapes than ``given``.
    """
    document = load_plan_document(plan)
    recorded = plan_provenance(document, str(plan))
    if recorded is None:
        return options
    _check_fingerprint(recorded, model_fingerprint(model), document, plan, Path(model))
    if recorded.costing is None:
        return options
    given = _set_fields(options) if given is None else set(given)
    return _reuse(options, given, recorded.costing, plan, Path(model),
                  ("batch_size", "input_shapes"))  # fmt: skip


def _problem_for_plan(
    model: Path,
    options: ModelOptions,
    given: set[str],
    recorded: Provenance,
    document: Any,
    plan: str | Path,
) -> tuple[Problem, ModelOptions]:
    """The problem (its ops not yet held to a cut rule) and the options it was made
    with: the plan's own where the user gave none."""
    if model.suffix.lower() != ".onnx":  # a workload, or a file placer will refuse
        problem = _load_problem(model, options, cuts=False)
        fingerprint = problem.provenance.fingerprint if problem.provenance else ""
        _check_fingerprint(recorded, fingerprint, document, plan, model)
        return problem, options
    fingerprint = model_fingerprint(model)
    _check_fingerprint(recorded, fingerprint, document, plan, model)
    if recorded.costing is not None:
        options = _reuse(options, given, recorded.costing, plan, model, tuple(FLAGS))
    # coarsening only helps a solver search: a plan is scored on the model itself, and
    # keeps the record of how it was found
    problem = _model_problem(model, replace(options, coarsen=False), fingerprint, cuts=False)
    if options.coarsen and problem.provenance and problem.provenance.costing:
        costing = replace(problem.provenance.costing, coarsen=True)
        problem = replace(problem, provenance=replace(problem.provenance, costing=costing))
    return problem, options


def _check_fingerprint(
    recorded: Provenance, fingerprint: str, document: Any, plan: str | Path, model: Path
) -> None:
    if recorded.fingerprint == fingerprint:
        return
    made_for = document.get("problem") if isinstance(document, dict) else None
    named = f" ({shown(made_for)})" if isinstance(made_for, str) else ""
    raise PlanFormatError(
        f"{plan}: made for another model: the plan's fingerprint is "
        f"{short(recorded.fingerprint)}{named}, {model}'s is {short(fingerprint)}; "
        f"place {model} for a plan of it"
    )


def _reuse(
    options: ModelOptions,
    given: set[str],
    costing: Costing,
    plan: str | Path,
    model: Path,
    fields: tuple[str, ...],
) -> ModelOptions:
    """``options`` with each of ``fields`` taken from the plan's ``costing``; one the
    user gave (``given``) must agree with it."""

    def refuse(name: str, recorded: str, asked: str) -> PlanFormatError:
        return PlanFormatError(
            f"{plan}: the plan was costed with {recorded}, and {asked} contradicts it; drop "
            f"{FLAGS[name]} to use the plan's, or place {model} again with {asked}"
        )

    plain = {"mode": costing.mode, "dtype": costing.dtype, "optimizer": costing.optimizer,
             "batch_size": costing.batch_size, "fusion": costing.fusion}  # fmt: skip
    for name, value in plain.items():
        if name in fields and name in given and getattr(options, name) != value:
            asked = getattr(options, name)
            asked = asked.value if isinstance(asked, Enum) else asked
            raise refuse(name, f"{FLAGS[name]} {value}", f"{FLAGS[name]} {asked}")
    if "coarsen" in fields and "coarsen" in given and options.coarsen != costing.coarsen:
        flag = {True: "--coarsen", False: "--no-coarsen"}
        raise refuse("coarsen", flag[costing.coarsen], flag[options.coarsen])
    shapes = {name: tuple(shape) for name, shape in options.input_shapes.items()}
    if "input_shapes" in fields and "input_shapes" in given and shapes != costing.input_shapes:
        raise refuse("input_shapes", input_shapes_text(costing.input_shapes),
                     input_shapes_text(shapes))  # fmt: skip
    reused = {name: getattr(costing, name) for name in (*plain, "coarsen", "input_shapes")
              if name in fields}  # fmt: skip
    if "cut" in fields:
        _reuse_cut(options, given, costing, plan, model, reused)
    if "costs" in fields:
        _check_costs(options, costing, plan, model)
    if "cluster" in fields:
        reused["cluster"] = _plan_cluster(options, given, costing, plan, model)
    return replace(options, **reused)


def _reuse_cut(
    options: ModelOptions,
    given: set[str],
    costing: Costing,
    plan: str | Path,
    model: Path,
    reused: dict[str, Any],
) -> None:
    """The plan's cut rule unless one is given: a rule checks a plan rather than costs
    it, so one given replaces the plan's -- except where the plan was coarsened, which
    the rule shaped (ops of two groups are never merged)."""
    recorded = CutRule(Granularity(costing.granularity), costing.cut_at)
    if "cut" not in given:
        reused["cut"] = recorded
    elif costing.coarsen and options.cut != recorded:
        flag = "--cut-at" if options.cut.cut_at is not None else "--granularity"
        raise PlanFormatError(
            f"{plan}: the plan was coarsened under {recorded.option}, and {options.cut.option} "
            f"would merge other ops; drop {flag} to use the plan's, or place {model} again "
            f"with --coarsen {options.cut.option}"
        )


def _check_costs(options: ModelOptions, costing: Costing, plan: str | Path, model: Path) -> None:
    """The measured costs given must be the plan's: the same table, or none for none."""
    from placer.costs.roofline import read_measured_costs

    if options.costs is None:
        if costing.costs is not None:
            raise PlanFormatError(
                f"{plan}: the plan was costed with measured times (--costs, fingerprint "
                f"{short(costing.costs)}): pass the same file with --costs"
            )
        return
    if costing.costs is None:
        raise PlanFormatError(
            f"{plan}: the plan was costed without measured times, and --costs "
            f"{options.costs} contradicts it; drop --costs to use the plan's estimates, or "
            f"place {model} again with --costs {options.costs}"
        )
    given = costs_fingerprint(read_measured_costs(options.costs))
    if given != costing.costs:
        raise PlanFormatError(
            f"{plan}: the plan was costed with other measured times (fingerprint "
            f"{short(costing.costs)}) than --costs {options.costs} holds ({short(given)}); "
            f"pass the file it was costed with, or place {model} again with --costs "
            f"{options.costs}"
        )


def _plan_cluster(
    options: ModelOptions, given: set[str], costing: Costing, plan: str | Path, model: Path
) -> Cluster:
    """The plan's cluster; a ``--cluster`` given must describe the same devices and links."""
    if "cluster" not in given and options.cluster is None:
        return costing.cluster
    cluster = load_cluster(options.cluster).excluding(options.exclude)
    difference = cluster_difference(costing.cluster, cluster)
    if difference:
        raise PlanFormatError(
            f"{plan}: the plan was costed on cluster {shown(costing.cluster.name)}, and "
            f"--cluster {options.cluster} describes another ({difference}); drop --cluster to "
            f"use the plan's own, or place {model} --cluster {options.cluster} for a plan on it"
        )
    return cluster


def profile(
    path: str | Path, options: ModelOptions, how: ProfileOptions, progress: Progress | None = None
) -> Profile:
    """Measure each op of the ONNX model at ``path`` in onnxruntime (``placer profile``),
    at the batch size and input shapes of ``options``, as ``how``
    (:class:`placer.costs.profiling.ProfileOptions`) says.

    Returns
    -------
    placer.costs.profiling.Profile
        Write it with its ``to_csv()``: a file ``--costs`` reads, and checks.

    Raises
    ------
    InputError
        Not an ``.onnx`` file, or a device this onnxruntime cannot run on.
    ModelLoadError
        The model cannot be loaded, or onnxruntime cannot run it.
    """
    from placer.costs.profiling import check_device, profile_model
    from placer.frontends.onnx_graph import load_onnx

    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise InputError(f"{path}: placer profile runs .onnx models")
    check_device(how.device)  # before the model loads
    graph = load_onnx(path, batch_size=given_batch(options), input_shapes=options.input_shapes)
    batch = samples_per_step(options, graph)
    return profile_model(path, graph, model_fingerprint(path), batch, how, progress)


def inspect(path: str | Path, options: ModelOptions, *, detail: bool = False):
    """Figures of an ONNX model (``placer inspect``); with ``detail``, each op's
    predicted time on every device group of ``options.cluster`` and why
    (``--costs-detail``)."""
    from placer.outputs.summary import inspect_model

    if Path(path).suffix.lower() != ".onnx":
        raise InputError(f"{path}: placer inspect reads .onnx models")
    graph = load_graph(path, options)
    # the cluster and measured costs are read (and refused with a clear line when
    # wrong) whether or not the figures print: a file given is a file checked
    cluster, cost_options, _ = _costing(Path(path), graph, options)
    if not detail:
        return inspect_model(graph)
    from placer.costs.roofline import forward_times

    times = forward_times(graph, cluster, cost_options)
    groups = tuple(g.name for g in cluster.pipeline_groups)
    return inspect_model(graph, times=times, groups=groups)
