"""One result object for a placement, read by every renderer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from placer import __version__
from placer.evaluator import Evaluation, evaluate
from placer.frontends.layers import layer_map, layer_ranges
from placer.outputs.explain import explanations
from placer.outputs.simulate import Simulation
from placer.problem import Placement, Problem, throughput
from placer.solvers.base import SolveResult, relative_gap


@dataclass(frozen=True)
class PlacementResult:
    """A placement with its evaluation and how it was found.

    ``lower_bound`` is a proven lower bound on the max-load of every valid placement
    (every contiguous one when ``contiguous_bound``), so ``gap`` bounds how far the plan
    can be from optimal.
    """

    problem: Problem
    placement: Placement
    evaluation: Evaluation
    solver: str
    optimal: bool
    lower_bound: float
    seconds: float = 0.0
    stats: dict[str, float] | None = None
    notes: tuple[str, ...] = ()
    contiguous_bound: bool = False
    simulation: Simulation | None = None

    @property
    def max_load(self) -> float:
        return self.evaluation.max_load

    @property
    def throughput(self) -> float:
        """Samples per time unit: samples per step over the max-load."""
        return throughput(self.problem.samples_per_step, self.max_load)

    @property
    def gap(self) -> float:
        """Relative distance to the lower bound, ``(max_load - bound) / max_load``."""
        return max(0.0, relative_gap(self.max_load, self.lower_bound))

    @cached_property
    def stage_layers(self) -> tuple[tuple[tuple[str, ...], str], ...] | None:
        """For each stage of ``evaluation.stages``, the layers it holds (full names, in
        pipeline order) and their short text (``"embeddings, layers 0-2"``:
        :func:`placer.frontends.layers.layer_ranges`); None when the model names no module scopes.
        """
        problem = self.problem
        scopes = [scope for op in problem.ops for scope in op.scopes]
        if not any(scopes):
            return None
        stage_scopes = [
            [scope for i in stage.ops for scope in problem.ops[i].scopes]
            for stage in self.evaluation.stages
        ]
        ranges = layer_ranges(stage_scopes, layer_map(scopes))
        return tuple((tuple(names), text) for names, text in ranges)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON/YAML document (the README lists the keys).

        ``provenance`` records what the plan was made for (:mod:`placer.provenance`), so
        that a plan read back is costed as it was made, and refused for another model.
        """
        problem, evaluation = self.problem, self.evaluation
        bottleneck = evaluation.bottleneck
        stages = []
        for s, stage in enumerate(evaluation.stages):
            device = problem.devices[stage.device]
            kind = problem.kinds[device.kind]
            held = set(stage.ops)
            stages.append(
                {
                    "device": device.name,
                    "kind": kind.device_class.value,
                    "device_type": kind.name,
                    "nodes": [key for i in stage.ops for key in problem.ops[i].input_nodes],
                    "recomputed": [
                        key
                        for replica in problem.replicas
                        if not replica.weight and held.intersection(replica.readers)
                        for key in replica.input_nodes
                    ],
                    "compute": stage.compute,
                    "communication": stage.communication,
                    "load": stage.load,
                    "memory_bytes": stage.memory_bytes,
                    "memory_cap_bytes": _finite(problem.capacity(device.kind)),
                }
            )
            if self.stage_layers is not None:
                names, text = self.stage_layers[s]
                stages[-1].update({"layers": list(names), "layer_range": text})
        return {
            "placer_version": __version__,
            "problem": problem.name,
            "cluster": problem.cluster,
            "solver": self.solver,
            "optimal": self.optimal,
            "shapes_estimated": problem.shapes_estimated,
            "max_load": self.max_load,
            "throughput": _finite(self.throughput),
            "time_unit": problem.time_unit,
            "samples_per_step": problem.samples_per_step,
            "lower_bound": self.lower_bound,
            "lower_bound_scope": "contiguous" if self.contiguous_bound else "any",
            "gap": self.gap,
            "valid": evaluation.valid,
            "contiguous": evaluation.contiguous,
            "violations": list(evaluation.violations),
            "bottleneck": problem.devices[bottleneck.device].name if bottleneck else None,
            "solve_seconds": self.seconds,
            "stats": {key: _finite(value) for key, value in (self.stats or {}).items()},
            "notes": list(self.notes),
            "explanations": explanations(self),
            "stages": stages,
            "provenance": problem.provenance.to_dict() if problem.provenance else None,
            **({"simulation": self.simulation.to_dict()} if self.simulation else {}),
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def from_solve(
    problem: Problem, solved: SolveResult, lower_bound: float, *, contiguous: bool = True
) -> PlacementResult:
    """Evaluate a solver's answer and wrap it."""
    evaluation = evaluate(problem, solved.placement, require_contiguous=contiguous)
    return PlacementResult(
        problem=problem,
        placement=solved.placement,
        evaluation=evaluation,
        solver=solved.solver,
        optimal=solved.optimal,
        lower_bound=lower_bound,
        seconds=solved.seconds,
        stats=dict(solved.stats),
        notes=solved.notes,
        contiguous_bound=contiguous,
    )


def from_plan(problem: Problem, placement: Placement, lower_bound: float) -> PlacementResult:
    """Wrap a placement read from a plan file (``placer evaluate``)."""
    evaluation = evaluate(problem, placement, require_contiguous=False)
    return PlacementResult(
        problem=problem,
        placement=placement,
        evaluation=evaluation,
        solver="plan",
        optimal=False,
        lower_bound=lower_bound,
    )
