"""When the running command started: ``--time-limit`` counts from it.

The installed ``placer`` command starts when :mod:`placer.cli` loads, before click,
rich, numpy and the solvers do (0.6-0.7 s on a 2-core machine); a command run
in-process (``placer.cli.main(argv)``, as the tests do) starts when ``main`` is called.
"""

from __future__ import annotations

import time

#: ``time.monotonic()`` when this module loaded (with :mod:`placer.cli`, first).
LOADED = time.monotonic()
_started = LOADED


def command_started() -> float:
    """``time.monotonic()`` at the start of the running command."""
    return _started


def start_command(in_process: bool) -> None:
    """Mark the start of a command: now when it runs in-process, else the load time."""
    global _started
    _started = time.monotonic() if in_process else LOADED
