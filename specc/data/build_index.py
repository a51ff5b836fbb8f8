"""Regenerate specc/data/virtio-v1.4-cs01.json from a virtio-spec checkout.

    python specc/data/build_index.py /path/to/virtio-spec > specc/data/virtio-v1.4-cs01.json

The index holds identifiers only (facts, not text): every \\label, the
normative-block labels the \\drivernormative/\\devicenormative macros set, the
names used with \\field{}, and the device-type feature bits listed as
``\\item[NAME (N)]`` in each device type's description.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_WS = re.compile(r"\s+")
_LABEL = re.compile(r"\\label\{([^{}]*)\}")
_NORMATIVE = re.compile(r"\\(driver|device)normative\{\\[a-z]+\}\s*\{[^{}]*\}\s*\{([^{}]*)\}")
_FIELD = re.compile(r"\\field\{([^{}]*)\}")
_ITEM_BIT = re.compile(r"\\item\[\s*(VIRTIO_[A-Z0-9_]*F_[A-Z0-9_]+)\s*\((\d+)\)\s*\]")


def build(root: Path) -> dict:
    labels: set[str] = set()
    fields: set[str] = set()
    device_bits: dict[str, dict[str, int]] = {}
    for tex in sorted(root.rglob("*.tex")):
        text = tex.read_text(encoding="utf-8", errors="replace")
        for m in _LABEL.finditer(text):
            labels.add(_WS.sub(" ", m.group(1)).strip())
        for m in _NORMATIVE.finditer(text):
            labels.add(f"{m.group(1)}normative:" + _WS.sub(" ", m.group(2)).strip())
        for m in _FIELD.finditer(text):
            fields.add(_WS.sub(" ", m.group(1)).strip())
        rel = tex.relative_to(root).parts
        if len(rel) == 3 and rel[0] == "device-types" and rel[2] == "description.tex":
            bits = device_bits.setdefault(rel[1], {})
            for m in _ITEM_BIT.finditer(text):
                bits.setdefault(m.group(1), int(m.group(2)))
    return {
        "base": "virtio-v1.4-cs01",
        "files": sorted(str(p.relative_to(root)) for p in root.rglob("*.tex")),
        "labels": sorted(labels),
        "fields": sorted(fields),
        "device_feature_bits": {k: dict(sorted(v.items(), key=lambda kv: (kv[1], kv[0])))
                                for k, v in sorted(device_bits.items())},
    }


if __name__ == "__main__":
    json.dump(build(Path(sys.argv[1])), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
