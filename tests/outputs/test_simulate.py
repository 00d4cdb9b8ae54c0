"""The pipeline simulator against hand-computed schedules, and its steady state against
the evaluator's max-load."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from placer.errors import InputError
from placer.evaluator import evaluate
from placer.outputs.schema import load_schema, schema_errors
from placer.outputs.simulate import Pass, Schedule, Work, simulate, stage_work
from placer.problem import DeviceClass, DeviceKind, Op, Placement, Problem
from placer.solvers import SOLVERS, SolverOptions
from tests.conftest import REFERENCE, ROOT, one_line_error
from tests.strategies import workloads


def _problem(ops, edges, devices, *, hosts=None, pays=None) -> tuple[Problem, Placement]:
    """One kind per device (``devices`` gives each op's device); ``ops`` are
    ``(latency, transfer_cost)`` or ``(latency, transfer_cost, backward, colour)``."""
    count = max(devices) + 1
    kinds = tuple(
        DeviceKind(
            f"d{k}", DeviceClass.ACCELERATOR, 1,
            pays_communication=True if pays is None else pays[k],
            host=hosts[k] if hosts else "",
        )
        for k in range(count)
    )
    made = []
    for i, spec in enumerate(ops):
        latency, cost, backward, colour = (*spec, False, i) if len(spec) == 2 else spec
        made.append(Op(i, f"op{i}", (latency,) * count, (True,) * count, 0.0, cost, colour,
                       backward))  # fmt: skip
    problem = Problem("p", tuple(made), tuple(edges), kinds, time_unit="s")
    return problem, Placement(tuple(devices))


def _run(problem, placement, n, schedule=None):
    return simulate(problem, placement, evaluate(problem, placement), n, schedule)


def _spans(sim, stage):
    return [(a.work, a.microbatch, a.start, a.end) for a in sim.activities if a.stage == stage]


def test_two_stages_stream_by_hand():
    # A (2 s) on d0 sends 1 s to B (3 s) on d1; loads 3 and 4
    problem, placement = _problem([(2, 1), (3, 0)], [(0, 1)], [0, 1])
    sim = _run(problem, placement, 3)
    assert _spans(sim, 0) == [
        (Work.COMPUTE, 0, 0, 2), (Work.SEND, 0, 2, 3),
        (Work.COMPUTE, 1, 3, 5), (Work.SEND, 1, 5, 6),
        (Work.COMPUTE, 2, 6, 8), (Work.SEND, 2, 8, 9),
    ]  # fmt: skip
    assert _spans(sim, 1) == [
        (Work.RECEIVE, 0, 3, 4), (Work.COMPUTE, 0, 4, 7),
        (Work.RECEIVE, 1, 7, 8), (Work.COMPUTE, 1, 8, 11),
        (Work.RECEIVE, 2, 11, 12), (Work.COMPUTE, 2, 12, 15),
    ]  # fmt: skip
    assert sim.makespan == 15
    assert [s.busy for s in sim.stages] == [9, 12]
    assert [s.idle for s in sim.stages] == [6, 3]
    assert sim.bubble_fraction == pytest.approx(9 / 30)
    assert sim.period == pytest.approx(4) == evaluate(problem, placement).max_load
    assert sim.throughput == pytest.approx(3 / 15)
    assert sim.steady_throughput == pytest.approx(1 / 4)


def test_unpaid_receiver_holds_only_the_link():
    # the receiver's kind does not pay: the transfer takes the link's time, not the stage's
    problem, placement = _problem([(2, 1), (3, 0)], [(0, 1)], [0, 1], pays=[True, False])
    sim = _run(problem, placement, 2)
    receive = [a for a in sim.activities if a.work is Work.RECEIVE]
    assert [(a.start, a.end, a.holds_stage) for a in receive] == [(3, 4, False), (6, 7, False)]
    assert _spans(sim, 1)[1:] == [(Work.COMPUTE, 0, 4, 7), (Work.RECEIVE, 1, 6, 7),
                                  (Work.COMPUTE, 1, 7, 10)]  # fmt: skip
    assert sim.makespan == 10
    assert sim.stages[1].busy == 6


def _fan_out(hosts):
    # A on d0 feeds B on d1 and C on d2; B feeds C (0.5 s)
    return _problem([(1, 2), (1, 0.5), (1, 0)], [(0, 1), (0, 2), (1, 2)], [0, 1, 2],
                    hosts=hosts)  # fmt: skip


def test_transfers_between_hosts_share_the_hosts_links():
    unshared = _run(*_fan_out(None), 1)
    assert _spans(unshared, 2) == [
        (Work.RECEIVE, 0, 3, 5), (Work.RECEIVE, 0, 6.5, 7), (Work.COMPUTE, 0, 7, 8),
    ]  # fmt: skip
    # d1 and d2 in another machine than d0: A's two transfers share d0's uplink
    shared = _run(*_fan_out(["a", "b", "b"]), 1)
    assert _spans(shared, 1)[:1] == [(Work.RECEIVE, 0, 3, 5)]
    assert _spans(shared, 2) == [
        (Work.RECEIVE, 0, 5, 7), (Work.RECEIVE, 0, 7, 7.5), (Work.COMPUTE, 0, 7.5, 8.5),
    ]  # fmt: skip
    assert shared.makespan == 8.5 > unshared.makespan == 8
    links = {link.name: link.per_microbatch for link in shared.links}
    assert links["a uplink"] == links["b downlink"] == 4
    # the shared uplink carries 4 s per microbatch, more than any stage's load (3.5)
    assert shared.period == pytest.approx(4)
    assert evaluate(*_fan_out(None)).max_load == 3.5


def _training():
    # forward A (1) on d0 -> B (2) on d1; backward B' (3) on d1 -> A' (2) on d0
    ops = [(1, 1, False, 0), (2, 0, False, 1), (3, 1, True, 1), (2, 0, True, 0)]
    return _problem(ops, [(0, 1), (1, 2), (2, 3)], [0, 1, 1, 0])


def test_gpipe_by_hand():
    problem, placement = _training()
    sim = _run(problem, placement, 2, Schedule.GPIPE)
    assert [(a.pass_, a.work, a.microbatch, a.start, a.end) for a in sim.activities
            if a.stage == 0] == [
        (Pass.FORWARD, Work.COMPUTE, 0, 0, 1), (Pass.FORWARD, Work.SEND, 0, 1, 2),
        (Pass.FORWARD, Work.COMPUTE, 1, 2, 3), (Pass.FORWARD, Work.SEND, 1, 3, 4),
        (Pass.BACKWARD, Work.RECEIVE, 0, 12, 13), (Pass.BACKWARD, Work.COMPUTE, 0, 13, 15),
        (Pass.BACKWARD, Work.RECEIVE, 1, 16, 17), (Pass.BACKWARD, Work.COMPUTE, 1, 17, 19),
    ]  # fmt: skip
    # d1: R0 2-3, F0 3-5, R1 5-6, F1 6-8, B0 8-11, S 11-12, B1 12-15, S 15-16
    assert [(a.work, a.start) for a in sim.activities if a.stage == 1][4:] == [
        (Work.COMPUTE, 8), (Work.SEND, 11), (Work.COMPUTE, 12), (Work.SEND, 15)]
    assert sim.makespan == 19


def test_one_f_one_b_by_hand():
    problem, placement = _training()
    sim = _run(problem, placement, 2, Schedule.ONE_F_ONE_B)
    order = [(a.pass_, a.microbatch) for a in sim.activities
             if a.stage == 1 and a.work is Work.COMPUTE]  # fmt: skip
    assert order == [(Pass.FORWARD, 0), (Pass.BACKWARD, 0), (Pass.FORWARD, 1), (Pass.BACKWARD, 1)]
    # d1: R0 2-3 F0 3-5 B0 5-8 S0 8-9 R1 9-10 F1 10-12 B1 12-15 S1 15-16;
    # d0: F0 0-1 S 1-2 F1 2-3 S 3-4 R 9-10 B0 10-12 R 16-17 B1 17-19
    assert sim.makespan == 19
    assert sim.period == pytest.approx(evaluate(problem, placement).max_load)


def test_refuses_what_it_cannot_simulate():
    problem, placement = _training()
    with pytest.raises(InputError, match="stream is for inference"):
        _run(problem, placement, 2, Schedule.STREAM)
    problem, placement = _problem([(2, 1), (3, 0)], [(0, 1)], [0, 1])
    with pytest.raises(InputError, match="training schedule"):
        _run(problem, placement, 2, Schedule.GPIPE)
    with pytest.raises(InputError, match="microbatches"):
        _run(problem, placement, 0)
    # A -> B -> C with A and C on one device: no pipeline
    problem, placement = _problem([(1, 1), (1, 1), (1, 0)], [(0, 1), (1, 2)], [0, 1, 0])
    with pytest.raises(InputError, match="not contiguous"):
        _run(problem, placement, 2)


@settings(max_examples=150, deadline=None)
@given(workloads(max_forward=8), st.integers(1, 12), st.booleans(), st.data())
def test_steady_state_agrees_with_max_load(problem, n, pay, data):
    """Never above samples/max-load; equal to it when every receiver pays (its link is
    then never busier than the stage) and links are unshared."""
    from dataclasses import replace

    if pay:
        problem = replace(problem, kinds=tuple(replace(k, pays_communication=True)
                                               for k in problem.kinds))  # fmt: skip
    try:
        solved = SOLVERS["dp"](problem, SolverOptions())
    except Exception:  # infeasible draws
        return
    evaluation = evaluate(problem, solved.placement)
    work, _ = stage_work(problem, solved.placement, evaluation)
    assert [w.load for w in work] == pytest.approx([s.load for s in evaluation.stages])
    training = any(op.backward for op in problem.ops)
    schedules = [Schedule.GPIPE, Schedule.ONE_F_ONE_B] if training else [Schedule.STREAM]
    schedule = data.draw(st.sampled_from(schedules))
    sim = simulate(problem, solved.placement, evaluation, n, schedule)
    eps = 1e-9 * max(1.0, evaluation.max_load)
    assert sim.period >= evaluation.max_load - eps
    assert sim.makespan >= n * evaluation.max_load - eps * n
    if pay and schedule is not Schedule.GPIPE:
        assert sim.period == pytest.approx(evaluation.max_load, rel=1e-9, abs=1e-12)
    for stage, figures in zip(sim.stages, work, strict=True):
        assert stage.busy == pytest.approx(n * figures.load, rel=1e-9, abs=1e-9)
        assert stage.idle >= -eps
    assert math.isfinite(sim.bubble_fraction)


# -- place / evaluate / report --microbatches -----------------------------------------

WORKLOAD = REFERENCE / "layer-graphs/bert24_training.json"
MOBILENET = ROOT / "sample_models" / "mobilenet_v2.onnx"


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_place_adds_the_simulation_to_json_and_yaml(run_placer, schedule) -> None:
    args = ("place", WORKLOAD, "--solver", "dp", "--microbatches", "6", "--schedule", schedule)
    result = run_placer(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert schema_errors(document, load_schema("plan")) == []
    sim = document["simulation"]
    assert sim["schedule"] == schedule and sim["microbatches"] == 6
    assert [s["device"] for s in sim["stages"]] == [s["device"] for s in document["stages"]]
    assert [s["load"] for s in sim["stages"]] == pytest.approx(
        [s["load"] for s in document["stages"]])
    assert sim["steady_throughput"] <= document["throughput"] * (1 + 1e-9)
    assert sim["throughput"] < sim["steady_throughput"]  # fill and drain
    assert sim["makespan"] >= 6 * document["max_load"]
    as_yaml = yaml.safe_load(run_placer(*args, "--format", "yaml").stdout)
    assert as_yaml["simulation"]["makespan"] == pytest.approx(sim["makespan"])


def test_table_and_evaluate_show_the_simulated_run(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    assert run_placer("place", MOBILENET, "--solver", "greedy", "-o", plan).exit_code == 0
    assert "simulation" not in json.loads(plan.read_text())  # only when asked for
    result = run_placer("evaluate", MOBILENET, plan, "--microbatches", "4")
    assert result.exit_code == 0, result.stderr
    assert "simulated 4 microbatches (stream): makespan" in result.stdout
    assert "steady state" in result.stdout
    markdown = tmp_path / "r.md"
    html_path = tmp_path / "r.html"
    report = run_placer("report", MOBILENET, plan, "--markdown", markdown, "--html", html_path,
                        "--microbatches", "3")  # fmt: skip
    assert report.exit_code == 0, report.stderr
    assert "simulated 3 microbatches (stream)" in markdown.read_text()
    page = html_path.read_text()
    assert "Pipeline timeline: 3 microbatches, streaming" in page
    assert "forward compute of microbatch 3" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--schedule", "1f1b"), "give --microbatches N too"),
        (("--microbatches", "4", "--schedule", "gpipe"), "is a training schedule"),
        (("--microbatches", "0"), "--microbatches"),
        (("--microbatches", "5000"), "--microbatches"),
    ],
)
def test_simulation_options_are_checked_before_solving(run_placer, args, message) -> None:
    result = run_placer("place", MOBILENET, "--solver", "greedy", *args)
    assert result.exit_code == 2
    assert message in one_line_error(result)


def test_a_plan_that_is_no_pipeline_gets_a_note(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    placed = run_placer("place", WORKLOAD, "--solver", "dp", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    document = json.loads(plan.read_text())
    # swap two stages' nodes of a 3+ stage plan: the stage graph gets a cycle
    stages = document["stages"]
    assert len(stages) >= 3
    first, third = stages[0]["nodes"], stages[2]["nodes"]
    stages[0]["nodes"], stages[2]["nodes"] = first[:1] + third[1:], third[:1] + first[1:]
    plan.write_text(json.dumps(document))
    result = run_placer("evaluate", WORKLOAD, plan, "--microbatches", "4", "--format", "json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert not out["contiguous"] and "simulation" not in out
    assert any("not simulated" in note for note in out["notes"])


def test_cluster_hosts_reach_the_simulator(tmp_path, run_placer) -> None:
    """Two machines of one GPU each behind a slow network: with ``host:`` both transfers
    out of machine a share its uplink; the plan records the hosts."""
    from placer.costs.cluster_file import parse_cluster

    text = """\
devices:
  - {name: a, type: a100-80gb, count: 2, host: m1}
  - {name: b, type: a100-80gb, count: 2, host: m2}
"""
    cluster = parse_cluster(text, "c.yaml")
    assert [g.host for g in cluster.groups] == ["m1", "m2"]
    path = tmp_path / "c.yaml"
    path.write_text(text)
    result = run_placer("place", MOBILENET, "--cluster", path, "--microbatches", "4",
                        "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    hosts = [g.get("host") for g in document["provenance"]["cluster"]["devices"]]
    assert hosts == ["m1", "m2"]
    assert schema_errors(document, load_schema("plan")) == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices: [{type: t4, host: 3}]\n")
    refused = run_placer("place", MOBILENET, "--cluster", bad)
    assert refused.exit_code == 2 and "devices[0].host" in one_line_error(refused)
