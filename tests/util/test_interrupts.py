"""The pieces that keep Ctrl-C prompt: deferred interrupts, child processes, isolated
native calls, and the command line's watchdog."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from placer.util import interrupts
from placer.util.isolate import IsolatedFailure, IsolatedTimeout, run_isolated
from tests.conftest import ROOT


def _ctrl_c_soon(delay: float = 0.2) -> threading.Timer:
    timer = threading.Timer(delay, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_a_deferred_interrupt_arrives_after_the_block() -> None:
    finished = []
    with pytest.raises(KeyboardInterrupt), interrupts.deferred_interrupt():
        _ctrl_c_soon(0.05).join()
        time.sleep(0.2)  # the signal came, and nothing raised inside the block
        finished.append(True)
    assert finished == [True]


def test_nested_deferral_hands_the_interrupt_outwards() -> None:
    steps = []
    with pytest.raises(KeyboardInterrupt), interrupts.deferred_interrupt():
        with interrupts.deferred_interrupt():
            _ctrl_c_soon(0.05).join()
            time.sleep(0.1)
        steps.append("inner done")  # the inner block recorded it for the outer one
    assert steps == ["inner done"]


def test_terminate_children_kills_this_process_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        interrupts.terminate_children()
        assert child.wait(timeout=5) == -signal.SIGKILL
    finally:
        child.kill()


def test_an_isolated_call_returns_its_bytes_or_its_error() -> None:
    assert run_isolated(lambda: b"shapes", 10) == b"shapes"

    def fails() -> bytes:
        raise ValueError("bad op\nsecond line")

    with pytest.raises(IsolatedFailure, match=r"^bad op$"):
        run_isolated(fails, 10)


def test_an_isolated_call_that_never_returns_is_killed_at_its_budget() -> None:
    started = time.monotonic()
    with pytest.raises(IsolatedTimeout):
        run_isolated(lambda: time.sleep(60) or b"", 0.5)
    assert time.monotonic() - started < 5


def test_ctrl_c_while_an_isolated_call_runs_stops_it_at_once() -> None:
    started = time.monotonic()
    _ctrl_c_soon(0.3)
    with pytest.raises(KeyboardInterrupt):
        run_isolated(lambda: time.sleep(60) or b"", 30)
    assert time.monotonic() - started < 2


_STUCK = r"""
import signal, sys, time
sys.argv = ["placer", "--version"]
import placer.cli as cli
cli._start_watchdog()
print("ready", flush=True)
while True:  # a library that swallows KeyboardInterrupt, as native code ignores it
    try:
        time.sleep(30)
    except KeyboardInterrupt:
        pass
"""


def test_the_watchdog_ends_a_process_that_swallows_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _STUCK], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=ROOT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert process.stdout.readline() == b"ready\n"
    time.sleep(0.3)  # into its loop
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 130
    assert time.monotonic() - sent < 1.5
    assert err.decode().strip().splitlines() == ["placer: interrupted"]
