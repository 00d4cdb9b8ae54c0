"""The ``placer`` command's entry point: runs a command of :mod:`placer.cli.commands`, with
one-line errors, documented exit statuses and a prompt end on Ctrl-C.

Nothing heavy is imported before :func:`main` runs, so that a Ctrl-C while Python loads
click, rich, numpy and the solvers is an interruption like any other, not a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
import sys
import threading
import time
from typing import NoReturn

from placer.cli.started import start_command  # first: the command's start (--time-limit)
from placer.errors import ExitStatus
from placer.util import interrupts

#: Seconds after a Ctrl-C before the watchdog ends a process whose main thread has not
#: (it is inside native code that does not return to Python).
WATCHDOG_SECONDS = 0.8


def main(argv: list[str] | None = None) -> None:
    """Run ``placer ARGS``, turning user errors into one line and an exit status.

    ``argv=None`` means the installed ``placer`` command: then a watchdog makes sure a
    Ctrl-C ends the process within a second, and the process ends with ``os._exit``
    once its output is flushed, so that neither a Ctrl-C during the interpreter's
    teardown nor a solver thread left running can change how it ends (see
    :mod:`placer.util.interrupts`).  Tests pass ``argv`` and get ``SystemExit`` instead.
    """
    command_line = argv is None
    start_command(in_process=not command_line)
    if command_line:
        _start_watchdog()
        signal.signal(signal.SIGINT, _on_ctrl_c)
        _prepare_streams()
    try:
        status = _run(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:
        _interrupted(command_line)
    except Exception:
        if not interrupts.CTRL_C.is_set():
            raise
        _interrupted(command_line)  # the Ctrl-C, turned into another error by native code
    _exit(status, command_line)


class _ClosedStdout(io.TextIOWrapper):
    """What placer writes to when standard output was closed (``placer ... >&-``): the
    writes go nowhere, and :attr:`written` says that output was lost."""

    written = False

    def write(self, text: str) -> int:
        type(self).written = type(self).written or bool(text)
        return super().write(text)


def _prepare_streams() -> None:
    """Standard streams that cannot fail in ways that are not ours: text the terminal's
    encoding cannot show is written as escapes (a table's box drawing under
    ``PYTHONIOENCODING=ascii``), and a closed stream is replaced by one to nowhere."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            sink = open(os.devnull, "wb")  # noqa: SIM115 -- it lives as long as the process
            wrapper = _ClosedStdout if name == "stdout" else io.TextIOWrapper
            setattr(sys, name, wrapper(sink, encoding="utf-8", line_buffering=True))
        elif isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def _run(args: list[str]) -> int:
    """Run the command; returns its exit status, or raises KeyboardInterrupt."""
    import click

    from placer.cli.commands import cli
    from placer.errors import PlacerError

    # click >= 8.2 raises this for a bare ``placer``; its "message" is the help text
    no_args_is_help = getattr(click.exceptions, "NoArgsIsHelpError", ())
    try:
        with cli.make_context("placer", args) as ctx:
            cli.invoke(ctx)
    except PlacerError as err:
        if interrupts.CTRL_C.is_set():  # the Ctrl-C, become an error on its way out
            raise KeyboardInterrupt from None
        return _fail(str(err), err.exit_status)
    except click.exceptions.Exit as err:
        return err.exit_code
    except no_args_is_help as err:
        err.show()
        return ExitStatus.INVALID_INPUT
    except click.UsageError as err:
        command = err.ctx.command_path if err.ctx is not None else "placer"
        return _fail(f"{err.format_message()} (see '{command} --help')", ExitStatus.INVALID_INPUT)
    except click.ClickException as err:
        return _fail(err.format_message(), ExitStatus.INVALID_INPUT)
    except (click.Abort, EOFError):
        raise KeyboardInterrupt from None
    except BrokenPipeError:
        # the reader of our output went away (``placer ... | head``): not an error of ours
        _silence_stdout()
    except OSError as err:
        # every file placer reads or writes by name reports its own errors: what is left
        # of these is standard output refusing the result (``> /dev/full``, a full disk)
        if err.errno not in _WRITE_ERRORS:
            raise
        return _stdout_failed(err.strerror or str(err))
    if _ClosedStdout.written:
        return _stdout_failed("it is closed")
    return ExitStatus.OK


