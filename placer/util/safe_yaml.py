"""YAML that users write (cluster files, plans): read safely, with the line of every value.

PyYAML's safe loader composes the document; nothing is constructed from a node until
its tag has been checked, so a ``!!python/...`` tag is refused, never run.  Every mistake
becomes one line ``FILE:LINE: field.path: what``, raised as the caller's
:class:`PlacerError` subclass: a scalar that does not construct (``2001-13-45``,
``!!float abc``, an integer of over 4,300 digits), a number that is not finite (``.inf``,
``.nan``: no field of placer's files can hold one) or an integer past the float range,
a number not written in plain decimal, a character YAML does not allow, and nesting
deeper than :data:`placer.util.inputs.MAX_DEPTH` (refused while composing, before PyYAML's
recursive composer could run out of stack).

YAML 1.1, which PyYAML follows, reads more than decimal numbers: ``1:30`` is 90
(base 60), ``0x10`` 16, ``017`` 15 (octal), ``0b101`` 5 and ``1_000`` 1000. Nobody
writing a device count or a size means those, so a number must be written as
:data:`placer.util.units.DECIMAL` says (digits, an optional sign, point and exponent), and
one that is not is refused with the value YAML would have read. A date or time
(``2001-12-01``) is kept as the text written: no field of placer's files holds one, and
a message then shows what the user wrote, not ``datetime.date(2001, 12, 1)``.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import yaml

from placer.errors import PlacerError
from placer.util.inputs import MAX_DEPTH
from placer.util.units import DECIMAL, INTEGER

__all__ = ["FieldPath", "format_path", "load_yaml", "one_line", "shown"]

#: Where a value sits in a document: ``("devices", 1, "memory")``.
FieldPath = tuple[str | int, ...]

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_YAML + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_ALLOWED_TAGS = _SCALAR_TAGS | {_YAML + "seq", _YAML + "map"}
#: What a scalar of each tag should read as, for messages about one that does not.
_SCALAR_KINDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "timestamp": "a date or time",
    "null": "null",
    "str": "a string",
}
#: What constructing a scalar raises when its text does not fit its tag (PyYAML lets
#: Python's own errors through: int('0x'), datetime(2001, 13, 45), a dict lookup...).
_CONSTRUCTION_ERRORS = (
    yaml.YAMLError,
    ValueError,
    LookupError,
    ArithmeticError,
    TypeError,
    AttributeError,
)


#: Largest number a field may hold: every figure is used as a float somewhere.
_FLOAT_MAX = sys.float_info.max


class _DepthError(Exception):
    """Nesting deeper than :data:`MAX_DEPTH`, found while composing."""

    def __init__(self, mark: yaml.Mark):
        super().__init__(mark)
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """The safe loader, counting how deep the composer has gone.

    PyYAML's composer recurses once per level of nesting (a few Python frames each), so
    a document nested a thousand levels deep would raise RecursionError; the depth is
    checked on the way down instead.
    """

    def __init__(self, text: str):
        super().__init__(text)
        self.depth = 0

    def compose_node(self, parent, index):
        self.depth += 1  # lists and mappings around this node, itself included
        try:
            if self.depth > MAX_DEPTH and self.check_event(
                yaml.SequenceStartEvent, yaml.MappingStartEvent
            ):
                raise _DepthError(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_yaml(
    text: str,
    source: str,
    *,
    error: type[PlacerError],
    what: str,
    empty: str,
    max_values: int = 100_000,
) -> tuple[Any, dict[FieldPath, int]]:
    """Compose ``text`` with the safe loader and build plain data, recording lines.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str
        Where ``text`` came from (a file name), the start of every message.
    error : type of PlacerError
        The exception raised for every mistake.
    what : str
        What the file is, for messages: ``"a cluster file"``.
    empty : str
        What was expected, said when the document is empty.
    max_values : int
        Most values the document may hold once aliases are expanded; bounds the
        "billion laughs" expansion.

    Returns
    -------
    data : Any
        Dicts (with string keys), lists and scalars.
    lines : dict
        The 1-based line of each value (and of each mapping key), by its path.

    Raises
    ------
    PlacerError
        Of type ``error``, one line: not YAML (a character YAML does not allow
        included), empty, a refused tag, a scalar that does not construct or a number
        that is not finite, a merge key, a non-string or repeated key, a recursive
        alias, too many values, nesting deeper than :data:`MAX_DEPTH`.

    Examples
    --------
    >>> from placer.errors import InputError
    >>> data, lines = load_yaml("a:\\n  - 1\\n  - 2\\n", "f.yaml", error=InputError,
    ...                         what="a file", empty="a mapping")
    >>> data, lines[("a", 1)]
    ({'a': [1, 2]}, 3)
    """
    loader = None
    try:
        loader = _Loader(text)  # checks every character first: may raise ReaderError
        root = loader.get_single_node()
        if root is None:
            raise error(f"{source}:1: the file is empty: expected {empty}")
        lines: dict[FieldPath, int] = {(): root.start_mark.line + 1}
        if _expanded_size(root, max_values) > max_values:
            # counted over the composed nodes, aliases shared: an alias bomb is refused
            # in milliseconds, not after building a million values
            raise error(
                f"{source}:{root.start_mark.line + 1}: more than {max_values} values once "
                "aliases are expanded"
            )
        builder = _Builder(loader, source, lines, error, what)
        return builder.build(root, ()), lines
    except _DepthError as err:
        raise error(
            f"{source}:{err.mark.line + 1}: nested more than {MAX_DEPTH} levels deep"
        ) from None
    except yaml.reader.ReaderError as err:
        # a character YAML does not allow (a control character, a lone surrogate)
        line = text.count("\n", 0, max(err.position, 0)) + 1
        char = f"#x{err.character:04x}" if isinstance(err.character, int) else "a byte"
        raise error(
            f"{source}:{line}: not valid YAML: character {char} is not allowed in YAML "
            "text (write it as an escape in a double-quoted string)"
        ) from err
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = err.problem or err.context or "malformed"
        raise error(one_line(f"{source}:{line}: not valid YAML: {problem}")) from err
    except yaml.YAMLError as err:
        raise error(one_line(f"{source}:1: not valid YAML: {err}")) from err
    finally:
        if loader is not None:
            loader.dispose()


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """How many values (keys included) ``root`` holds once its aliases are expanded,
    one for each value :class:`_Builder` would make (the only count of them), stopping
    once past ``limit``.  Each composed node is sized once (an alias is the node it
    names), so a "billion laughs" document costs its own length.  A node on a cycle
    counts 1 here: the builder refuses it."""
    sizes: dict[int, int] = {}
    pending: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in pending or isinstance(node, yaml.ScalarNode):
            return 1
        pending.add(key)
        total = 1
        children = (node.value if isinstance(node, yaml.SequenceNode)
                    else [n for pair in node.value for n in pair])  # fmt: skip
        for child in children:
            total += size(child)
            if total > limit:
                break
        pending.discard(key)
        sizes[key] = total
        return total

    return size(root)


def one_line(message: str) -> str:
    """``message`` with every run of whitespace (newlines included) made one space."""
    return " ".join(message.split())


def format_path(path: FieldPath) -> str:
    """``("devices", 1, "memory")`` -> ``devices[1].memory``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def shown(value: Any) -> str:
    """A value as the user wrote it, kept short, for 'got ...' in messages."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)}" if value else "an empty list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Builder:
    """Turns a composed node tree into dicts, lists and scalars, noting each path's line."""

    def __init__(
        self,
        loader: yaml.SafeLoader,
        source: str,
        lines: dict[FieldPath, int],
        error: type[PlacerError],
        what: str,
    ):
        self.loader = loader
        self.source = source
        self.lines = lines
        self.error = error
        self.what = what
        self.active: set[int] = set()

    def fail(self, node: yaml.Node, path: FieldPath, message: str) -> PlacerError:
        where = format_path(path)
        if len(where) > 80:  # deep in a document: the start and the end say where
            where = f"{where[:40]}...{where[-37:]}"
        where = f"{where}: " if path else ""
        line = node.start_mark.line + 1
        return self.error(one_line(f"{self.source}:{line}: {where}{message}"))

    def build(self, node: yaml.Node, path: FieldPath) -> Any:
        self._check_tag(node, path)
        if id(node) in self.active:
            raise self.fail(node, path, "an alias refers to a value that contains it")
        if len(self.active) >= MAX_DEPTH and not isinstance(node, yaml.ScalarNode):
            # aliases nest values the composer saw at a shallow depth
            raise self.fail(
                node, path, f"nested more than {MAX_DEPTH} levels deep once aliases are expanded"
            )
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                result = []
                for index, item in enumerate(node.value):
                    self.lines[(*path, index)] = item.start_mark.line + 1
                    result.append(self.build(item, (*path, index)))
                return result
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _YAML + "merge":
                    raise self.fail(key_node, path, "merge keys (<<) are not supported")
                key = self.build(key_node, path)
                if not isinstance(key, str):
                    raise self.fail(
                        key_node, path, f"field names must be strings, got {shown(key)}"
                    )
                if key in mapping:
                    first = self.lines[(*path, key)]
                    raise self.fail(key_node, (*path, key), f"given twice (first at line {first})")
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                mapping[key] = self.build(value_node, (*path, key))
            return mapping
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, path: FieldPath) -> Any:
        """The value of a scalar node: constructed, and refused unless finite."""
        kind = _SCALAR_KINDS.get(node.tag[len(_YAML) :], "a value")
        try:
            value = self.loader.construct_object(node)
        except _CONSTRUCTION_ERRORS as err:
            raise self.fail(
                node, path, f"{shown(node.value)} cannot be read as {kind}{_why(err, node.tag)}"
            ) from err
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _FLOAT_MAX:
            raise self.fail(
                node, path, f"{shown(node.value)} is out of range (largest: about 1.8e308)"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(
                node,
                path,
                f"{shown(node.value)} is not a finite number (no field takes infinities "
                "or NaN; the largest number is about 1.8e308)",
            )
        if node.tag in (_YAML + "int", _YAML + "float"):
            self._check_decimal(node, path, value)
        if node.tag == _YAML + "timestamp":
            return node.value  # constructed only to refuse a date that does not exist
        return value

    def _check_decimal(self, node: yaml.ScalarNode, path: FieldPath, value: float) -> None:
        """Refuse a number YAML 1.1 reads from other than plain decimal (see the module
        docstring): ``1:30`` is 90, ``0x10`` is 16, ``017`` is 15."""
        text = node.value
        if node.tag == _YAML + "int":
            if INTEGER.fullmatch(text) and int(text) == value:
                return
            octal = INTEGER.fullmatch(text) is not None  # 017: YAML 1.1's octal
        else:
            if DECIMAL.fullmatch(text):
                return
            octal = False
        hint = " (YAML reads a leading 0 as octal)" if octal else ""
        raise self.fail(node, path, f"write {value!r} in decimal, not {shown(text)}{hint}")

    def _check_tag(self, node: yaml.Node, path: FieldPath) -> None:
        tag = node.tag
        if tag in _ALLOWED_TAGS:
            wanted = (
                yaml.ScalarNode
                if tag in _SCALAR_TAGS
                else (yaml.SequenceNode if tag == _YAML + "seq" else yaml.MappingNode)
            )
            if not isinstance(node, wanted):
                shape = {yaml.SequenceNode: "a list", yaml.MappingNode: "a mapping"}
                raise self.fail(
                    node,
                    path,
                    f"tag !!{tag[len(_YAML) :]} cannot be given to "
                    f"{shape.get(type(node), 'a scalar')}",
                )
            return
        tag_shown = "!!" + tag[len(_YAML) :] if tag.startswith(_YAML) else tag
        if tag.startswith(_YAML + "python/"):
            raise self.fail(
                node,
                path,
                f"tag {tag_shown} refused: {self.what} may not build Python objects or run "
                "code; nothing was executed",
            )
        raise self.fail(node, path, f"tag {tag_shown} is not supported in {self.what}")


def _why(err: BaseException, tag: str) -> str:
    """Why a scalar did not construct, as a parenthesis for the message ('' if unclear)."""
    message = str(err.args[0]) if err.args else ""
    if "integer string conversion" in message:
        return " (an integer with too many digits)"
    if tag == _YAML + "bool":
        return " (write true or false)"
    if tag == _YAML + "timestamp" and isinstance(err, ValueError | OverflowError) and message:
        return f" ({one_line(message)})"  # "month must be in 1..12"
    return ""
