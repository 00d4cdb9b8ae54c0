"""Reading the files users name: regular files only, bounded, strictly decoded.

Every reader of a user's file (models, workloads, clusters, plans, measured costs) goes
through :func:`read_bytes` or :func:`read_text`, and every JSON document through
:func:`load_json`, so that each gets the same guarantees: a FIFO, a device or a
directory is refused at once instead of blocking or being read until memory runs out;
a file is read only up to a size cap; text must be UTF-8; a JSON document may not nest
deeper than :data:`MAX_DEPTH`, hold a number that is not finite, an integer longer
than Python converts, or a key given twice in one object (``json`` keeps the last, so a
plan or a workload would silently lose what the first said). Each failure is one
line, raised as the caller's :class:`~placer.errors.PlacerError` subclass.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from placer.errors import InputError, PlacerError

__all__ = ["MAX_DEPTH", "MAX_TEXT_BYTES", "load_json", "read_bytes", "read_text"]

#: Largest text input (JSON, YAML, CSV) read: 256 MiB, far above any real workload.
MAX_TEXT_BYTES = 256 * 2**20
#: Deepest nesting of lists and mappings a JSON or YAML document may have; real files
#: nest a handful of levels, and Python's parsers recurse once per level.
MAX_DEPTH = 64

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _size(value: int) -> str:
    from placer.util.units import format_bytes

    return format_bytes(value)


def _sizes(*values: int) -> tuple[str, ...]:
    from placer.util.units import format_bytes_apart

    return format_bytes_apart(*values)


def read_bytes(
    path: str | Path, *, what: str, error: type[PlacerError] = InputError, max_bytes: int
) -> bytes:
    """The contents of the regular file ``path``, at most ``max_bytes`` of them.

    Parameters
    ----------
    path : str or Path
        The file the user named (a symbolic link is followed).
    what : str
        What the file should be, for messages: ``"an ONNX model"``.
    error : type of PlacerError
        Raised, with one line naming ``path``, when the file cannot be used.
    max_bytes : int
        Refuse a larger file without reading it.

    Raises
    ------
    PlacerError
        Of type ``error``: no such file, not a regular file (a directory, FIFO, device
        or socket, which would block or never end), larger than ``max_bytes``, or
        unreadable (permissions, I/O error).
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError as err:
        raise error(f"{path}: no such file") from err
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        raise error(f"{path}: cannot read: {_reason(err)}") from err
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a file")
        raise error(f"{path}: is {kind}, not {what} file")
    if info.st_size > max_bytes:
        size, cap = _sizes(info.st_size, max_bytes)
        raise error(f"{path}: {size} is larger than placer reads for {what} ({cap})")
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO since the stat, do not block
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise error(f"{path}: cannot read: {_reason(err)}") from err
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"{path}: is not a regular file, not {what} file")
        chunks = []
        total = 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > max_bytes:
                raise error(f"{path}: larger than placer reads for {what} ({_size(max_bytes)})")
            chunks.append(chunk)
    except OSError as err:
        raise error(f"{path}: cannot read: {_reason(err)}") from err
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_text(
    path: str | Path,
    *,
    what: str,
    error: type[PlacerError] = InputError,
    max_bytes: int = MAX_TEXT_BYTES,
) -> str:
    """The contents of the regular file ``path`` as strict UTF-8 text.

    A byte-order mark is dropped. Raises ``error`` as :func:`read_bytes` does, and when
    the bytes are not UTF-8 (naming the line and byte at fault) or hold a NUL byte.
    """
    data = read_bytes(path, what=what, error=error, max_bytes=max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        if Path(path).suffix.lower() == ".onnx":  # arguments swapped, most likely
            raise error(f"{path}: an ONNX model, not {what} file") from err
        line = data.count(b"\n", 0, err.start) + 1
        raise error(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset "
            f"{err.start}); save it as UTF-8"
        ) from err
    if "\x00" in text:
        if Path(path).suffix.lower() == ".onnx":
            raise error(f"{path}: an ONNX model, not {what} file")
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise error(f"{path}:{line}: a NUL byte; {what} file is text")
    return text.removeprefix("\ufeff")


class _BadNumber(ValueError):
    pass


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"the number {_head(text)} is out of range (largest: about 1.8e308)")
    return value


def _int(text: str) -> int:
    value = int(text)  # over Python's digit limit: ValueError, said as too many digits
    if abs(value) > sys.float_info.max:
        # every figure is used as a float somewhere, and converting this one would raise
        raise _BadNumber(f"the number {_head(text)} is out of range (largest: about 1.8e308)")
    return value


