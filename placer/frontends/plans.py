"""Reading placement plans: placer's own JSON output, or the human-expert split format
of [1]_'s code (``fpgas[i].nodes``, ``cpus[i].nodes``).

A plan names every forward op of its problem. For training problems it may list only
the forward ops: every backward op then follows the device of the other ops of its
colour class; it lists all backward ops or none. Expert splits carry no fingerprint,
and this rule is what tells one made for another workload with overlapping node ids:
it places some of the workload's ops by name and leaves others to chance. placer's own
plans also record what they were made for (:func:`plan_provenance`).

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from placer.errors import PlanFormatError
from placer.problem import DeviceClass, Placement, Problem
from placer.provenance import Provenance
from placer.util.inputs import load_json, read_text
from placer.util.safe_yaml import load_yaml, shown

#: Most values a YAML plan may hold once aliases are expanded: far above any real plan
#: (a value per node), low enough that an alias bomb is refused within seconds.
_MAX_PLAN_VALUES = 2_000_000


def read_plan(path: str | Path, problem: Problem) -> Placement:
    """Read a plan file for ``problem``.

    Raises
    ------
    PlanFormatError
        The file is missing or malformed, names an unknown op or device, lists an op
        twice, or leaves out an op whose device cannot be inferred from its colour class.
    """
    return parse_plan(load_plan_document(path), problem, str(path))


def load_plan_document(path: str | Path) -> Any:
    """Decode a plan file: YAML when its extension is ``.yaml`` or ``.yml``, else JSON.

    The file is read by :func:`placer.util.inputs.read_text` (a regular UTF-8 file of
    bounded size). YAML is read with the safe loader, and tags that would build Python
    objects are refused before anything is built (:mod:`placer.util.safe_yaml`); JSON by
    :func:`placer.util.inputs.load_json`. Neither may hold a number that is not finite or
    nest deeper than :data:`placer.util.inputs.MAX_DEPTH`.

    Raises
    ------
    PlanFormatError
        The file is missing, unreadable or not a regular file, or is not valid JSON or
        YAML; the message gives the line at fault.
    """
    path = Path(path)
    text = read_text(path, what="a plan", error=PlanFormatError)
    if path.suffix.lower() in (".yaml", ".yml"):
        document, _ = load_yaml(
            text,
            str(path),
            error=PlanFormatError,
            what="a plan file",
            empty="a mapping with 'stages' (placer's output) or 'fpgas'/'cpus' (expert split)",
            max_values=_MAX_PLAN_VALUES,
        )
        return document
    return load_json(text, str(path), error=PlanFormatError)


def plan_provenance(document: Any, source: str = "<plan>") -> Provenance | None:
    """What a decoded plan records it was made for (its ``provenance``), or None for a
    plan without it (an older plan, an expert split).

    Raises
    ------
    PlanFormatError
        The ``provenance`` object is malformed (the message names the field).
    """
    if not isinstance(document, dict) or document.get("provenance") is None:
        return None
    return Provenance.from_dict(document["provenance"], source)


def parse_plan(document: Any, problem: Problem, source: str = "<plan>") -> Placement:
    """Turn a decoded plan document into a :class:`Placement` of ``problem``.

    Raises
    ------
    PlanFormatError
        The document is not a plan, names an unknown op or device or a device twice,
        lists an op twice, leaves out a forward op, lists some backward ops but not
        all, or leaves out a backward op whose colour class does not tell its device.
    """
    if not isinstance(document, dict):
        raise PlanFormatError(f"{source}: the top level must be an object")
    if "stages" in document:
        groups = _placer_groups(document["stages"], problem, source)
    elif "fpgas" in document or "cpus" in document:
        groups = _expert_groups(document, problem, source)
    else:
        raise PlanFormatError(
            f"{source}: expected 'stages' (placer's output) or 'fpgas'/'cpus' (expert split)"
        )
    device_of: dict[int, int] = {}
    seen: set[int | str] = set()
    # side computations are recomputed wherever they are read; a plan may list them
    side = {name for replica in problem.replicas if not replica.weight
            for name in replica.input_nodes}  # fmt: skip
    side |= {f"{name}/grad" for name in side}
    for device, keys, where in groups:
        if not isinstance(keys, list):
            raise PlanFormatError(f"{source}: {where}.nodes must be a list, got {shown(keys)}")
        for position, key in enumerate(keys):
            if isinstance(key, bool) or not isinstance(key, int | str):
                raise PlanFormatError(
                    f"{source}: {where}.nodes[{position}]: expected a node id (an integer) or "
                    f"name (a string), got {shown(key)}"
                )
            index = _index(problem, key)
            if index is None and key in side:
                continue
            if index is None:
                raise PlanFormatError(
                    f"{source}: {where}: node {shown(key)} is not in {problem.name!r}"
                    f"{_training_hint(problem, key)}"
                )
            if key in seen or (index in device_of and len(problem.ops[index].input_nodes) == 1):
                raise PlanFormatError(f"{source}: {where}: node {shown(key)} is placed twice")
            if device_of.setdefault(index, device) != device:
                # --coarsen merged this node with others: they share a device
                raise PlanFormatError(
                    f"{source}: {where}: node {shown(key)} is not on the device of "
                    f"{shown(problem.ops[index].key)}, which it is merged with (--coarsen)"
                )
            seen.add(key)
    _check_coverage(problem, device_of, source)
    return Placement(_complete(problem, device_of, source))


def _check_coverage(problem: Problem, device_of: dict[int, int], source: str) -> None:
    """Every forward op named, and all backward ops or none (see the module docstring)."""
    hint = "is the plan for another model or workload?"
    for index, op in enumerate(problem.ops):
        if not op.backward and index not in device_of:
            raise PlanFormatError(
                f"{source}: node {shown(op.key)} of {problem.name!r} is in no stage; a plan "
                f"names every forward op ({hint})"
            )
    backward = [index for index, op in enumerate(problem.ops) if op.backward]
    named = [index for index in backward if index in device_of]
    if named and len(named) < len(backward):
        missing = next(index for index in backward if index not in device_of)
        raise PlanFormatError(
            f"{source}: backward node {shown(problem.ops[missing].key)} is in no stage, but "
            f"{len(named)} other backward nodes are; a plan names every backward op or "
            f"none ({hint})"
        )


def _training_hint(problem: Problem, key: Any) -> str:
    """A hint when a training plan (``NAME/grad`` ops) meets a model costed for inference."""
    training_key = isinstance(key, str) and key.endswith("/grad")
    if training_key and not any(op.backward for op in problem.ops):
        return " (a training plan: pass --mode training)"
    return ""


#: A workload's node id written as a string ("12"): ASCII digits, within int64.
_ID_TEXT = re.compile(r"-?[0-9]{1,19}")


def _index(problem: Problem, key: int | str) -> int | None:
    index = problem.index_of_key.get(key)
    if index is None and isinstance(key, str) and _ID_TEXT.fullmatch(key):
        index = problem.index_of_key.get(int(key))
    return index


def _kept_out(problem: Problem) -> set[str]:
    """The names of the cluster's groups kept out of ``problem``'s pipeline."""
    costing = problem.provenance.costing if problem.provenance else None
    cluster = getattr(costing, "cluster", None)
    return {group.name for group in getattr(cluster, "groups", ()) if not group.pipeline}


def _placer_groups(stages: Any, problem: Problem, source: str):
    if not isinstance(stages, list):
        raise PlanFormatError(f"{source}: 'stages' must be a list, got {shown(stages)}")
    by_name = {device.name: d for d, device in enumerate(problem.devices)}
    first: dict[int, int] = {}
    for s, stage in enumerate(stages):
        where = f"stages[{s}]"
        if not isinstance(stage, dict) or "device" not in stage or "nodes" not in stage:
            raise PlanFormatError(
                f"{source}: {where} needs 'device' and 'nodes', got {shown(stage)}"
            )
        name = stage["device"]
        if not isinstance(name, str) or name not in by_name:
            devices = ", ".join(by_name) if len(by_name) <= 16 else f"{len(by_name)} devices"
            why = ""
            if isinstance(name, str) and name.rsplit(":", 1)[0] in _kept_out(problem):
                why = (f"; its group {name.rsplit(':', 1)[0]} is kept out of the pipeline "
                       "(--exclude, or 'pipeline: false' in the cluster file)")  # fmt: skip
            raise PlanFormatError(
                f"{source}: {where}.device {shown(name)} is not a device of this problem "
                f"({devices}){why}"
            )
        device = by_name[name]
        if device in first:
            raise PlanFormatError(
                f"{source}: {where}.device {shown(name)} is already stages[{first[device]}]'s; "
                "a device holds one stage"
            )
        first[device] = s
        yield device, stage["nodes"], where


def _expert_groups(document: dict[str, Any], problem: Problem, source: str):
    for field, device_class in (("fpgas", DeviceClass.ACCELERATOR), ("cpus", DeviceClass.CPU)):
        machines = document.get(field, [])
        if not isinstance(machines, list):
            raise PlanFormatError(f"{source}: '{field}' must be a list, got {shown(machines)}")
        devices = [
            d
            for d, device in enumerate(problem.devices)
            if problem.kinds[device.kind].device_class is device_class
        ]
        used = [m for m in machines if isinstance(m, dict) and m.get("nodes")]
        if len(used) > len(devices):
            raise PlanFormatError(
                f"{source}: '{field}' uses {len(used)} devices but the problem has "
                f"{len(devices)} {device_class.value} device{'' if len(devices) == 1 else 's'}"
            )
        slot = 0
        for i, machine in enumerate(machines):
            if not isinstance(machine, dict) or "nodes" not in machine:
                raise PlanFormatError(f"{source}: {field}[{i}] needs 'nodes', got {shown(machine)}")
            if machine["nodes"]:
                yield devices[slot], machine["nodes"], f"{field}[{i}]"
                slot += 1


def _complete(problem: Problem, device_of: dict[int, int], source: str) -> tuple[int, ...]:
    """Place every op the plan left out with its colour class."""
    by_color: dict[int, set[int]] = {}
    for index, device in device_of.items():
        by_color.setdefault(problem.ops[index].color, set()).add(device)
    result = []
    for index, op in enumerate(problem.ops):
        if index in device_of:
            result.append(device_of[index])
            continue
        devices = by_color.get(op.color, set())
        if len(devices) != 1:
            reason = "no op of its colour class is placed" if not devices else (
                "its colour class is split over several devices"
            )
            raise PlanFormatError(
                f"{source}: node {shown(op.key)} is not placed and {reason}, so its device is "
                "unknown"
            )
        result.append(next(iter(devices)))
    return tuple(result)
