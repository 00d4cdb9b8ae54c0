"""Writing outputs: atomic for regular files (Ctrl-C leaves no partial file, the file
gets the usual mode), streamed to devices, FIFOs and sockets, through symbolic links,
and one line for every failure."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from placer.errors import InputError
from placer.util import fileio, interrupts
from placer.util.fileio import write_output, write_outputs
from tests.conftest import REFERENCE, one_line_error


def _interrupt(*_args, **_kwargs):
    raise KeyboardInterrupt


def test_interrupt_while_writing_leaves_the_old_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "plan.json"
    target.write_text("old\n")
    monkeypatch.setattr(fileio.os, "fsync", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_output(target, "new, but never finished\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_interrupt_while_writing_leaves_no_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(fileio.os, "replace", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_output(tmp_path / "model.onnx", b"\x08\x07")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_place_output_exits_130_without_a_file(
    run_placer, tmp_path, monkeypatch
) -> None:
    real_fsync = os.fsync
    monkeypatch.setattr(fileio.os, "fsync", _interrupt)
    result = run_placer(
        "place", REFERENCE / "layer-graphs/bert24_inference.json", "--solver", "dp",
        "-o", tmp_path / "plan.json",
    )  # fmt: skip
    monkeypatch.setattr(fileio.os, "fsync", real_fsync)
    assert result.exit_code == 130
    assert "interrupted" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_bytes_are_written_as_they_are(tmp_path) -> None:
    write_output(tmp_path / "blob", b"\x00\xff")
    assert (tmp_path / "blob").read_bytes() == b"\x00\xff"


def test_new_files_get_the_mode_open_would_give(tmp_path) -> None:
    old = os.umask(0o027)
    try:
        write_output(tmp_path / "plan.json", "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "plan.json").stat().st_mode) == 0o640


def test_a_replaced_file_keeps_its_mode(tmp_path) -> None:
    target = tmp_path / "plan.json"
    target.write_text("old\n")
    target.chmod(0o604)
    write_output(target, "new\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o604
    assert target.read_text() == "new\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_root_replacing_a_users_file_leaves_it_theirs(tmp_path) -> None:
    target = tmp_path / "plan.json"
    target.write_text("old\n")
    os.chown(target, 65534, 65534)
    write_output(target, "new\n")
    assert (target.stat().st_uid, target.stat().st_gid) == (65534, 65534)
    assert target.read_text() == "new\n"


def test_an_empty_path_is_refused(tmp_path) -> None:
    with pytest.raises(InputError, match="the output path is empty"):
        write_output("", "x")


# -- what the path names decides how it is written ------------------------------------


def _leftovers(*directories) -> list[str]:
    """Temporary files placer left in ``directories``."""
    return [p.name for d in directories for p in d.iterdir() if p.name.startswith(".placer-")]


@pytest.fixture
def null_device(tmp_path):
    """A character device like /dev/null, made in tmp_path (only root may make one)."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    path = tmp_path / "null"
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return path


@pytest.fixture
def full_device(tmp_path):
    """A device that fails every write with ENOSPC: a copy of /dev/full made in tmp_path
    as root, so that a broken writer could only ever replace that copy; else /dev/full
    itself, which a user who is not root cannot replace."""
    if os.geteuid() == 0:
        path = tmp_path / "full"
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        return path
    if not os.path.exists("/dev/full") or os.access("/dev", os.W_OK):
        pytest.skip("no /dev/full that is safe to write to")
    return Path("/dev/full")


class _FifoReader:
    """Reads a FIFO in a thread, as the other end of a pipe would."""

    def __init__(self, path) -> None:
        self.data = b""
        self._thread = threading.Thread(target=self._read, args=(path,), daemon=True)
        self._thread.start()

    def _read(self, path) -> None:
        with open(path, "rb") as fifo:
            self.data = fifo.read()

    def join(self) -> bytes:
        self._thread.join(timeout=10)
        assert not self._thread.is_alive()
        return self.data


