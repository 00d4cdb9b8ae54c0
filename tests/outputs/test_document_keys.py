"""The README's JSON key table names every key a plan document holds."""

from __future__ import annotations

import re

from placer.api import ModelOptions, load_problem, place, with_simulation
from tests.conftest import ROOT


def _keys(value, found: set[str]) -> set[str]:
    """Every key of every object in ``value``, nested ones included, except under
    ``stats`` (the solver's own figures) and ``provenance.cluster`` (docs/cluster.md's
    format)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            found.add(key)
            if key not in ("stats", "cluster", "input_shapes"):
                _keys(inner, found)
    elif isinstance(value, list):
        for inner in value:
            _keys(inner, found)
    return found


def test_every_key_of_a_plan_is_in_the_readme():
    options = ModelOptions(input_shapes={"input_ids": (8, 128)})
    problem = load_problem(ROOT / "sample_models" / "gpt2_small.onnx", options)
    document = with_simulation(place(problem, "dp"), 4).to_dict()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### JSON output", 1)[1].split("\n### ", 1)[0]
    spans = re.findall(r"`([^`]+)`", section)
    named = {word for span in spans for word in re.findall(r"[a-z_]+", span)}
    assert _keys(document, set()) - named == set()
    assert len(_keys(document, set())) > 40
