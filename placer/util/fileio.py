"""Writing output files: never half-written, never over something that is not a file,
never over an input, and several outputs of one command all or none.

Every file placer writes (``place``/``evaluate -o``, ``report --html/--markdown``,
``split``'s submodels and manifest) goes through :func:`write_outputs` (or
:func:`write_output`, its one-file case), which looks at what each path names before
writing:

- a regular file, or nothing yet: written atomically (a temporary file in the same
  directory, flushed to disk, then renamed over the path), keeping an existing file's
  permissions, so that a reader, a crash or Ctrl-C sees the old file or the new one;
- a symbolic link: written through to its target, atomically when the target is a
  regular file (the link stays a link); a dangling link creates its target;
- a character device (``/dev/null``, a terminal), a FIFO or a socket, and anything
  reached through ``/proc/self/fd`` (``/dev/stdout``): opened and written to as a
  stream, never replaced (:func:`streamed` tells them apart);
- a directory, a path ending in ``/``, or a block device: refused.

Several outputs are one step: each regular file is first written to its temporary
file, then the streams are written, and only when all of that succeeded are the
temporary files renamed into place; a failure anywhere leaves every regular file as it
was.  Two outputs that are the same file are refused, and so (:func:`check_outputs`,
called before a command does any work) is an output that is one of its inputs.

Every failure is one line, ``PATH: cannot write: reason`` (or the refusal),
raised as :class:`~placer.errors.InputError`, with no temporary file left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from placer.errors import InputError
from placer.util.interrupts import deferred_interrupt
from placer.util.text import printable

__all__ = [
    "TEMP_PREFIX",
    "check_output_directory",
    "check_outputs",
    "current_umask",
    "streamed",
    "write_output",
    "write_outputs",
]

#: Prefix of the temporary files and directories placer writes beside its outputs.
#: Short, so that a file name close to the system's limit (255 bytes) can still be
#: written: the temporary name does not grow with the output's name.
TEMP_PREFIX = ".placer-"

PathLike = str | Path


class _How(str, Enum):
    """How an output is written."""

    REPLACE = "replace"  # a regular file or a new one: temporary file, then rename
    STREAM = "stream"  # a character device, a FIFO, a file reached through /proc
    SEND = "send"  # a Unix socket


@dataclass(frozen=True)
class _Destination:
    """Where one output goes, found before anything is written."""

    shown: str  # the name messages give it
    how: _How
    target: str  # the file replaced, or the path opened
    info: os.stat_result | None  # what ``target`` is now (None: nothing yet)

    @property
    def identity(self) -> tuple:
        """The same for two destinations that are one file (through links too)."""
        if self.info is not None:
            return ("file", self.info.st_dev, self.info.st_ino)
        return ("new", os.path.realpath(self.target))


def write_output(path: PathLike, data: str | bytes, *, shown_as: str | None = None) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path``, the way its kind asks.

    The one-output case of :func:`write_outputs`.

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
    write_outputs([(path, data)], shown_as=None if shown_as is None else [shown_as])


def write_outputs(
    outputs: Sequence[tuple[PathLike, str | bytes]],
    *,
    shown_as: Sequence[str | None] | None = None,
) -> None:
    """Write several outputs as one step: all of them, or (but for streams) none.

    Every path is looked at first (as :func:`write_output` describes), and two that
    are the same file (the same path, or one file through a symbolic or hard link) are
    refused before anything is written.  Then each regular file's contents go to a
    temporary file beside it, flushed to disk; then the streams (devices, FIFOs,
    sockets, ``/dev/stdout``) are written, in order, since what a stream received cannot
    be taken back; and only when all of that succeeded are the temporary files renamed
    over their paths, with Ctrl-C held until the last rename is done.

    Parameters
    ----------
    outputs : sequence of (path, data)
        Each output's path (see :func:`write_output`) and whole contents.
    shown_as : sequence of str or None, optional
        For each output, the name messages give it (None: its path).

    Raises
    ------
    InputError
        One line naming the output at fault; every temporary file is then removed and
        every regular file left as it was (a stream written before the failure keeps
        what it received).
    KeyboardInterrupt
        Ctrl-C, after removing the temporary files, with the same guarantee.

    Notes
    -----
    The renames are the commit: each is a single system call on a path already known
    to be writable, and they are not undone should one of them fail.
    """
    names = list(shown_as) if shown_as is not None else [None] * len(outputs)
    if len(names) != len(outputs):
        raise ValueError("shown_as needs one name per output")
    destinations = [
        _destination(path, shown) for (path, _), shown in zip(outputs, names, strict=True)
    ]
    _refuse_twice(destinations)
    payloads = [
        data.encode("utf-8") if isinstance(data, str) else bytes(data) for _, data in outputs
    ]
    staged: list[tuple[str, _Destination]] = []  # (temporary file, where it goes)
    try:
        for where, payload in zip(destinations, payloads, strict=True):
            if where.how is _How.REPLACE:
                # appended as soon as it exists, so that a failure removes it
                _stage(where, payload, staged)
        for where, payload in zip(destinations, payloads, strict=True):
            if where.how is _How.STREAM:
                _stream(where.target, payload, where.shown)
            elif where.how is _How.SEND:
                _send(where.target, payload, where.shown)
        with deferred_interrupt():  # all renamed, or Ctrl-C waits: never some of them
            while staged:
                tmp, where = staged[0]
                try:
                    os.replace(tmp, where.target)
                except OSError as err:
                    raise InputError(f"{where.shown}: cannot write: {_reason(err)}") from err
                staged.pop(0)
    finally:
        if staged:
            with deferred_interrupt():
                for tmp, _ in staged:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
    replaced = {_directory(where.target) for where in destinations if where.how is _How.REPLACE}
    for directory in sorted(replaced):
        _sync_directory(directory)


def streamed(path: PathLike) -> bool:
    """Whether ``path`` is written as a stream: a character device, a FIFO, a socket,
    or a file reached through ``/proc`` (``/dev/stdout``), rather than replaced.

    A path placer cannot look at (a loop of links, a missing directory) is not a stream.

    Examples
    --------
    >>> streamed("/dev/null")
    True
    >>> streamed("plan.json")
    False
    """
    try:
        return _destination(path, None).how is not _How.REPLACE
    except InputError:
        return False


def check_outputs(
    outputs: Mapping[str, PathLike | None], inputs: Mapping[str, PathLike | None] | None = None
) -> None:
    """Refuse outputs that would write over an input or over each other, before any work.

    Parameters
    ----------
    outputs : mapping of str to path or None
        Each output by the option that names it (``"-o"``, ``"--html"``); None: not given.
    inputs : mapping of str to path or None
        Each input file by what the user calls it (``"MODEL"``, ``"--cluster"``); None:
        not given.  An input that is not an existing regular file is not compared (the
        command reports it when it reads it).

    Raises
    ------
    InputError
        One line naming the output and the input (or the other output) it is the same
        file as, the same path or through a symbolic or hard link; or an output that
        cannot be written at all (a directory, a block device, a loop of links, a
        missing directory).
    """
    given = {option: path for option, path in outputs.items() if path is not None}
    destinations = {option: _destination(path, None) for option, path in given.items()}
    for where in destinations.values():
        directory = _directory(where.target)
        if where.how is _How.REPLACE and not os.path.isdir(directory):
            raise InputError(
                f"{where.shown}: cannot write: no such directory {printable(directory)}"
            )
        if where.how is _How.REPLACE:
            _probe(directory, where.shown)
    _refuse_twice(list(destinations.values()), list(destinations))
    files = {}
    for name, path in (inputs or {}).items():
        info = _regular_file(path)
        if info is not None:
            files.setdefault((info.st_dev, info.st_ino), (name, path))
    for option, where in destinations.items():
        if where.info is None:
            continue
        same = files.get((where.info.st_dev, where.info.st_ino))
        if same is not None:
            name, path = same
            raise InputError(
                f"{where.shown}: {option} would write over {name} "
                f"({printable(os.fspath(path))}), an input of this command; name another "
                "output file"
            )


def check_output_directory(directory: PathLike, inputs: Mapping[str, PathLike | None]) -> None:
    """Refuse an output directory that is, or holds, one of the inputs.

    A command that replaces a whole directory (``placer split``) could otherwise
    replace or delete the file it reads.

    Parameters
    ----------
    directory : str or Path
        The output directory, which need not exist yet.
    inputs : mapping of str to path or None
        Each input file by what the user calls it (``"the model"``); None: not given.

    Raises
    ------
    InputError
        One line naming the directory and the input inside it.
    """
    root = os.path.realpath(directory)
    shown = printable(os.fspath(directory))
    for name, path in inputs.items():
        if _regular_file(path) is None:
            continue
        where = os.path.realpath(path)
        if where == root or where.startswith(root.rstrip(os.sep) + os.sep):
            relation = "is" if where == root else "holds"
            raise InputError(
                f"{shown}: {relation} {name} ({printable(os.fspath(path))}), and the whole "
                "directory is replaced; name another output directory, or move the input "
                "out of it"
            )


def _regular_file(path: PathLike | None) -> os.stat_result | None:
    if path is None:
        return None
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def _refuse_twice(destinations: list[_Destination], options: list[str] | None = None) -> None:
    """Refuse two outputs that are one file, unless both stream to it (a terminal, a
    pipe, ``/dev/null``: the second follows the first, and nothing is lost)."""
    seen: dict[tuple, int] = {}
    for i, where in enumerate(destinations):
        first = seen.setdefault(where.identity, i)
        if first == i:
            continue
        other = destinations[first]
        if where.how is _How.REPLACE or other.how is _How.REPLACE:
            if options is None:
                named = f"the same file as {other.shown}, another output"
            else:
                named = f"{options[first]} and {options[i]} name the same file"
            raise InputError(f"{where.shown}: {named}; name a different file for each")


def _destination(path: PathLike, shown_as: str | None) -> _Destination:
    """What ``path`` names, and so how it is written; refuses what cannot be written."""
    text = os.fspath(path)
    if not text:
        raise InputError("the output path is empty")
    shown = printable(text if shown_as is None else shown_as)
    if text.endswith(("/", os.sep)):
        raise InputError(f"{shown}: names a directory (it ends in '/'); name a file")
    try:
        link = stat.S_ISLNK(os.lstat(text).st_mode)
    except FileNotFoundError:
        return _Destination(shown, _How.REPLACE, text, None)
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
            return _Destination(shown, _How.STREAM, text, info)
        target = os.path.realpath(text) if link else text
        return _Destination(shown, _How.REPLACE, target, info)
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{shown}: is a directory; name a file")
    if stat.S_ISBLK(info.st_mode):
        raise InputError(f"{shown}: is a block device; placer does not write over one")
    if stat.S_ISSOCK(info.st_mode):
        return _Destination(shown, _How.SEND, text, info)
    return _Destination(shown, _How.STREAM, text, info)  # a character device or a FIFO


def _directory(target: str) -> str:
    return os.path.dirname(target) or "."


def _probe(directory: str, shown: str) -> None:
    """Refuse, before any work, a directory the output's temporary file cannot be made
    in (read-only, or a file system such as /proc that makes no files): a calibration
    measured for a minute, then lost."""
    fd = None
    try:
        with deferred_interrupt():  # so that a Ctrl-C cannot leave the probe behind
            fd, probe = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".probe", dir=directory)
            os.close(fd)
            os.unlink(probe)
    except OSError as err:
        raise InputError(f"{shown}: cannot write: {_reason(err)}") from err


def _stage(where: _Destination, payload: bytes, staged: list[tuple[str, _Destination]]) -> None:
    """Write ``payload`` to a new temporary file beside ``where.target``, flushed to disk,
    with the mode and owner the output should have; appends it to ``staged``."""
    directory = _directory(where.target)
    fd = None
    try:
        with deferred_interrupt():  # so that a Ctrl-C cannot lose track of the file
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=directory)
            staged.append((tmp, where))
        # mkstemp makes the file 0600, private to the user, which an output file is not
        os.fchmod(fd, _mode_for(where.info))
        info = where.info
        if info is not None and (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(OSError):  # only root may give a file away
                os.fchown(fd, info.st_uid, info.st_gid)
        _write_all(fd, payload)
        os.fsync(fd)
        closing, fd = fd, None  # closed even if close fails: never close it twice
        os.close(closing)
    except BaseException as err:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        if isinstance(err, OSError):
            if err.errno == errno.ENOENT and not os.path.isdir(directory):
                raise InputError(
                    f"{where.shown}: cannot write: no such directory {printable(directory)}"
                ) from err
            raise InputError(f"{where.shown}: cannot write: {_reason(err)}") from err
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
