"""Fuzz where placer writes: odd and long file names, directories, trailing slashes,
missing directories, symbolic links, FIFOs, character devices and full disks, and the
directory ``split`` writes into."""

from __future__ import annotations

import json
import os
import select
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given

from tests.fuzz.harness import Outcome, case_dir, check_case, fails_with, fuzz_settings
from tests.fuzz.harness import strict_json as strict
from tests.fuzz.models import plan_for, tiny_bytes
from tests.fuzz.strategies import output_names

KNOWN_SUFFIXES = (".json", ".yaml", ".yml", ".txt")
NAME_MAX = 255  # bytes in one file name on Linux file systems


def _setup(root: Path) -> None:
    (root / "chain.onnx").write_bytes(tiny_bytes("chain.onnx"))
    (root / "plan.json").write_text(plan_for("chain.onnx"))


def _writes_a_usable_name(name: str) -> Callable[[Outcome], list[str]]:
    """A name the file system takes (one component, at most 255 bytes) with an extension
    placer knows must be written; a name with a trailing slash names a directory and
    must be refused."""
    usable = (
        "/" not in name
        and name not in (".", "..")
        and len(name.encode()) <= NAME_MAX
        and name.lower().endswith(KNOWN_SUFFIXES)
    )

    def promise(outcome: Outcome) -> list[str]:
        if name.endswith("/"):
            return fails_with(2)(outcome)
        if usable and outcome.exit_code != 0:
            return [
                f"a valid {len(name.encode())}-byte file name refused: exit {outcome.exit_code}"
            ]
        return []

    return promise


@fuzz_settings(60)
@given(name=output_names())
def test_output_file_names(run_placer, tmp_path, name):
    """``place -o NAME`` with odd, long and extension-less names."""
    with case_dir(tmp_path) as root:
        _setup(root)
        out = os.path.join(root, name)
        json_files = [Path(out)] if name.lower().endswith(".json") else []
        check_case(
            run_placer, root, "place", root / "chain.onnx", "--solver", "dp", "-o", out,
            outputs=[name], json_files=json_files, extra=_writes_a_usable_name(name),
        )  # fmt: skip


# --- scenarios: what is at the output path before the command runs ---------------------


class Drain:
    """A reader on a FIFO, in a thread, so that a writer neither blocks nor fills it.

    The FIFO is opened for reading and, to hold off end-of-file until :meth:`stop`, for
    writing too; both without blocking. If the command replaces the FIFO by a file, the
    reader still holds the old FIFO and ends when :meth:`stop` closes its writer.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = b""
        self._read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._write_fd: int | None = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> Drain:
        self._thread.start()
        return self

    def _read(self) -> None:
        while True:
            select.select([self._read_fd], [], [], 0.05)
            try:
                chunk = os.read(self._read_fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:  # every writer, ours included, has closed it
                return
            self.data += chunk

    def stop(self) -> bytes:
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
            self._thread.join(5)
            os.close(self._read_fd)
        return self.data


def _kind(path: Path) -> str:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    for test, kind in ((stat.S_ISLNK, "link"), (stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "chardev")):  # fmt: skip
        if test(mode):
            return kind
    return "other"


def _mknod(path: Path, minor: int) -> None:
    """A character device like /dev/null (minor 3) or /dev/full (minor 7), in a temporary
    directory so that no real device is ever at risk."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("making a character device needs root")


# Each scenario: (name, the output path relative to the case directory, with {ext} for
# the writer's extension; a set-up given the case directory and that path, returning a
# state; a promise checked after the command, given the case directory, the outcome,
# the state and the path).
Scenario = tuple[str, str, Callable[[Path, str], object], Callable[..., list[str]]]


def _nothing(root: Path, target: str) -> None:
    return None


def _refused(root: Path, outcome: Outcome, state: object, target: str) -> list[str]:
    return fails_with(2)(outcome)


def _written(root: Path, outcome: Outcome, state: object, target: str) -> list[str]:
    if outcome.exit_code != 0:
        return [f"exit {outcome.exit_code}: expected {target[:40]} to be written"]
    return [] if (root / target).is_file() else [f"{target[:40]} was not written"]


def _link_to(target_name: str, make_target: bool = True):
    def setup(root: Path, target: str) -> None:
        if make_target:
            (root / target_name).write_text("old content\n")
        os.symlink(target_name, root / target)

    return setup


def _link_to_directory(root: Path, target: str) -> None:
    (root / "d").mkdir()
    os.symlink("d", root / target)


