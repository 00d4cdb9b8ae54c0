"""The one layer that reads users' files: regular files only, bounded, strictly decoded."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from placer.errors import InputError, PlanFormatError
from placer.util.inputs import MAX_DEPTH, load_json, read_bytes, read_text
from tests.conftest import one_line_error


def _within(seconds: float, call):
    """Run ``call`` in a thread; fail (instead of hanging) if it blocks for ``seconds``."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"blocked for over {seconds} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


def test_a_regular_file_is_read(tmp_path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffplacer: é\n".encode())
    assert read_text(path, what="a test") == "placer: é\n"  # the BOM is dropped
    assert read_bytes(path, what="a test", max_bytes=100) == path.read_bytes()


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda tmp: tmp / "missing.txt", "no such file"),
        (lambda tmp: tmp, "is a directory, not a test file"),
        (lambda tmp: Path("/dev/zero"), "is a character device, not a test file"),
        (lambda tmp: Path("/dev/null"), "is a character device"),
    ],
    ids=["missing", "directory", "dev-zero", "dev-null"],
)
def test_what_is_not_a_regular_file_is_refused_at_once(tmp_path, make, says) -> None:
    path = make(tmp_path)
    if not path.exists() and path.is_absolute() and str(path).startswith("/dev"):
        pytest.skip(f"{path} does not exist here")
    with pytest.raises(InputError, match=says) as info:
        _within(5, lambda: read_text(path, what="a test"))
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_fifo_is_refused_without_blocking(tmp_path) -> None:
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    # opening a FIFO with no writer blocks forever; placer must not even try
    with pytest.raises(PlanFormatError, match=r"is a FIFO \(named pipe\), not a plan file"):
        _within(5, lambda: read_text(fifo, what="a plan", error=PlanFormatError))


def test_a_symlink_to_a_file_is_followed(tmp_path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text("devices: []\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert read_text(link, what="a cluster") == "devices: []\n"


def test_a_file_over_the_cap_is_refused_unread(tmp_path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"x" * 2048)
    with pytest.raises(InputError, match="2 KiB is larger than placer reads for a test"):
        read_bytes(path, what="a test", max_bytes=1024)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"op,device,seconds\n\xff\xfe,cpu,1\n", r"a\.csv:2: not UTF-8 text \(byte 0xff"),
        (b"a\nb\x00c", r"a\.csv:2: a NUL byte"),
    ],
    ids=["not-utf8", "nul"],
)
def test_text_must_be_utf8_without_nul(tmp_path, data, says) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(data)
    with pytest.raises(InputError, match=says) as info:
        read_text(path, what="a test")
    assert "\n" not in str(info.value)


def test_json_is_decoded() -> None:
    assert load_json('{"a": [1, 2.5, "[{"], "b": null}', "f.json") == {
        "a": [1, 2.5, "[{"],
        "b": None,
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"a": NaN}', "f.json:1:7: not valid JSON: NaN is not a number JSON allows"),
        ('[1,\n Infinity]', "f.json:2:2: not valid JSON: Infinity is not a number JSON allows"),
        ("[-Infinity]", "f.json:1:2: not valid JSON: -Infinity is not a number JSON allows"),
        ("[1e400]", "f.json:1:2: not valid JSON: the number 1e400 is out of range"),
        ("[-1e400]", "the number -1e400 is out of range"),
        ("[1" + "0" * 400 + "]", "f.json:1:2: not valid JSON: the number 1000"),
        ("[" + "7" * 5000 + "]", "f.json:1:2: not valid JSON: an integer with too many digits"),
        ('{"a": }', "f.json:1:7: not valid JSON: Expecting value"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nested {MAX_DEPTH + 1} levels deep"),
        ("[" * 100_000, "nested 100000 levels deep"),
    ],
    ids=[
        "nan", "infinity", "minus-infinity", "float-overflow", "negative-overflow",
        "integer-past-float", "integer-digits", "syntax", "one-too-deep", "very-deep",
    ],
)  # fmt: skip
def test_json_refuses_what_is_not_strict_json(text, says) -> None:
    with pytest.raises(PlanFormatError) as info:
        load_json(text, "f.json", error=PlanFormatError)
    assert says in str(info.value)
    assert "\n" not in str(info.value)


def test_json_nesting_up_to_the_cap_is_fine_and_strings_do_not_count() -> None:
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_json(deep, "f.json") is not None
    assert load_json('["' + "[" * 1000 + '"]', "f.json") == ["[" * 1000]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"a": 1,\n "a": 2}', "f.json:2: field 'a' given twice (first at line 1)"),
        ('{"nodes": [\n  {"id": 1},\n  {"id": 2,\n   "size": 1,\n   "size": 2}]}',
         "f.json:5: field 'size' given twice (first at line 4)"),
        # the same key written with an escape is the same key
        ('{"id": 1,\n "\\u0069d": 2}', "f.json:2: field 'id' given twice (first at line 1)"),
        # the first repeat in reading order, though the inner object closes first
        ('{"a": 1,\n "a": {"b": 1,\n "b": 2}}', "f.json:2: field 'a' given twice"),
    ],
    ids=["top-level", "nested", "escaped", "reading-order"],
)  # fmt: skip
def test_json_refuses_a_key_given_twice(text, says) -> None:
    # json keeps the last value: a plan or workload would silently lose the first
    with pytest.raises(PlanFormatError) as info:
        load_json(text, "f.json", error=PlanFormatError)
    assert str(info.value) == says or str(info.value).startswith(says)
    assert "\n" not in str(info.value)


def test_json_keys_may_repeat_across_objects_and_inside_strings() -> None:
    text = '[{"a": 1, "s": "\\"a\\": 2"}, {"a": 2, "{": "a"}]'
    assert load_json(text, "f.json") == [{"a": 1, "s": '"a": 2'}, {"a": 2, "{": "a"}]


def test_a_file_just_over_the_cap_says_two_different_sizes(tmp_path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"x" * (2**20 + 1))
    with pytest.raises(InputError) as info:
        read_bytes(path, what="a test", max_bytes=2**20)
    message = str(info.value)
    # not "1 MiB is larger than placer reads for a test (1 MiB)"
    assert message.endswith(": 1.000001 MiB is larger than placer reads for a test (1 MiB)")


def test_a_workload_or_plan_with_a_key_given_twice_is_refused(run_placer, tmp_path) -> None:
    workload = tmp_path / "w.json"
    workload.write_text(
        '{"maxSizePerFPGA": 100, "maxFPGAs": 2, "maxCPUs": 1,\n "maxFPGAs": 0,\n'
        ' "nodes": [{"id": 1, "supportedOnFpga": 1, "cpuLatency": 2, "fpgaLatency": 1,'
        ' "isBackwardNode": 0}], "edges": []}'
    )
    one_line_error(run_placer("place", workload), "w.json:2: field 'maxFPGAs' given twice")
    plan = tmp_path / "plan.json"
    plan.write_text('{"stages": [],\n "stages": []}')
    one_line_error(run_placer("check", plan), "plan.json:2: field 'stages' given twice")
