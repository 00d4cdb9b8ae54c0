"""Exit status 3, with a line naming the node or device that makes placement impossible."""

from __future__ import annotations

import json

import pytest

from placer.errors import ExitStatus

NODE = {"supportedOnFpga": 1, "cpuLatency": 2.0, "fpgaLatency": 1.0, "isBackwardNode": 0}


def workload(tmp_path, *, fpgas=2, cpus=1, size=100.0, nodes=None) -> str:
    nodes = nodes or [{**NODE, "id": 1, "size": 10.0}, {**NODE, "id": 2, "size": 10.0}]
    document = {
        "maxSizePerFPGA": size,
        "maxFPGAs": fpgas,
        "maxCPUs": cpus,
        "nodes": nodes,
        "edges": [{"sourceId": 1, "destId": 2, "cost": 1.0}],
    }
    path = tmp_path / "w.json"
    path.write_text(json.dumps(document))
    return str(path)


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"fpgas": 0, "cpus": 0}, ["w.json: no devices", "'maxFPGAs'", "'maxCPUs'"]),
        (
            {"cpus": 0, "nodes": [{**NODE, "id": 1, "supportedOnFpga": 0}, {**NODE, "id": 2}]},
            ["op 1", "not supported on accel", "no cpu"],
        ),
        (
            {"cpus": 0, "nodes": [{**NODE, "id": 1, "size": 500.0}, {**NODE, "id": 2}]},
            ["op 1", "500 B", "no cpu"],
        ),
        ({"cpus": 0, "fpgas": 1, "size": 15.0}, ["20 B", "15"]),
    ],
    ids=["no devices", "unsupported, no cpu", "too big, no cpu", "too big together"],
)
def test_infeasible_exit_3(run_placer, tmp_path, kwargs, fragments) -> None:
    result = run_placer("place", workload(tmp_path, **kwargs))
    assert result.exit_code == ExitStatus.INFEASIBLE == 3, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    for fragment in fragments:
        assert fragment in result.stderr


def test_unsupported_node_goes_to_the_cpu(run_placer, tmp_path) -> None:
    nodes = [{**NODE, "id": 1, "supportedOnFpga": 0}, {**NODE, "id": 2}]
    result = run_placer("place", workload(tmp_path, nodes=nodes), "--format", "json")
    assert result.exit_code == 0, result.stderr
    stages = json.loads(result.stdout)["stages"]
    (holder,) = [s for s in stages if 1 in s["nodes"]]
    assert holder["kind"] == "cpu"


def test_an_infinite_latency_is_called_unsupported_only_when_an_op_is() -> None:
    import math

    from placer.errors import InfeasiblePlacement
    from placer.problem import DeviceClass, DeviceKind, Op, Problem
    from placer.solvers.blocks import contract
    from placer.solvers.feasibility import check_feasible

    def problem(supported: bool) -> Problem:
        op = Op(1, "huge", (math.inf,), (supported,), 0.0, 0.0, 0)
        kind = DeviceKind("accel", DeviceClass.ACCELERATOR, 1)
        return Problem("p", (op,), (), (kind,))

    for supported, says in ((False, "is not supported on accel"),
                            (True, "takes longer on accel than a float holds")):  # fmt: skip
        with pytest.raises(InfeasiblePlacement, match=says):
            check_feasible(problem(supported), contract(problem(supported)))


@pytest.mark.parametrize(
    ("members", "says"),
    [(1, "op 1 needs"), (2, "op 1 and the op that must share its device needs"),
     (3, "op 1 and the 2 ops that must share its device needs")],
)  # fmt: skip
def test_the_ops_sharing_a_device_are_counted_in_words(run_placer, tmp_path, members, says) -> None:
    # one colour class of `members` nodes, too big for the accelerator, and no CPU
    ids = [1, *range(10, 10 + members - 1)]
    nodes = [{**NODE, "id": i, "size": 200.0, "colorClass": 7} for i in ids]
    nodes.append({**NODE, "id": 2, "size": 1.0})
    result = run_placer("place", workload(tmp_path, cpus=0, nodes=nodes))
    assert result.exit_code == 3, result.stderr
    assert says in result.stderr and "op(s)" not in result.stderr


def test_a_need_just_over_the_memory_reads_as_more(run_placer, tmp_path) -> None:
    # 256 GiB + 4 KiB needed, 256 GiB held: not "needs 256 GiB, more than accel's 256 GiB"
    cap = 256 * 2**30
    nodes = [{**NODE, "id": 1, "size": cap + 4096.0}, {**NODE, "id": 2, "size": 1.0}]
    result = run_placer("place", workload(tmp_path, cpus=0, size=cap, nodes=nodes))
    assert result.exit_code == 3, result.stderr
    assert "needs 256.000004 GiB, more than accel's 256 GiB" in result.stderr, result.stderr


def test_a_total_just_over_all_memory_reads_as_more(run_placer, tmp_path) -> None:
    cap = 2**30
    nodes = [{**NODE, "id": 1, "size": cap}, {**NODE, "id": 2, "size": cap / 2 + 1}]
    result = run_placer("place", workload(tmp_path, cpus=0, fpgas=1, size=cap * 3 / 2,
                                          nodes=nodes))  # fmt: skip
    assert result.exit_code == 3, result.stderr
    assert "the ops need 1.500000001 GiB but all devices together hold 1.5 GiB" in (
        result.stderr
    ), result.stderr
