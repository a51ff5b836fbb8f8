"""From a checked property to the requirement ids it serves.

The vectors are the contract: every driver-mode check (``given target
driver``) names its requirement and the expectations that judge it, e.g.
``expect driver_chains readable_first``. A checking device records each
violation under the same expectation key (``expectation_key``), and this
module reads the vector files (plain JSON; the runtime never imports the
compiler) to find which requirement ids a key stands for, narrowed by the
ring layout and device type the check was written for.

A few things the checking device sees have no expectation verb of their
own; ``EXTRA`` names the statement each of them breaks. It is the one
hand-kept table, and ``tests/driver_check`` checks that every id in it
exists in the vectors.
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

# Keys the checking device records that no vector expectation spells.
EXTRA: dict[str, tuple[str, ...]] = {
    "notify_before_driver_ok": ("base.init.drv.no-early-notify",),
    "status_sequence": ("base.init.drv.sequence",),
    "status_never_cleared": ("base.status.drv.never-clear",),
}


def expectation_key(verb: str, args: dict) -> str:
    """``verb [op] values...`` in the order the DSL writes them."""
    parts = [verb]
    if "op" in args:
        parts.append(str(args["op"]))
    for k, v in args.items():
        if k == "op":
            continue
        parts.extend(str(x) for x in v) if isinstance(v, list) else parts.append(str(v))
    return " ".join(parts)


@dataclass(frozen=True)
class Target:
    requirement: str
    label: str
    keyword: str
    layout: str          # split, packed or any
    device: str          # blk, rng or any
    check: str
    last: bool           # the test's final expectation (the one its requirement is about)


class RequirementMap:
    def __init__(self, targets: dict[str, list[Target]], labels: dict[str, tuple[str, str]],
                 source: str) -> None:
        self.targets = targets
        self.labels = labels      # requirement id -> (keyword, upstream label)
        self.source = source

    def ids(self, key: str, layout: str | None = None, device: str | None = None) -> list[str]:
        """Requirement ids for ``key``; layout/device narrow when the vectors do."""
        out: list[str] = []
        found = self.targets.get(key, [])
        # An expectation that opens a test (``expect accepted has F`` before the
        # property the test is about) serves that test's requirement only when
        # no test ends with it.
        if any(t.last for t in found):
            found = [t for t in found if t.last]
        for t in found:
            if layout and t.layout not in ("any", layout):
                continue
            if device and t.device not in ("any", device):
                continue
            if t.requirement not in out:
                out.append(t.requirement)
        for rid in EXTRA.get(key, ()):
            if rid not in out:
                out.append(rid)
        return out

    def label(self, rid: str) -> tuple[str, str]:
        return self.labels.get(rid, ("?", ""))


class VectorsError(ValueError):
    pass


def load_map(directory: str | None) -> RequirementMap:
    """Read every ``*.json`` vector file in ``directory`` (None: only EXTRA)."""
    targets: dict[str, list[Target]] = {}
    labels: dict[str, tuple[str, str]] = {}
    if directory is None:
        return RequirementMap(targets, labels, "(no vectors)")
    if not os.path.isdir(directory):
        raise VectorsError(f"{directory}: not a directory of vector files")
    files = sorted(glob.glob(os.path.join(directory, "*.json")))
    if not files:
        raise VectorsError(f"{directory}: no vector files (*.json)")
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            _add_file(doc, targets, labels)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise VectorsError(f"{path}: not a readable vector file ({exc})") from None
    return RequirementMap(targets, labels, directory)


def _add_file(doc: dict, targets: dict[str, list[Target]],
              labels: dict[str, tuple[str, str]]) -> None:
    reqs = doc["requirements"]
    items = reqs.items() if isinstance(reqs, dict) else ((r["id"], r) for r in reqs)
    for rid, r in items:
        labels[rid] = (r.get("keyword", "?"), r.get("label", ""))
    for g in doc["testGroups"]:
        if g.get("target") != "driver":
            continue
        layout = g.get("ringLayout") or "any"
        device = g.get("deviceType") or "any"
        for t in g["tests"]:
            expects = [s for s in t["steps"] if s.get("kind") == "expectation"]
            for n, s in enumerate(expects):
                key = expectation_key(s["verb"], s.get("args", {}))
                keyword, label = labels.get(t["requirement"], ("?", ""))
                targets.setdefault(key, []).append(Target(
                    t["requirement"], label, keyword, layout, device, t.get("checkId", ""),
                    n == len(expects) - 1))