def _still_a_link(root: Path, outcome: Outcome, state: object, target: str) -> list[str]:
    found = []
    if _kind(root / target) != "link":
        found.append(f"the symbolic link was replaced by a {_kind(root / target)}")
    old = root / "target.out"
    if outcome.exit_code == 0 and old.is_file() and old.read_text() == "old content\n":
        found.append("the link's target kept its old content")
    return found


def _fifo(root: Path, target: str) -> Drain:
    os.mkfifo(root / target)
    return Drain(root / target).start()


def _fifo_streamed(root: Path, outcome: Outcome, drain: Drain, target: str) -> list[str]:
    data = drain.stop()
    found = []
    if _kind(root / target) != "fifo":
        found.append(f"the FIFO was replaced by a {_kind(root / target)}")
    if outcome.exit_code != 0:
        found.append(f"writing to a FIFO failed: exit {outcome.exit_code}")
    elif not data:
        found.append("nothing was written into the FIFO")
    return found


def _char_device(minor: int):
    def setup(root: Path, target: str) -> None:
        _mknod(root / target, minor)

    return setup


def _still_a_device(status: int):
    def promise(root: Path, outcome: Outcome, state: object, target: str) -> list[str]:
        found = fails_with(status)(outcome)
        if _kind(root / target) != "chardev":
            found.append(f"the character device was replaced by a {_kind(root / target)}")
        return found

    return promise


def _a_file(root: Path, target: str) -> None:
    (root / target.split("/")[0]).write_text("a file\n")


def _a_directory(root: Path, target: str) -> None:
    (root / target).mkdir()


FILE_SCENARIOS: list[Scenario] = [
    ("missing directory", "nodir/out.{ext}", _nothing, _refused),
    ("missing directories", "a/b/c/out.{ext}", _nothing, _refused),
    ("a directory", "out.{ext}", _a_directory, _refused),
    ("trailing slash", "out.{ext}/", _nothing, _refused),
    ("under a file", "file.txt/out.{ext}", _a_file, _refused),
    ("dot", ".", _nothing, _refused),
    ("existing file", "out.{ext}", _a_file, _written),
    ("250-byte name", "{pad:p<250}", _nothing, _written),
    ("256-byte name", "{pad:p<256}", _nothing, _refused),
    ("symlink to a file", "link.out", _link_to("target.out"), _still_a_link),
    ("dangling symlink", "link.out", _link_to("target.out", False), _still_a_link),
    ("symlink to a directory", "link.out", _link_to_directory, _refused),
    ("FIFO", "pipe.out", _fifo, _fifo_streamed),
    ("character device (null)", "dev.out", _char_device(3), _still_a_device(0)),
    ("character device (full)", "dev.out", _char_device(7), _still_a_device(2)),
]

# (command, extension, arguments before the output path, the option naming it)
WRITERS = [
    ("place", "json", ("place", "{root}/chain.onnx", "--solver", "dp", "--format", "json"), "-o"),
    ("place", "yaml", ("place", "{root}/chain.onnx", "--solver", "dp", "--format", "yaml"), "-o"),
    ("report", "html", ("report", "{root}/chain.onnx", "{root}/plan.json"), "--html"),
    ("report", "md", ("report", "{root}/chain.onnx", "{root}/plan.json"), "--markdown"),
]


class _Padded:
    """Formats as ``ppp...p.EXT``, as long as the format spec's width says."""

    def __init__(self, ext: str) -> None:
        self.ext = ext

    def __format__(self, spec: str) -> str:
        width = int(spec.split("<")[1])
        return "p" * (width - len(self.ext) - 1) + "." + self.ext


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: f"{w[0]}-{w[1]}")
@pytest.mark.parametrize("scenario", FILE_SCENARIOS, ids=lambda s: s[0])
def test_output_paths(run_placer, tmp_path, scenario, writer):
    """Each writer onto each kind of output path."""
    _, template, setup, promise = scenario
    _, ext, args, option = writer
    _setup(tmp_path)
    # {pad:p<N}: an N-byte name ending in the writer's extension, whatever its length
    target = template.format(ext=ext, pad=_Padded(ext))
    state = setup(tmp_path, target.rstrip("/"))
    args = tuple(a.format(root=tmp_path) for a in args)
    out = str(tmp_path / target) + ("/" if target.endswith("/") else "")
    json_out = tmp_path / target.rstrip("/")
    try:
        check_case(
            run_placer, tmp_path, *args, option, out,
            outputs=[target.rstrip("/"), "target.out", "d"],
            json_files=[json_out] if ext == "json" and json_out.suffix == ".json" else [],
            extra=lambda o: promise(tmp_path, o, state, target.rstrip("/")),
        )  # fmt: skip
    finally:
        if isinstance(state, Drain):
            state.stop()