def test_a_fifo_is_streamed_to_and_stays_a_fifo(tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = _FifoReader(fifo)
    write_output(fifo, "streamed\n")
    assert reader.join() == b"streamed\n"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert _leftovers(tmp_path) == []


def test_a_character_device_is_written_to_not_replaced(tmp_path, null_device) -> None:
    write_output(null_device, "discarded\n")
    info = os.lstat(null_device)
    assert stat.S_ISCHR(info.st_mode)
    assert info.st_rdev == os.makedev(1, 3)
    assert _leftovers(tmp_path) == []


def test_a_full_device_is_one_line_no_space_left(tmp_path, full_device) -> None:
    with pytest.raises(InputError) as err:
        write_output(full_device, "x" * 10_000)
    assert str(err.value) == f"{full_device}: cannot write: no space left on device"
    assert stat.S_ISCHR(os.lstat(full_device).st_mode)
    assert _leftovers(tmp_path) == []


def test_a_link_to_a_device_streams_to_the_device(tmp_path, null_device) -> None:
    link = tmp_path / "out.json"
    link.symlink_to(null_device)
    write_output(link, "{}\n")
    assert link.is_symlink()
    assert stat.S_ISCHR(os.lstat(null_device).st_mode)


def test_a_unix_socket_receives_the_output(tmp_path) -> None:
    path = tmp_path / "s"
    if len(str(path)) > 100:  # sun_path holds 108 bytes
        pytest.skip("the temporary directory's path is too long for a socket")
    received = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)

        def accept() -> None:
            connection, _ = server.accept()
            with connection:
                received.append(b"".join(iter(lambda: connection.recv(4096), b"")))

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        write_output(path, "to a socket\n")
        thread.join(timeout=10)
    assert received == [b"to a socket\n"]
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_a_link_to_a_regular_file_is_written_through(tmp_path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    target = elsewhere / "plan.json"
    target.write_text("old\n")
    target.chmod(0o640)
    link = home / "plan.json"
    link.symlink_to(target)
    inode = target.stat().st_ino
    write_output(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new\n"
    assert target.stat().st_ino != inode  # replaced atomically, beside the target
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _leftovers(home, elsewhere) == []


def test_a_relative_link_is_followed_from_its_own_directory(tmp_path, monkeypatch) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "real.json").write_text("old\n")
    (tmp_path / "sub" / "link.json").symlink_to("real.json")
    monkeypatch.chdir(tmp_path)
    write_output("sub/link.json", "new\n")
    assert (tmp_path / "sub" / "real.json").read_text() == "new\n"
    assert not (tmp_path / "real.json").exists()
    assert (tmp_path / "sub" / "link.json").is_symlink()


def test_a_dangling_link_creates_its_target(tmp_path) -> None:
    link = tmp_path / "plan.json"
    link.symlink_to(tmp_path / "made.json")
    write_output(link, "made\n")
    assert link.is_symlink()
    assert (tmp_path / "made.json").read_text() == "made\n"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_file_reached_through_proc_is_appended_to_not_replaced(tmp_path) -> None:
    """``-o /dev/stdout >> log``: the shell holds the file open; replacing it would
    send the output to a name the shell no longer writes to."""
    log = tmp_path / "log"
    log.write_text("earlier\n")
    inode = log.stat().st_ino
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        write_output(f"/proc/self/fd/{fd}", "appended\n")
    finally:
        os.close(fd)
    assert log.stat().st_ino == inode
    assert log.read_text() == "earlier\nappended\n"
    assert _leftovers(tmp_path) == []


def test_a_directory_is_refused(tmp_path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match=r"out: is a directory; name a file$"):
        write_output(tmp_path / "out", "x")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_path_ending_in_a_slash_is_refused(tmp_path) -> None:
    with pytest.raises(InputError, match=r"x\.json/: names a directory"):
        write_output(f"{tmp_path}/x.json/", "{}\n")
    assert list(tmp_path.iterdir()) == []


def test_a_250_character_name_is_written(tmp_path) -> None:
    name = "p" * 245 + ".json"
    write_output(tmp_path / name, "{}\n")
    assert (tmp_path / name).read_text() == "{}\n"
    assert _leftovers(tmp_path) == []


def _raise_errno(code: int):
    def fail(*_args, **_kwargs):
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda tmp: (tmp / "missing" / "plan.json", None), "no such directory"),
        (lambda tmp: (tmp / ("n" * 256), None), "file name too long"),
        (lambda tmp: (_loop(tmp), None), "too many levels of symbolic links"),
        (lambda tmp: (f"{tmp}/bad\0name", None), "the path holds a NUL byte"),
        (lambda tmp: (tmp / "plan.json", ("mkstemp", errno.EACCES)), "permission denied"),
        (lambda tmp: (tmp / "plan.json", ("mkstemp", errno.EROFS)), "read-only file system"),
        (lambda tmp: (tmp / "plan.json", ("write", errno.ENOSPC)), "no space left on device"),
        (lambda tmp: (tmp / "plan.json", ("fsync", errno.EIO)), "input/output error"),
        (lambda tmp: (tmp / "plan.json", ("replace", errno.EISDIR)), "is a directory"),
    ],
    ids=["no-dir", "too-long", "loop", "nul", "eacces", "erofs", "enospc", "eio", "eisdir"],
)
def test_errors_are_one_line_and_leave_nothing(tmp_path, monkeypatch, setup, reason) -> None:
    (tmp_path / "plan.json").write_text("old\n")
    path, failure = setup(tmp_path)
    if failure is not None:
        name, code = failure
        owner = fileio.tempfile if name == "mkstemp" else fileio.os
        monkeypatch.setattr(owner, name, _raise_errno(code))
    with pytest.raises(InputError) as err:
        write_output(path, "new\n")
    monkeypatch.undo()
    message = str(err.value)
    assert "\n" not in message
    assert message.endswith(f": cannot write: {reason}" if reason != "no such directory"
                            else f"{tmp_path}/missing")  # fmt: skip
    assert reason in message
    assert (tmp_path / "plan.json").read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def _loop(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    return tmp_path / "loop"


@pytest.mark.parametrize("step", ["fchmod", "write", "fsync", "close", "replace"])
def test_ctrl_c_at_any_step_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch, step):
    target = tmp_path / "plan.json"
    target.write_text("old\n")
    monkeypatch.setattr(fileio.os, step, _interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_output(target, "new\n")
    monkeypatch.undo()
    assert target.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def _send_sigint_after(function):
    """``function``, then a real SIGINT to this process as it returns."""

    def wrapped(*args, **kwargs):
        result = function(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return result

    return wrapped


@pytest.mark.parametrize("step", ["mkstemp", "replace"])
def test_a_real_sigint_as_a_step_returns_loses_no_temp_file(tmp_path, monkeypatch, step):
    """A signal arriving just as the temporary file is made, or renamed, must neither
    strand it nor leave a partial file."""
    target = tmp_path / "plan.json"
    target.write_text("old\n")
    owner = fileio.tempfile if step == "mkstemp" else fileio.os
    monkeypatch.setattr(owner, step, _send_sigint_after(getattr(owner, step)))
    with pytest.raises(KeyboardInterrupt):
        write_output(target, "new\n")
    monkeypatch.undo()
    assert target.read_text() == ("old\n" if step == "mkstemp" else "new\n")
    assert _leftovers(tmp_path) == []


def test_deferred_interrupt_delivers_ctrl_c_after_the_step() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), interrupts.deferred_interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler has run by now, and must not have raised
        done.append(True)
    assert done == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_deferred_interrupt_prefers_ctrl_c_to_the_steps_error() -> None:
    with pytest.raises(KeyboardInterrupt), interrupts.deferred_interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        raise OSError(errno.EIO, "failed")


# -- the command line ---------------------------------------------------------------

WORKLOAD = REFERENCE / "layer-graphs/bert24_inference.json"


def _place(run_placer, *args):
    return run_placer("place", WORKLOAD, "--solver", "single", *args)


def test_place_streams_to_a_fifo(run_placer, tmp_path) -> None:
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    reader = _FifoReader(fifo)
    result = _place(run_placer, "-o", fifo)
    assert result.exit_code == 0, result.stderr
    assert json.loads(reader.join())["solver"] == "single"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_place_writes_through_a_symlink(run_placer, tmp_path) -> None:
    (tmp_path / "real.json").write_text("stale\n")
    (tmp_path / "plan.json").symlink_to("real.json")
    result = _place(run_placer, "-o", tmp_path / "plan.json")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "plan.json").is_symlink()
    assert json.loads((tmp_path / "real.json").read_text())["solver"] == "single"


