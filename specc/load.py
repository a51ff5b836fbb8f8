"""Load several .vspec files: read, parse, and collect every diagnostic."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from specc.diagnostics import Diagnostic
from specc.model import Module
from specc.parse import parse_source
from specc.source import read_source


@dataclass
class Loaded:
    modules: list[Module] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)   # file -> text, for rendering


def load(paths: Iterable[str]) -> Loaded:
    """Parse every path; a file that fails to parse yields diagnostics, not a module."""
    out = Loaded()
    for path in paths:
        path = str(path)
        text, diags = read_source(path)
        out.diagnostics += diags
        if text is None:
            continue
        out.sources[path] = text
        module, diags = parse_source(text, path)
        out.diagnostics += diags
        if module is not None:
            out.modules.append(module)
    return out


def load_modules(paths: Iterable[str]) -> tuple[list[Module], list[Diagnostic]]:
    loaded = load(paths)
    return loaded.modules, loaded.diagnostics
