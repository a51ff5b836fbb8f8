"""Device-type knowledge for the runtime: what the spec tree states mechanically
(each type's device id, its feature-bit names and numbers, the device-independent
bits) merged with the hand-written queue data in specc/data/device_queues.toml
(queue order, buffer direction, unprompted use, count rules).

`device_types(tree, queues)` is a pure function from a read tree and the parsed
queue data to the JSON document the runtime ships; `render` gives its text.
"""
from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import PurePosixPath

from specc.upstream.source import plain_title
from specc.upstream.tree import SpecTree

DIRECTIONS = ("to-device", "to-driver", "both")
QUEUE_KEYS = {"name", "direction", "unprompted", "note"}
REPEAT_KEYS = {"config", "at", "when_any", "otherwise", "offset", "default"}
SEGMENT_KEYS = {"when_any", "repeat", "first", "queues"}
TYPE_KEYS = {"dir", "aliases", "queues"}
PROPOSALS_KEY = "proposals"
FORMAT_VERSION = 1

# Crypto writes its bits as `\item NAME (N) prose` (no optional argument).
_BARE_FEATURE = re.compile(r"\s*(VIRTIO_[A-Z0-9_]+?_F_[A-Z0-9_]+)\s*\(\s*(\d+)\s*\)")


class DeviceTypesError(Exception):
    """The queue data or the tree does not give a consistent answer (one line)."""


