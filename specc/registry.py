"""The committed id registry (spec/ids.json): id, fingerprint and aliases of
every normative statement, so that any change to normative text, and any
rename, shows up as a diff in review.

``specc check`` compares the modules with the registry; ``specc ids
--update`` rewrites the entries of the modules it was given.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Iterable

from specc.diagnostics import Diagnostic, error
from specc.model import Module

FORMAT = "specc-ids/1"
DEFAULT_NAME = "ids.json"


@dataclass(frozen=True)
class Entry:
    id: str
    fingerprint: str
    aliases: tuple[str, ...]
    module: str
    keyword: str | None


class RegistryError(Exception):
    """The registry file exists but cannot be used (one-line message)."""


def default_path(files: list[str]) -> str | None:
    """ids.json next to the first source file, if there is one."""
    if not files:
        return None
    return os.path.join(os.path.dirname(files[0]) or ".", DEFAULT_NAME)


def read(path: str) -> dict[str, Entry]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read id registry: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{path}: id registry is not valid JSON: {exc}") from None
    except RecursionError:
        raise RegistryError(f"{path}: id registry nests too deeply to be one") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or \
            not isinstance(data.get("statements"), list):
        raise RegistryError(f"{path}: not a {FORMAT} id registry")
    out: dict[str, Entry] = {}
    for item in data["statements"]:
        try:
            e = Entry(str(item["id"]), str(item["fingerprint"]), tuple(map(str, item.get("aliases", ()))),
                      str(item["module"]), item.get("keyword"))
        except (KeyError, TypeError):
            raise RegistryError(f"{path}: malformed entry in id registry: {item!r:.60}") from None
        out[e.id] = e
    return out


def entries_of(modules: Iterable[Module]) -> dict[str, Entry]:
    out = {}
    for m in modules:
        for st in m.all_statements():
            out[st.id] = Entry(st.id, st.fingerprint, tuple(sorted(st.aliases)), m.name, st.keyword)
    return out


def render(entries: dict[str, Entry]) -> str:
    rows = [{"id": e.id, "fingerprint": e.fingerprint, "keyword": e.keyword,
             "aliases": list(e.aliases), "module": e.module}
            for e in sorted(entries.values(), key=lambda e: (e.module, e.id))]
    return json.dumps({"format": FORMAT, "statements": rows}, indent=1, sort_keys=True) + "\n"


def check(modules: list[Module], registry: dict[str, Entry], path: str) -> list[Diagnostic]:
    """Diagnostics for every statement that differs from the registry."""
    diags: list[Diagnostic] = []
    hint = f"review the change, then run: specc ids --update (rewrites {path})"
    by_alias = {a: e for e in registry.values() for a in e.aliases}
    names = {m.name for m in modules}
    present: set[str] = set()
    for m in modules:
        for st in m.all_statements():
            present.add(st.id)
            present.update(st.aliases)
            e = registry.get(st.id)
            if e is None:
                old = next((registry[a] for a in st.aliases if a in registry), None)
                if old is not None:
                    diags.append(error(f"statement {old.id} was renamed to {st.id} but the id "
                                       "registry was not updated", st.pos, hint=hint, width=len(st.id)))
                else:
                    diags.append(error(f"statement {st.id} is not in the id registry", st.pos,
                                       hint=hint, width=len(st.id)))
                continue
            if e.fingerprint != st.fingerprint:
                diags.append(error(f"normative text of {st.id} changed (fingerprint {st.fingerprint}, "
                                   f"registry has {e.fingerprint})", st.pos, hint=hint, width=len(st.id)))
            elif tuple(sorted(st.aliases)) != e.aliases:
                diags.append(error(f"aliases of {st.id} differ from the id registry", st.pos,
                                   hint=hint, width=len(st.id)))
            if st.id in by_alias and by_alias[st.id].id != st.id:
                diags.append(error(f"id {st.id} is recorded as an alias of {by_alias[st.id].id}",
                                   st.pos, width=len(st.id),
                                   hint="an old id cannot be reused for a different statement"))
    for e in registry.values():
        if e.module in names and e.id not in present:
            diags.append(error(f"statement {e.id} of module {e.module} was removed but is still in "
                               "the id registry", file=path, hint=hint))
    return diags


def update(modules: list[Module], registry: dict[str, Entry]) -> tuple[dict[str, Entry], list[str]]:
    """The registry with the given modules' entries replaced, and a change list."""
    names = {m.name for m in modules}
    fresh = entries_of(modules)
    out = {k: e for k, e in registry.items() if e.module not in names}
    changes = []
    for k, e in sorted(fresh.items()):
        old = registry.get(k)
        if old is None:
            renamed = next((registry[a] for a in e.aliases if a in registry), None)
            changes.append(f"renamed {renamed.id} -> {k}" if renamed else f"added {k}")
        elif old.fingerprint != e.fingerprint:
            changes.append(f"changed {k} ({old.fingerprint} -> {e.fingerprint})")
        elif old.aliases != e.aliases:
            changes.append(f"aliases {k}")
        out[k] = e
    renamed_from = {a for e in fresh.values() for a in e.aliases}
    for k, e in sorted(registry.items()):
        if e.module in names and k not in fresh and k not in renamed_from:
            changes.append(f"removed {k}")
    return out, changes
