"""Plans split by whole layers, then refined around their cuts (placer.solvers.dp.refine)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from placer.api import ModelOptions, load_problem
from placer.evaluator import evaluate
from placer.problem import DeviceClass, DeviceKind, Op, Problem
from placer.solvers import SolverOptions
from placer.solvers.dp.refine import refined_plans
from placer.solvers.dp.search import _unrefined, solve_dp
from tests.strategies import brute_force

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"


def _layered(latencies: list[list[float]], devices: int = 2) -> Problem:
    """A chain of layers ``model.layers.<l>``, each a chain of ops of the given
    latencies (scopes ``model.layers.<l>.op<i>``)."""
    ops = []
    for layer, figures in enumerate(latencies):
        for i, latency in enumerate(figures):
            key = len(ops)
            ops.append(Op(key, f"l{layer}o{i}", (latency,), (True,), 0.0, 0.01, key,
                          scopes=(f"model.layers.{layer}.op{i}",)))  # fmt: skip
    edges = tuple((u, u + 1) for u in range(len(ops) - 1))
    kinds = (DeviceKind("gpu", DeviceClass.ACCELERATOR, devices, math.inf),)
    return Problem("layers", tuple(ops), edges, kinds)


def test_the_refined_plan_cuts_inside_a_layer_where_that_balances_the_stages() -> None:
    """Three equal layers on two devices: whole layers split 2 : 1; refined around the
    cut, the split falls mid-layer, at the optimum."""
    problem = _layered([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    plans = refined_plans(problem, SolverOptions(), _unrefined)
    loads = [evaluate(problem, plan).max_load for plan in plans]
    assert loads[0] == pytest.approx(4.01)  # two whole layers on one device
    assert min(loads) == pytest.approx(brute_force(problem)) == pytest.approx(3.01)


def test_a_model_without_layers_gets_no_refined_plan() -> None:
    problem = _layered([[1.0, 1.0], [1.0]])
    flat = replace(problem, ops=tuple(replace(op, scopes=()) for op in problem.ops))
    assert refined_plans(flat, SolverOptions(), _unrefined) == []


def test_every_refined_plan_is_a_valid_placement_of_the_model() -> None:
    """On the shipped GPT-2 (its layers named by the exporter's scopes), in training."""
    options = ModelOptions(mode="training", batch_size=8,
                           input_shapes={"input_ids": (8, 128)})  # fmt: skip
    problem = load_problem(SAMPLES / "gpt2_small.onnx", options)
    plans = refined_plans(problem, SolverOptions(time_limit=20), _unrefined)
    assert len(plans) >= 2
    exact = solve_dp(problem).objective
    for plan in plans:
        evaluation = evaluate(problem, plan)
        assert evaluation.valid, evaluation.violations
        assert evaluation.max_load >= exact * (1 - 1e-9)