def load_queue_data(path: str | None = None) -> dict:
    """The hand-written queue data: the packaged file, or `path`."""
    try:
        if path is None:
            text = resources.files("specc.data").joinpath("device_queues.toml").read_text("utf-8")
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        return tomllib.loads(text)
    except OSError as exc:
        raise DeviceTypesError(f"{path}: cannot read queue data: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DeviceTypesError(f"{path or 'device_queues.toml'}: not valid TOML: {exc}") from None


def _type_dir(file: str) -> str | None:
    parts = PurePosixPath(file).parts
    if len(parts) >= 3 and parts[0] == "device-types":
        return parts[1]
    return None


def _tree_features(tree: SpecTree) -> tuple[dict[str, dict], dict[int, str]]:
    """Per type folder: {"current": {bit: name}, "legacy": {bit: name}}; and the
    device-independent bits."""
    by_dir: dict[str, dict] = {}
    independent: dict[int, str] = {}
    for f in tree.features:
        d = _type_dir(f.item.file)
        if f.scope == "device-independent" and d is None:
            independent.setdefault(f.bit, f.name)
            continue
        if d is None:
            continue
        table = by_dir.setdefault(d, {"current": {}, "legacy": {}})
        table["legacy" if f.legacy else "current"].setdefault(f.bit, f.name)
    for lst in tree.lists:
        d = _type_dir(lst.file)
        sec = lst.section
        if d is None or sec is None or sec.title.lower() != "feature bits":
            continue
        src = tree.sources[lst.file]
        for it in lst.items:
            if it.opt is not None:
                continue
            m = _BARE_FEATURE.match(src.masked, it.offset + len("\\item"), it.end_offset)
            if m:
                table = by_dir.setdefault(d, {"current": {}, "legacy": {}})
                table["current"].setdefault(int(m.group(2)), m.group(1))
    return by_dir, independent


def _device_ids(tree: SpecTree) -> dict[str, tuple[int, str]]:
    """Per type folder: (device id, chapter title), read from its 'Device ID' section."""
    out: dict[str, tuple[int, str]] = {}
    for s in tree.sections:
        d = _type_dir(s.file)
        if d is None or len(s.path) != 3 or s.path[0] != "Device Types" or s.path[2] != "Device ID":
            continue
        body = plain_title(tree.sources[s.file].masked[s.body_offset:s.end_offset]).strip()
        m = re.match(r"(\d+)\b", body)
        if m:
            out[d] = (int(m.group(1)), s.path[1])
    return out


def _check_keys(where: str, got: dict, allowed: set[str]) -> None:
    extra = sorted(set(got) - allowed)
    if extra:
        raise DeviceTypesError(f"{where}: unknown key(s) {', '.join(extra)}")


def _feature_map(where: str, names: object, bits_by_name: dict[str, int]) -> dict[str, int]:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DeviceTypesError(f"{where}: when_any must be a non-empty list of feature names")
    out = {}
    for n in names:
        if n not in bits_by_name:
            raise DeviceTypesError(f"{where}: {n} is not a feature bit of this type in the tree")
        out[n] = bits_by_name[n]
    return out


def _int(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DeviceTypesError(f"{where}: expected an integer, got {value!r}")
    return value


def _segment(where: str, seg: dict, bits_by_name: dict[str, int]) -> dict:
    _check_keys(where, seg, SEGMENT_KEYS)
    out: dict = {}
    if "when_any" in seg:
        out["when_any"] = _feature_map(where, seg["when_any"], bits_by_name)
    if "repeat" in seg:
        rep = seg["repeat"]
        if not isinstance(rep, dict) or not isinstance(rep.get("config"), str):
            raise DeviceTypesError(f"{where}: repeat needs a config field name")
        _check_keys(f"{where}: repeat", rep, REPEAT_KEYS)
        at = rep.get("at")
        if not (isinstance(at, list) and len(at) == 2 and _int(where, at[0]) >= 0
                and _int(where, at[1]) in (1, 2, 4)):
            raise DeviceTypesError(f"{where}: repeat needs at = [config offset, size of 1, 2 or 4]")
        r: dict = {"config": rep["config"], "at": [at[0], at[1]],
                   "default": _int(where, rep.get("default", 1)),
                   "offset": _int(where, rep.get("offset", 0))}
        if "when_any" in rep:
            r["when_any"] = _feature_map(f"{where}: repeat", rep["when_any"], bits_by_name)
            r["otherwise"] = _int(where, rep.get("otherwise", 1))
        elif "otherwise" in rep:
            raise DeviceTypesError(f"{where}: repeat has 'otherwise' but no 'when_any'")
        out["repeat"] = r
        out["first"] = _int(where, seg.get("first", 1))
    elif "first" in seg:
        raise DeviceTypesError(f"{where}: 'first' without 'repeat'")
    queues = seg.get("queues")
    if not isinstance(queues, list) or not queues:
        raise DeviceTypesError(f"{where}: a segment needs a non-empty queues list")
    out["queues"] = []
    for i, q in enumerate(queues):
        qw = f"{where}: queue {i}"
        if not isinstance(q, dict):
            raise DeviceTypesError(f"{qw}: expected a table")
        _check_keys(qw, q, QUEUE_KEYS)
        name, direction, unprompted = q.get("name"), q.get("direction"), q.get("unprompted")
        if not isinstance(name, str) or not name:
            raise DeviceTypesError(f"{qw}: needs a name")
        if ("{n}" in name) != ("repeat" in seg):
            raise DeviceTypesError(f"{qw}: '{{n}}' belongs in the names of a repeated segment only")
        if direction not in DIRECTIONS:
            raise DeviceTypesError(f"{qw}: direction must be one of {', '.join(DIRECTIONS)}")
        if not isinstance(unprompted, bool):
            raise DeviceTypesError(f"{qw}: unprompted must be true or false")
        out["queues"].append({"name": name, "direction": direction, "unprompted": unprompted,
                              "note": str(q.get("note", ""))})
    return out


def device_types(tree: SpecTree, queue_data: dict, base: str = "virtio-v1.4-cs01") -> dict:
    """The merged document: one entry per device type the tree has a chapter for."""
    features, independent = _tree_features(tree)
    ids = _device_ids(tree)
    proposals = queue_data.get(PROPOSALS_KEY, {})
    types_in = {k: v for k, v in queue_data.items() if k != PROPOSALS_KEY}
    by_dir = {}
    for name, t in types_in.items():
        if not isinstance(t, dict) or not isinstance(t.get("dir"), str):
            raise DeviceTypesError(f"[{name}]: needs a 'dir' (its folder under device-types/)")
        _check_keys(f"[{name}]", t, TYPE_KEYS)
        by_dir[t["dir"]] = name
    missing = sorted(d for d in ids if d not in by_dir)
    if missing:
        raise DeviceTypesError(f"the tree has device types the queue data lacks: {', '.join(missing)}")
    unknown = sorted(d for d in by_dir if d not in ids)
    if unknown:
        raise DeviceTypesError(f"queue data names folders the tree has no device chapter for: "
                               f"{', '.join(unknown)}")
    out_types: dict[str, dict] = {}
    for name in sorted(types_in, key=lambda n: ids[types_in[n]["dir"]][0]):
        t = types_in[name]
        dev_id, title = ids[t["dir"]]
        feats = features.get(t["dir"], {"current": {}, "legacy": {}})
        bits_by_name = {n: b for table in (feats["legacy"], feats["current"]) for b, n in table.items()}
        segs = t.get("queues")
        if not isinstance(segs, list) or not segs:
            raise DeviceTypesError(f"[{name}]: needs at least one queues segment")
        out_types[name] = {
            "device_id": dev_id,
            "title": title,
            "aliases": [str(a) for a in t.get("aliases", [])],
            "features": {str(b): n for b, n in sorted(feats["current"].items())},
            "legacy_features": {str(b): n for b, n in sorted(feats["legacy"].items())},
            "queues": [_segment(f"[{name}] segment {i}", s, bits_by_name) for i, s in enumerate(segs)],
        }
    return {
        "format": FORMAT_VERSION,
        "base": base,
        "generated_by": "specc device-types (device ids and feature bits from the tree; "
                        "queues from specc/data/device_queues.toml)",
        "independent_features": {str(b): n for b, n in sorted(independent.items())},
        "proposal_features": {str(_int(f"[{PROPOSALS_KEY}] {n}", b)): n
                              for n, b in sorted(proposals.items(), key=lambda kv: kv[1])},
        "types": out_types,
    }


def render(doc: dict) -> str:
    return json.dumps(doc, indent=1, sort_keys=False) + "\n"
