"""The jobs behind each command: load the input, solve or read a plan, wrap the result.

The command line (:mod:`placer.cli`) only parses options, calls these and renders.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from placer.blocks import contract
from placer.errors import InputError
from placer.model import Problem
from placer.plans import read_plan
from placer.result import PlacementResult, from_plan, from_solve
from placer.solvers import SolveResult, SolverOptions, get_solver
from placer.solvers.feasibility import check_feasible


@dataclass(frozen=True)
class ModelOptions:
    """How to turn an ONNX model into a placement problem (ignored by workloads).

    ``cluster`` is a cluster YAML file, or None for the built-in default cluster.
    """

    cluster: str | None = None
    mode: str = "inference"
    dtype: str = "fp32"
    optimizer: str = "adam"
    batch_size: int | None = None  # None: the first dim of --input-shape, else 1
    input_shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    costs: str | None = None
    coarsen: bool = False


def load_problem(path: str | Path, options: ModelOptions | None = None) -> Problem:
    """Load a problem: a profiled workload (``.json``) or an ONNX model (``.onnx``).

    Raises
    ------
    InputError
        The file type is not supported, the file is invalid, or a model option was
        given for a workload (which carries its own devices and costs).
    """
    path = Path(path)
    options = options or ModelOptions()
    suffix = path.suffix.lower()
    if suffix == ".json":
        from placer.workload import read_workload

        _reject_model_options(path, options)
        return read_workload(path)
    if suffix == ".onnx":
        return _model_problem(path, options)
    raise InputError(
        f"{path}: unsupported input type {path.suffix!r}; expected an .onnx model or a "
        ".json workload"
    )


def _reject_model_options(path: Path, options: ModelOptions) -> None:
    defaults = ModelOptions()
    flags = {
        "cluster": "--cluster", "mode": "--mode", "dtype": "--dtype",
        "optimizer": "--optimizer", "batch_size": "--batch-size",
        "input_shapes": "--input-shape", "costs": "--costs", "coarsen": "--coarsen",
    }  # fmt: skip
    for name, flag in flags.items():
        if getattr(options, name) != getattr(defaults, name):
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
    leading = {name: shape[0] for name, shape in options.input_shapes.items() if shape}
    if options.batch_size is None:
        values = set(leading.values())
        return values.pop() if len(values) == 1 else 1
    for name, dim in leading.items():
        if dim != options.batch_size:
            dims = ",".join(map(str, options.input_shapes[name]))
            raise InputError(
                f"--batch-size {options.batch_size} disagrees with --input-shape {name}={dims}"
            )
    return options.batch_size


def load_graph(path: str | Path, options: ModelOptions):
    """Load an ONNX model as an operator graph (coarsened if asked)."""
    from placer.onnx_graph import load_onnx

    graph = load_onnx(path, batch_size=batch_size(options), input_shapes=options.input_shapes)
    if options.coarsen:
        from placer.coarsen import coarsen

        graph = coarsen(graph)
    return graph


def load_cluster(path: str | None):
    """The cluster in ``path``, or the built-in default one."""
    from placer.cluster import default_cluster, load_cluster

    return default_cluster() if path is None else load_cluster(path)


def _model_problem(path: Path, options: ModelOptions) -> Problem:
    from placer.costmodel import (
        CostOptions,
        DType,
        Mode,
        Optimizer,
        build_problem,
        read_measured_costs,
    )

    graph = load_graph(path, options)
    cluster = load_cluster(options.cluster)
    measured = read_measured_costs(options.costs) if options.costs else {}
    if measured:
        known = {n for node in graph.nodes for n in node.members}
        known |= {f"{n}/grad" for n in known}
        devices = {g.name for g in cluster.groups} | {g.type for g in cluster.groups}
        for op, device in measured:
            if op not in known:
                raise InputError(f"{options.costs}: op {op!r} is not a node of {path}")
            if device not in devices:
                raise InputError(
                    f"{options.costs}: device {device!r} is neither a group nor a type of "
                    f"the cluster ({', '.join(sorted(devices))})"
                )
    cost_options = CostOptions(
        mode=Mode(options.mode),
        dtype=DType(options.dtype),
        optimizer=Optimizer(options.optimizer),
        batch_size=batch_size(options),
        measured=measured,
    )
    problem = build_problem(graph, cluster, cost_options)
    return replace(problem, notes=(f"cluster: {cluster.name}", *problem.notes))


#: Gap above which placer also tries the LP relaxation for a better bound.
LP_BOUND_GAP = 0.01
#: Seconds the LP relaxation may take.
LP_BOUND_SECONDS = 2.0


def proven_bound(
    problem: Problem, solved: SolveResult | None, contiguous: bool, seconds: float | None = None
) -> float:
    """The best lower bound placer can prove on the optimum of the model solved.

    The solver's own proof when it has one (an optimal answer is its own bound; the
    DP's bracket and the MILP's dual bound otherwise), the trivial bounds, and, when
    these leave a gap over :data:`LP_BOUND_GAP`, the LP relaxation of the MILP -- unless
    the DP bracketed the contiguous optimum (its lower bound is never below that
    relaxation) or the MILP ran (its dual bound starts from it), or ``seconds`` (what is
    left of the time limit) is too short for it.
    """
    from placer.bounds import lower_bound, trivial_bound

    if solved is not None and solved.optimal:
        return solved.objective
    candidates = [trivial_bound(problem, contract(problem, absorb_free_leaves=False))]
    objective = math.inf
    if solved is not None:
        if solved.lower_bound is not None:
            candidates.append(solved.lower_bound)
        objective = solved.objective
    # the DP's bracket bounds a model at least as tight as the LP relaxation, and the
    # MILP's dual bound starts from that relaxation
    relaxed_already = solved is not None and (
        solved.solver == "milp" or (solved.solver == "dp" and solved.lower_bound is not None)
    )
    best = max(candidates)
    budget = LP_BOUND_SECONDS if seconds is None else min(LP_BOUND_SECONDS, seconds / 2)
    worth_it = objective > 0 and (objective - best) / objective > LP_BOUND_GAP
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
    if options.time_limit is not None and options.deadline is None:
        # --time-limit bounds everything from here: model building and bounds included
        options = replace(options, deadline=time.monotonic() + options.time_limit)
    check_feasible(problem, contract(problem))
    solved = solve(problem, options)
    bound = proven_bound(problem, solved, options.contiguous, options.seconds_left())
    result = from_solve(problem, solved, bound, contiguous=options.contiguous)
    return replace(result, notes=(*problem.notes, *result.notes))


def evaluate_plan(problem: Problem, plan_path: str | Path) -> PlacementResult:
    """Read a plan for ``problem`` and evaluate it."""
    placement = read_plan(plan_path, problem)
    result = from_plan(problem, placement, 0.0)
    bound = proven_bound(problem, None, contiguous=False)
    return replace(result, lower_bound=bound)


def inspect(path: str | Path, options: ModelOptions):
    """Figures of an ONNX model (``placer inspect``)."""
    from placer.inspect import inspect_model

    if Path(path).suffix.lower() != ".onnx":
        raise InputError(f"{path}: placer inspect reads .onnx models")
    return inspect_model(load_graph(path, options))
