"""Reading plan files: placer's JSON or YAML output, one line per mistake."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import EXPECTED, REFERENCE, ROOT, one_line_error

MOBILENET = ROOT / "sample_models" / "mobilenet_v2.onnx"
WORKLOAD = REFERENCE / "layer-graphs/bert24_inference.json"


def _rewrite(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_yaml_plan_round_trips(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.yaml"
    assert run_placer("place", WORKLOAD, "--solver", "dp", "-o", plan).exit_code == 0
    result = run_placer("evaluate", WORKLOAD, plan, "--format", "json")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("stages:\n  - device: accel:0\n    nodes: [1, 2\n", ["plan.yaml:4: not valid YAML"]),
        ("stages: [\n", ["plan.yaml:2: not valid YAML"]),
        ("stages:\n  - {device: accel:0, nodes: [1]}\n  - : : x\n", ["plan.yaml:3"]),
        ("", ["plan.yaml:1: the file is empty"]),
    ],
    ids=["unclosed list", "unclosed flow", "bad mapping", "empty"],
)
def test_yaml_syntax_errors_give_the_line(run_placer, tmp_path, text, fragments) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    one_line_error(run_placer("evaluate", WORKLOAD, plan), *fragments)


def test_python_tag_in_a_plan_never_runs(run_placer, tmp_path) -> None:
    marker = tmp_path / "pwned"
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"stages: !!python/object/apply:os.system ['touch {marker}']\n")
    line = one_line_error(run_placer("evaluate", WORKLOAD, plan), "plan.yaml:1: stages:")
    assert "refused" in line and "nothing was executed" in line
    assert not marker.exists()


def test_json_syntax_errors_give_line_and_column(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"stages": [\n  {"device": "accel:0",}\n]}\n')
    one_line_error(run_placer("evaluate", WORKLOAD, plan), "plan.json:2:", "not valid JSON")


def test_training_plan_is_costed_for_training(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    placed = run_placer("place", MOBILENET, "--mode", "training", "--solver", "greedy", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    ok = run_placer("evaluate", MOBILENET, plan, "--format", "json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["max_load"] == json.loads(plan.read_text())["max_load"]
    for command in ("evaluate", "report"):
        extra = ("--markdown", tmp_path / "r.md") if command == "report" else ()
        refused = run_placer(command, MOBILENET, plan, "--mode", "inference", *extra)
        one_line_error(refused, "costed with --mode training, and --mode inference contradicts")
    # a plan that does not record its mode (an older plan) says which mode to pass
    _rewrite(plan, lambda d: d.pop("provenance"))
    for command in ("evaluate", "report"):
        extra = ("--markdown", tmp_path / "r.md") if command == "report" else ()
        line = one_line_error(run_placer(command, MOBILENET, plan, *extra), "/grad' is not in")
        assert line.endswith("(a training plan: pass --mode training)"), line


def test_memory_violations_read_in_binary_units(run_placer, tmp_path) -> None:
    document = json.loads(WORKLOAD.read_text())
    document["maxSizePerFPGA"] = 2**28  # 256 MiB, less than any stage of the plan holds
    workload = tmp_path / "small.json"
    workload.write_text(json.dumps(document))
    plan = REFERENCE / "human-experts/bert24_inference_expert.json"
    result = run_placer("evaluate", workload, plan, "--format", "json")
    assert result.exit_code == 0, result.stderr
    (violation, *_) = json.loads(result.stdout)["violations"]
    pattern = r"accel:\d holds [\d.]+ [GM]iB, over its 256 MiB \([\d.e+]+ > 2\.68435e\+08 bytes\)"
    assert re.fullmatch(pattern, violation), violation


# -- what a plan records, and reading it back as it was made ---------------------------


def _tiny_model(path: Path, hidden: int = 16) -> Path:
    """x[N,8] -> MatMul -> Relu -> MatMul -> y: three ops, a symbolic batch."""
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"], name="mm1"),
        helper.make_node("Relu", ["h"], ["a"], name="relu"),
        helper.make_node("MatMul", ["a", "W2"], ["y"], name="mm2"),
    ]
    weights = [
        numpy_helper.from_array(np.ones((8, hidden), np.float32), "W1"),
        numpy_helper.from_array(np.ones((hidden, 4), np.float32), "W2"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        initializer=weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


PLACED_WITH = {
    "dtype": ["--dtype", "fp16", "--mode", "training"],
    "optimizer": ["--mode", "training", "--optimizer", "sgd"],
    "batch": ["--batch-size", "32"],
    "input shape": ["--input-shape", "input=16,3,224,224"],
    "coarsen": ["--coarsen"],
    "cluster": ["--cluster", ROOT / "examples" / "2xa100_4xt4.yaml"],
    "granularity": ["--granularity", "layer", "--coarsen"],
    "exclude": ["--exclude", "cpu"],
}


@pytest.mark.parametrize("flags", PLACED_WITH.values(), ids=PLACED_WITH.keys())
def test_a_plan_is_evaluated_as_it_was_made(run_placer, tmp_path, flags) -> None:
    plan = tmp_path / "plan.json"
    placed = run_placer("place", MOBILENET, *flags, "--solver", "greedy", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    made = json.loads(plan.read_text())
    result = run_placer("evaluate", MOBILENET, plan, "--format", "json")
    assert result.exit_code == 0, result.stderr
    evaluated = json.loads(result.stdout)
    for key in ("max_load", "throughput", "cluster", "samples_per_step", "provenance"):
        assert evaluated[key] == made[key], key
    # giving the plan's own options again changes nothing
    again = run_placer("evaluate", MOBILENET, plan, *flags, "--format", "json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["max_load"] == made["max_load"]


def test_evaluate_says_it_searched_nothing_and_what_the_plan_file_claims(run_placer, tmp_path):
    """``place`` proves its plan optimal among contiguous placements; ``evaluate`` of that
    plan does not search, so its own bound (over every placement) is weaker: it says so,
    names the cluster as ``place`` does, and relays the file's claim only where the
    file's max-load is the one it evaluates."""
    plan = tmp_path / "plan.json"
    placed = run_placer("place", MOBILENET, "--solver", "dp", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    assert json.loads(plan.read_text())["optimal"] is True
    # the terminal still gets the figures, in one line
    assert f"wrote {plan}: max-load " in placed.stderr
    assert " ms (optimal), predicted throughput " in placed.stderr
    shown = run_placer("evaluate", MOBILENET, plan)
    assert shown.exit_code == 0, shown.stderr
    assert "(as evaluated; no search)" in shown.stdout
    assert "not proven optimal" not in shown.stdout
    assert "note: cluster: " in shown.stdout
    assert "records that placer place proved it optimal among contiguous" in shown.stdout
    # a file whose recorded figures are not this evaluation's: no claim relayed
    _rewrite(plan, lambda d: d.update(max_load=d["max_load"] * 0.5))
    edited = run_placer("evaluate", MOBILENET, plan)
    assert edited.exit_code == 0, edited.stderr
    assert "records that placer place" not in edited.stdout
    _rewrite(plan, lambda d: d.update(max_load=d["max_load"] * 4, optimal=False))
    assert "records that" not in run_placer("evaluate", MOBILENET, plan).stdout
    # not proven optimal, at this max-load: the contiguous bound it records, and its gap
    _rewrite(plan, lambda d: d.update(max_load=d["max_load"] / 2,
                                      lower_bound=d["max_load"] / 2 * 0.9))  # fmt: skip
    bounded = run_placer("evaluate", MOBILENET, plan).stdout
    assert "records that placer place proved no contiguous placement beats" in bounded
    assert "(within 10.00% of this plan)" in bounded


def test_evaluate_says_when_a_plan_forms_no_pipeline(run_placer, tmp_path):
    """A hand-edited plan whose data flows back to a device that feeds it is costed (as a
    --no-contiguous plan is), and ``evaluate`` says so: its table looks like any other."""
    plan = tmp_path / "plan.json"
    assert run_placer("place", MOBILENET, "--solver", "dp", "-o", plan).exit_code == 0
    clean = run_placer("evaluate", MOBILENET, plan)
    assert clean.exit_code == 0 and "not contiguous" not in clean.stdout

    def first_op_to_the_last_stage(document):
        stages = document["stages"]
        stages[-1]["nodes"].append(stages[0]["nodes"].pop(0))

    _rewrite(plan, first_op_to_the_last_stage)
    edited = run_placer("evaluate", MOBILENET, plan, "--format", "json")
    assert edited.exit_code == 0, edited.stderr
    document = json.loads(edited.stdout)
    assert document["contiguous"] is False
    assert any(note.startswith("the plan is not contiguous") for note in document["notes"])
    assert "note: the plan is not contiguous" in run_placer("evaluate", MOBILENET, plan).stdout


def test_a_file_given_in_the_wrong_place_is_named_for_what_it_is(run_placer, tmp_path):
    """Arguments swapped, or a plan given as the model: one line that says what the file
    is (a fresh-clone audit got 'not UTF-8 text' and 'missing field maxSizePerFPGA')."""
    plan = tmp_path / "plan.json"
    assert run_placer("place", MOBILENET, "--solver", "greedy", "-o", plan).exit_code == 0
    one_line_error(run_placer("evaluate", MOBILENET, MOBILENET),
                   "mobilenet_v2.onnx: an ONNX model, not a plan file")  # fmt: skip
    one_line_error(run_placer("place", MOBILENET, "--cluster", MOBILENET),
                   "mobilenet_v2.onnx: an ONNX model, not a cluster file")  # fmt: skip
    one_line_error(run_placer("place", plan), "plan.json: a placer plan, not a model",
                   f"placer evaluate MODEL {plan}")  # fmt: skip


def test_a_plan_records_its_options_and_cluster(run_placer, tmp_path) -> None:
    from placer.costs.cluster_file import load_cluster
    from placer.provenance import read_cluster_document

    cluster = ROOT / "examples" / "2node_h100.yaml"
    plan = tmp_path / "plan.yaml"
    args = ("--mode", "training", "--dtype", "bf16", "--optimizer", "sgd",
            "--input-shape", "input=4,3,224,224", "--cluster", cluster)  # fmt: skip
    placed = run_placer("place", MOBILENET, *args, "--solver", "greedy", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    recorded = yaml.safe_load(plan.read_text())["provenance"]
    assert {key: recorded[key] for key in
            ("mode", "dtype", "optimizer", "batch_size", "input_shapes", "coarsen", "costs")} == {
        "mode": "training", "dtype": "bf16", "optimizer": "sgd", "batch_size": 4,
        "input_shapes": {"input": [4, 3, 224, 224]}, "coarsen": False, "costs": None,
    }  # fmt: skip
    assert recorded["fingerprint"].startswith("sha256:")
    assert read_cluster_document(recorded["cluster"], "plan") == load_cluster(cluster)
    evaluated = run_placer("evaluate", MOBILENET, plan, "--format", "json")
    assert evaluated.exit_code == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["provenance"] == recorded


CONTRADICTIONS = {
    "dtype": (["--dtype", "fp32"], "costed with --dtype fp16, and --dtype fp32 contradicts it"),
    "mode": (["--mode", "inference"], "--mode training, and --mode inference contradicts"),
    "optimizer": (["--optimizer", "sgd"], "--optimizer adam, and --optimizer sgd"),
    "batch": (["--batch-size", "2"], "--batch-size 8, and --batch-size 2 contradicts"),
    "shape": (["--input-shape", "input=2,3,224,224"],
              "--input-shape input=8,3,224,224, and --input-shape input=2,3,224,224"),
    "coarsen": (["--coarsen"], "costed with --no-coarsen, and --coarsen contradicts"),
}  # fmt: skip


@pytest.mark.parametrize(("flags", "fragment"), CONTRADICTIONS.values(), ids=CONTRADICTIONS.keys())
def test_an_option_that_contradicts_the_plan_is_refused(run_placer, tmp_path, flags, fragment):
    plan = tmp_path / "plan.json"
    made = ("--dtype", "fp16", "--mode", "training", "--input-shape", "input=8,3,224,224")
    placed = run_placer("place", MOBILENET, *made, "--solver", "greedy", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    for command, extra in (("evaluate", ()), ("report", ("--markdown", tmp_path / "r.md"))):
        line = one_line_error(run_placer(command, MOBILENET, plan, *flags, *extra), fragment)
        assert line.startswith(f"placer: error: {plan}: the plan was costed with"), line
        assert f"drop {flags[0]} to use the plan's, or place {MOBILENET} again with" in line
    assert not (tmp_path / "r.md").exists()


def test_a_plan_of_another_model_is_refused(run_placer, tmp_path) -> None:
    tiny, wider = _tiny_model(tmp_path / "tiny.onnx"), _tiny_model(tmp_path / "wide.onnx", 32)
    plan = tmp_path / "plan.json"
    assert run_placer("place", tiny, "--solver", "greedy", "-o", plan).exit_code == 0
    renamed = tmp_path / "copy.onnx"
    renamed.write_bytes(tiny.read_bytes())
    assert run_placer("evaluate", renamed, plan).exit_code == 0  # the file name is no part
    fingerprint = json.loads(plan.read_text())["provenance"]["fingerprint"]
    for command, extra in (("evaluate", ()), ("report", ("--markdown", tmp_path / "r.md")),
                           ("split", ("-o", tmp_path / "out"))):  # fmt: skip
        line = one_line_error(
            run_placer(command, wider, plan, *extra),
            f"{plan}: made for another model: the plan's fingerprint is {fingerprint[:19]} "
            f"('tiny'), {wider}'s is sha256:",
        )
        assert line.endswith(f"place {wider} for a plan of it"), line
    # a workload's plan is refused for another workload, and for an ONNX model
    workload_plan = tmp_path / "workload.json"
    assert run_placer("place", WORKLOAD, "--solver", "greedy", "-o", workload_plan).exit_code == 0
    other = REFERENCE / "layer-graphs/bert24_training.json"
    one_line_error(run_placer("evaluate", other, workload_plan), "made for another model")
    one_line_error(run_placer("evaluate", tiny, workload_plan), "made for another model")
    one_line_error(run_placer("evaluate", WORKLOAD, plan), "made for another model")


def test_a_cluster_given_must_be_the_plans(run_placer, tmp_path) -> None:
    cluster = tmp_path / "lab.yaml"
    cluster.write_text("devices:\n  - {type: t4, count: 2}\n  - {type: cpu}\n")
    plan = tmp_path / "plan.json"
    placed = run_placer("place", MOBILENET, "--cluster", cluster, "--solver", "greedy", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    max_load = json.loads(plan.read_text())["max_load"]
    # the same devices and links under another name are the same cluster
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text("name: our lab\n" + cluster.read_text())
    for given in ((), ("--cluster", cluster), ("--cluster", renamed)):
        result = run_placer("evaluate", MOBILENET, plan, *given, "--format", "json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["max_load"] == max_load
    cluster.write_text("devices:\n  - {type: t4, count: 4}\n  - {type: cpu}\n")
    line = one_line_error(
        run_placer("evaluate", MOBILENET, plan, "--cluster", cluster),
        f"{plan}: the plan was costed on cluster 'lab', and --cluster {cluster} describes "
        "another (group 't4' has count 4, not 2)",
    )
    assert line.endswith(f"drop --cluster to use the plan's own, or place {MOBILENET} "
                         f"--cluster {cluster} for a plan on it")  # fmt: skip
    # the cluster file is not needed: the plan carries it
    cluster.unlink()
    assert run_placer("evaluate", MOBILENET, plan).exit_code == 0


def test_measured_costs_must_be_the_plans(run_placer, tmp_path) -> None:
    model = _tiny_model(tmp_path / "tiny.onnx")
    costs = tmp_path / "costs.csv"
    costs.write_text("op,device,seconds\nmm1,a100-80gb,0.002\nrelu,cpu,0.001\n")
    plan = tmp_path / "plan.json"
    placed = run_placer("place", model, "--costs", costs, "--solver", "greedy", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    same = tmp_path / "costs.json"  # the same times in the other format
    same.write_text(json.dumps({"mm1": {"a100-80gb": 0.002}, "relu": {"cpu": 0.001}}))
    for given in (costs, same):
        result = run_placer("evaluate", model, plan, "--costs", given, "--format", "json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["max_load"] == json.loads(plan.read_text())["max_load"]
    one_line_error(run_placer("evaluate", model, plan), "costed with measured times (--costs, "
                   "fingerprint sha256:", "pass the same file with --costs")  # fmt: skip
    other = tmp_path / "other.csv"
    other.write_text("op,device,seconds\nmm1,a100-80gb,0.003\nrelu,cpu,0.001\n")
    one_line_error(run_placer("evaluate", model, plan, "--costs", other),
                   "costed with other measured times", f"than --costs {other} holds")  # fmt: skip
    estimated = tmp_path / "estimated.json"
    assert run_placer("place", model, "--solver", "greedy", "-o", estimated).exit_code == 0
    refused = run_placer("evaluate", model, estimated, "--costs", costs)
    one_line_error(refused, f"costed without measured times, and --costs {costs} contradicts")


def test_a_plan_without_provenance_is_read_as_it_stands(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    flags = ("--dtype", "fp16", "--batch-size", "4")
    assert run_placer("place", MOBILENET, *flags, "--solver", "greedy", "-o", plan).exit_code == 0
    made = json.loads(plan.read_text())
    _rewrite(plan, lambda d: d.pop("provenance"))
    result = run_placer("evaluate", MOBILENET, plan, *flags, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["max_load"] == made["max_load"]
    default = run_placer("evaluate", MOBILENET, plan, "--format", "json")  # today's defaults
    assert default.exit_code == 0, default.stderr
    assert json.loads(default.stdout)["samples_per_step"] == 1


def test_malformed_provenance_is_one_line(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    assert run_placer("place", MOBILENET, "--solver", "greedy", "-o", plan).exit_code == 0
    _rewrite(plan, lambda d: d["provenance"]["cluster"]["links"]["default"].update(bandwidth=0))
    one_line_error(run_placer("evaluate", MOBILENET, plan),
                   f"{plan}: provenance.cluster: links.default.bandwidth: expected a positive")
    _rewrite(plan, lambda d: d.update(provenance={"fingerprint": [1]}))
    one_line_error(run_placer("evaluate", MOBILENET, plan), "provenance.fingerprint: expected")
    # a batch size no option could have given is the plan's error, not an option's
    assert run_placer("place", MOBILENET, "--solver", "greedy", "-o", plan).exit_code == 0
    _rewrite(plan, lambda d: d["provenance"].update(batch_size=2**62))
    one_line_error(run_placer("evaluate", MOBILENET, plan),
                   "provenance.batch_size: expected an integer from 1 to 2,147,483,647")


# -- expert splits: each workload's own, no other -----------------------------------------

EXPERT_SPLITS = sorted((REFERENCE / "human-experts").glob("*.json"))
WORKLOADS = sorted((REFERENCE / "layer-graphs").glob("*.json")) + sorted(
    (REFERENCE / "operator-graphs").glob("*.json")
)


def _own(workload: Path, expert: Path) -> bool:
    """An expert split is its model's: inference or training (backward ops follow their
    forward op), as the paper pairs resnet50_training with the inference split."""
    model = expert.name.split("_")[0]
    return workload.parent.name == "layer-graphs" and workload.name.split("_")[0] == model and (
        "inference" in expert.name or "training" in workload.name
    )


@pytest.mark.parametrize("expert", EXPERT_SPLITS, ids=lambda p: p.stem)
@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_an_expert_split_is_scored_for_its_own_workload_only(run_placer, workload, expert):
    result = run_placer("evaluate", workload, expert, "--format", "json")
    if _own(workload, expert):
        assert result.exit_code == 0, result.stderr
    else:
        one_line_error(result, f"{expert}: ")


def test_every_published_expert_pairing_is_own() -> None:
    for workload, (expert, _) in EXPECTED["expert"].items():
        assert _own(REFERENCE / f"{workload}.json", REFERENCE / expert), workload


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d["fpgas"][0]["nodes"].pop(), "is in no stage; a plan names every forward op"),
        (lambda d: d["fpgas"][0]["nodes"].append(33), "backward node 34 is in no stage"),
    ],
    ids=["forward left out", "some backward ops"],
)
def test_an_expert_split_names_every_forward_op_and_all_backward_ops_or_none(
    run_placer, tmp_path, change, fragment
) -> None:
    document = json.loads((REFERENCE / "human-experts/bert24_inference_expert.json").read_text())
    change(document)
    plan = tmp_path / "expert.json"
    plan.write_text(json.dumps(document))
    one_line_error(run_placer("evaluate", REFERENCE / "layer-graphs/bert24_training.json", plan),
                   fragment, "is the plan for another model or workload?")  # fmt: skip


# -- hostile shapes -------------------------------------------------------------------------

HOSTILE = {
    "node a list": ({"stages": [{"device": "accel:0", "nodes": [[1, 2]]}]},
                    "stages[0].nodes[0]: expected a node id (an integer) or name (a string), "
                    "got a list of 2"),
    "node an object": ({"stages": [{"device": "accel:0", "nodes": [{"id": 1}]}]},
                       "stages[0].nodes[0]: expected a node id", "got a mapping"),
    "node a float": ({"stages": [{"device": "accel:0", "nodes": [1.0]}]}, "got 1.0"),
    "node a bool": ({"stages": [{"device": "accel:0", "nodes": [True]}]}, "got True"),
    "node 5000 digits": ({"stages": [{"device": "accel:0", "nodes": ["1" * 5000]}]},
                         "node '11111", "... is not in"),
    "node a unicode digit": ({"stages": [{"device": "accel:0", "nodes": ["²"]}]},
                             "node '²' is not in"),
    "device a list": ({"stages": [{"device": ["accel:0"], "nodes": [1]}]},
                      "stages[0].device a list of 1 is not a device of this problem"),
    "device an object": ({"stages": [{"device": {"a": 1}, "nodes": [1]}]},
                         "stages[0].device a mapping is not a device"),
    "device null": ({"stages": [{"device": None, "nodes": [1]}]}, "device nothing is not"),
    "stage a list": ({"stages": [["accel:0", [1]]]}, "stages[0] needs 'device' and 'nodes'"),
    "stage a string": ({"stages": ["accel:0"]}, "stages[0] needs 'device' and 'nodes', got"),
    "stages an object": ({"stages": {"device": "accel:0"}}, "'stages' must be a list, got a"),
    "nodes a string": ({"stages": [{"device": "accel:0", "nodes": "1,2"}]},
                       "stages[0].nodes must be a list, got '1,2'"),
    "nodes an object": ({"stages": [{"device": "accel:0", "nodes": {"1": 2}}]},
                        "stages[0].nodes must be a list, got a mapping"),
    "a device twice": ({"stages": [{"device": "accel:0", "nodes": [1]}] * 3},
                       "stages[1].device 'accel:0' is already stages[0]'s"),
    "a huge node list": ({"stages": [{"device": "accel:0", "nodes": [1] * 1_000_000}]},
                         "node 1 is placed twice"),
    "a huge stage list": ({"stages": [{"device": "accel:0", "nodes": []}] * 1_000_000},
                          "is already stages[0]'s"),
    "expert machine a list": ({"fpgas": [[1, 2]]}, "fpgas[0] needs 'nodes', got a list of 2"),
    "expert node a list": ({"fpgas": [{"nodes": [[1]]}]}, "fpgas[0].nodes[0]: expected"),
    "expert fpgas a string": ({"fpgas": "all"}, "'fpgas' must be a list, got 'all'"),
}  # fmt: skip


@pytest.mark.parametrize(("document", "fragments"), [(d, f) for d, *f in HOSTILE.values()],
                         ids=HOSTILE.keys())  # fmt: skip
def test_a_hostile_plan_is_one_line(run_placer, tmp_path, document, fragments) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(document))
    line = one_line_error(run_placer("evaluate", WORKLOAD, plan), f"{plan}: ", *fragments)
    assert len(line) < 400, line


def test_the_library_treats_options_set_as_given(run_placer, tmp_path) -> None:
    from placer import api as app
    from placer.errors import PlanFormatError

    plan = tmp_path / "plan.json"
    flags = ("--dtype", "fp16", "--solver", "greedy", "-o", plan)
    assert run_placer("place", MOBILENET, *flags).exit_code == 0
    problem, _ = app.load_plan(MOBILENET, plan)
    assert problem.provenance.costing.dtype == "fp16"
    with pytest.raises(PlanFormatError, match="--dtype fp16, and --dtype bf16 contradicts"):
        app.load_plan(MOBILENET, plan, app.ModelOptions(dtype="bf16"))


def test_a_tf32_plan_is_recorded_and_held_to_it(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    flags = ("--dtype", "tf32", "--solver", "greedy", "-o", plan)
    assert run_placer("place", MOBILENET, *flags).exit_code == 0
    assert json.loads(plan.read_text())["provenance"]["dtype"] == "tf32"
    evaluated = run_placer("evaluate", MOBILENET, plan, "--format", "json")
    assert evaluated.exit_code == 0, evaluated.stderr
    one_line_error(
        run_placer("evaluate", MOBILENET, plan, "--dtype", "fp32"),
        "costed with --dtype tf32, and --dtype fp32 contradicts it",
    )


def test_a_coarsened_plan_is_scored_on_the_model_itself(run_placer, tmp_path) -> None:
    """--coarsen only helps the search: the plan's figures are the model's own, and an
    edited plan that separates merged nodes is still a plan of the model."""
    from placer import api as app
    from placer.evaluator import evaluate

    plan = tmp_path / "plan.json"
    placed = run_placer("place", MOBILENET, "--coarsen", "--solver", "greedy", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    document = json.loads(plan.read_text())
    model = app.load_problem(MOBILENET, app.ModelOptions())  # no coarsening
    problem, placement = app.load_plan(MOBILENET, plan)
    assert len(problem.ops) == len(model.ops)
    assert evaluate(model, placement).max_load == document["max_load"]
    assert document["provenance"]["coarsen"] is True
    assert not document["optimal"]
    # move the last node of a merged group to another stage: still the model's plan
    coarse = app.load_problem(MOBILENET, app.ModelOptions(coarsen=True))
    merged = next(op.input_nodes for op in coarse.ops if len(op.input_nodes) > 1)
    (holder,) = [s for s, stage in enumerate(document["stages"]) if merged[-1] in stage["nodes"]]
    document["stages"][holder]["nodes"].remove(merged[-1])
    document["stages"][holder - 1 if holder else 1]["nodes"].append(merged[-1])
    plan.write_text(json.dumps(document))
    result = run_placer("evaluate", MOBILENET, plan, "--format", "json")
    assert result.exit_code == 0, result.stderr
    _, edited = app.load_plan(MOBILENET, plan)
    assert json.loads(result.stdout)["max_load"] == evaluate(model, edited).max_load


@pytest.mark.parametrize("mode", ["inference", "training"])
def test_a_coarsened_search_charges_what_the_model_is_charged(mode) -> None:
    """A merged op costs the sum of its members' times (the roofline of its summed
    figures charged one per-op overhead for all: Mistral was searched at a quarter of
    its time, audit), so the search scores each stage's compute as the model's
    evaluation does (its transfers differ by the link latency of tensors a merged op
    sends together), and the solver's notes, which speak of the merged ops, say so."""
    from placer import api as app
    from placer.evaluator import evaluate

    gpt2 = ROOT / "sample_models" / "gpt2_small.onnx"
    options = app.ModelOptions(coarsen=True, mode=app.Mode(mode),
                               input_shapes={"input_ids": (2, 64)},
                               cluster=app.load_cluster(ROOT / "examples" / "4xa100.yaml"))
    searched, model = app.load_searched_and_model(gpt2, options)
    assert len(searched.ops) < len(model.ops) / 2
    times = {op.key: op.latency for op in model.ops}
    for op in searched.ops:
        members = [times[key] for key in op.input_nodes]
        assert op.latency == pytest.approx([sum(t) for t in zip(*members, strict=True)])
    result = app.place(searched, "dp")
    scored = app.on_the_model(result, model)
    searched_stages = evaluate(searched, result.placement).stages
    model_stages = evaluate(model, scored.placement).stages
    assert [s.compute for s in searched_stages] == pytest.approx(
        [s.compute for s in model_stages], rel=1e-12)
    assert scored.max_load == pytest.approx(result.max_load, rel=0.01)
    assert scored.max_load == evaluate(model, scored.placement).max_load
    solver_notes = [n for n in scored.notes if n not in searched.notes]
    assert solver_notes and all(n.startswith(("on the merged ops: ", "--coarsen: "))
                                for n in solver_notes)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("plan.json", b'{"stages": [{"device": "accel:0", "nodes": [NaN]}]}',
         "plan.json:1:45: not valid JSON: NaN is not a number JSON allows"),
        ("plan.json", b"[" * 200 + b"]" * 200, "plan.json: not valid JSON: nested 200 levels"),
        ("plan.json", b'{"stages": "caf\xe9"}', "plan.json:1: not UTF-8 text (byte 0xe9"),
        ("plan.yaml", b"stages:\n  - device: accel:0\n    nodes: [.nan]\n",
         "plan.yaml:3: stages[0].nodes[0]: '.nan' is not a finite number"),
        ("plan.yaml", b"stages: 2001-02-30\n",
         "plan.yaml:1: stages: '2001-02-30' cannot be read as a date or time"),
        ("plan.yaml", b"stages: " + b"[" * 200 + b"]" * 200,
         "plan.yaml:1: nested more than 64 levels deep"),
    ],
    ids=["json-nan", "json-deep", "not-utf8", "yaml-nan", "yaml-date", "yaml-deep"],
)  # fmt: skip
def test_plans_are_read_strictly(run_placer, tmp_path, name, data, fragment) -> None:
    plan = tmp_path / name
    plan.write_bytes(data)
    one_line_error(run_placer("evaluate", WORKLOAD, plan), fragment)


def test_a_plan_that_is_no_regular_file_is_refused_at_once(run_placer, tmp_path) -> None:
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)  # reading it would block until a writer comes
    one_line_error(run_placer("evaluate", WORKLOAD, fifo), "is a FIFO (named pipe), not a plan")
    one_line_error(run_placer("check", "/dev/zero"), "is a character device, not a plan file")
