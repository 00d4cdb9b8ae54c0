"""How measured costs were measured: the header line ``placer profile`` writes at the
top of a costs CSV, and what a run that reads the file (``--costs``) checks against it.

A costs CSV written by ``placer profile`` starts with one comment line::

    # placer-profile: {"model": "bert_base.onnx", "fingerprint": "sha256:...", ...}

then the ``op,device,seconds`` header of :func:`placer.costs.roofline.read_measured_costs`.
Times measured for one model at one batch size and input shapes say nothing of another,
so a run whose model, batch size or input shapes differ from the header's is refused
(:func:`check_measurement`); a run at another precision is only warned of, and so is a
file that leaves some of the model's ops without a time (:func:`costs_notes`): the cost
model estimates those.  Files without the line (written by hand, or JSON) are read as
before, unchecked.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from placer.errors import InputError
from placer.frontends.onnx_checks import MAX_DIM
from placer.provenance import is_fingerprint, short
from placer.util.inputs import load_json, read_text
from placer.util.text import printable

__all__ = [
    "COSTS_NOTE",
    "HEADER_PREFIX",
    "Measurement",
    "check_measurement",
    "costs_notes",
    "read_measurement",
]

#: How the first line of a costs CSV that ``placer profile`` wrote starts.
HEADER_PREFIX = "# placer-profile: "
#: How the notes about a costs file start (warnings printed once a command succeeds).
COSTS_NOTE = "--costs "
#: Ops named in the warning of the ops a costs file does not cover.
NAMED_OPS = 3


@dataclass(frozen=True)
class Measurement:
    """How the times of a costs file were measured (its header line).

    Parameters
    ----------
    model : str
        The model's file name (for people: the fingerprint identifies it).
    fingerprint : str
        :func:`placer.provenance.onnx_fingerprint` of the model, as plans record it.
    device : str
        The ``device`` column of the rows (``cpu``, ``cuda`` or ``--device-name``).
    threads : int
        onnxruntime's intra-op threads.
    shapes : mapping of str to tuple of int
        Every graph input that is not a weight, with the shape it was run at.
    batch_size : int
        Samples per run.
    dtype : str
        The model's floating-point type (``fp32``, ``fp16``, ``bf16``, ``fp64``).
    fusion : str
        ``none`` (onnxruntime's optimisations off) or ``runtime`` (its default level).
    onnxruntime : str
        onnxruntime's version.
    repeat, warmup : int
        Runs timed (the median is kept) and runs before them.
    provider : str
        The onnxruntime execution provider that ran the model.
    """

    model: str
    fingerprint: str
    device: str
    threads: int
    shapes: Mapping[str, tuple[int, ...]]
    batch_size: int
    dtype: str
    fusion: str
    onnxruntime: str
    repeat: int
    warmup: int
    provider: str = "CPUExecutionProvider"
    extra: Mapping[str, Any] = field(default_factory=dict)  # fields of later versions

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "fingerprint": self.fingerprint,
            "device": self.device,
            "provider": self.provider,
            "threads": self.threads,
            "shapes": {name: list(dims) for name, dims in self.shapes.items()},
            "batch_size": self.batch_size,
            "dtype": self.dtype,
            "fusion": self.fusion,
            "onnxruntime": self.onnxruntime,
            "repeat": self.repeat,
            "warmup": self.warmup,
            **self.extra,
        }

    def header_line(self) -> str:
        """The comment line that starts the CSV (one line: JSON escapes line breaks)."""
        return HEADER_PREFIX + json.dumps(self.to_dict()) + "\n"


def _fields() -> dict[str, tuple[str, Any]]:
    """What each field of the header must be: (what, checker)."""

    def text(value: Any) -> bool:
        return isinstance(value, str)

    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_DIM

    def shapes(value: Any) -> bool:
        return isinstance(value, dict) and all(
            isinstance(dims, list) and dims and all(count(d) for d in dims)
            for dims in value.values()
        )

    return {
        "model": ("text", text),
        "fingerprint": ("a fingerprint (sha256: and 64 hex digits)", is_fingerprint),
        "device": ("text", text),
        "provider": ("text", text),
        "threads": (f"a whole number from 1 to {MAX_DIM:,}", count),
        "shapes": ("an object mapping input names to lists of positive dims", shapes),
        "batch_size": (f"a whole number from 1 to {MAX_DIM:,}", count),
        "dtype": ("text", text),
        "fusion": ("text", text),
        "onnxruntime": ("text", text),
        "repeat": (f"a whole number from 1 to {MAX_DIM:,}", count),
        "warmup": (f"a whole number from 0 to {MAX_DIM:,}", lambda v: v == 0 or count(v)),
    }


#: Fields a header must hold: those the checks against a run read.
_REQUIRED = ("fingerprint", "shapes", "batch_size")


def read_measurement(path: str | Path) -> Measurement | None:
    """The header of the costs CSV at ``path``, or None when it has none (or is JSON).

    Raises
    ------
    InputError
        The file cannot be read, or its first line starts with :data:`HEADER_PREFIX`
        but is not a JSON object, lacks a field the checks need, or holds a field of
        the wrong type (the message names it).
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return None
    first = read_text(path, what="a measured-costs", error=InputError).partition("\n")[0]
    if not first.startswith(HEADER_PREFIX):
        return None
    # the prefix as blanks: a JSON error's column is then the file's
    document = load_json(" " * len(HEADER_PREFIX) + first[len(HEADER_PREFIX) :], str(path),
                         error=InputError)  # fmt: skip
    if not isinstance(document, dict):
        raise InputError(f"{path}:1: the placer-profile header must be a JSON object")
    for name in _REQUIRED:
        if name not in document:
            raise InputError(f"{path}:1: the placer-profile header has no field {name!r}")
    known = _fields()
    for name, (what, valid) in known.items():
        if name in document and not valid(document[name]):
            shown = json.dumps(document[name])
            shown = shown if len(shown) <= 60 else f"{shown[:57]}..."
            raise InputError(
                f"{path}:1: header field {name!r} must be {what}, got {printable(shown)}"
            )
    return Measurement(
        model=document.get("model", ""),
        fingerprint=document["fingerprint"],
        device=document.get("device", ""),
        threads=document.get("threads", 1),
        shapes={name: tuple(dims) for name, dims in document["shapes"].items()},
        batch_size=document["batch_size"],
        dtype=document.get("dtype", ""),
        fusion=document.get("fusion", ""),
        onnxruntime=document.get("onnxruntime", ""),
        repeat=document.get("repeat", 1),
        warmup=document.get("warmup", 0),
        provider=document.get("provider", ""),
        extra={k: v for k, v in document.items() if k not in known},
    )


def _dims(shape: Collection[int]) -> str:
    return ",".join(map(str, shape))


def check_measurement(
    measurement: Measurement,
    path: str | Path,
    *,
    model: str | Path,
    fingerprint: str,
    batch_size: int,
    shapes: Mapping[str, tuple[int, ...]],
) -> None:
    """Refuse measured costs taken for another model, batch size or input shapes.

    Parameters
    ----------
    measurement : Measurement
        The costs file's header.
    path : str or Path
        The costs file, for messages.
    model, fingerprint : the model this run costs, and its fingerprint.
    batch_size, shapes : this run's batch size and graph-input shapes.

    Raises
    ------
    InputError
        One line naming the file and the first field that differs, in the order model
        (fingerprint), batch size, input shapes.
    """
    if measurement.fingerprint != fingerprint:
        named = f" {printable(measurement.model)}," if measurement.model else ""
        raise InputError(
            f"{path}: measured on another model ({named.strip()} fingerprint "
            f"{short(measurement.fingerprint)}), not on {model} ({short(fingerprint)}); "
            f"measure {model} with placer profile"
        )
    if measurement.batch_size != batch_size:
        raise InputError(
            f"{path}: measured at batch {measurement.batch_size}, this run uses batch "
            f"{batch_size}"
        )
    for name, dims in shapes.items():
        recorded = measurement.shapes.get(name)
        if recorded is None:
            raise InputError(
                f"{path}: measured without input {printable(name)}, which this run has"
            )
        if tuple(recorded) != tuple(dims):
            raise InputError(
                f"{path}: measured with input {printable(name)} of shape {_dims(recorded)}, "
                f"this run uses {_dims(dims)}"
            )
    for name in measurement.shapes:
        if name not in shapes:
            raise InputError(
                f"{path}: measured with input {printable(name)}, which this run lacks"
            )


def costs_notes(
    path: str | Path,
    measured: Mapping[tuple[str, str], float],
    ops: Collection[str],
    measurement: Measurement | None,
    dtype: str,
    fusion: str | None = None,
) -> tuple[str, ...]:
    """What a run should be told of the costs file: the model's ``ops`` it gives no
    time for on a device it names (the cost model estimates them), and a precision or
    fusion (``--fusion``) other than the run's.  Each note starts with
    :data:`COSTS_NOTE`.

    Examples
    --------
    >>> costs_notes("c.csv", {("a", "cpu"): 1e-3}, ["a", "b"], None, "fp32")
    ('--costs c.csv: no measured time for 1 of 2 ops on cpu (b); the cost model estimates them',)
    """
    devices = list(dict.fromkeys(device for _, device in measured))
    missing = {d: [op for op in ops if (op, d) not in measured] for d in devices}
    parts = []
    for device, lacking in missing.items():
        if lacking:
            named = ", ".join(printable(op) for op in lacking[:NAMED_OPS])
            more = ", ..." if len(lacking) > NAMED_OPS else ""
            parts.append(
                f"{len(lacking):,} of {len(ops):,} ops on {printable(device)} ({named}{more})"
            )
    notes = []
    if parts:
        notes.append(
            f"{COSTS_NOTE}{path}: no measured time for {'; '.join(parts)}; the cost model "
            "estimates them"
        )
    if measurement is not None and measurement.dtype and measurement.dtype != dtype:
        notes.append(
            f"{COSTS_NOTE}{path}: measured in {printable(measurement.dtype)}, this run costs "
            f"{dtype}; the measured times are used as they are"
        )
    recorded = measurement.fusion if measurement is not None else None
    if fusion is not None and recorded and recorded != fusion:
        notes.append(
            f"{COSTS_NOTE}{path}: measured with --fusion {printable(recorded)}, this run "
            f"costs --fusion {fusion}; the measured times are used as they are"
        )
    return tuple(notes)
