"""Quantities as people write them, and the mistakes they make."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placer.util.units import (
    MAX_BYTES,
    Range,
    format_bytes,
    format_bytes_apart,
    parse_bandwidth,
    parse_bytes,
    parse_flops,
    parse_fraction,
    parse_integer,
    parse_number,
    parse_time,
)

GiB = 2**30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80GiB", 80 * GiB),
        ("40GB", 40e9),
        ("512MiB", 512 * 2**20),
        ("1.5TB", 1.5e12),
        ("4096", 4096),
        (4096, 4096),
        (1.5e9, 1.5e9),
        ("16 GiB", 16 * GiB),
        ("2kB", 2000),
        ("2KiB", 2048),
        ("100 bytes", 100),
    ],
)
def test_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("312TFLOPS", 312e12),
        ("19.5 TFLOP/s", 19.5e12),
        ("1e12", 1e12),
        ("900 GFLOPS", 900e9),
        ("65 tflops", 65e12),
        ("2.5e3GFLOPS", 2.5e12),
        (7, 7.0),
    ],
)
def test_flops(text, expected):
    assert parse_flops(text) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("600GB/s", 600e9),
        ("64 GB/s", 64e9),
        ("1.6TB/s", 1.6e12),
        ("25Gbps", 25e9 / 8),
        ("25Gb/s", 25e9 / 8),
        ("100Gbit/s", 100e9 / 8),
        ("32GBps", 32e9),
        ("12GiB/s", 12 * GiB),
        ("5e9", 5e9),
    ],
)
def test_bandwidth(text, expected):
    assert parse_bandwidth(text) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5us", 5e-6),
        ("5µs", 5e-6),  # micro sign U+00B5
        ("5μs", 5e-6),  # Greek mu U+03BC
        ("2ms", 2e-3),
        ("1s", 1.0),
        ("100ns", 1e-7),
        ("0", 0.0),
        (0.25, 0.25),
    ],
)
def test_time(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("0.6", 0.6), (0.6, 0.6), ("60%", 0.6), (1, 1.0)])
def test_fraction(text, expected):
    assert parse_fraction(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("parse", "value", "says"),
    [
        (parse_bytes, "-3GB", "positive"),
        (parse_bytes, 0, "positive"),
        (parse_bytes, "lots", "got 'lots'"),
        (parse_bytes, "10Gb", "bits"),
        (parse_bytes, "80gb", "GB for bytes"),
        (parse_bytes, "80 GHz", "size"),
        (parse_bytes, "64GB/s", "size"),
        (parse_bytes, True, "got True"),
        (parse_bytes, None, "got nothing"),
        (parse_bytes, "nan", "size"),
        (parse_bytes, math.inf, "not finite"),
        (parse_bytes, "1e308PB", "too large"),
        (parse_flops, "0TFLOPS", "positive"),
        (parse_flops, "312TB", "rate"),
        (parse_flops, "-1", "positive"),
        (parse_bandwidth, "25GB", "add /s"),
        (parse_bandwidth, "5us", "bandwidth"),
        (parse_bandwidth, "-1GB/s", "positive"),
        (parse_time, "-5us", "non-negative"),
        (parse_time, "5 parsecs", "time"),
        (parse_time, "5GB", "time"),
        (parse_fraction, "150%", "at most 1"),
        (parse_fraction, 1.01, "at most 1"),
        (parse_fraction, 0, "positive"),
        (parse_fraction, "60 percent", "fraction"),
    ],
)
def test_rejects(parse, value, says):
    with pytest.raises(ValueError, match="expected") as info:
        parse(value)
    assert says in str(info.value)
    assert "\n" not in str(info.value)


def test_zero_allowed_only_when_asked():
    assert parse_bytes(0, allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="positive"):
        parse_time(0, allow_zero=False)


@given(st.floats(min_value=1e-3, max_value=1e6, allow_nan=False))
def test_units_scale_consistently(x):
    text = repr(x)
    assert parse_bytes(f"{text}GiB") == pytest.approx(parse_bytes(f"{text}MiB") * 1024)
    assert parse_bandwidth(f"{text}Gbps") == pytest.approx(parse_bandwidth(f"{text}GB/s") / 8)
    assert parse_time(f"{text}ms") == pytest.approx(parse_time(f"{text}us") * 1000)
    assert parse_flops(f"{text}TFLOPS") == pytest.approx(parse_flops(f"{text}GFLOPS") * 1000)


@pytest.mark.parametrize(
    ("value", "text"),
    [(65966720, "62.9 MiB"), (16 * GiB, "16 GiB"), (1536, "1.5 KiB"), (500, "500 B"),
     (1.5, "1.5 B"), (0, "0 B"), (3 * 2**40, "3 TiB"), (math.inf, "unbounded")],
)  # fmt: skip
def test_format_bytes(value, text) -> None:
    assert format_bytes(value) == text


@given(st.floats(1, 2**50))
def test_format_bytes_parses_back_within_rounding(value) -> None:
    assert parse_bytes(format_bytes(value).replace(" ", "")) == pytest.approx(value, rel=5e-3)


def test_exabytes_and_their_format() -> None:
    assert parse_bytes("1EiB") == 2**60 and parse_bytes("2EB") == 2e18
    assert format_bytes(2**53) == "8 PiB" and format_bytes(3 * 2**60) == "3 EiB"


@pytest.mark.parametrize("parse", [parse_bytes, parse_flops, parse_bandwidth, parse_time])
def test_an_integer_past_the_float_range_is_refused_not_raised(parse) -> None:
    with pytest.raises(ValueError, match="too large") as info:
        parse(10**400)
    assert len(str(info.value)) < 300  # the 400 digits are cut short


@pytest.mark.parametrize(
    ("bounds", "inside", "outside"),
    [
        (Range(1e3, 1e21, "FLOP/s"), [1e3, 312e12, 1e21], [999.0, 1e-20, 2e21, 0.0]),
        (Range(1e-12, 86400, "s", zero=True), [0, 0.0, 1e-12, 5e-6, 86400],
         [5e-324, 1e-13, 86401, -1e-12]),
        (Range(0, 1e6, "s", low_open=True), [1e-9, 1e6], [0.0, -1.0, 1.1e6]),
        (Range(1, 10**12), [1, 10**12], [0, 10**12 + 1, 10**400]),
    ],
)  # fmt: skip
def test_a_range_holds_what_it_says(bounds, inside, outside) -> None:
    for value in inside:
        assert value in bounds and bounds.check(value) == value
    for value in [*outside, math.nan, math.inf, -math.inf, True, "1", None]:
        assert value not in bounds
        with pytest.raises(ValueError, match="out of range"):
            bounds.check(value)


def test_a_range_says_itself() -> None:
    assert str(Range(1e3, 1e21, "FLOP/s")) == "from 1000 to 1e+21 FLOP/s"
    assert str(Range(1e-12, 86400, "s", zero=True)) == "0, or from 1e-12 to 86400 s"
    assert str(Range(0, 1e6, "s", low_open=True)) == "over 0, at most 1e+06 s"
    assert str(Range(1, MAX_BYTES, show=format_bytes)) == "from 1 B to 8 PiB"
    with pytest.raises(ValueError, match=r"^1e-20TFLOPS is out of range \(from 1000 to"):
        Range(1e3, 1e21, "FLOP/s").check(1e-8, "1e-20TFLOPS")


@pytest.mark.parametrize(
    ("parse", "value"),
    [
        (parse_bytes, "\u0661\u0662GB"),  # Arabic-Indic 12: float() takes it
        (parse_bytes, "\uff12GiB"),  # fullwidth 2
        (parse_flops, "\u096a TFLOPS"),  # Devanagari 4
        (parse_bandwidth, "1_000GB/s"),
        (parse_time, "5\u0660us"),
        (parse_fraction, "\u0660.5"),
    ],
    ids=["arabic-indic", "fullwidth", "devanagari", "underscore", "mixed", "fraction"],
)
def test_numbers_in_text_are_ascii_decimal(parse, value) -> None:
    with pytest.raises(ValueError, match="expected") as info:
        parse(value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "number"), [("12", 12.0), (" -0.5 ", -0.5), (".5", 0.5), ("1.5e-3", 1.5e-3),
                         ("+2E3", 2000.0), ("7.", 7.0)],
)  # fmt: skip
def test_parse_number_reads_decimal(text, number) -> None:
    assert parse_number(text) == number


@pytest.mark.parametrize(
    "text", ["\u0661\u0662", "1_000", "0x10", "nan", "inf", "infinity", "1e400", "", "1 2",
             "\uff12", "1,5"],
)  # fmt: skip
def test_parse_number_refuses_all_else(text) -> None:
    with pytest.raises(ValueError):
        parse_number(text)


@pytest.mark.parametrize("text", ["\u0662", "\uff12", "1_0", "1.0", "1e3", "0x10", "", "9" * 5000])
def test_parse_integer_refuses_what_int_would_take(text) -> None:
    assert parse_integer(" 128 ") == 128 and parse_integer("-3") == -3
    with pytest.raises(ValueError):
        parse_integer(text)


MEMORY = Range(1, MAX_BYTES, show=format_bytes)


@pytest.mark.parametrize(
    "value",
    [MAX_BYTES + 1, str(MAX_BYTES + 1), f"{MAX_BYTES + 1} B", f"{MAX_BYTES + 1}bytes",
     f"{2**43 + 1}KiB", "9007199254740993"],
)  # fmt: skip
def test_whole_numbers_are_held_to_a_range_before_rounding(value) -> None:
    # 2**53 + 1 rounds to 2**53 as a float, which is in range: checked exactly, it is not
    assert float(MAX_BYTES + 1) in MEMORY
    with pytest.raises(ValueError, match=r"is out of range \(from 1 B to 8 PiB\)"):
        parse_bytes(value, within=MEMORY)


def test_values_in_range_pass_the_range_unchanged() -> None:
    assert parse_bytes(MAX_BYTES, within=MEMORY) == 2.0**53
    assert parse_bytes("8PiB", within=MEMORY) == 2.0**53
    assert parse_flops("312TFLOPS", within=Range(1e3, 1e21)) == 312e12
    assert parse_time("2ms", within=Range(1e-12, 86_400, zero=True)) == 0.002
    assert parse_fraction("60%", within=Range(1e-3, 1)) == 0.6
    with pytest.raises(ValueError, match=r"^1e-20TFLOPS is out of range"):
        parse_flops("1e-20TFLOPS", within=Range(1e3, 1e21))
    with pytest.raises(ValueError, match=r"^86401000ms is out of range"):
        parse_time("86401000ms", within=Range(1e-12, 86_400, zero=True))


@pytest.mark.parametrize(
    ("values", "texts"),
    [
        ((256 * GiB + 1, 256 * GiB), ("256.000000001 GiB", "256 GiB")),
        ((256 * GiB, 256 * GiB), ("256 GiB", "256 GiB")),
        ((3e9, GiB), ("2.79 GiB", "1 GiB")),
        ((2**53 + 2**20, 2**53), ("8.000000001 PiB", "8 PiB")),
        ((1023.9 * 2**20, GiB), ("1024 MiB", "1 GiB")),
    ],
)  # fmt: skip
def test_figures_compared_in_a_message_read_differently(values, texts) -> None:
    assert format_bytes_apart(*values) == texts


@given(st.floats(1, 2**60), st.floats(1, 2**60))
def test_different_amounts_never_read_the_same(a, b) -> None:
    first, second = format_bytes_apart(a, b)
    assert (first == second) == (a == b)
