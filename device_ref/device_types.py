"""What each virtio device type is, as data: its device id, feature-bit names,
and the queues it has for given features and config.

The data (device_ref/data/device_types.json) is generated from the virtio
v1.4 tree plus hand-written queue knowledge by `specc device-types`; the
runtime reads only that file, never the tree.

    device_type("net").queues(features)           # [receiveq1, transmitq1]
    device_type(1).first_unprompted_queue(features)  # transmitq1
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

DATA_FILE = "device_types.json"
DIRECTIONS = ("to-device", "to-driver", "both")


class UnknownDeviceType(ValueError):
    """A device type name or id that the data does not describe."""


@dataclass(frozen=True)
class QueueSpec:
    """One virtqueue of a device: its index, its name in the spec, which way its
    buffers go, and whether the device uses a buffer as soon as it is available
    (False: only when something outside happens, e.g. a packet arrives)."""
    index: int
    name: str
    direction: str     # "to-device" | "to-driver" | "both"
    unprompted: bool


@dataclass(frozen=True)
class CountField:
    """A config-space field a queue count follows (little-endian)."""
    name: str
    offset: int
    size: int


def _bits(table: Mapping[str, str]) -> dict[int, str]:
    return {int(b): n for b, n in table.items()}


def _any(features: int, named_bits: Mapping[str, int]) -> bool:
    return any(features >> b & 1 for b in named_bits.values())


@dataclass(frozen=True)
class DeviceType:
    name: str
    device_id: int
    title: str
    aliases: tuple[str, ...]
    _features: Mapping[int, str]
    _legacy: Mapping[int, str]
    _independent: Mapping[int, str]
    _segments: tuple[dict, ...]

    def feature_name(self, bit: int) -> str:
        """This type's name for a feature bit; else the device-independent name;
        else a legacy name of this type; else `bitN`."""
        for table in (self._features, self._independent, self._legacy):
            if bit in table:
                return table[bit]
        return f"bit{bit}"

    def feature_names(self, features: int) -> list[str]:
        """The names of every bit set in `features`, lowest bit first."""
        return [self.feature_name(b) for b in range(features.bit_length()) if features >> b & 1]

    def feature_bit(self, name: str) -> int | None:
        """The bit of a feature name of this type or a device-independent one."""
        for table in (self._features, self._independent, self._legacy):
            for bit, n in table.items():
                if n == name:
                    return bit
        return None

    def queues(self, features: int, config: Mapping[str, int] | None = None) -> list[QueueSpec]:
        """The queues this device has once `features` are negotiated, in index order.

        Counts that follow a config field (e.g. net's max_virtqueue_pairs) use
        `config`; a field it lacks counts as the smallest value the spec allows."""
        config = config or {}
        out: list[QueueSpec] = []
        for seg in self._segments:
            if "when_any" in seg and not _any(features, seg["when_any"]):
                continue
            rep = seg.get("repeat")
            if rep is None:
                copies: list[int | None] = [None]
            else:
                if "when_any" in rep and not _any(features, rep["when_any"]):
                    count = rep["otherwise"]
                else:
                    count = int(config.get(rep["config"], rep["default"])) + rep["offset"]
                copies = list(range(seg["first"], seg["first"] + max(count, 0)))
            for n in copies:
                for q in seg["queues"]:
                    name = q["name"] if n is None else q["name"].replace("{n}", str(n))
                    out.append(QueueSpec(len(out), name, q["direction"], q["unprompted"]))
        return out

    def count_fields(self, features: int) -> list[CountField]:
        """The config fields the queue count reads under these features: what a
        driver reads from config space before calling `queues`."""
        out = []
        for seg in self._segments:
            rep = seg.get("repeat")
            if rep is None or ("when_any" in seg and not _any(features, seg["when_any"])):
                continue
            if "when_any" in rep and not _any(features, rep["when_any"]):
                continue
            out.append(CountField(rep["config"], rep["at"][0], rep["at"][1]))
        return out

    def max_queues(self, features: int, config: Mapping[str, int] | None = None) -> int:
        """How many queues the driver sets up for these features and config."""
        return len(self.queues(features, config))

    def first_unprompted_queue(self, features: int,
                               config: Mapping[str, int] | None = None) -> QueueSpec | None:
        """The lowest queue whose buffers the device takes without an outside event:
        where a vector can expect a device to look at what it was given."""
        return next((q for q in self.queues(features, config) if q.unprompted), None)

    def queue_by_name(self, name: str, features: int,
                      config: Mapping[str, int] | None = None) -> QueueSpec | None:
        return next((q for q in self.queues(features, config) if q.name == name), None)


@cache
def _document() -> dict:
    text = resources.files("device_ref.data").joinpath(DATA_FILE).read_text("utf-8")
    return json.loads(text)


@cache
def _types() -> dict[str, DeviceType]:
    doc = _document()
    independent = _bits(doc["independent_features"]) | _bits(doc.get("proposal_features", {}))
    out = {}
    for name, t in doc["types"].items():
        out[name] = DeviceType(name=name, device_id=t["device_id"], title=t["title"],
                               aliases=tuple(t["aliases"]), _features=_bits(t["features"]),
                               _legacy=_bits(t["legacy_features"]), _independent=independent,
                               _segments=tuple(t["queues"]))
    return out


def known_types() -> list[str]:
    """Every device type name, in device id order."""
    return list(_types())


def independent_feature_name(bit: int) -> str:
    """The name of a device-independent bit, or `bitN`."""
    doc = _document()
    return (doc["independent_features"].get(str(bit)) or doc.get("proposal_features", {}).get(str(bit))
            or f"bit{bit}")


def device_type(name_or_id: str | int) -> DeviceType:
    """The device type by short name (`net`), alias (`virtio-net`, `entropy`) or device id."""
    types = _types()
    if isinstance(name_or_id, int) and not isinstance(name_or_id, bool):
        for t in types.values():
            if t.device_id == name_or_id:
                return t
    elif isinstance(name_or_id, str):
        key = name_or_id.strip().lower()
        if key in types:
            return types[key]
        for t in types.values():
            if key in t.aliases:
                return t
        if key.isdigit():
            return device_type(int(key))
    known = ", ".join(f"{t.name} ({t.device_id})" for t in types.values())
    raise UnknownDeviceType(f"unknown device type {name_or_id!r}; known: {known}")


# Device types whose requests hand the device guest addresses outside the
# descriptors (page frame numbers, plugged memory ranges, resource backing
# pages): bounce buffering cannot serve them, so the SWIOTLB proposal says
# such a device does not offer VIRTIO_F_SWIOTLB (swiotlb.dev.device-types).
SWIOTLB_EXCLUDED = ("balloon", "mem", "gpu")


class SwiotlbNotAllowed(ValueError):
    """A device of a type that carries guest addresses was asked to offer VIRTIO_F_SWIOTLB."""


def swiotlb_allowed(device_id: int) -> bool:
    """Whether a device of this id may offer VIRTIO_F_SWIOTLB."""
    return all(device_type(name).device_id != device_id for name in SWIOTLB_EXCLUDED)