#: What a write to standard output fails with when the file behind it cannot take more.
_WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF})


def _stdout_failed(reason: str) -> ExitStatus:
    """Say in one line that standard output refused the result; drop what is left."""
    _silence_stdout()
    return _fail(f"cannot write to standard output: {reason}", ExitStatus.INVALID_INPUT)


def _fail(message: str, status: ExitStatus) -> ExitStatus:
    """Print ``message`` as the one error line; returns ``status``."""
    import click

    from placer.util.text import printable

    # one line, whatever the message: a wrapped line would read as two errors, and an
    # escape sequence from a name in it must not reach the terminal
    line = printable(" ".join(message.split()))
    click.echo(click.style("placer: error: ", fg="red", bold=True) + line, err=True)
    return status


def _exit(status: int, command_line: bool) -> NoReturn:
    """Exit with ``status``: on the command line with ``os._exit`` once the output is
    flushed, after which a Ctrl-C no longer matters.  Output that cannot be flushed
    (a full disk behind ``>``) is an error, not a silent loss."""
    if command_line:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the work is done: keep its status
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            pass
        except OSError as err:
            failed = _stdout_failed(err.strerror or str(err))
            status = failed if status == ExitStatus.OK else status
        _flush()
        os._exit(status)
    sys.exit(status)


def _interrupted(command_line: bool) -> NoReturn:
    """Ctrl-C: stop child processes, say so in one line, exit 130 now."""
    if command_line:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C changes nothing
    interrupts.EXITING.set()
    interrupts.terminate_children()
    sys.stderr.write("placer: interrupted\n")
    _flush()
    if command_line:
        os._exit(ExitStatus.INTERRUPTED)
    sys.exit(ExitStatus.INTERRUPTED)


def _flush() -> None:
    """Flush what is buffered before ``os._exit``; a closed reader loses nothing of ours."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _silence_stdout() -> None:
    """Send what is left for a closed stdout nowhere, so that flushing it cannot fail."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _on_ctrl_c(signum: int, frame) -> None:
    """The command line's SIGINT handler: :class:`KeyboardInterrupt`, except inside an
    import, where it ends the process at once (exit 130, one line).

    An import runs a module's native initialisation (numpy's, numba's), which calls back
    into Python; an exception raised between those bytecodes unwinds native frames that
    do not expect it (a SIGSEGV or an abort in about 1 of 200 Ctrl-Cs during start-up).
    Nothing of placer's is half-written while a module loads: outputs are staged from
    bytes already made, so there is nothing to clean up but child processes.
    """
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            interrupts.EXITING.set()
            interrupts.terminate_children()
            with contextlib.suppress(RuntimeError):  # a stream interrupted mid-write
                _flush()
            os.write(2, b"placer: interrupted\n")  # not sys.stderr: it may be mid-write
            os._exit(ExitStatus.INTERRUPTED)
        frame = frame.f_back
    interrupts.CTRL_C.set()
    raise KeyboardInterrupt


def _start_watchdog() -> None:
    """End the process within :data:`WATCHDOG_SECONDS` of a Ctrl-C whatever it does.

    Python handles a signal only between bytecodes of the main thread; native code
    that holds on (a solver's presolve, a compiler) would delay Ctrl-C for as long as it
    runs.  The C-level handler writes the signal's number to a pipe (``set_wakeup_fd``)
    that a daemon thread reads: after a Ctrl-C it waits, and if the process still runs,
    stops child processes, says "interrupted" and exits 130.
    """
    try:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except (OSError, ValueError):  # not the main thread, or no pipes: do without
        return

    def watch() -> None:
        while signal.SIGINT not in os.read(read_end, 64):
            pass
        time.sleep(WATCHDOG_SECONDS)
        if not interrupts.EXITING.is_set():
            interrupts.EXITING.set()
            interrupts.terminate_children()
            os.write(2, b"placer: interrupted\n")
        else:
            time.sleep(WATCHDOG_SECONDS)  # the main thread is exiting: give it time
        os._exit(ExitStatus.INTERRUPTED)

    threading.Thread(target=watch, name="placer-watchdog", daemon=True).start()
