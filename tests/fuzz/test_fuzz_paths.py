"""Fuzz where placer reads: each reader (model, workload, cluster, costs, plan) given a
directory, a FIFO, a missing file, dangling and looping links, a device that never ends
and a file too large to read."""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.fuzz.harness import check_case, fails_with
from tests.fuzz.models import tiny_bytes

# (reader, file name, the command with {path} for the file under test)
READERS = [
    ("model", "in.onnx", ("inspect", "{path}")),
    ("workload", "in.json", ("place", "{path}", "--solver", "dp")),
    ("cluster", "in.yaml", ("place", "{root}/chain.onnx", "--cluster", "{path}", "--solver", "dp")),
    ("costs", "in.csv", ("place", "{root}/chain.onnx", "--costs", "{path}", "--solver", "dp")),
    ("plan", "in.json", ("check", "{path}")),
    ("plan for evaluate", "in.json", ("evaluate", "{root}/chain.onnx", "{path}")),
]  # fmt: skip


def _directory(path: Path) -> None:
    path.mkdir()


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _missing(path: Path) -> None:
    return None


def _dangling_link(path: Path) -> None:
    os.symlink(path.parent / "nowhere", path)


def _link_loop(path: Path) -> None:
    os.symlink(path.name, path)


def _under_a_file(path: Path) -> None:
    return None  # the path is made FILE/in.xxx below


KINDS = [
    ("directory", _directory),
    ("missing", _missing),
    ("dangling link", _dangling_link),
    ("link loop", _link_loop),
    ("under a file", _under_a_file),
]
#: Seconds a reader may take to refuse a FIFO: it must not wait for a writer.
FIFO_SECONDS = 2


def _run(run_placer, root: Path, reader, path: Path, timeout: float | None = None):
    (root / "chain.onnx").write_bytes(tiny_bytes("chain.onnx"))
    _, _, command = reader
    args = tuple(a.format(path=path, root=root) for a in command)
    extra = {"timeout": timeout} if timeout else {}
    check_case(run_placer, root, *args, extra=fails_with(2), **extra)


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r[0])
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k[0])
def test_input_paths(run_placer, tmp_path, reader, kind):
    """A path that names no readable regular file: refused at once, with one line."""
    _, name, _ = reader
    path = tmp_path / name
    if kind[0] == "under a file":
        (tmp_path / "file.txt").write_text("a file\n")
        path = tmp_path / "file.txt" / name
    else:
        kind[1](path)
    _run(run_placer, tmp_path, reader, path)


@pytest.mark.parametrize("reader", [READERS[0], READERS[2], READERS[4]], ids=lambda r: r[0])
def test_fifo_input(run_placer, tmp_path, reader):
    """A FIFO no one writes to: refused at once, not waited on."""
    path = tmp_path / reader[1]
    _fifo(path)
    _run(run_placer, tmp_path, reader, path, timeout=FIFO_SECONDS)


#: Address space a child reading a device that never ends may use: a reader without a
#: size cap fails with MemoryError there instead of filling the machine.
CHILD_MEMORY = 1536 * 2**20
#: Resident memory a child may reach: starting placer takes about 200 MiB; a reader
#: that refuses by size reads nothing.
CHILD_RSS = 600 * 2**20
CHILD_SECONDS = 20


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))


def _run_limited(args: list[str]) -> tuple[int | None, str, int]:
    """Run placer in a child with capped memory: (status or None if killed, stderr,
    peak resident bytes)."""
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "placer", *args], stdout=subprocess.DEVNULL, stderr=err,
            preexec_fn=_limited,
        )  # fmt: skip
        deadline = time.monotonic() + CHILD_SECONDS
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                child.kill()
                pid, status, usage = os.wait4(child.pid, 0)
                status = None
                break
            time.sleep(0.05)
        child.returncode = 0  # reaped above; keep Popen from waiting again
        err.seek(0)
        text = err.read().decode(errors="replace")
    code = None if status is None else os.waitstatus_to_exitcode(status)
    return code, text, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def _zero_device(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # like /dev/zero
    except PermissionError:
        pytest.skip("making a character device needs root")


def _sparse(path: Path) -> None:
    with open(path, "wb") as handle:  # 2 GiB that take no disk: a hole
        handle.truncate(2 * 2**30)


@pytest.mark.parametrize(
    ("reader", "make"),
    [(READERS[0], _zero_device), (READERS[4], _zero_device), (READERS[1], _sparse)],
    ids=["model from a zero device", "plan from a zero device", "2 GiB workload"],
)
def test_endless_and_huge_inputs(tmp_path, reader, make):
    """A device that never ends and a 2 GiB file: refused by a size cap without being
    read, in a child process whose memory is capped so that a reader without a cap
    cannot fill the machine."""
    path = tmp_path / reader[1]
    make(path)
    (tmp_path / "chain.onnx").write_bytes(tiny_bytes("chain.onnx"))
    args = [a.format(path=path, root=tmp_path) for a in reader[2]]
    code, stderr, peak = _run_limited(args)
    assert code is not None, f"placer {' '.join(args)}: still running after {CHILD_SECONDS} s"
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in stderr, (code, stderr[-400:])
    assert peak < CHILD_RSS, f"read {peak / 2**20:.0f} MiB before refusing"
