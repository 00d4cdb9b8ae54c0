"""JSON Schemas placer ships (``placer/schemas/``) and a validator for the subset of JSON
Schema they use: ``type`` (one or a list), ``enum``, ``minimum``, ``maximum``, ``pattern``,
``required``, ``properties``, ``additionalProperties`` (a schema, or false),
``items``, ``minItems`` and ``maxItems``.  Other keywords are ignored, so a full
validator (such as ``jsonschema``) accepts everything this one does.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema ``placer/schemas/{name}.schema.json`` (e.g. ``"plan"``)."""
    text = resources.files("placer").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


def schema_errors(document: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Every way ``document`` breaks ``schema``, as ``"<path>: <what>"`` lines.

    Examples
    --------
    >>> schema_errors({"a": "x"}, {"properties": {"a": {"type": "number"}}, "required": ["b"]})
    ["$: missing required key 'b'", '$.a: expected number, got string']
    >>> schema_errors({"a": [], "b": 1}, {"properties": {"a": {"minItems": 1}},
    ...                                   "additionalProperties": False})
    ['$.a: expected at least 1 items, got 0', "$: unexpected key 'b'"]
    """
    errors: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_is(document, name) for name in names):
            errors.append(f"{where}: expected {' or '.join(names)}, got {_name(document)}")
            return errors
    if "enum" in schema and document not in schema["enum"]:
        choices = ", ".join(json.dumps(v) for v in schema["enum"])
        errors.append(f"{where}: {json.dumps(document)} is not one of {choices}")
    if "minimum" in schema and _is(document, "number") and document < schema["minimum"]:
        errors.append(f"{where}: {document} is below the minimum {schema['minimum']}")
    if "maximum" in schema and _is(document, "number") and document > schema["maximum"]:
        errors.append(f"{where}: {document} is above the maximum {schema['maximum']}")
    if (
        "pattern" in schema
        and isinstance(document, str)
        and not re.search(schema["pattern"], document)
    ):
        errors.append(f"{where}: {_short(document)} does not match {schema['pattern']}")
    if isinstance(document, dict):
        errors += _object_errors(document, schema, where)
    if isinstance(document, list):
        errors += _array_errors(document, schema, where)
    return errors


def _object_errors(document: dict, schema: dict[str, Any], where: str) -> list[str]:
    """The required keys ``document`` lacks, and the errors of its properties (and of
    the keys the schema does not name, under ``additionalProperties``)."""
    errors = [
        f"{where}: missing required key {key!r}"
        for key in schema.get("required", ())
        if key not in document
    ]
    properties = schema.get("properties", {})
    for key, sub in properties.items():
        if key in document:
            errors += schema_errors(document[key], sub, f"{where}.{key}")
    extra = schema.get("additionalProperties", True)
    for key in document:
        if key in properties or extra is True:
            continue
        if extra is False:
            errors.append(f"{where}: unexpected key {_short(str(key))}")
        else:
            errors += schema_errors(document[key], extra, f"{where}.{key}")
    return errors


def _array_errors(document: list, schema: dict[str, Any], where: str) -> list[str]:
    """Too few or too many items, and the errors of each item."""
    errors = []
    count = len(document)
    if count < schema.get("minItems", 0):
        errors.append(f"{where}: expected at least {schema['minItems']} items, got {count}")
    if "maxItems" in schema and count > schema["maxItems"]:
        errors.append(f"{where}: expected at most {schema['maxItems']} items, got {count}")
    if "items" in schema:
        for i, item in enumerate(document):
            errors += schema_errors(item, schema["items"], f"{where}[{i}]")
    return errors


def _short(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _is(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[name])


def _name(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is(value, name):
            return name
    return type(value).__name__
