"""Run one fuzz case through the CLI in-process and hold it to the README's promises.

The promises, for every command and every input (README "Exit statuses"):

- the exit status is a documented one for a user's input: 0, 2, 3, 4 or 5, never 1
  (an internal error) and never an escaping exception;
- a failure is exactly one line on stderr, ``placer: error: ...``, and no traceback;
- nothing on stdout or stderr carries a raw control character from a name (an escape
  sequence would restyle or retitle the terminal);
- no Python warning is raised (the real command would print it as more stderr lines);
- a failed command leaves the directory it ran in exactly as it was: no output file,
  no temporary file, no changed file;
- a command that succeeds writes only the outputs it was asked for, and a JSON output
  (stdout or file) is strict JSON (no ``NaN`` or ``Infinity``).

A case that runs longer than :data:`HANG_SECONDS` is stopped by an alarm and fails as a
hang; :mod:`faulthandler` ends the whole run after :data:`STUCK_SECONDS` if a hang sits
in C code that never returns to Python, so a run never blocks forever.

Set ``PLACER_FUZZ_LOG=FILE`` to append every broken promise to FILE as a JSON line (the
command, its inputs, what happened): hypothesis reports one failure per test, the log
all of them. ``PLACER_FUZZ_SURVEY=1`` (with the log) goes further: a broken promise is
logged and the run goes on, to map every failure class in one run; never set it in CI.
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import json
import math
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import time
import traceback
import unicodedata
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: Exit statuses an input may cause (README); 1 means a bug, 130 needs a Ctrl-C.
DOCUMENTED = frozenset({0, 2, 3, 4, 5})
#: Seconds one case may run before it counts as a hang (every input here is tiny).
HANG_SECONDS = float(os.environ.get("PLACER_FUZZ_HANG_SECONDS", "8"))
#: Seconds after which a case stuck in C code (never back in Python) ends the run.
STUCK_SECONDS = 120
#: Log broken promises and go on instead of failing (a survey; see the module docstring).
SURVEY = os.environ.get("PLACER_FUZZ_SURVEY") == "1"
#: Warnings Python hides by default: they would not reach a user's terminal.
_HIDDEN = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


class Hang(BaseException):
    """Raised by the alarm in a case that runs past :data:`HANG_SECONDS`."""


@dataclass
class Outcome:
    """What one run of the command did."""

    args: tuple[str, ...]
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    crash: str | None = None  # the escaping exception's last traceback line
    where: str | None = None  # innermost placer frame of that exception
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _alarm(timeout: float):
    def on_alarm(signum, frame):
        raise Hang(f"still running after {timeout:g} s")

    return on_alarm


def invoke(
    run_placer: Callable, *args: str | os.PathLike, timeout: float = HANG_SECONDS
) -> Outcome:
    """Run ``placer ARGS...`` through the ``run_placer`` fixture, catching what escapes."""
    args = tuple(str(a) for a in args)
    previous = signal.signal(signal.SIGALRM, _alarm(timeout))
    faulthandler.dump_traceback_later(STUCK_SECONDS, exit=True)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            result = run_placer(*args)
            outcome = Outcome(args, result.exit_code, result.stdout, result.stderr)
        except (Exception, Hang) as err:  # a crash is what we look for
            frames = [f for f in traceback.extract_tb(err.__traceback__) if "placer" in f.filename]
            inner = [f for f in frames if f"{os.sep}placer{os.sep}" in f.filename]
            where = f"{Path(inner[-1].filename).name}:{inner[-1].lineno}" if inner else None
            line = traceback.format_exception_only(type(err), err)[-1].strip()
            outcome = Outcome(args, 1, crash=line[:300], where=where)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            faulthandler.cancel_dump_traceback_later()
            signal.signal(signal.SIGALRM, previous)
    outcome.seconds = time.perf_counter() - start
    outcome.warnings = [
        f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, _HIDDEN)
    ]
    return outcome


# --- the state of a directory, to tell what a command wrote ---------------------------


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` (symlinks not followed) with its kind and content hash."""
    state: dict[str, tuple] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            info = os.lstat(path)
            key = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                state[key] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                state[key] = ("file", hashlib.sha1(path.read_bytes()).hexdigest())
            elif stat.S_ISDIR(info.st_mode):
                state[key] = ("dir",)
            else:
                state[key] = ("special", stat.S_IFMT(info.st_mode))
    return state


def changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """Paths created, removed or changed between two snapshots."""
    found = []
    for key in sorted(before.keys() | after.keys()):
        if key not in before:
            found.append(f"created {key}")
        elif key not in after:
            found.append(f"removed {key}")
        elif before[key] != after[key]:
            found.append(f"changed {key}")
    return found


# --- the promises ----------------------------------------------------------------------


