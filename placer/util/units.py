"""Quantities as people write them: ``80GiB``, ``312TFLOPS``, ``25Gbps``, ``5us``, ``60%``.

Every parser takes a number (already in the base unit: bytes, FLOP/s, bytes/s, seconds)
or a string of a number and an optional unit, and returns a ``float`` in the base unit.
A bad value raises :class:`ValueError` whose message says what was expected and what was
given; callers that know where the value came from (the cluster loader) add the file,
line and field.

Notes
-----
SI prefixes are decimal (``k`` = 1e3, ``M`` = 1e6, ``G`` = 1e9, ``T`` = 1e12, ``P`` = 1e15,
``E`` = 1e18; ``K`` is accepted for ``k``); IEC prefixes are binary (``Ki`` = 2**10,
``Mi`` = 2**20, ``Gi`` = 2**30, ``Ti`` = 2**40, ``Pi`` = 2**50, ``Ei`` = 2**60).  ``B`` is a
byte and ``b`` a bit, so ``25Gbps`` is 25e9 / 8 bytes/s; a unit that could be either
(``gb``) is refused rather than guessed.

Numbers are read from text in ASCII decimal only: an optional sign, digits, a decimal
point and an exponent (:data:`DECIMAL`). Python's ``float`` and ``int`` take more
(``١٢``, ``1_000``, ``infinity``), which no file or option of placer means.

The parsers only check that a value is a finite, non-negative quantity of the right
kind; what range a field accepts is the field's business (:class:`Range`, used by
:mod:`placer.costs.cluster`, :mod:`placer.frontends.workload`, the measured costs and the
options). A range passed to a parser (``within``) is checked before the value becomes a float, so
that a whole number is held to it exactly: ``9007199254740993`` bytes is over 8 PiB
(2**53), though as a float it rounds to 2**53.

The quantity parsers (:func:`parse_bytes`, :func:`parse_flops`, :func:`parse_bandwidth`,
:func:`parse_time`, :func:`parse_fraction`) share two keywords: ``allow_zero``, whether
``0`` is a valid answer, and ``within``, the field's :class:`Range`. Each raises
:class:`ValueError` for a value that is not a number, is negative (or zero unless
allowed), has a unit of another kind, or is out of ``within``.

Examples
--------
>>> parse_number(" 1.5e-3 "), parse_integer("+128")
(0.0015, 128)
>>> parse_number("1_000")
Traceback (most recent call last):
...
ValueError: expected a number in decimal digits, got '1_000'
>>> parse_integer("٢")
Traceback (most recent call last):
...
ValueError: expected an integer in decimal digits, got '٢'
>>> parse_bytes("80GiB") == 80 * 2**30, parse_bytes("1.5TB")
(True, 1500000000000.0)
>>> parse_flops("19.5 TFLOP/s"), parse_flops("1e12")
(19500000000000.0, 1000000000000.0)
>>> parse_bandwidth("600GB/s"), parse_bandwidth("25Gbps")
(600000000000.0, 3125000000.0)
>>> parse_time("2ms"), parse_time("5µs") == parse_time("5us") == 5e-6
(0.002, True)
>>> parse_fraction("60%"), parse_fraction(0.5)
(0.6, 0.5)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DECIMAL",
    "INTEGER",
    "MAX_BYTES",
    "Range",
    "format_bytes",
    "format_bytes_apart",
    "format_number",
    "parse_bandwidth",
    "parse_bytes",
    "parse_flops",
    "parse_fraction",
    "parse_integer",
    "parse_number",
    "parse_time",
]

#: A number written in decimal: ASCII digits, an optional sign, decimal point and
#: exponent (``12``, ``-0.5``, ``.5``, ``1.5e3``). Match it with ``fullmatch``.
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: A whole number written in decimal: ASCII digits and an optional sign.
INTEGER = re.compile(r"[+-]?[0-9]+")

_NUMBER = re.compile(rf"^\s*(?P<number>{DECIMAL.pattern})\s*(?P<unit>\S*?)\s*$")
#: Longest whole number read exactly: past it a number is far out of every range, and
#: ``int`` refuses over 4,300 digits.
_MAX_DIGITS = 400

# Integers, so that a whole number times its unit stays exact for the range check.
_DECIMAL = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
            "E": 10**18}  # fmt: skip
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_BYTES_EXAMPLE = "a size such as 80GiB, 40GB, 512MiB or a number of bytes"
_BANDWIDTH_EXAMPLE = "a bandwidth such as 600GB/s, 1.6TB/s, 25Gbps or a number of bytes/s"
# FLOP/s are never binary, and "mflops" means mega in practice, so case does not matter.
_FLOPS_PREFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15,
                 "e": 10**18}  # fmt: skip
_FLOPS_SUFFIX = ("flop/s", "flops", "flop")
_FLOPS_EXAMPLE = "a rate such as 312TFLOPS, 19.5 TFLOP/s or a number of FLOP/s"
# Divisors, not factors: 5 / 1e6 is exactly the float 5e-06, 5 * 1e-6 is not.
_TIME_DIVISOR = {"s": 1.0, "ms": 1e3, "us": 1e6, "µs": 1e6, "μs": 1e6, "ns": 1e9}
_TIME_EXAMPLE = "a time such as 5us, 5µs, 2ms, 100ns, 1s or a number of seconds"
_FRACTION_EXAMPLE = "a fraction such as 0.6 or 60%"


def parse_number(text: str) -> float:
    """A finite number written in decimal (:data:`DECIMAL`), white space around it allowed;
    anything else raises :class:`ValueError`: other digits than ASCII (``١٢``),
    underscores (``1_000``), ``0x10``, ``nan``, ``infinity``, or a number past the float
    range (``1e400``)."""
    stripped = text.strip()
    if DECIMAL.fullmatch(stripped) is None:
        raise ValueError(f"expected a number in decimal digits, got {_shown(text)}")
    number = float(stripped)
    if not math.isfinite(number):
        raise ValueError(f"the number {_shown(stripped)} is out of range (largest: about 1.8e308)")
    return number


def parse_integer(text: str) -> int:
    """A whole number written in decimal (:data:`INTEGER`), white space around it allowed.

    :class:`ValueError` for other digits than ASCII (``２``, ``٢``), underscores, a point
    or an exponent, or over 4,300 digits (Python's limit)."""
    stripped = text.strip()
    if INTEGER.fullmatch(stripped) is None:
        raise ValueError(f"expected an integer in decimal digits, got {_shown(text)}")
    return int(stripped)  # ValueError past Python's digit limit


def _split(value: object, expected: str) -> tuple[int | float, str]:
    """Split ``value`` into its number and its unit (``""`` for a bare number).

    The number is an ``int`` when a whole number was written (``4096``, ``"80GiB"``),
    so that it can be held to a range exactly.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected {expected}, got {_shown(value)}")
    number: int | float
    if isinstance(value, int | float):
        number, unit = value, ""
    else:
        match = _NUMBER.match(value)
        if match is None:
            raise ValueError(f"expected {expected}, got {_shown(value)}")
        text, unit = match["number"], match["unit"]
        whole = INTEGER.fullmatch(text) and len(text) <= _MAX_DIGITS
        number = int(text) if whole else float(text)
    if isinstance(number, int) and abs(number) >= 2**1024:
        raise ValueError(f"expected {expected}, got {_shown(value)} (too large)")
    if not math.isfinite(number):
        raise ValueError(f"expected {expected}, got {_shown(value)} (not finite)")
    return number, unit


def _shown(value: object) -> str:
    """``repr(value)``, kept short: a 4,000-digit integer is not a message; YAML's null
    (None) as nothing."""
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _checked(
    number: float,
    scale: float,
    value: object,
    allow_zero: bool,
    expected: str,
    within: Range | None = None,
) -> float:
    """``number * scale`` as a float, once it is known to be positive (or zero when
    allowed) and in ``within``; a whole number times a whole scale is checked exactly."""
    if number < 0 or (number == 0 and not allow_zero):
        sign = "non-negative" if allow_zero else "positive"
        raise ValueError(f"expected a {sign} value ({expected}), got {_shown(value)}")
    exact = number * scale
    if within is not None:
        within.check(exact, value)
    try:
        result = float(exact)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise ValueError(f"expected {expected}, got {_shown(value)} (too large)")
    return result


def _byte_scale(unit: str) -> float | None:
    """Bytes per ``unit`` for units of data (``GB``, ``GiB``, ``Gb``, ``Gbit``), else None."""
    if unit == "":
        return 1
    for suffix, per in (
        ("bytes", 1),
        ("byte", 1),
        ("bits", 0.125),
        ("bit", 0.125),
        ("B", 1),
        ("b", 0.125),
    ):
        if unit.endswith(suffix):
            prefix = unit[: -len(suffix)]
            scale = _DECIMAL.get(prefix, _BINARY.get(prefix))
            return None if scale is None else scale * per
    return None


def _ambiguous(unit: str) -> str:
    """A hint for a lower-case unit whose prefix could be SI or whose b could be B."""
    upper = unit[:1].upper() + unit[1:]
    if upper != unit and _byte_scale(upper) is not None:
        return f" (write {upper[:-1]}B for bytes or {upper} for bits)"
    return ""


def parse_bytes(value: object, *, allow_zero: bool = False, within: Range | None = None) -> float:
    """Parse an amount of memory into bytes: ``80GiB``, ``40GB``, ``512MiB``, ``1.5TB``,
    ``4096`` or ``"4096 B"``; a size in bits (``8Gb``) is refused."""
    number, unit = _split(value, _BYTES_EXAMPLE)
    scale = _byte_scale(unit)
    if scale is not None and unit.endswith(("b", "bit", "bits")):
        raise ValueError(f"expected {_BYTES_EXAMPLE}, got {_shown(value)} (that is in bits; use B)")
    if scale is None:
        raise ValueError(f"expected {_BYTES_EXAMPLE}, got {_shown(value)}{_ambiguous(unit)}")
    return _checked(number, scale, value, allow_zero, _BYTES_EXAMPLE, within)


def parse_flops(value: object, *, allow_zero: bool = False, within: Range | None = None) -> float:
    """Parse a compute rate into FLOP/s: ``312TFLOPS``, ``19.5 TFLOP/s``, ``"900 GFLOPS"``
    or a bare number (``1e12``)."""
    number, unit = _split(value, _FLOPS_EXAMPLE)
    lowered = unit.lower()
    scale = 1 if unit == "" else None
    for suffix in _FLOPS_SUFFIX:
        if lowered.endswith(suffix):
            scale = _FLOPS_PREFIX.get(lowered[: -len(suffix)])
            break
    if scale is None:
        raise ValueError(f"expected {_FLOPS_EXAMPLE}, got {_shown(value)}")
    return _checked(number, scale, value, allow_zero, _FLOPS_EXAMPLE, within)


def parse_bandwidth(
    value: object, *, allow_zero: bool = False, within: Range | None = None
) -> float:
    """Parse a transfer rate into bytes per second.

    Bytes (``600GB/s``, ``1.6TB/s``, ``32GBps``, ``12GiB/s``), bits, divided by 8
    (``25Gbps``, ``25Gbit/s``), or a bare number of bytes/s; a size without ``/s`` is
    refused with a hint."""
    number, unit = _split(value, _BANDWIDTH_EXAMPLE)
    if unit == "":
        return _checked(number, 1, value, allow_zero, _BANDWIDTH_EXAMPLE, within)
    for per_second in ("/s", "ps"):
        if unit.endswith(per_second):
            data_unit = unit[: -len(per_second)]
            scale = _byte_scale(data_unit)
            if scale is None:
                raise ValueError(
                    f"expected {_BANDWIDTH_EXAMPLE}, got {_shown(value)}{_ambiguous(data_unit)}"
                )
            return _checked(number, scale, value, allow_zero, _BANDWIDTH_EXAMPLE, within)
    hint = " (a size, not a rate: add /s)" if _byte_scale(unit) is not None else ""
    raise ValueError(f"expected {_BANDWIDTH_EXAMPLE}, got {_shown(value)}{hint}")


def parse_time(value: object, *, allow_zero: bool = True, within: Range | None = None) -> float:
    """Parse a duration into seconds: ``5us`` (or ``5µs``), ``2ms``, ``100ns``, ``1s`` or a
    bare number of seconds. Zero is allowed by default (no latency, no overhead)."""
    number, unit = _split(value, _TIME_EXAMPLE)
    divisor = 1.0 if unit == "" else _TIME_DIVISOR.get(unit)
    if divisor is None:
        raise ValueError(f"expected {_TIME_EXAMPLE}, got {_shown(value)}")
    seconds = _checked(number, 1, value, allow_zero, _TIME_EXAMPLE) / divisor
    return seconds if within is None else within.check(seconds, value)


def parse_positive(value: object, *, within: Range | None = None) -> float:
    """A positive number without a unit (a count of multiply-adds, say).

    Examples
    --------
    >>> parse_positive("24"), parse_positive(1.5)
    (24.0, 1.5)
    """
    expected = "a number such as 24"
    number, unit = _split(value, expected)
    if unit:
        raise ValueError(f"expected {expected}, got {_shown(value)}")
    return _checked(number, 1, value, False, expected, within)


def parse_fraction(
    value: object, *, allow_zero: bool = False, within: Range | None = None
) -> float:
    """Parse a fraction of one (an efficiency factor): a number in (0, 1] or a
    percentage in (0%, 100%] (``0.6``, ``60%``); over one is refused."""
    number, unit = _split(value, _FRACTION_EXAMPLE)
    if unit not in ("", "%"):
        raise ValueError(f"expected {_FRACTION_EXAMPLE}, got {_shown(value)}")
    fraction = _checked(number, 1, value, allow_zero, _FRACTION_EXAMPLE) / (
        100.0 if unit == "%" else 1.0
    )
    if fraction > 1.0:
        raise ValueError(f"expected {_FRACTION_EXAMPLE} (at most 1, 100%), got {_shown(value)}")
    return fraction if within is None else within.check(fraction, value)


def format_bytes(value: float, digits: int = 3) -> str:
    """An amount of memory as people read it: binary units, three significant digits.

    The inverse of :func:`parse_bytes` up to rounding, for messages and tables.

    Parameters
    ----------
    value : float
        Bytes.
    digits : int
        Significant digits (at least six below 1 KiB).

    Examples
    --------
    >>> format_bytes(65966720)
    '62.9 MiB'
    >>> format_bytes(16 * 2**30), format_bytes(1.5), format_bytes(float("inf"))
    ('16 GiB', '1.5 B', 'unbounded')
    >>> format_bytes(1023.9 * 2**20)  # not '1.02e+03 MiB'
    '1024 MiB'
    """
    if math.isinf(value):
        return "unbounded"
    for unit, scale in (
        ("EiB", 2**60),
        ("PiB", 2**50),
        ("TiB", 2**40),
        ("GiB", 2**30),
        ("MiB", 2**20),
        ("KiB", 2**10),
    ):
        if value >= scale:
            number = value / scale
            text = f"{number:.{digits}g}"
            if "e" in text:  # from 999.5 to 1024 of a unit: one more digit, no exponent
                text = f"{number:.{digits + 1}g}"
            return f"{text} {unit}"
    return f"{value:.{max(digits, 6)}g} B"


def format_bytes_apart(*values: float) -> tuple[str, ...]:
    """Each of ``values`` as :func:`format_bytes` writes it, with as many more digits as
    it takes for different amounts to read differently.

    A message that compares two amounts ("needs X, more than Y") must not print the
    same figure twice; equal amounts still read the same.

    Examples
    --------
    >>> format_bytes_apart(256 * 2**30 + 4096, 256 * 2**30)
    ('256.000004 GiB', '256 GiB')
    >>> format_bytes_apart(3e9, 2**30)
    ('2.79 GiB', '1 GiB')
    """
    for digits in range(3, 18):  # 17 significant digits tell any two floats apart
        texts = tuple(format_bytes(value, digits) for value in values)
        if all(
            (texts[i] == texts[j]) == (values[i] == values[j])
            for i in range(len(values))
            for j in range(i)
        ):
            return texts
    return texts


#: The most bytes placer handles, as a device's memory or all ops' memory together:
#: 8 PiB (2**53), up to which float sums of whole bytes are exact, so that a memory
#: figure summed in any order (prefix sums over ideals, a stage's ops one by one) gives
#: the same answer to "does it fit".
MAX_BYTES = 2**53


def format_number(value: float) -> str:
    """A number as short as it reads unambiguously: ``1000``, ``2.5e-06``, ``1e+21``.

    Examples
    --------
    >>> format_number(1000.0), format_number(1e21), format_number(0.001)
    ('1000', '1e+21', '0.001')
    """
    return f"{value:.6g}"


@dataclass(frozen=True)
class Range:
    """The values a field or an option accepts: finite, from ``low`` to ``high``.

    Ranges are generous for real hardware and workloads, and keep out what breaks the
    arithmetic downstream: a rate so small that a time overflows to infinity, a size
    so large that a sum does.

    Parameters
    ----------
    low, high : float
        The least and the largest value accepted (both included, unless ``low_open``).
    unit : str
        Said after the bounds in messages (``"FLOP/s"``).
    zero : bool
        Whether ``0`` is accepted too, below ``low`` (no latency at all).
    low_open : bool
        Whether ``low`` itself is refused (a time limit must be over 0).
    show : callable
        Writes a bound for messages (:func:`format_bytes` for sizes).

    Examples
    --------
    >>> flops = Range(1e3, 1e21, "FLOP/s")
    >>> flops.check(312e12)
    312000000000000.0
    >>> flops.check(1e-20)
    Traceback (most recent call last):
    ...
    ValueError: 1e-20 is out of range (from 1000 to 1e+21 FLOP/s)
    >>> 0.0 in Range(1e-12, 86400, "s", zero=True)
    True
    """

    low: float
    high: float
    unit: str = ""
    zero: bool = False
    low_open: bool = False
    show: Callable[[float], str] = format_number

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if isinstance(value, int) and abs(value) > 2**1023:
            return False  # past the float range; comparing would convert it
        if not math.isfinite(value):
            return False
        if self.zero and value == 0:
            return True
        above_low = value > self.low if self.low_open else value >= self.low
        return above_low and value <= self.high

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        low, high = self.show(self.low), self.show(self.high)
        if self.low_open:
            text = f"over {low}, at most {high}{unit}"
        else:
            text = f"from {low} to {high}{unit}"
        return f"0, or {text}" if self.zero else text

    def check(self, value: float, shown: object = None) -> float:
        """``value`` if it is in the range.

        Raises
        ------
        ValueError
            ``SHOWN is out of range (RANGE)``, where ``shown`` is what the user wrote
            (``value`` when not given).
        """
        if value not in self:
            what = _shown(value if shown is None else shown)
            if isinstance(shown, str):
                what = what.strip("'")
            raise ValueError(f"{what} is out of range ({self})")
        return value
