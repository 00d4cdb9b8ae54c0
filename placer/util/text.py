"""Names from users' files made safe to show: on a terminal, in rich markup, on one line.

Node, graph, device and file names come from files anyone can write. Shown as they are,
a name could move the cursor or retitle the terminal (ANSI and OSC escape sequences),
split an error over several lines, or be read as rich markup (``[/]`` raises, ``[red]``
restyles). :func:`printable` is applied wherever a name meets a terminal, and
:func:`markup_safe` wherever it meets rich markup.
"""

from __future__ import annotations

__all__ = ["markup_safe", "printable"]


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with control and other invisible format characters written as escapes.

    Escapes (``\\x1b``), line breaks, NULs, bidirectional overrides and lone surrogates
    (from bytes that were not UTF-8) all become visible ``\\xNN`` / ``\\uNNNN`` text, so
    the result is one line that prints as it reads. Ordinary spaces stay.

    Examples
    --------
    >>> printable("conv\\x1b[2J1\\nrelu")
    'conv\\\\x1b[2J1\\\\x0arelu'
    >>> printable("matmul/grad")
    'matmul/grad'
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def markup_safe(text: str) -> str:
    """``text`` made printable and escaped for rich markup (``[b]`` shows as ``[b]``).

    Examples
    --------
    >>> markup_safe("layer[/]0")
    'layer\\\\[/]0'
    """
    from rich.markup import escape

    return escape(printable(text))


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none), for
    one-line errors that quote another library.

    Examples
    --------
    >>> first_line(ValueError("bad shape\\nat node 3")), first_line(KeyError())
    ('bad shape', 'KeyError')
    """
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