def strict_json(text: str):
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and numbers that overflow."""

    def constant(name: str):
        raise ValueError(f"{name} is not JSON")

    def number(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            raise ValueError(f"{token} overflows a float")
        return value

    return json.loads(text, parse_constant=constant, parse_float=number)


#: A figure that rich ellipsized to fit a narrow table ("0.00…", "1e+…").
_TRUNCATED_NUMBER = re.compile(r"[\d.][\d.e+-]*…")


def _control_characters(text: str) -> list[str]:
    """Raw control characters (C0 but newline and tab, DEL, C1, bidi overrides) in ``text``."""
    bad = []
    for char in text:
        if char in "\n\t":
            continue
        if (
            unicodedata.category(char) == "Cc"
            or char in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
        ):
            bad.append(repr(char))
    return sorted(set(bad))


def broken_promises(
    outcome: Outcome,
    *,
    before: dict[str, tuple] | None = None,
    after: dict[str, tuple] | None = None,
    outputs: Iterable[str] = (),
    json_stdout: bool = False,
    json_files: Iterable[Path] = (),
) -> list[str]:
    """How ``outcome`` breaks the promises (empty when it keeps them).

    ``outputs`` are the paths (relative to the snapshot's root) a successful run may
    create or change, a directory standing for everything under it; ``json_files`` are
    outputs to parse as strict JSON when the run succeeds.
    """
    if outcome.crash is not None:
        return [
            f"crash (exit 1): {outcome.crash}" + (f" [at {outcome.where}]" if outcome.where else "")
        ]
    broken = []
    status = outcome.exit_code
    if status not in DOCUMENTED:
        broken.append(f"exit status {status} is not a documented one")
    lines = outcome.stderr.strip().splitlines()
    if status != 0:
        if len(lines) != 1:
            broken.append(f"exit {status} with {len(lines)} stderr lines: {outcome.stderr[:300]!r}")
        elif not lines[0].startswith("placer: error: "):
            broken.append(
                f"exit {status} with a stderr line not 'placer: error:': {lines[0][:200]!r}"
            )
    if "Traceback" in outcome.stderr:
        broken.append("a traceback on stderr")
    if outcome.warnings:
        broken.append(f"python warnings (more stderr lines): {outcome.warnings[0][:200]}")
    for stream, text in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
        bad = _control_characters(text)
        if bad:
            broken.append(f"raw control characters on {stream}: {', '.join(bad[:5])}")
    cut = _TRUNCATED_NUMBER.search(outcome.stdout)
    if cut:  # stdout is not a terminal here: a CI log or a pipe must get whole figures
        broken.append(f"a number cut short on stdout: {cut.group()!r}")
    if before is not None and after is not None:
        changed = changes(before, after)
        if status not in (0, 4):  # 4: place --fail-below writes the plan first
            if changed:
                broken.append(f"exit {status} but the directory changed: {', '.join(changed[:4])}")
        else:
            allowed = [str(o).rstrip("/") for o in outputs]
            stray = [
                c
                for c in changed
                if not any(
                    c.split(" ", 1)[1] == o or c.split(" ", 1)[1].startswith(o + os.sep)
                    for o in allowed
                )
            ]
            if stray:
                broken.append(
                    f"exit {status} but wrote what it was not asked to: {', '.join(stray[:4])}"
                )
    if status == 0:
        if json_stdout:
            try:
                document = strict_json(outcome.stdout)
            except ValueError as err:
                broken.append(f"stdout is not strict JSON: {str(err)[:200]}")
            else:
                broken += _figures_broken(outcome.args[0] if outcome.args else "", document)
        for path in json_files:
            try:
                document = strict_json(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                broken.append(f"{Path(path).name[:40]} is not strict JSON: {str(err)[:200]}")
            else:
                broken += _figures_broken("place", document)
    return broken


def _negative(value, path: str = ""):
    """The first negative number in a decoded JSON document, with its path."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return (path, value) if value < 0 else None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        found = _negative(child, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def _figures_broken(command: str, document) -> list[str]:
    """What is wrong with the figures of a JSON output: no time, size, count or rate
    placer prints is negative, and a plan printed by ``place`` or ``evaluate`` passes
    placer's own plan schema (the README says it is a plan file)."""
    broken = []
    negative = _negative(document)
    if negative:
        broken.append(f"a negative figure in the output: {negative[0]} = {negative[1]!r}")
    if command in ("place", "evaluate"):
        from placer.outputs.schema import load_schema, schema_errors

        errors = schema_errors(document, load_schema("plan"))
        if errors:
            broken.append(f"the plan printed fails placer's plan schema: {errors[0][:200]}")
    return broken


def describe_inputs(paths: Iterable[Path], limit: int = 240) -> dict[str, str]:
    """The first bytes of each input file, for the failure log and messages."""
    shown = {}
    for path in paths:
        try:
            if Path(path).is_file():
                data = Path(path).read_bytes()
                shown[Path(path).name] = repr(data[:limit]) + (
                    f"... ({len(data)} bytes)" if len(data) > limit else ""
                )
        except OSError:
            pass
    return shown


def _contents(paths: Iterable[Path], limit: int = 64 * 1024) -> dict[str, str]:
    """Each small input file in base64, so that a logged case can be replayed."""
    import base64

    found = {}
    for path in paths:
        path = Path(path)
        if path.is_file() and path.stat().st_size <= limit:
            found[path.name] = base64.b64encode(path.read_bytes()).decode()
    return found


def log_failure(
    test: str,
    outcome: Outcome,
    broken: list[str],
    inputs: dict[str, str],
    contents: dict[str, str] | None = None,
) -> None:
    """Append one broken case to ``$PLACER_FUZZ_LOG`` (when it is set)."""
    target = os.environ.get("PLACER_FUZZ_LOG")
    if not target:
        return
    record = {
        "test": test,
        "args": list(outcome.args),
        "exit": outcome.exit_code,
        "broken": broken,
        "stderr": outcome.stderr[-300:],
        "crash": outcome.crash,
        "where": outcome.where,
        "inputs": inputs,
        "contents": contents or {},
        "seconds": round(outcome.seconds, 3),
    }
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def current_test() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]


