"""Vector files as data: load, validate against the shipped schema, and
turn into typed records the runner executes.

``conformance`` never imports ``specc``: the JSON files and their schema
(a copy ships in ``conformance/schemas``) are the whole contract.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

SCHEMA_NAME = "virtio-specc-vectors"
SUPPORTED_MAJOR = 1


class VectorError(ValueError):
    """A vector file this runner cannot use (one line, names the file)."""


@dataclass(frozen=True)
class Requirement:
    id: str
    keyword: str
    role: str
    text: str
    fingerprint: str
    label: str
    testable: bool
    untestable_reason: str | None = None
    condition: str | None = None
    clause: str | None = None          # upstream conformance clause, when the file says
    aliases: tuple[str, ...] = ()
    source: str = ""
    module: str = ""

    @property
    def block(self) -> str:
        """The normative block path (label without its prefix)."""
        return self.label.split(":", 1)[1] if ":" in self.label else self.label

    @property
    def conformance_clause(self) -> str:
        """The upstream conformance clause that lists this statement: the
        file's when it says, else derived from the block's place the way
        conformance.tex is organised (a clause per role, with sub-clauses per
        transport and per device type)."""
        if self.clause:
            return self.clause
        return derive_clause(self.role, self.block)


TRANSPORT_CLAUSES = {"Virtio Over PCI Bus": "PCI", "Virtio Over MMIO": "MMIO",
                     "Virtio Over Channel I/O": "Channel I/O"}


def derive_clause(role: str, block: str) -> str:
    """'Device Conformance / Block Device Conformance' and the like."""
    who = "Device" if role == "device" else "Driver"
    top = f"{who} Conformance"
    parts = block.split(" / ")
    if len(parts) > 1 and parts[0] == "Device Types":
        name = parts[1][:-len(" Device")] if parts[1].endswith(" Device") else parts[1]
        return f"{top} / {name} {who} Conformance"
    if len(parts) > 1 and parts[0] == "Virtio Transport Options" \
            and parts[1] in TRANSPORT_CLAUSES:
        return f"{top} / {TRANSPORT_CLAUSES[parts[1]]} {who} Conformance"
    return top


@dataclass(frozen=True)
class Step:
    verb: str
    kind: str               # precondition, action, expectation
    args: dict[str, Any]
    source: str = ""

    def describe(self) -> str:
        prefix = {"precondition": "given ", "expectation": "expect "}.get(self.kind, "")
        parts = []
        for k, v in self.args.items():
            if isinstance(v, list):
                v = "|".join(str(x) for x in v) if k == "flags" else " ".join(str(x) for x in v)
            parts.append(f"{k}={v}")
        return (prefix + self.verb + (" " + " ".join(parts) if parts else "")).strip()


@dataclass(frozen=True)
class RequirementRef:
    id: str
    fingerprint: str
    label: str


@dataclass(frozen=True)
class Test:
    tc_id: int
    check_id: str
    comment: str
    flags: tuple[str, ...]
    result: str             # valid, invalid, acceptable
    requirement: str
    steps: tuple[Step, ...]
    source: str
    group: "Group" = field(compare=False, repr=False, default=None)  # type: ignore[assignment]

    @property
    def key(self) -> str:
        """Stable identity across runs: module and check id."""
        return f"{self.group.file.module}:{self.check_id}"


@dataclass(frozen=True)
class Group:
    index: int
    type: str
    target: str
    device_type: str | None
    transport: str
    ring_layout: str
    region: str | None
    offer: tuple[str, ...]
    negotiate: tuple[str, ...]
    preconditions: tuple[Step, ...]
    requirements: tuple[RequirementRef, ...]
    tests: list[Test]
    file: "VectorFile" = field(compare=False, repr=False, default=None)  # type: ignore[assignment]


@dataclass
class VectorFile:
    path: str
    module: str
    kind: str
    title: str
    base: str
    schema_version: str
    revision: str
    requirements: dict[str, Requirement]
    groups: list[Group]

    def tests(self) -> list[Test]:
        return [t for g in self.groups for t in g.tests]


@dataclass
class Suite:
    files: list[VectorFile]

    def tests(self) -> list[Test]:
        return [t for f in self.files for t in f.tests()]

    def requirements(self) -> dict[str, Requirement]:
        out: dict[str, Requirement] = {}
        for f in self.files:
            out.update(f.requirements)
        return out


@lru_cache(maxsize=1)
def schema() -> dict:
    """The vectors schema shipped with this package."""
    text = resources.files("conformance").joinpath("schemas", "vectors.schema.json") \
        .read_text("utf-8")
    return json.loads(text)


def _jsonschema_errors(doc: Any) -> list[str] | None:
    """Schema errors via jsonschema, or None when it is not installed."""
    try:
        import jsonschema  # noqa: PLC0415
    except ImportError:
        return None
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    out = []
    for e in errors[:3]:
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        out.append(f"at {where}: {e.message}")
    return out


def _check_version(doc: Any, path: str) -> None:
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_NAME:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise VectorError(f"{path}: not a vector file (schema is {found!r}, "
                          f"expected {SCHEMA_NAME!r})")
    version = doc.get("schemaVersion")
    major = str(version).split(".", 1)[0]
    if not isinstance(version, str) or not major.isdigit() or int(major) != SUPPORTED_MAJOR:
        raise VectorError(f"{path}: unsupported vector schema version {version!r}: this "
                          f"runner reads {SUPPORTED_MAJOR}.x; regenerate the vectors with a "
                          f"matching specc or upgrade the conformance package")


def _minimal_errors(doc: dict) -> list[str]:
    """The structure the runner relies on, for when jsonschema is absent."""
    errs = []
    for key in ("module", "requirements", "testGroups"):
        if key not in doc:
            errs.append(f"missing {key!r}")
    if not isinstance(doc.get("testGroups", []), list):
        errs.append("testGroups is not a list")
    return errs


def validate(doc: Any, path: str) -> None:
    """Raise VectorError unless ``doc`` is a vector document this runner reads."""
    _check_version(doc, path)
    errors = _jsonschema_errors(doc)
    if errors is None:
        errors = _minimal_errors(doc)
    if errors:
        raise VectorError(f"{path}: does not match the vectors schema: {errors[0]}")


def _step(d: dict) -> Step:
    return Step(d["verb"], d["kind"], dict(d.get("args", {})), d.get("source", ""))


def parse(doc: dict, path: str) -> VectorFile:
    """A validated document as typed records."""
    mod = doc["module"]
    reqs = {}
    for rid, r in doc["requirements"].items():
        reqs[rid] = Requirement(
            id=rid, keyword=r["keyword"], role=r["role"], text=r.get("text", ""),
            fingerprint=r["fingerprint"], label=r["label"], testable=bool(r["testable"]),
            untestable_reason=r.get("untestableReason"), condition=r.get("condition"),
            clause=r.get("clause"), aliases=tuple(r.get("aliases", ())),
            source=r.get("source", ""), module=mod["name"])
    vf = VectorFile(path=path, module=mod["name"], kind=mod["kind"], title=mod["title"],
                    base=mod["base"], schema_version=doc["schemaVersion"],
                    revision=mod["revision"], requirements=reqs, groups=[])
    for gi, g in enumerate(doc["testGroups"]):
        group = Group(index=gi, type=g["type"], target=g["target"],
                      device_type=g["deviceType"], transport=g["transport"],
                      ring_layout=g["ringLayout"], region=g.get("region"),
                      offer=tuple(g["features"]["offer"]),
                      negotiate=tuple(g["features"]["negotiate"]),
                      preconditions=tuple(_step(s) for s in g["preconditions"]),
                      requirements=tuple(RequirementRef(r["id"], r["fingerprint"], r["label"])
                                         for r in g["requirements"]),
                      tests=[], file=vf)
        for t in g["tests"]:
            group.tests.append(Test(tc_id=t["tcId"], check_id=t["checkId"],
                                    comment=t["comment"], flags=tuple(t["flags"]),
                                    result=t["result"], requirement=t["requirement"],
                                    steps=tuple(_step(s) for s in t["steps"]),
                                    source=t["source"], group=group))
        vf.groups.append(group)
    return vf


MAX_FILE_BYTES = 16 << 20     # one vector file
MAX_DEPTH = 32                # JSON nesting (a vector file needs 7)


def _depth(doc: Any) -> int:
    """Nesting depth of a parsed JSON value (iterative: no recursion limit)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            break
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


