"""Writing output files so that nothing is ever half-written."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from placer.errors import InputError


def write_atomic(path: str | Path, text: str | bytes) -> None:
    """Write ``text`` (or bytes) to ``path`` atomically: a temporary file beside it,
    then a rename.

    An interruption (Ctrl-C included) leaves either the old file or the new one, never a
    partial one, and no temporary file behind.  The file gets the permissions a plain
    ``open(path, "w")`` would give it: an existing file's mode is kept, a new file gets
    ``0o666`` less the umask.

    Raises
    ------
    InputError
        The path is empty, or the directory does not exist or cannot be written.
    """
    if not str(path):
        raise InputError("the output path is empty")
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise InputError(f"{path}: cannot write: {err.strerror}") from err
    try:
        # mkstemp makes the file 0600, private to the user, which an output file is not
        os.fchmod(fd, _mode_for(path))
        binary = isinstance(text, bytes)
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise InputError(f"{path}: cannot write: {err.strerror}") from err
        raise


def _mode_for(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would leave ``path`` with."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        pass
    # The umask can only be read by setting it; set it straight back.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask
