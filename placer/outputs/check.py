"""Checks for CI: read a plan file and hold it to limits (``placer check``,
``placer place --fail-below``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from placer.errors import BelowThreshold, PlanFormatError
from placer.frontends.plans import load_plan_document, plan_provenance
from placer.outputs.schema import load_schema, schema_errors
from placer.problem import throughput
from placer.util.safe_yaml import shown
from placer.util.units import format_bytes_apart


@dataclass(frozen=True)
class Limits:
    """What a plan must achieve; None leaves a figure unchecked.

    Raises
    ------
    ValueError
        A limit is negative or not finite: every comparison with NaN is false, so a
        limit of NaN would pass every plan.
    """

    max_load: float | None = None
    min_throughput: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_load", "min_throughput"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")


#: Relative tolerance when a plan's figures are compared with each other.
_CONSISTENT = 1e-6


def read_plan_document(path: str | Path) -> dict[str, Any]:
    """Read placer's plan (JSON, or YAML for ``.yaml``/``.yml``) from ``path`` and check
    it against the plan schema.

    Raises
    ------
    PlanFormatError
        The file is missing, not JSON or YAML, or breaks
        ``placer/schemas/plan.schema.json`` (the message names the first field at fault),
        or its ``provenance`` records a cluster that is not a valid cluster description,
        or contradicts the plan (see :func:`_check_provenance`).
    """
    return checked_plan(load_plan_document(path), str(path))


def checked_plan(document: Any, source: str) -> dict[str, Any]:
    """``document`` (a decoded plan) once checked as :func:`read_plan_document` checks
    one read from ``source``."""
    errors = schema_errors(document, load_schema("plan"))
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise PlanFormatError(f"{source}: not a placer plan: {errors[0]}{more}")
    _check_provenance(document, source)
    return document


def _check_provenance(document: dict[str, Any], source: str) -> None:
    """What the schema cannot say about a plan's ``provenance``: the cluster's rules, and
    that the options it records agree with the plan, as ``evaluate`` would find on
    costing the plan again.

    A plan costed for inference holds no backward op (``X/grad`` beside its forward op
    ``X``: the key ``placer place --mode training`` gives it), and its
    ``samples_per_step`` is the recorded batch size.

    Raises
    ------
    PlanFormatError
        The provenance is malformed or contradicts the plan; the message names the field.
    """
    provenance = plan_provenance(document, source)
    if provenance is None or provenance.costing is None:
        return  # a workload's plan, or one without provenance: nothing recorded to agree
    costing = provenance.costing
    if costing.mode == "inference":
        names = {n for stage in document["stages"] for n in stage["nodes"] if isinstance(n, str)}
        for s, stage in enumerate(document["stages"]):
            for n, node in enumerate(stage["nodes"]):
                if isinstance(node, str) and node.endswith("/grad") and node[:-5] in names:
                    raise PlanFormatError(
                        f"{source}: stages[{s}].nodes[{n}]: {shown(node)} is the backward op "
                        f"of {shown(node[:-5])}, but provenance.mode is inference: a plan "
                        "costed for inference holds forward ops only"
                    )
    if document["samples_per_step"] != costing.batch_size:
        raise PlanFormatError(
            f"{source}: field 'samples_per_step' is {document['samples_per_step']} but "
            f"provenance.batch_size is {costing.batch_size}; placer writes one as the other"
        )


def inconsistencies(document: dict[str, Any]) -> list[str]:
    """Where a (schema-valid) plan's summary figures disagree with its stages.

    ``placer place`` writes each stage's ``load`` as its compute plus communication,
    ``max_load`` as the largest stage load and ``throughput`` as ``samples_per_step /
    max_load``, and no stage over its memory cap in a valid plan; a plan where these
    disagree was edited by hand, and its limits cannot be trusted.
    """
    found = []
    max_load = document["max_load"]
    loads = [stage["load"] for stage in document["stages"]]
    largest = max(loads, default=0.0)
    if not math.isclose(max_load, largest, rel_tol=_CONSISTENT):
        where = f"stages[{loads.index(largest)}].load" if loads else "no stages"
        found.append(
            f"field 'max_load' is {max_load:.6g} but the largest stage load is "
            f"{largest:.6g} ({where})"
        )
    for s, stage in enumerate(document["stages"]):
        parts = stage["compute"] + stage["communication"]
        if not math.isclose(stage["load"], parts, rel_tol=_CONSISTENT, abs_tol=1e-300):
            found.append(
                f"stages[{s}].load is {stage['load']:.6g} but its compute plus "
                f"communication is {parts:.6g}"
            )
        cap = stage.get("memory_cap_bytes")
        if cap is not None and stage["memory_bytes"] > cap * (1 + _CONSISTENT):
            held, cap_text = format_bytes_apart(stage["memory_bytes"], cap)
            found.append(
                f"stages[{s}] ({stage['device']}) holds {held}, over its memory_cap_bytes "
                f"of {cap_text}"
            )
    written = document["throughput"]
    expected = throughput(document["samples_per_step"], max_load)
    expected = expected if math.isfinite(expected) else None  # written as null
    if (written is None) != (expected is None) or (
        expected is not None and not math.isclose(written, expected, rel_tol=_CONSISTENT)
    ):
        shown = "null (unbounded)" if written is None else f"{written:.6g}"
        wanted = "null (unbounded)" if expected is None else f"{expected:.6g}"
        found.append(
            f"field 'throughput' is {shown} but samples_per_step / max_load is {wanted}"
        )
    return found


def violations(document: dict[str, Any], limits: Limits) -> list[str]:
    """How a (schema-valid) plan document misses ``limits``; empty when it meets them.

    An invalid plan (``valid: false``, or figures that disagree with its stages) always
    misses: it cannot run as predicted.
    """
    found = []
    unit = f" {document['time_unit']}" if document.get("time_unit") else ""
    if not document["valid"]:
        found.append(f"the plan is invalid: {'; '.join(document['violations']) or 'no reason'}")
    found += [f"the plan is invalid: {reason}" for reason in inconsistencies(document)]
    max_load = document["max_load"]
    if limits.max_load is not None and max_load > limits.max_load:
        found.append(f"max-load {max_load:.6g}{unit} is above the limit {limits.max_load:.6g}")
    throughput = math.inf if document["throughput"] is None else document["throughput"]
    if limits.min_throughput is not None and throughput < limits.min_throughput:
        found.append(below(throughput, limits.min_throughput, document.get("time_unit", "")))
    return found


def below(throughput: float, minimum: float, time_unit: str) -> str:
    """The line that says a predicted throughput is under the minimum asked for."""
    per = f" samples/{time_unit}" if time_unit else ""
    return f"predicted throughput {throughput:.6g}{per} is below the minimum {minimum:.6g}"


def check_plan(path: str | Path, limits: Limits) -> dict[str, Any]:
    """Read the plan at ``path`` and hold it to ``limits``; returns the document.

    Raises
    ------
    PlanFormatError
        The plan file is malformed (exit status 2).
    BelowThreshold
        The plan misses a limit or is invalid (exit status 4); the message lists why.
    """
    document = read_plan_document(path)
    found = violations(document, limits)
    if found:
        raise BelowThreshold(f"{path}: " + "; ".join(found))
    return document
