"""Contraction into blocks keeps the optimum (checked against brute force)."""

from __future__ import annotations

import pytest

from placer.frontends.workload import parse_workload
from placer.solvers.blocks import contract
from placer.solvers.dp.search import solve_dp
from tests.strategies import brute_force


def node(i, fpga, backward=0, colour=None):
    return {
        "id": i, "supportedOnFpga": 1, "cpuLatency": fpga, "fpgaLatency": fpga,
        "isBackwardNode": backward, "colorClass": i if colour is None else colour,
    }  # fmt: skip


def test_leaf_feeding_another_blocks_gradient_is_not_absorbed() -> None:
    # a -> b, a -> leaf; the free leaf also feeds b's gradient op at a high cost, so it
    # belongs beside b, not beside its only pipeline neighbour a.
    problem = parse_workload(
        {
            "maxSizePerFPGA": 10, "maxFPGAs": 2, "maxCPUs": 0,
            "nodes": [node(0, 5.0), node(1, 5.0), node(2, 0.0), node(4, 0.0, 1, colour=1)],
            "edges": [
                {"sourceId": 0, "destId": 1, "cost": 0.0},
                {"sourceId": 0, "destId": 2, "cost": 0.0},
                {"sourceId": 2, "destId": 4, "cost": 10.0},
                {"sourceId": 1, "destId": 4, "cost": 0.0},
            ],
        }
    )
    assert contract(problem).n_blocks == 3
    assert solve_dp(problem).objective == pytest.approx(5.0)
    assert brute_force(problem) == pytest.approx(5.0)


def test_free_source_leaf_is_absorbed() -> None:
    problem = parse_workload(
        {
            "maxSizePerFPGA": 10, "maxFPGAs": 2, "maxCPUs": 0,
            "nodes": [node(0, 0.0), node(1, 5.0), node(2, 5.0)],
            "edges": [
                {"sourceId": 0, "destId": 1, "cost": 1.0},
                {"sourceId": 1, "destId": 2, "cost": 0.5},
            ],
        }
    )
    blocks = contract(problem)
    assert blocks.n_blocks == 2
    assert blocks.block_of_op[0] == blocks.block_of_op[1]
    assert solve_dp(problem).objective == pytest.approx(brute_force(problem)) == 5.5


def test_cycle_through_a_shared_colour_is_fused() -> None:
    # a -> b -> c with a and c sharing weights: all three must share a device
    problem = parse_workload(
        {
            "maxSizePerFPGA": 10, "maxFPGAs": 3, "maxCPUs": 0,
            "nodes": [node(0, 1.0, colour=7), node(1, 1.0), node(2, 1.0, colour=7)],
            "edges": [
                {"sourceId": 0, "destId": 1, "cost": 0.0},
                {"sourceId": 1, "destId": 2, "cost": 0.0},
            ],
        }
    )
    assert contract(problem).n_blocks == 1
    assert solve_dp(problem).objective == pytest.approx(3.0) == brute_force(problem)
