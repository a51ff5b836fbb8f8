"""The committed id registry (spec/ids.json): id, fingerprint and aliases of
every normative statement, so that any change to normative text, and any
rename, shows up as a diff in review.

``specc check`` compares the modules with the registry; ``specc ids
--update`` rewrites the entries of the modules it was given.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Iterable

from specc.citations import outdated_message
from specc.diagnostics import Diagnostic, error
from specc.model import Module, Statement
from specc.upstream.statements import UpstreamStatement

FORMAT = "specc-ids/1"
DEFAULT_NAME = "ids.json"


@dataclass(frozen=True)
class Entry:
    id: str
    fingerprint: str
    aliases: tuple[str, ...]
    module: str
    keyword: str | None
    upstream: str | None = None     # a citation: the fingerprint of the upstream statement


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
            up = item.get("upstream")
            e = Entry(str(item["id"]), str(item["fingerprint"]), tuple(map(str, item.get("aliases", ()))),
                      str(item["module"]), item.get("keyword"), None if up is None else str(up))
        except (KeyError, TypeError, AttributeError):
            raise RegistryError(f"{path}: malformed entry in id registry: {item!r:.60}") from None
        out[e.id] = e
    return out


def entries_of(modules: Iterable[Module], cited: dict[str, UpstreamStatement] | None = None
               ) -> dict[str, Entry]:
    """Registry entries of the modules; a citation's `upstream` comes from `cited`
    (the statements a tree resolved) and is None without it."""
    out = {}
    for m in modules:
        for st in m.all_statements():
            up = cited.get(st.id) if cited and st.cites is not None else None
            out[st.id] = Entry(st.id, st.fingerprint, tuple(sorted(st.aliases)), m.name, st.keyword,
                               up.fingerprint if up else None)
    return out


def _row(e: Entry) -> dict:
    row = {"id": e.id, "fingerprint": e.fingerprint, "keyword": e.keyword,
           "aliases": list(e.aliases), "module": e.module}
    if e.upstream is not None:
        row["upstream"] = e.upstream
    return row


def render(entries: dict[str, Entry]) -> str:
    rows = [_row(e) for e in sorted(entries.values(), key=lambda e: (e.module, e.id))]
    return json.dumps({"format": FORMAT, "statements": rows}, indent=1, sort_keys=True) + "\n"


def check(modules: list[Module], registry: dict[str, Entry], path: str,
          cited: dict[str, UpstreamStatement] | None = None) -> list[Diagnostic]:
    """Diagnostics for every statement that differs from the registry; with `cited`
    (citations resolved against a tree) also every cited statement reworded upstream."""
    diags: list[Diagnostic] = []
    hint = hint_own = f"review the change, then run: specc ids --update (rewrites {path})"
    hint_cited = f"review the change, then run: specc ids --update --spec-tree PATH (rewrites {path})"
    by_alias = {a: e for e in registry.values() for a in e.aliases}
    names = {m.name for m in modules}
    present: set[str] = set()
    for m in modules:
        for st in m.all_statements():
            present.add(st.id)
            present.update(st.aliases)
            e = registry.get(st.id)
            hint = hint_cited if st.cites is not None else hint_own
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
            elif st.cites is not None:
                diags += _check_cited(st, e, cited)
            if st.id in by_alias and by_alias[st.id].id != st.id:
                diags.append(error(f"id {st.id} is recorded as an alias of {by_alias[st.id].id}",
                                   st.pos, width=len(st.id),
                                   hint="an old id cannot be reused for a different statement"))
    for e in registry.values():
        if e.module in names and e.id not in present:
            diags.append(error(f"statement {e.id} of module {e.module} was removed but is still in "
                               "the id registry", file=path, hint=hint_own))
    return diags


def _check_cited(st: Statement, e: Entry, cited: dict[str, UpstreamStatement] | None
                 ) -> list[Diagnostic]:
    if e.upstream is None:
        return [error(f"the upstream statement {st.id} cites is not recorded in the id registry",
                      st.pos, width=len(st.id),
                      hint="run: specc ids --update --spec-tree PATH (records its fingerprint)")]
    up = (cited or {}).get(st.id)
    if up is not None and up.fingerprint != e.upstream:
        return [error(outdated_message(st, up, e.upstream), st.pos, width=len(st.id),
                      hint="review the checks against the new wording (specc docs --spec-tree "
                           "shows it), then run: specc ids --update --spec-tree PATH")]
    return []


def update(modules: list[Module], registry: dict[str, Entry],
           cited: dict[str, UpstreamStatement] | None = None) -> tuple[dict[str, Entry], list[str]]:
    """The registry with the given modules' entries replaced, and a change list.

    A citation's upstream fingerprint comes from `cited`; without it (no tree)
    an unchanged citation keeps the recorded one, and a new or changed
    citation is a RegistryError."""
    names = {m.name for m in modules}
    fresh = entries_of(modules, cited)
    for k, e in list(fresh.items()):
        st_cites = e.upstream is None and any(st.id == k and st.cites is not None
                                              for m in modules for st in m.citations)
        if not st_cites:
            continue
        old = registry.get(k)
        if old is not None and old.fingerprint == e.fingerprint and old.upstream is not None:
            fresh[k] = Entry(e.id, e.fingerprint, e.aliases, e.module, e.keyword, old.upstream)
        else:
            raise RegistryError(f"citation {k} is new or changed: give --spec-tree PATH so its "
                                "upstream statement's fingerprint can be recorded")
    out = {k: e for k, e in registry.items() if e.module not in names}
    changes = []
    for k, e in sorted(fresh.items()):
        old = registry.get(k)
        if old is None:
            renamed = next((registry[a] for a in e.aliases if a in registry), None)
            changes.append(f"renamed {renamed.id} -> {k}" if renamed else f"added {k}")
        elif old.fingerprint != e.fingerprint:
            changes.append(f"changed {k} ({old.fingerprint} -> {e.fingerprint})")
        elif old.upstream != e.upstream:
            changes.append(f"upstream statement of {k} changed ({old.upstream} -> {e.upstream})")
        elif old.aliases != e.aliases:
            changes.append(f"aliases {k}")
        out[k] = e
    renamed_from = {a for e in fresh.values() for a in e.aliases}
    for k, e in sorted(registry.items()):
        if e.module in names and k not in fresh and k not in renamed_from:
            changes.append(f"removed {k}")
    return out, changes


def with_upstream(modules: list[Module], registry: dict[str, Entry]) -> list[Module]:
    """The modules with each citation carrying the upstream fingerprint the
    registry recorded (the wording its checks were reviewed against)."""
    out = []
    for m in modules:
        if not m.citations:
            out.append(m)
            continue
        cited = tuple(replace(st, cites=replace(st.cites, upstream=registry[st.id].upstream))
                      if st.id in registry else st for st in m.citations)
        out.append(replace(m, citations=cited))
    return out
