"""The model as plain JSON data (``specc dump --json``), for other tools.

Each dataclass becomes an object with a ``"type"`` member naming its class,
so unions (Text or Ref, Paragraph or Section, ...) stay unambiguous; derived
values other tools need (labels, sizes, title paths) are included.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from specc.model import Field, Module, NormativeBlock, Section, SourcePos, Struct

FORMAT = "specc-model/1"


def to_data(obj: Any) -> Any:
    if isinstance(obj, SourcePos):
        return {"file": obj.file, "line": obj.line, "col": obj.col}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {"type": type(obj).__name__}
        for f in dataclasses.fields(obj):
            out[f.name] = to_data(getattr(obj, f.name))
        if isinstance(obj, (Section, NormativeBlock)):
            out["label"] = obj.label
        if isinstance(obj, Section):
            out["title_path"] = obj.title_path
        if isinstance(obj, (Struct, Field)):
            out["size"] = obj.size
        if isinstance(obj, Field):
            out["kind"] = obj.kind
        return out
    if isinstance(obj, (list, tuple)):
        return [to_data(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_data(v) for k, v in obj.items()}
    return obj


def modules_to_data(modules: list[Module]) -> dict[str, Any]:
    return {"format": FORMAT, "modules": [to_data(m) for m in modules]}
