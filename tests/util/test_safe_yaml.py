"""YAML read safely: every construction error is one ``FILE:LINE: field.path: why`` line."""

from __future__ import annotations

import pytest

from placer.errors import ClusterSpecError
from placer.util.inputs import MAX_DEPTH
from placer.util.safe_yaml import load_yaml


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
    assert data["a"] == "2001-12-14"  # as written: no field holds a date
    assert data["b"] == [1, 2.5, True, None, ".inf", "1e400"]  # YAML 1.1: 1e400 is a string
    assert lines[("b", 1)] == 2


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a: 1:30\n", "f.yaml:1: a: write 90 in decimal, not '1:30'"),
        ("a: -1:30:00\n", "f.yaml:1: a: write -5400 in decimal, not '-1:30:00'"),
        ("a:\n  b: 0x1F\n", "f.yaml:2: a.b: write 31 in decimal, not '0x1F'"),
        ("a: [0b101]\n", "f.yaml:1: a[0]: write 5 in decimal, not '0b101'"),
        ("a: 017\n", "f.yaml:1: a: write 15 in decimal, not '017' (YAML reads a leading 0 "
         "as octal)"),
        ("a: 1_000\n", "f.yaml:1: a: write 1000 in decimal, not '1_000'"),
        ("a: 1:30.5\n", "f.yaml:1: a: write 90.5 in decimal, not '1:30.5'"),
        ("a: 1_000.5\n", "f.yaml:1: a: write 1000.5 in decimal, not '1_000.5'"),
        ("a: !!int '0x10'\n", "f.yaml:1: a: write 16 in decimal, not '0x10'"),
        ("a: !!float 1_0\n", "f.yaml:1: a: write 10.0 in decimal, not '1_0'"),
    ],
    ids=["sexagesimal", "sexagesimal-negative", "hex", "binary", "octal", "underscore",
         "float-sexagesimal", "float-underscore", "tagged-hex", "tagged-float"],
)  # fmt: skip
def test_numbers_must_be_plain_decimal(text, says) -> None:
    # YAML 1.1 reads all these as numbers; nobody writing a count or a size means them
    with pytest.raises(ClusterSpecError) as info:
        load(text)
    assert str(info.value) == says


def test_decimal_numbers_read_as_before() -> None:
    data, _ = load(
        "a: [0, -0, +3, 12, 1.5, .5, 2., 1.0e+10, 1.0e-05, !!float 1e3, !!int '7', 00]\n"
    )
    assert data["a"] == [0, 0, 3, 12, 1.5, 0.5, 2.0, 1e10, 1e-5, 1000.0, 7, 0]
    # what resolves to a string stays one: YAML 1.1 has no 0o prefix, and 1e5 needs a point
    data, _ = load("a: [0o17, 1e5, '1:30', \uff12]\n")
    assert data["a"] == ["0o17", "1e5", "1:30", "\uff12"]


def test_placer_yaml_numbers_read_back() -> None:
    # what PyYAML writes for placer's figures is plain decimal
    import yaml

    figures = {"a": 1e-05, "b": 2.5e21, "c": 2**53, "d": -3.0, "e": 0.1, "f": 1e16}
    data, _ = load(yaml.safe_dump(figures))
    assert data == figures


def test_a_date_or_time_reads_as_the_text_written() -> None:
    data, _ = load("a: 2001-12-01\nb: 2001-12-14t21:59:43.10-05:00\nc: !!timestamp 2002-1-1\n")
    assert data == {"a": "2001-12-01", "b": "2001-12-14t21:59:43.10-05:00", "c": "2002-1-1"}