def test_place_to_a_character_device_keeps_the_device(run_placer, tmp_path, null_device) -> None:
    result = _place(run_placer, "--format", "json", "-o", null_device)
    assert result.exit_code == 0, result.stderr
    assert stat.S_ISCHR(os.lstat(null_device).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_place_to_a_full_device_is_one_line(run_placer, tmp_path, full_device) -> None:
    result = _place(run_placer, "--format", "json", "-o", full_device)
    one_line_error(result, f"{full_device}: cannot write: no space left on device")
    assert stat.S_ISCHR(os.lstat(full_device).st_mode)


@pytest.mark.parametrize("name", ["out", "x.json/"])
def test_place_to_a_directory_is_one_line(run_placer, tmp_path, name) -> None:
    (tmp_path / "out").mkdir()
    result = _place(run_placer, "-o", f"{tmp_path}/{name}")
    one_line_error(result, name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert list((tmp_path / "out").iterdir()) == []


def test_place_into_a_missing_directory_is_one_line(run_placer, tmp_path) -> None:
    result = _place(run_placer, "-o", tmp_path / "nowhere" / "plan.json")
    one_line_error(result, "cannot write: no such directory")
    assert list(tmp_path.iterdir()) == []


def test_report_streams_to_devices_and_fifos(run_placer, tmp_path, null_device) -> None:
    plan = tmp_path / "plan.json"
    assert _place(run_placer, "-o", plan).exit_code == 0
    fifo = tmp_path / "report.md"
    os.mkfifo(fifo)
    reader = _FifoReader(fifo)
    result = run_placer("report", WORKLOAD, plan, "--html", null_device, "--markdown", fifo)
    assert result.exit_code == 0, result.stderr
    assert reader.join().startswith(b"#")
    assert stat.S_ISCHR(os.lstat(null_device).st_mode)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_the_wrote_line_shows_escapes_not_terminal_controls(run_placer, tmp_path) -> None:
    name = "plan\x1b]0;owned\x07\x1b[2J.json"
    result = _place(run_placer, "-o", tmp_path / name)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / name).exists()
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    shown = f"wrote {tmp_path}/plan\\x1b]0;owned\\x07\\x1b[2J.json: max-load "
    assert result.stderr.strip().startswith(shown), result.stderr


# -- several outputs: all or none, never one file twice, never over an input ----------


def test_a_failing_stream_leaves_the_regular_outputs_unwritten(tmp_path, full_device) -> None:
    old, new = tmp_path / "old.html", tmp_path / "new.html"
    old.write_text("old\n")
    with pytest.raises(InputError) as err:
        write_outputs([(old, "replaced\n"), (new, "made\n"), (full_device, "x" * 10_000)])
    assert str(err.value) == f"{full_device}: cannot write: no space left on device"
    assert old.read_text() == "old\n"
    assert not new.exists()
    assert _leftovers(tmp_path) == []


def test_a_failing_second_file_leaves_the_first_unwritten(tmp_path) -> None:
    first = tmp_path / "first.html"
    first.write_text("old\n")
    with pytest.raises(InputError, match="no such directory"):
        write_outputs([(first, "new\n"), (tmp_path / "missing" / "second.md", "new\n")])
    assert first.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("step", ["write", "fsync", "close"])
def test_ctrl_c_while_staging_the_second_file_leaves_both_as_they_were(
    tmp_path, monkeypatch, step
) -> None:
    first, second = tmp_path / "a.html", tmp_path / "b.md"
    first.write_text("old a\n")
    real = getattr(fileio.os, step)
    calls = []

    def second_call(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(fileio.os, step, second_call)
    with pytest.raises(KeyboardInterrupt):
        write_outputs([(first, "new a\n"), (second, "new b\n")])
    monkeypatch.undo()
    assert first.read_text() == "old a\n"
    assert not second.exists()
    assert _leftovers(tmp_path) == []


def test_ctrl_c_during_the_renames_waits_until_every_file_is_in_place(
    tmp_path, monkeypatch
) -> None:
    """The renames commit the outputs together: a Ctrl-C after the first is held until
    the last is done, never leaving one output new and the other old."""
    first, second = tmp_path / "a.html", tmp_path / "b.md"
    first.write_text("old a\n")
    second.write_text("old b\n")
    real = fileio.os.replace
    calls = []

    def interrupted_after_first(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(args)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(fileio.os, "replace", interrupted_after_first)
    with pytest.raises(KeyboardInterrupt):
        write_outputs([(first, "new a\n"), (second, "new b\n")])
    monkeypatch.undo()
    assert (first.read_text(), second.read_text()) == ("new a\n", "new b\n")
    assert _leftovers(tmp_path) == []


def test_streams_are_written_before_any_file_is_replaced(tmp_path, monkeypatch) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = _FifoReader(fifo)
    order = []
    real_replace, real_stream = fileio.os.replace, fileio._stream
    monkeypatch.setattr(fileio.os, "replace", lambda *a: (order.append("rename"), real_replace(*a)))
    monkeypatch.setattr(fileio, "_stream", lambda *a: (order.append("stream"), real_stream(*a)))
    write_outputs([(tmp_path / "a.html", "a\n"), (fifo, "streamed\n")])
    assert reader.join() == b"streamed\n"
    assert order == ["stream", "rename"]
    assert (tmp_path / "a.html").read_text() == "a\n"


def _same_file_twice(tmp_path: Path, how: str) -> tuple[Path | str, Path | str]:
    target = tmp_path / "out.html"
    if how == "same path":
        return target, target
    if how == "dot":
        return target, f"{tmp_path}/./out.html"
    if how == "new via symlink":
        (tmp_path / "link.md").symlink_to("out.html")
        return target, tmp_path / "link.md"
    target.write_text("old\n")
    if how == "symlink":
        (tmp_path / "link.md").symlink_to(target)
        return target, tmp_path / "link.md"
    os.link(target, tmp_path / "hard.md")
    return target, tmp_path / "hard.md"


HOWS = ["same path", "dot", "new via symlink", "symlink", "hard link"]


@pytest.mark.parametrize("how", HOWS)
def test_one_file_named_by_two_outputs_is_refused_before_writing(tmp_path, how) -> None:
    first, second = _same_file_twice(tmp_path, how)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(InputError) as err:
        write_outputs([(first, "<html>\n"), (second, "# md\n")])
    message = str(err.value)
    assert "\n" not in message and "the same file as" in message and "another output" in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert _leftovers(tmp_path) == []


def test_two_outputs_may_stream_to_one_device(tmp_path, null_device) -> None:
    """Nothing is lost when both go to /dev/null (or one terminal): the second follows."""
    write_outputs([(null_device, "a\n"), (null_device, "b\n")])
    assert stat.S_ISCHR(os.lstat(null_device).st_mode)


@pytest.mark.parametrize("how", HOWS)
def test_check_outputs_names_both_options(tmp_path, how) -> None:
    first, second = _same_file_twice(tmp_path, how)
    with pytest.raises(InputError, match=r"--html and --markdown name the same file"):
        fileio.check_outputs({"--html": first, "--markdown": second})


@pytest.mark.parametrize("how", ["same path", "dot", "symlink", "hard link"])
def test_an_output_that_is_an_input_is_refused(tmp_path, how) -> None:
    model = tmp_path / "wl.json"
    model.write_text("{}\n")
    output = {"same path": model, "dot": f"{tmp_path}/./wl.json"}.get(how, tmp_path / "o.json")
    if how == "symlink":
        output.symlink_to(model)
    elif how == "hard link":
        os.link(model, output)
    with pytest.raises(InputError) as err:
        fileio.check_outputs({"--output": output}, {"PLAN": None, "MODEL": model})
    assert str(err.value) == (
        f"{output}: --output would write over MODEL ({model}), an input of this command; "
        "name another output file"
    )
    assert model.read_text() == "{}\n"


def test_inputs_that_are_not_regular_files_are_not_compared(tmp_path) -> None:
    fileio.check_outputs(
        {"--output": tmp_path / "plan.json", "--html": None},
        {"MODEL": tmp_path / "missing.json", "--cluster": "/dev/null", "--costs": None},
    )


def test_check_outputs_refuses_what_cannot_be_written(tmp_path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        fileio.check_outputs({"--output": tmp_path / "out"}, {})


def test_check_outputs_refuses_a_directory_no_file_can_be_made_in(tmp_path, monkeypatch) -> None:
    """A read-only file system, or /proc: refused before any work (a calibration took a
    minute, then could not be written), and the probe leaves nothing behind."""
    made = []

    def read_only(*args, **kwargs):
        made.append(kwargs.get("dir"))
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(fileio.tempfile, "mkstemp", read_only)
    with pytest.raises(InputError) as err:
        fileio.check_outputs({"--output": tmp_path / "plan.json"}, {})
    assert str(err.value) == f"{tmp_path / 'plan.json'}: cannot write: read-only file system"
    assert made == [str(tmp_path)]
    monkeypatch.undo()
    fileio.check_outputs({"--output": tmp_path / "plan.json"}, {})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_calibrate_into_proc_is_refused_before_it_measures(run_placer, monkeypatch) -> None:
    from placer.costs import calibrate

    def measured(*args, **kwargs):
        raise AssertionError("calibrated before refusing the output")

    monkeypatch.setattr(calibrate, "calibrate", measured)
    one_line_error(run_placer("calibrate", "-o", "/proc/placer-test.yaml"),
                   "/proc/placer-test.yaml: cannot write")  # fmt: skip


@pytest.mark.parametrize(
    ("where", "refused"),
    [("out/model.onnx", True), ("out/deep/model.onnx", True), ("out", True),
     ("outer/model.onnx", False), ("model.onnx", False)],
)  # fmt: skip
def test_an_output_directory_may_not_hold_an_input(tmp_path, where, refused) -> None:
    model = tmp_path / where
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"onnx")
    out = tmp_path / "out" if where != "out" else model
    if refused:
        relation = "is" if where == "out" else "holds"
        with pytest.raises(InputError, match=rf"{relation} the model \("):
            fileio.check_output_directory(out, {"the model": model, "the plan": None})
    else:
        fileio.check_output_directory(out, {"the model": model, "the plan": None})


def test_an_output_directory_reached_through_a_link_may_not_hold_an_input(tmp_path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "plan.json").write_text("{}\n")
    (tmp_path / "out").symlink_to("real")
    with pytest.raises(InputError, match="holds the plan"):
        fileio.check_output_directory(tmp_path / "out", {"the plan": tmp_path / "real/plan.json"})


def test_streamed_tells_streams_from_files(tmp_path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "file").write_text("x")
    assert fileio.streamed(tmp_path / "pipe")
    assert not fileio.streamed(tmp_path / "file")
    assert not fileio.streamed(tmp_path / "new")
    assert not fileio.streamed(tmp_path / "dir" / "new")
    if os.path.isdir("/proc/self/fd"):
        fd = os.open(tmp_path / "file", os.O_RDONLY)
        try:
            assert fileio.streamed(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)


# -- the command line: all outputs or none, and "wrote" only once they are written -----


def test_report_writes_neither_output_when_one_fails(run_placer, tmp_path, full_device) -> None:
    plan = tmp_path / "plan.json"
    assert _place(run_placer, "-o", plan).exit_code == 0
    good = tmp_path / "good.html"
    result = run_placer("report", WORKLOAD, plan, "--html", good, "--markdown", full_device)
    one_line_error(result, f"{full_device}: cannot write: no space left on device")
    assert "wrote" not in result.stderr
    assert not good.exists()
    assert _leftovers(tmp_path) == []


def test_report_keeps_the_old_page_when_the_markdown_fails(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    assert _place(run_placer, "-o", plan).exit_code == 0
    page = tmp_path / "report.html"
    page.write_text("old page\n")
    result = run_placer(
        "report", WORKLOAD, plan, "--html", page, "--markdown", tmp_path / "no" / "r.md"
    )
    one_line_error(result, "r.md: cannot write: no such directory")
    assert page.read_text() == "old page\n"
    assert _leftovers(tmp_path) == []


def test_report_says_wrote_for_each_output_once_both_are_written(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    assert _place(run_placer, "-o", plan).exit_code == 0
    page, markdown = tmp_path / "r.html", tmp_path / "r.md"
    result = run_placer("report", WORKLOAD, plan, "--html", page, "--markdown", markdown)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [f"wrote {page}", f"wrote {markdown}"]
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert markdown.read_text().startswith("### placer plan")


@pytest.mark.parametrize("how", HOWS)
def test_report_refuses_one_file_for_both_outputs(run_placer, tmp_path, how) -> None:
    plan = tmp_path / "plan.json"
    assert _place(run_placer, "-o", plan).exit_code == 0
    first, second = _same_file_twice(tmp_path, how)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    result = run_placer("report", WORKLOAD, plan, "--html", first, "--markdown", second)
    one_line_error(result, "--html and --markdown name the same file")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_place_to_dev_stdout_without_format_prints_the_table(run_placer, tmp_path) -> None:
    """``-o /dev/stdout`` names no format; like stdout itself, it gets the table."""
    log = tmp_path / "log"
    log.write_text("earlier\n")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        result = _place(run_placer, "-o", f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    assert result.exit_code == 0, result.stderr
    text = log.read_text()
    assert text.startswith("earlier\n") and "solver single" in text and "┃ device" in text


def test_place_to_a_fifo_without_extension_streams_the_table(run_placer, tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = _FifoReader(fifo)
    result = _place(run_placer, "-o", fifo)
    assert result.exit_code == 0, result.stderr
    assert "solver single" in reader.join().decode()


def test_place_to_a_device_without_format_is_written(run_placer, tmp_path, null_device) -> None:
    result = _place(run_placer, "-o", null_device)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip().startswith(f"wrote {null_device}: max-load "), result.stderr
    assert stat.S_ISCHR(os.lstat(null_device).st_mode)

