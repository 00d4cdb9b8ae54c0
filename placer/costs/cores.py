"""CPU core lists: ``"0-3,8-11"`` read and written, and a group's cores dealt to its devices.

A cluster file may pin the devices of a CPU group to cores (``cores:`` in
``docs/cluster.md``), as a list of core numbers or as a string of ranges in the form
Linux uses for CPU lists (``/sys/devices/system/cpu/online``, ``taskset -c``).  The
group's ``count`` devices share the list evenly and in order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from placer.util.units import parse_integer

__all__ = ["MAX_CORE", "deal_cores", "format_core_list", "parse_core_list"]

#: The largest core number a list may name: far past any machine Linux runs on (its
#: ``NR_CPUS`` is at most 8,192), and small enough that no range expands to a list
#: that does not fit in memory.
MAX_CORE = 2**16 - 1

_RANGE = re.compile(r"^\s*([^-\s]+)\s*-\s*([^-\s]+)\s*$")


def parse_core_list(text: str) -> tuple[int, ...]:
    """The cores ``text`` names: comma-separated numbers and ranges ``a-b`` (``a ≤ b``,
    both included), in the order written.

    Raises
    ------
    ValueError
        A piece is neither a core number nor a range of them, a number is over
        :data:`MAX_CORE`, or a range runs backwards; the message names the piece.

    Examples
    --------
    >>> parse_core_list("0-3,8-11")
    (0, 1, 2, 3, 8, 9, 10, 11)
    >>> parse_core_list(" 5 , 2-3")
    (5, 2, 3)
    >>> parse_core_list("3-1")
    Traceback (most recent call last):
    ...
    ValueError: '3-1' runs backwards (expected a range such as 0-3, lowest first)
    """
    cores: list[int] = []
    for piece in text.split(","):
        bounds = _RANGE.match(piece)
        ends = bounds.groups() if bounds else (piece, piece)
        try:
            low, high = (parse_integer(end) for end in ends)
        except ValueError as err:
            raise ValueError(
                f"{piece.strip()!r} is not a core number or a range of them (expected "
                "ranges such as 0-3,8-11)"
            ) from err
        for core in (low, high):
            if not 0 <= core <= MAX_CORE:
                raise ValueError(
                    f"core {core} in {piece.strip()!r} is out of range (from 0 to {MAX_CORE})"
                )
        if low > high:
            raise ValueError(
                f"{piece.strip()!r} runs backwards (expected a range such as 0-3, lowest first)"
            )
        cores.extend(range(low, high + 1))
    return tuple(cores)


def format_core_list(cores: Sequence[int]) -> str:
    """``cores`` as a string :func:`parse_core_list` reads back to them: runs of
    consecutive numbers as ranges.

    Examples
    --------
    >>> format_core_list([0, 1, 2, 3, 8, 9, 10, 11])
    '0-3,8-11'
    >>> format_core_list([4, 0, 1])
    '4,0-1'
    >>> parse_core_list(format_core_list([7, 2, 3, 5])) == (7, 2, 3, 5)
    True
    """
    pieces: list[str] = []
    start = 0
    for i in range(1, len(cores) + 1):
        if i == len(cores) or cores[i] != cores[i - 1] + 1:
            first, last = cores[start], cores[i - 1]
            pieces.append(str(first) if first == last else f"{first}-{last}")
            start = i
    return ",".join(pieces)


def deal_cores(cores: Sequence[int], count: int, index: int) -> tuple[int, ...]:
    """The cores of device ``index`` of ``count`` sharing ``cores`` in order: the
    ``index``-th of ``count`` equal slices (none when ``cores`` is empty).

    Raises
    ------
    IndexError
        ``index`` is not a device of the ``count``.
    ValueError
        ``cores`` cannot be dealt evenly.

    Examples
    --------
    >>> deal_cores([0, 1, 2, 3], 2, 1)
    (2, 3)
    >>> deal_cores([], 2, 1)
    ()
    """
    if not 0 <= index < count:
        raise IndexError(f"device {index} of a group of {count}")
    if len(cores) % count:
        raise ValueError(f"{len(cores)} cores cannot be dealt evenly to {count} devices")
    per = len(cores) // count
    return tuple(cores[index * per : (index + 1) * per])