def load_file(path: str | Path) -> VectorFile:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise VectorError(f"{p}: {size} bytes; a vector file is at most {MAX_FILE_BYTES}")
        text = p.read_text("utf-8")
    except OSError as exc:
        raise VectorError(f"{p}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise VectorError(f"{p}: not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VectorError(f"{p}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise VectorError(f"{p}: JSON nested too deeply (at most {MAX_DEPTH} levels)") from None
    if _depth(doc) > MAX_DEPTH:
        raise VectorError(f"{p}: JSON nested more than {MAX_DEPTH} levels deep")
    validate(doc, str(p))
    return parse(doc, str(p))


def vector_paths(location: str | Path) -> list[Path]:
    """The vector files of a directory (sorted), or the one file given."""
    p = Path(location)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise VectorError(f"{p}: no such file or directory")
    files = sorted(x for x in p.glob("*.json") if x.is_file())
    if not files:
        raise VectorError(f"{p}: holds no vector files (*.json)")
    return files


def load_suite(locations: list[str | Path] | str | Path) -> Suite:
    if isinstance(locations, (str, Path)):
        locations = [locations]
    files: list[VectorFile] = []
    for loc in locations:
        for path in vector_paths(loc):
            files.append(load_file(path))
    seen: dict[str, str] = {}
    for f in files:
        if f.module in seen:
            raise VectorError(f"{f.path}: module {f.module!r} also loaded from {seen[f.module]}")
        seen[f.module] = f.path
    return Suite(files)
