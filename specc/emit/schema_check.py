"""A small JSON Schema (draft 2020-12) validator for the schemas we ship.

The runtime validates its own vectors before writing them, without making
jsonschema a run-time dependency. It covers the keywords our schemas use
and refuses a schema that uses any other, so it can never silently accept
what it does not understand. The test suite checks it agrees with
jsonschema on valid and broken documents.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Iterator

SUPPORTED = {"$schema", "$id", "$defs", "$ref", "title", "description", "type", "const", "enum",
             "required", "properties", "additionalProperties", "items", "minItems",
             "uniqueItems", "pattern", "minLength", "minimum", "propertyNames", "allOf", "oneOf"}

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


class SchemaError(ValueError):
    """The schema uses a keyword this validator does not implement."""


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """A schema shipped in specc/schemas, e.g. ``vectors.schema.json``."""
    return json.loads(resources.files("specc").joinpath("schemas", name).read_text("utf-8"))


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 and True differ, key order does not matter.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def errors(instance: Any, schema: dict) -> list[str]:
    """Every violation, as ``$.path: message`` strings (empty when valid)."""
    return list(_check(instance, schema, schema, "$"))


def _check(v: Any, s: dict | bool, root: dict, path: str) -> Iterator[str]:
    if s is True:
        return
    if s is False:
        yield f"{path}: no value is allowed here"
        return
    unknown = set(s) - SUPPORTED
    if unknown:
        raise SchemaError(f"unsupported schema keyword(s): {', '.join(sorted(unknown))}")
    if "$ref" in s:
        ref = s["$ref"]
        if not ref.startswith("#/"):
            raise SchemaError(f"only local $ref is supported, not {ref}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        yield from _check(v, target, root, path)
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(_TYPES[t](v) for t in types):
            yield f"{path}: expected {' or '.join(types)}, got {type(v).__name__}"
            return
    if "const" in s and not _same(v, s["const"]):
        yield f"{path}: must be {s['const']!r}"
    if "enum" in s and not any(_same(v, e) for e in s["enum"]):
        yield f"{path}: {v!r} is not one of {s['enum']!r}"
    for sub in s.get("allOf", ()):
        yield from _check(v, sub, root, path)
    if "oneOf" in s:
        ok = sum(1 for sub in s["oneOf"] if not list(_check(v, sub, root, path)))
        if ok != 1:
            yield f"{path}: matches {ok} of the oneOf alternatives, not exactly one"
    if isinstance(v, str):
        if "minLength" in s and len(v) < s["minLength"]:
            yield f"{path}: shorter than {s['minLength']}"
        if "pattern" in s and not re.search(s["pattern"], v):
            yield f"{path}: {v!r} does not match {s['pattern']!r}"
    if _TYPES["number"](v) and "minimum" in s and v < s["minimum"]:
        yield f"{path}: {v} is below {s['minimum']}"
    if isinstance(v, list):
        if "minItems" in s and len(v) < s["minItems"]:
            yield f"{path}: fewer than {s['minItems']} items"
        if s.get("uniqueItems"):
            seen = [json.dumps(x, sort_keys=True) for x in v]
            if len(set(seen)) != len(seen):
                yield f"{path}: items are not unique"
        if "items" in s:
            for i, x in enumerate(v):
                yield from _check(x, s["items"], root, f"{path}[{i}]")
    if isinstance(v, dict):
        for key in s.get("required", ()):
            if key not in v:
                yield f"{path}: missing required property {key!r}"
        props = s.get("properties", {})
        for key, x in v.items():
            if "propertyNames" in s:
                for msg in _check(key, s["propertyNames"], root, f"{path}.{key}"):
                    yield f"{msg} (property name)"
            if key in props:
                yield from _check(x, props[key], root, f"{path}.{key}")
            elif "additionalProperties" in s:
                yield from _check(x, s["additionalProperties"], root, f"{path}.{key}")