def check_case(
    run_placer: Callable,
    root: Path,
    *args: str | os.PathLike,
    outputs: Iterable[str] = (),
    json_stdout: bool = False,
    json_files: Iterable[Path] = (),
    inputs: Iterable[Path] = (),
    extra: Callable[[Outcome], list[str]] | None = None,
    timeout: float = HANG_SECONDS,
) -> Outcome:
    """Run the command in ``root`` (a directory of its own) and assert every promise.

    ``extra`` adds the case's own promises (a refused NaN, a file still a FIFO, ...).
    """
    outputs, inputs = list(outputs), list(inputs)
    before = snapshot(root)
    outcome = invoke(run_placer, *args, timeout=timeout)
    after = snapshot(root)
    broken = broken_promises(
        outcome,
        before=before,
        after=after,
        outputs=outputs,
        json_stdout=json_stdout,
        json_files=json_files,
    )
    if extra is not None and outcome.crash is None:
        broken += extra(outcome)
    if broken:
        shown = describe_inputs(inputs)
        log_failure(current_test(), outcome, broken, shown, _contents(inputs))
        if SURVEY:
            return outcome
        raise AssertionError(
            f"placer {' '.join(outcome.args)}\n  "
            + "\n  ".join(broken)
            + "".join(f"\n  input {name}: {text}" for name, text in shown.items())
            + (f"\n  stderr: {outcome.stderr[-300:]!r}" if outcome.stderr else "")
        )
    return outcome


def fails_with(*statuses: int) -> Callable[[Outcome], list[str]]:
    """An ``extra`` promise: the run must end with one of ``statuses``."""

    def promise(outcome: Outcome) -> list[str]:
        if outcome.exit_code in statuses:
            return []
        wanted = " or ".join(map(str, statuses))
        return [f"exit {outcome.exit_code}, expected {wanted} (the input must be refused)"]

    return promise


@dataclass
class ChildOutcome:
    """What a ``placer`` child process did (None for a status: killed when it overran)."""

    args: tuple[str, ...]
    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float


def run_child(*args: str | os.PathLike, timeout: float) -> ChildOutcome:
    """Run ``python -m placer ARGS...`` in a child process, killed after ``timeout``
    seconds: for cases that can hang in C code (ONNX shape inference, a solver), where
    no alarm reaches."""
    import subprocess

    args = tuple(str(a) for a in args)
    start = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "placer", *args], capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else ""
        return ChildOutcome(args, None, out, "", time.monotonic() - start)
    return ChildOutcome(args, done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def child_promises(child: ChildOutcome, *, json_stdout: bool = False) -> list[str]:
    """The harness's promises for a child process (no directory snapshot)."""
    if child.exit_code is None:
        return [f"still running after {child.seconds:.0f} s (killed)"]
    outcome = Outcome(child.args, child.exit_code, child.stdout, child.stderr)
    return broken_promises(outcome, json_stdout=json_stdout)


@contextlib.contextmanager
def case_dir(base: Path):
    """A fresh empty directory under ``base`` for one case, removed afterwards."""
    path = Path(tempfile.mkdtemp(dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- hypothesis settings -------------------------------------------------------------

#: ``PLACER_FUZZ_SCALE=N`` multiplies every test's examples by N for a longer local run;
#: above 1 the draws are random (new cases each run) instead of the fixed ones CI uses.
SCALE = float(os.environ.get("PLACER_FUZZ_SCALE", "1"))


#: ``PLACER_FUZZ_SHRINK=1`` lets hypothesis shrink a failing case to a minimal one; off
#: by default because shrinking reruns a failing case hundreds of times, and the cases
#: are the same on every run anyway (the failing one is printed as it was drawn).
SHRINK = os.environ.get("PLACER_FUZZ_SHRINK") == "1"


def fuzz_settings(examples: int):
    """Hypothesis settings for a fuzz test: ``examples`` cases (times the scale), no
    deadline, and the same cases on every run unless the scale is raised."""
    from hypothesis import HealthCheck, Phase, settings

    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize=SCALE <= 1,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[*phases, Phase.shrink] if SHRINK else phases,
    )