# --- the directory split writes ---------------------------------------------------------


def _two_stage_plan(devices: tuple[str, str], first: int = 2) -> str:
    """The chain's plan moved onto two devices, the first ``first`` ops on the first
    device, as placer writes it."""
    document = json.loads(plan_for("chain.onnx"))
    stage = document["stages"][0]
    nodes = ["n0", "n1", "n2", "n3"]
    document["stages"] = [
        {**stage, "device": devices[0], "nodes": nodes[:first]},
        {**stage, "device": devices[1], "nodes": nodes[first:]},
    ]
    return json.dumps(document)


def _split_scenarios() -> list:
    def previous_split(run_placer, root: Path) -> None:
        """A split made earlier into out/, from another plan (n0 | n1 n2 n3)."""
        (root / "old.json").write_text(_two_stage_plan(("a100-80gb:0", "a100-80gb:1"), 1))
        run_placer("split", root / "chain.onnx", root / "old.json", "-o", root / "out")

    def foreign_manifest(run_placer, root: Path) -> None:
        (root / "out").mkdir()
        (root / "out" / "stage_1_mine.onnx").write_bytes(b"not placer's\n")
        (root / "out" / "manifest.json").write_text(
            json.dumps({"stages": [{"file": "stage_1_mine.onnx"}]})
        )

    def stage_two_blocked(run_placer, root: Path) -> None:
        previous_split(run_placer, root)
        # the new plan (n0 n1 | n2 n3) changes stage 1, and its stage 2 file cannot be
        # written: a directory is in the way
        (root / "out" / "stage_2_cpu_0.onnx").mkdir()
        (root / "out" / "stage_2_cpu_0.onnx" / "keep").write_text("x")

    def file_in_the_way(run_placer, root: Path) -> None:
        (root / "out").write_text("a file\n")

    def link_to_dir(run_placer, root: Path) -> None:
        (root / "real").mkdir()
        os.symlink("real", root / "out")

    def fifo(run_placer, root: Path) -> None:
        os.mkfifo(root / "out")

    def keeps_foreign_files(root: Path, outcome: Outcome) -> list[str]:
        mine = root / "out" / "stage_1_mine.onnx"
        if not mine.exists():
            return ["split deleted stage_1_mine.onnx, a file it did not write"]
        return []

    def succeeded(root: Path, outcome: Outcome) -> list[str]:
        if outcome.exit_code != 0:
            return [f"exit {outcome.exit_code}: expected the split to be written"]
        return [] if (root / "out" / "manifest.json").is_file() else ["no manifest.json"]

    def refused(root: Path, outcome: Outcome) -> list[str]:
        return fails_with(2)(outcome)

    def still_a_link(root: Path, outcome: Outcome) -> list[str]:
        found = succeeded(root, outcome)
        if _kind(root / "out") != "link":
            found.append(f"the link to the directory was replaced by a {_kind(root / 'out')}")
        return found

    return [
        ("fresh directory", "out", None, succeeded),
        ("nested missing directories", "a/b/out", None, lambda r, o: fails_with(0)(o)),
        ("trailing slash", "out/", None, succeeded),
        ("over an earlier split", "out", previous_split, succeeded),
        ("beside a foreign manifest", "out", foreign_manifest, keeps_foreign_files),
        ("stage 2 cannot be written", "out", stage_two_blocked, refused),
        ("a file in the way", "out", file_in_the_way, refused),
        ("symlink to a directory", "out", link_to_dir, still_a_link),
        ("a FIFO in the way", "out", fifo, refused),
    ]


@pytest.mark.parametrize("scenario", _split_scenarios(), ids=lambda s: s[0])
def test_split_directory(run_placer, tmp_path, scenario):
    """``split -o DIR`` into fresh, existing, foreign and blocked directories: a failed
    split leaves the directory as it was (the harness compares every file)."""
    _, target, setup, promise = scenario
    _setup(tmp_path)
    (tmp_path / "new.json").write_text(_two_stage_plan(("a100-80gb:0", "cpu:0")))
    if setup is not None:
        setup(run_placer, tmp_path)
    out = str(tmp_path / target) + ("/" if target.endswith("/") else "")
    check_case(
        run_placer, tmp_path, "split", tmp_path / "chain.onnx", tmp_path / "new.json",
        "-o", out, outputs=[target.split("/")[0], "real"],
        extra=lambda o: promise(tmp_path, o),
    )  # fmt: skip


def test_harness_reads_strict_json():
    """The harness itself: strict JSON refuses what Python's reader lets through."""
    for text in ("NaN", "[Infinity]", '{"a": 1e400}'):
        with pytest.raises(ValueError):
            strict(text)
