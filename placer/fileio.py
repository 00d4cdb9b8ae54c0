"""Writing output files: never half-written, never over something that is not a file.

Every file placer writes (``place``/``evaluate -o``, ``report --html/--markdown``,
``split``'s submodels and manifest) goes through :func:`write_output`, which looks at
what the path names before writing:

- a regular file, or nothing yet: written atomically (a temporary file in the same
  directory, flushed to disk, then renamed over the path), keeping an existing file's
  permissions, so that a reader, a crash or Ctrl-C sees the old file or the new one;
- a symbolic link: written through to its target, atomically when the target is a
  regular file (the link stays a link); a dangling link creates its target;
- a character device (``/dev/null``, a terminal), a FIFO or a socket, and anything
  reached through ``/proc/self/fd`` (``/dev/stdout``): opened and written to as a
  stream, never replaced;
- a directory, a path ending in ``/``, or a block device: refused.

Every failure is one line, ``PATH: cannot write: reason``, raised as
:class:`~placer.errors.InputError`, with no temporary file left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import tempfile
from pathlib import Path

from placer.errors import InputError
from placer.interrupts import deferred_interrupt
from placer.text import printable

__all__ = ["TEMP_PREFIX", "current_umask", "write_output"]

#: Prefix of the temporary files and directories placer writes beside its outputs.
#: Short, so that a file name close to the system's limit (255 bytes) can still be
#: written: the temporary name does not grow with the output's name.
TEMP_PREFIX = ".placer-"


def write_output(path: str | Path, data: str | bytes, *, shown_as: str | None = None) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path``, the way its kind asks.

    Parameters
    ----------
    path : str or Path
        What the user named.  A string ending in ``/`` names a directory and is refused
        (a :class:`~pathlib.Path` has lost that slash: pass the string).
    data : str or bytes
        The whole contents.
    shown_as : str, optional
        The name messages give the file, when ``path`` is not the name the user knows
        it by (a file in a directory that replaces the user's when complete).

    Raises
    ------
    InputError
        One line naming ``path``: an empty path, a directory, a block device, a missing
        parent directory, or any error of the system (no space left, permission
        denied, read-only file system, file name too long, ...).
    KeyboardInterrupt
        Ctrl-C, after removing the temporary file: a regular file is left as it was,
        or complete.

    Notes
    -----
    A regular file is replaced, not rewritten in place, so a file with several hard
    links loses the link to its other names, and a file whose directory is not
    writable cannot be written.
    """
    text = os.fspath(path)
    if not text:
        raise InputError("the output path is empty")
    shown = printable(text if shown_as is None else shown_as)
    if text.endswith(("/", os.sep)):
        raise InputError(f"{shown}: names a directory (it ends in '/'); name a file")
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        link = stat.S_ISLNK(os.lstat(text).st_mode)
    except FileNotFoundError:
        _write_replacing(text, payload, shown, None)
        return
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        raise InputError(f"{shown}: cannot write: {_reason(err)}") from err
    try:
        info = os.stat(text)
    except FileNotFoundError:
        info = None  # a dangling symbolic link: create what it points to
    except OSError as err:  # a loop of links, a link into a directory we cannot enter
        raise InputError(f"{shown}: cannot write: {_reason(err)}") from err
    if info is None or stat.S_ISREG(info.st_mode):
        if link and _through_proc(text):
            # /dev/stdout redirected to a file: the shell owns that file (and may be
            # appending to it); write to it as a stream, as `echo > /dev/stdout` does
            _stream(text, payload, shown)
        else:
            target = os.path.realpath(text) if link else text
            _write_replacing(target, payload, shown, info)
    elif stat.S_ISDIR(info.st_mode):
        raise InputError(f"{shown}: is a directory; name a file")
    elif stat.S_ISBLK(info.st_mode):
        raise InputError(f"{shown}: is a block device; placer does not write over one")
    elif stat.S_ISSOCK(info.st_mode):
        _send(text, payload, shown)
    else:  # a character device or a FIFO
        _stream(text, payload, shown)


def _write_replacing(target: str, payload: bytes, shown: str, info: os.stat_result | None):
    """Write ``target`` (a regular file or a new path) atomically: temp file, rename."""
    directory = os.path.dirname(target) or "."
    fd = tmp = None
    try:
        with deferred_interrupt():  # so that a Ctrl-C cannot lose track of the file
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=directory)
        # mkstemp makes the file 0600, private to the user, which an output file is not
        os.fchmod(fd, _mode_for(info))
        if info is not None and (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(OSError):  # only root may give a file away
                os.fchown(fd, info.st_uid, info.st_gid)
        _write_all(fd, payload)
        os.fsync(fd)
        closing, fd = fd, None  # closed even if close fails: never close it twice
        os.close(closing)
        with deferred_interrupt():
            os.replace(tmp, target)
            tmp = None
        _sync_directory(directory)
    except BaseException as err:
        with deferred_interrupt():
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if isinstance(err, OSError):
            if err.errno == errno.ENOENT and not os.path.isdir(directory):
                raise InputError(
                    f"{shown}: cannot write: no such directory {printable(directory)}"
                ) from err
            raise InputError(f"{shown}: cannot write: {_reason(err)}") from err
        raise


def _stream(path: str, payload: bytes, shown: str) -> None:
    """Write to a character device, a FIFO or a file the shell holds open, in place."""
    # O_APPEND: through /dev/stdout the file may be the shell's `>> log`; write after
    # what it holds, as the shell would, instead of over its beginning
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)  # a FIFO waits here for a reader, as the shell does
    except OSError as err:
        raise InputError(f"{shown}: cannot write: {_reason(err)}") from err
    try:
        _write_all(fd, payload)
    except OSError as err:
        raise InputError(f"{shown}: cannot write: {_reason(err)}") from err
    finally:
        os.close(fd)


def _send(path: str, payload: bytes, shown: str) -> None:
    """Write to a Unix socket: connect and send the data as a stream."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)
            client.sendall(payload)
    except OSError as err:
        raise InputError(f"{shown}: cannot write: {_reason(err)}") from err


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view[: 1 << 24]) :]


def _through_proc(path: str) -> bool:
    """Whether following the symbolic link ``path`` passes through ``/proc`` (as
    ``/dev/stdout`` and ``/dev/fd/N`` do), whose links name open files, not paths."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's limit on links followed
        directory = os.path.realpath(os.path.dirname(current))
        if directory == "/proc" or directory.startswith("/proc/"):
            return True
        current = os.path.join(directory, os.path.basename(current))
        try:
            current = os.path.join(directory, os.readlink(current))
        except OSError:  # not a link: the end of the chain
            return False
    return False


def _sync_directory(directory: str) -> None:
    """Flush the rename to disk too (best effort: some file systems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _mode_for(info: os.stat_result | None) -> int:
    """The permission bits ``open(path, "w")`` would leave the file with."""
    if info is not None:
        return stat.S_IMODE(info.st_mode)
    return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask (read by setting it, and setting it straight back)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror[0].lower() + err.strerror[1:]
    if isinstance(err, ValueError) and "null" in str(err):
        return "the path holds a NUL byte"
    return str(err)