def _head(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:37]}..."


def _constant(text: str) -> float:
    raise _BadNumber(f"{text} is not a number JSON allows")


class _RepeatedKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object from its key-value pairs, refusing a key given twice."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return result


def load_json(text: str, source: str, *, error: type[PlacerError] = InputError) -> Any:
    """Decode the JSON document ``text`` read from ``source``.

    Stricter than :func:`json.loads`: ``NaN``, ``Infinity`` and numbers that overflow a
    float (integers included) are refused, as are documents nested deeper than
    :data:`MAX_DEPTH` and objects that give a key twice (as the YAML reader refuses
    them).

    Raises
    ------
    PlacerError
        Of type ``error``: ``SOURCE:LINE:COLUMN: not valid JSON: why``, or
        ``SOURCE:LINE: field 'KEY' given twice (first at line N)``.

    Examples
    --------
    >>> load_json('{"a": [1, 2.5]}', "f.json")
    {'a': [1, 2.5]}
    >>> try:
    ...     load_json('{"a": 1e999}', "f.json")
    ... except InputError as err:
    ...     print(err)
    f.json:1:7: not valid JSON: the number 1e999 is out of range (largest: about 1.8e308)
    >>> try:
    ...     load_json('{"a": 1,\\n "a": 2}', "f.json")
    ... except InputError as err:
    ...     print(err)
    f.json:2: field 'a' given twice (first at line 1)
    """
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise error(f"{source}: not valid JSON: nested {depth} levels deep (at most {MAX_DEPTH})")
    try:
        return json.loads(
            text,
            parse_float=_float,
            parse_int=_int,
            parse_constant=_constant,
            object_pairs_hook=_object,
        )
    except _RepeatedKey as err:
        key, line, first = _repeated_key(text) or (err.key, 1, 1)
        raise error(
            f"{source}:{line}: field {_head(repr(key))} given twice (first at line {first})"
        ) from err
    except json.JSONDecodeError as err:
        raise error(f"{source}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}") from err
    except ValueError as err:  # _BadNumber, or an integer over Python's digit limit
        line, column = _where(text, err)
        message = str(err)
        if "integer string conversion" in message:
            message = "an integer with too many digits"
        raise error(f"{source}:{line}:{column}: not valid JSON: {message}") from err
    except RecursionError as err:
        raise error(f"{source}: not valid JSON: nested too deeply") from err


def _depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in ``text``, strings skipped.

    Linear in ``len(text)``: the regular expression skips strings and other characters
    in C; Python sees only the brackets.
    """
    depth = deepest = 0
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text, flags=re.DOTALL):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


#: The tokens that say where a key is: strings (a key is one followed by a colon),
#: brackets and colons; numbers, literals, commas and white space need no notice.
_KEY_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:]', flags=re.DOTALL)


def _repeated_key(text: str) -> tuple[str, int, int] | None:
    """The first key given twice in one object of the JSON ``text``: the key, the line
    of its second and of its first occurrence (None if there is none).

    The decoder's hook sees an object's pairs only once the object is complete, without
    their positions; only a document with a repeated key is scanned again, here.
    """
    objects: list[dict[str, int] | None] = []  # keys seen so far, None for a list
    previous = None  # the string token just before, a key when a colon follows it
    for match in _KEY_TOKENS.finditer(text):
        token = match.group()
        if token in "{[":
            objects.append({} if token == "{" else None)
        elif token in "}]":
            if objects:
                objects.pop()
        elif token == ":" and previous is not None and objects and objects[-1] is not None:
            key = json.loads(previous.group())
            keys = objects[-1]
            if key in keys:
                return key, _line(text, previous.start()), _line(text, keys[key])
            keys[key] = previous.start()
        previous = match if token.startswith('"') else None
    return None


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _where(text: str, err: ValueError) -> tuple[int, int]:
    """Line and column of the number ``err`` complains about (1, 1 when unknown)."""
    message = str(err)
    if "integer string conversion" in message:
        long_int = re.search(r"\d{4000,}", text)
        if long_int:
            index = long_int.start()
            return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1
    for token in message.split():
        token = token.removesuffix("...")  # a long number is cut short in the message
        if token and (token[0].isdigit() or token[0] in "-." or token in _CONSTANTS):
            index = text.find(token)
            if index >= 0:
                line = text.count("\n", 0, index) + 1
                return line, index - (text.rfind("\n", 0, index) + 1) + 1
    return 1, 1


_CONSTANTS = ("NaN", "Infinity")


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror[0].lower() + err.strerror[1:]
    return str(err)
