"""The checking back-end's report: one JSON document per run.

Layout (``schema`` ``device-ref-driver-check``, version 1)::

    {"schema": "device-ref-driver-check", "version": 1,
     "device": "blk", "vectors": "<dir or null>",
     "connections": [
        {"index": 1, "layout": "split", "offered": "0x...", "accepted": "0x...",
         "status_writes": [...], "queues": {"0": {"chains": .., "kicks": .., ...}},
         "notes": [...], "dropped": {"property": count},
         "violations": [{"property": .., "detail": .., "evidence": {..},
                         "level": "must", "requirements": [..]}]}]}

``requirements`` is filled from the vector files when they were given
(``requirements.load_map``); ``conformance driver-report`` fills it again
from its own ``--vectors``, so a report written without vectors is complete.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict

from device_ref.checking.requirements import RequirementMap

SCHEMA = "device-ref-driver-check"
VERSION = 1


def connection_record(index: int, device, device_type: str, rmap: RequirementMap) -> dict:
    log = device.check_log
    layout = device.layout
    violations = []
    for v in log.violations:
        v.requirements = rmap.ids(v.property, layout, device_type)
        violations.append(v.to_json())
    return {"index": index, "layout": layout,
            "offered": hex(device.device_features()), "accepted": hex(device.negotiated or device.seen_features),
            "status_writes": list(device.status_writes),
            "queues": {str(k): asdict(c) for k, c in sorted(log.queues.items())},
            "notes": list(log.notes), "dropped": dict(log.dropped), "violations": violations,
            **({"addresses": log.addresses.to_json()} if log.addresses is not None else {})}


def build(device_type: str, connections: list[dict], rmap: RequirementMap) -> dict:
    return {"schema": SCHEMA, "version": VERSION, "device": device_type,
            "vectors": None if rmap.source == "(no vectors)" else rmap.source,
            "connections": connections}


def write(path: str, doc: dict) -> None:
    """Write atomically, so a reader never sees half a report."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


class ReportError(ValueError):
    pass


def read(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise ReportError(f"{path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ReportError(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ReportError(f"{path}: not a driver-check report (schema {SCHEMA!r} expected)")
    if doc.get("version") != VERSION:
        raise ReportError(f"{path}: report version {doc.get('version')!r}, this reader "
                          f"knows {VERSION}")
    if not isinstance(doc.get("connections"), list):
        raise ReportError(f"{path}: report has no connections list")
    return doc
