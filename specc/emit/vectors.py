"""Conformance vectors: one JSON document per module, grouped like crypto
test-vector suites (a header, flag notes, test groups with shared
parameters, numbered tests with an expected result).

The document is a pure function of the module and its source bytes: keys are
sorted, there are no timestamps, and paths are relative, so the same sources
give byte-identical files on every machine.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from specc import __version__, actions
from specc.model import Check, Module, Prose, Statement, Step

SCHEMA_NAME = "virtio-specc-vectors"
SCHEMA_VERSION = "1.0"
GENERATOR = "specc"

# Flags a test can carry; every flag used in a file is explained in its notes.
FLAG_NOTES = {
    "InvalidInput": ("MALFORMED_INPUT", "The harness presents input the spec forbids; a "
                     "conforming implementation refuses it without touching memory it must "
                     "not touch and stays usable after a reset."),
    "EitherOutcome": ("BASIC", "The spec allows more than one behaviour here; the test "
                      "checks that the outcome is one of them and that nothing else broke."),
    "Recommendation": ("BASIC", "The requirement is a SHOULD or SHOULD NOT: a failure is a "
                       "deviation from a recommendation, not a violation of a MUST."),
    "Permission": ("BASIC", "The requirement is a MAY: the test checks the behaviour the spec "
                   "permits stays within bounds."),
    "DriverUnderTest": ("BASIC", "A driver is under test; the harness plays a checking device."),
    "FeatureInterplay": ("FEATURE_INTERPLAY", "The requirement's condition involves more than "
                         "one feature."),
    "AcrossReset": ("EDGE_CASE", "The test resets the device part-way and checks what "
                    "survives the reset."),
}

_INT = re.compile(r"^(0[xX][0-9a-fA-F]+|[0-9]+)$")


class VectorError(ValueError):
    """The module holds a check that cannot be written as a vector."""


def display_path(path: str) -> str:
    """A module file as vectors name it: its folder and file name.

    ``spec/swiotlb.vspec`` reads the same whatever the checkout location or
    the working directory, which keeps vector files byte-identical."""
    p = Path(path).resolve()
    return (Path(p.parent.name) / p.name).as_posix()


def _position(pos, source: str) -> str:
    return f"{source}:{pos.line}" if pos is not None else f"{source}:1"


# -- steps ----------------------------------------------------------------------------

def _value(param: actions.Param, raw: str) -> object:
    if param.type == "int":
        return int(raw, 0)
    if param.type == "flags":
        return [int(x, 0) if _INT.match(x) else x for x in raw.split("|")]
    return raw


def step_json(step: Step, source: str) -> dict:
    """A step as data: verb, kind, arguments by parameter name, source line."""
    verb = actions.lookup(step.kind, step.verb)
    if verb is None:
        raise VectorError(f"{step.pos}: unknown {step.kind} '{step.verb}'")
    positional = [p for p in verb.params if p.positional]
    named = {p.name: p for p in verb.params if not p.positional}
    args: dict[str, object] = {}
    pi = 0
    for a in step.args:
        if a.name is not None:
            args[a.name] = _value(named[a.name], a.value)
            continue
        param = positional[min(pi, len(positional) - 1)]
        if param.repeat:
            args.setdefault(param.name, []).append(_value(param, a.value))  # type: ignore[union-attr]
        else:
            args[param.name] = _value(param, a.value)
            pi += 1
    return {"verb": step.verb, "kind": step.kind, "args": args,
            "source": _position(step.pos, source)}


# -- groups -----------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupKey:
    target: str
    device_type: str | None
    transport: str
    ring_layout: str
    offer: tuple[str, ...]
    negotiate: tuple[str, ...]
    region: str | None


def _given(check: Check, verb: str) -> list[Step]:
    return [s for s in check.preconditions if s.verb == verb]


def group_key(check: Check) -> GroupKey:
    def one(verb: str, default: str) -> str:
        found = _given(check, verb)
        return found[-1].positional()[0] if found else default
    offer = sorted({f for s in _given(check, "offered") for f in s.positional()})
    first_negotiate = next((s for s in check.steps if s.verb == "negotiate"), None)
    negotiate = sorted(set(first_negotiate.positional())) if first_negotiate else []
    device = one("device", "any")
    region = _given(check, "region")
    return GroupKey(target=one("target", "device"),
                    device_type=None if device == "any" else device,
                    transport=one("transport", "any"), ring_layout=one("layout", "any"),
                    offer=tuple(offer), negotiate=tuple(negotiate),
                    region=region[-1].positional()[0] if region else None)


def _flags(check: Check, st: Statement, key: GroupKey) -> list[str]:
    flags = []
    if check.result == "invalid":
        flags.append("InvalidInput")
    if check.result == "acceptable":
        flags.append("EitherOutcome")
    if st.keyword in ("SHOULD", "SHOULD NOT"):
        flags.append("Recommendation")
    if st.keyword == "MAY":
        flags.append("Permission")
    if key.target == "driver":
        flags.append("DriverUnderTest")
    if st.condition is not None and len({r.target for r in st.condition.refs()
                                         if r.kind == "feature"}) > 1:
        flags.append("FeatureInterplay")
    verbs = [s.verb for s in check.steps if s.kind == actions.ACTION]
    if "reset" in verbs[1:]:
        flags.append("AcrossReset")
    return sorted(flags)


def _plain(p: Prose | None) -> str | None:
    return None if p is None else p.plain()


def vector_fingerprint(st: Statement) -> str:
    """The statement's fingerprint as vectors pin it.  A citation's vectors
    stand for the upstream wording its checks were reviewed against: once the
    id registry records a new one, vectors made before are OUTDATED
    (``conformance run --current``)."""
    if st.cites is None or st.cites.upstream is None:
        return st.fingerprint
    return hashlib.sha256(f"{st.fingerprint}:{st.cites.upstream}".encode()).hexdigest()[:12]


def requirement_json(st: Statement, source: str) -> dict:
    out = {
        "keyword": st.keyword or "MUST",
        "role": st.role,
        "condition": _plain(st.condition),
        "text": st.text.plain(),
        "fingerprint": vector_fingerprint(st),
        "label": f"{st.role}normative:{st.block_path}",
        "aliases": list(st.aliases),
        "source": _position(st.pos, source),
        "testable": st.untestable is None,
    }
    if st.untestable is not None:
        out["untestableReason"] = st.untestable.plain()
    if st.cites is not None:
        out["text"] = f"cites {st.cites.locator} of {st.cites.label}"
        out["cites"] = {"at": st.cites.at, "index": st.cites.index}
        if st.cites.upstream is not None:
            out["cites"]["upstream"] = st.cites.upstream
    return out


def module_vectors(m: Module, source_bytes: bytes, source: str) -> dict:
    """The vectors document for one module (a JSON-ready dict)."""
    statements = {st.id: st for st in m.all_statements()}
    for st in statements.values():
        if st.keyword is None:
            raise VectorError(f"{st.pos}: statement {st.id} has no keyword")
    groups: dict[GroupKey, list[tuple[Check, Statement]]] = {}
    for st in statements.values():
        for check in st.checks:
            groups.setdefault(group_key(check), []).append((check, st))
    out_groups = []
    tc = 0
    used_flags: set[str] = set()
    for key, members in groups.items():        # first-appearance order: stable
        req_ids = list(dict.fromkeys(st.id for _, st in members))
        tests = []
        for check, st in members:
            tc += 1
            flags = _flags(check, st, key)
            used_flags.update(flags)
            tests.append({
                "tcId": tc,
                "checkId": check.id,
                "comment": check.comment or f"{st.id}: {check.name}",
                "flags": flags,
                "result": check.result,
                "requirement": st.id,
                "steps": [step_json(s, source) for s in check.steps],
                "source": _position(check.pos, source),
            })
        out_groups.append({
            "type": "DriverConformance" if key.target == "driver" else "DeviceConformance",
            "target": key.target,
            "deviceType": key.device_type,
            "transport": key.transport,
            "ringLayout": key.ring_layout,
            "region": key.region,
            "features": {"offer": list(key.offer), "negotiate": list(key.negotiate)},
            "preconditions": [step_json(s, source) for s in _dedup_given(members)],
            "requirements": [{"id": i, "fingerprint": vector_fingerprint(statements[i]),
                              "label": f"{statements[i].role}normative:{statements[i].block_path}"}
                             for i in req_ids],
            "tests": tests,
        })
    return {
        "schema": SCHEMA_NAME,
        "schemaVersion": SCHEMA_VERSION,
        "generator": {"name": GENERATOR, "version": __version__},
        "module": {
            "name": m.name, "kind": m.kind, "title": m.title or m.name,
            "base": m.base or "", "source": source,
            "revision": "sha256:" + hashlib.sha256(source_bytes).hexdigest(),
        },
        "numberOfTests": tc,
        "notes": {f: {"bugType": FLAG_NOTES[f][0], "description": FLAG_NOTES[f][1]}
                  for f in sorted(used_flags)},
        "requirements": {i: requirement_json(st, source) for i, st in statements.items()},
        "testGroups": out_groups,
    }


def _dedup_given(members: list[tuple[Check, Statement]]) -> list[Step]:
    """The preconditions of the group's first test (all members share the key
    they were grouped by; any extra given-steps stay visible here)."""
    return list(members[0][0].preconditions)


def dumps(doc: dict) -> str:
    """Canonical JSON text: sorted keys, two-space indent, newline at the end."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
