"""HiGHS helpers shared by the MILP and the bounds."""

from __future__ import annotations

import functools
import os
import sys


@functools.cache
def silence_highs_banner() -> None:
    """Let highspy print its once-per-process banner to /dev/null, not to our stdout.

    The banner goes to the C-level stdout when the first ``Highs`` is built, which would
    corrupt JSON written to stdout; later instances print nothing.
    """
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
