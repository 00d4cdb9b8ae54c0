"""Fuzz the readers of text files: cluster YAML, workload JSON and measured costs
(CSV or JSON), each built by a grammar, edited at random paths and bent at the byte
level."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import case_dir, check_case, fuzz_settings
from tests.fuzz.models import tiny_bytes
from tests.fuzz.strategies import cluster_files, cost_files, workload_files

#: Output formats, JSON most often (it is what scripts parse).
FORMATS = st.sampled_from(["json", "json", "table", "yaml"])


@fuzz_settings(150)
@given(cluster=cluster_files(), solver=st.sampled_from(["dp", "dp", "greedy", "auto"]), fmt=FORMATS)
def test_cluster_files(run_placer, tmp_path, cluster, solver, fmt):
    """``place --cluster FILE`` with a cluster file that may be anything from valid to
    hostile (tags, aliases, dates, absurd figures, odd names, BOMs, bad bytes)."""
    with case_dir(tmp_path) as root:
        model, path = root / "chain.onnx", root / "cluster.yaml"
        model.write_bytes(tiny_bytes("chain.onnx"))
        path.write_bytes(cluster)
        check_case(
            run_placer, root, "place", model, "--cluster", path, "--solver", solver,
            "--time-limit", "2", "--format", fmt, json_stdout=fmt == "json", inputs=[path],
        )  # fmt: skip


@fuzz_settings(150)
@given(
    workload=workload_files(), command=st.sampled_from(["place", "place", "compare"]), fmt=FORMATS
)
def test_workload_files(run_placer, tmp_path, workload, command, fmt):
    """``place`` and ``compare`` of a workload file edited at random paths."""
    with case_dir(tmp_path) as root:
        path = root / "workload.json"
        path.write_bytes(workload)
        if command == "place":
            args = ("place", path, "--solver", "dp", "--format", fmt)
        else:
            fmt = "table" if fmt == "yaml" else fmt  # compare has no YAML
            args = ("compare", path, "--solvers", "dp,greedy,single,pipedream", "--format", fmt)
        check_case(run_placer, root, *args, json_stdout=fmt == "json", inputs=[path])


@fuzz_settings(100)
@given(costs=cost_files())
def test_cost_files(run_placer, tmp_path, costs):
    """``place --costs FILE`` with measured times in CSV or JSON, valid or hostile."""
    suffix, data = costs
    with case_dir(tmp_path) as root:
        model, path = root / "chain.onnx", root / f"costs{suffix}"
        model.write_bytes(tiny_bytes("chain.onnx"))
        path.write_bytes(data)
        check_case(
            run_placer, root, "place", model, "--costs", path, "--solver", "dp",
            "--format", "json", json_stdout=True, inputs=[path],
        )  # fmt: skip
