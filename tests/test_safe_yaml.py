"""YAML read safely: every construction error is one ``FILE:LINE: field.path: why`` line."""

from __future__ import annotations

import pytest

from placer.errors import ClusterSpecError
from placer.inputs import MAX_DEPTH
from placer.safe_yaml import load_yaml


def load(text: str):
    return load_yaml(text, "f.yaml", error=ClusterSpecError, what="a file", empty="a mapping")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a:\n  b: 2001-13-45\n",
         "f.yaml:2: a.b: '2001-13-45' cannot be read as a date or time (month must be in 1..12)"),
        ("a: 0000-01-01\n", "f.yaml:1: a: '0000-01-01' cannot be read as a date or time (year 0"),
        ("a: !!timestamp 2001-01-01 10:00:00 +99:00\n", "f.yaml:1: a: '2001-01-01 10:00:00 +99:00' "
         "cannot be read as a date or time"),
        ("a: !!timestamp soon\n", "f.yaml:1: a: 'soon' cannot be read as a date or time"),
        ("a: [1, !!float abc]\n", "f.yaml:1: a[1]: 'abc' cannot be read as a number"),
        ("a: !!bool maybe\n", "f.yaml:1: a: 'maybe' cannot be read as true or false"),
        ("a: !!int 0x\n", "f.yaml:1: a: '0x' cannot be read as an integer"),
        ("a: " + "9" * 5000 + "\n", "cannot be read as an integer (an integer with too many"),
        ("a: 1" + "0" * 400 + "\n", "f.yaml:1: a: '1000"),
        ("a: 1.0e+400\n", "f.yaml:1: a: '1.0e+400' is not a finite number"),
        ("x: 1\na: .inf\n", "f.yaml:2: a: '.inf' is not a finite number"),
        ("a: [-.inf]\n", "f.yaml:1: a[0]: '-.inf' is not a finite number"),
        ("a: .nan\n", "f.yaml:1: a: '.nan' is not a finite number"),
        ("a: !!int [1]\n", "f.yaml:1: a: tag !!int cannot be given to a list"),
        ("a: !!map [1]\n", "f.yaml:1: a: tag !!map cannot be given to a list"),
        ("a: !!str {b: 1}\n", "f.yaml:1: a: tag !!str cannot be given to a mapping"),
        ("x: 1\na: b\x00c\n", "f.yaml:2: not valid YAML: character #x0000 is not allowed"),
        ("a: \x1b[2J\n", "f.yaml:1: not valid YAML: character #x001b is not allowed"),
        ("a: \ud800\n", "f.yaml:1: not valid YAML: character #xd800 is not allowed"),
    ],
    ids=[
        "bad-month", "year-zero", "bad-offset", "timestamp-word", "float-word", "bool-word",
        "int-prefix-only", "int-digits", "int-past-float", "float-overflow", "inf", "minus-inf",
        "nan", "int-tag-on-list", "map-tag-on-list", "str-tag-on-mapping", "nul", "escape",
        "lone-surrogate",
    ],
)  # fmt: skip
def test_construction_errors_are_one_line_with_line_and_field(text, says) -> None:
    with pytest.raises(ClusterSpecError) as info:
        load(text)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("f.yaml:")
    assert says in message


def test_nesting_up_to_the_cap_is_read() -> None:
    # the same count as JSON's: the root is the first level
    data, _ = load("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n")
    assert isinstance(data["a"], list)
    block = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH))
    data, _ = load(block + "  " * MAX_DEPTH + "1\n")
    assert data["k0"]["k1"] is not None


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n",
        "a: " + "[" * 5000 + "]" * 5000 + "\n",
        "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 2)),
    ],
    ids=["one-too-deep", "flow-5000-deep", "block-mappings"],
)
def test_nesting_past_the_cap_is_refused_before_recursion_runs_out(text) -> None:
    with pytest.raises(ClusterSpecError, match=f"nested more than {MAX_DEPTH} levels deep"):
        load(text)


def test_aliases_cannot_nest_past_the_cap() -> None:
    # each anchor is shallow, but expanding the aliases nests 200 levels deep
    text = "- &a0 [1]\n" + "".join(f"- &a{i} [*a{i - 1}]\n" for i in range(1, 200))
    with pytest.raises(ClusterSpecError) as info:
        load(text)
    message = str(info.value)
    assert f"nested more than {MAX_DEPTH} levels deep once aliases are expanded" in message
    assert len(message) < 200  # the field path is cut short


def test_ordinary_scalars_still_construct() -> None:
    data, lines = load("a: 2001-12-14\nb: [1, 2.5, true, null, '.inf', 1e400]\n")
    assert str(data["a"]) == "2001-12-14"
    assert data["b"] == [1, 2.5, True, None, ".inf", "1e400"]  # YAML 1.1: 1e400 is a string
    assert lines[("b", 1)] == 2
