"""Every prefix of a series must build: references and the labels they need.

A series is a list of commits; `git bisect` (and a reviewer applying the
first patches only) builds any prefix of it. A reference in patch k to a
label that only a later patch adds leaves patch k with an undefined
reference. `arrange` holds such paragraphs back: a paragraph of inserted
text that refers to a later patch's label moves, at the same place in its
file, into the latest commit whose label it needs. `check` then proves,
without running LaTeX, that every prefix defines every label its inserted
text refers to.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from specc.patch.edit import Edit
from specc.upstream.source import normalise_space

# \label{x} and the label the normative macros set (third argument).
_LABEL = re.compile(r"\\label\{([^}#]*)\}"
                    r"|\\(driver|device)normative\s*\{[^}]*\}\s*\{[^}]*\}\s*\{([^}#]*)\}")
_REF = re.compile(r"\\(?:ref|nameref|pageref|autoref|vref)\*?\{([^}#]*)\}|\\hyperref\[([^\]#]*)\]")
_PARAGRAPH_BREAK = re.compile(r"(?<=\n\n)(?=[^\n])")
_ENV = re.compile(r"\\(begin|end)\{([^}]*)\}")


class ArrangeError(Exception):
    """A forward reference the writer cannot hold back (one line)."""


def labels_defined(text: str) -> list[str]:
    out = []
    for m in _LABEL.finditer(text):
        name = m.group(1) if m.group(1) is not None else f"{m.group(2)}normative:{m.group(3)}"
        out.append(normalise_space(name))
    return out


def labels_referenced(text: str) -> list[str]:
    return [normalise_space(m.group(1) if m.group(1) is not None else m.group(2))
            for m in _REF.finditer(text)]


def paragraphs(text: str) -> list[str]:
    """The text cut before each paragraph (after a blank line); they join back to it."""
    return _PARAGRAPH_BREAK.split(text)


def _balanced(chunk: str) -> bool:
    depth = 0
    for m in _ENV.finditer(chunk):
        depth += 1 if m.group(1) == "begin" else -1
        if depth < 0:
            return False
    return depth == 0


@dataclass(frozen=True)
class Placed:
    """An edit and the commit (index into the series) that makes it."""
    edit: Edit
    commit: int


@dataclass(frozen=True)
class HeldBack:
    """A paragraph moved from commit `origin` to commit `commit` for `label`."""
    file: str
    origin: int
    commit: int
    label: str


def _first_definers(placed: list[Placed], upstream: set[str]) -> dict[str, int]:
    first: dict[str, int] = {}
    for p in placed:
        for name in labels_defined(p.edit.text):
            if name not in upstream:
                first[name] = min(first.get(name, p.commit), p.commit)
    return first


def arrange(groups: list[list[Edit]], upstream: set[str],
            names: list[str]) -> tuple[list[Placed], list[HeldBack]]:
    """Edits in their original order, each with the commit that makes it.

    `groups` are the commits' edits in series order; `names` their names for
    messages. A paragraph that refers to a label only a later commit defines
    goes into the latest such commit (same file, same place: all anchors
    resolve against the original tree and edits at one place keep their
    order). A paragraph that defines a label itself, or opens an environment
    it does not close, cannot move: that is an ArrangeError."""
    placed = [Placed(e, i) for i, g in enumerate(groups) for e in g]
    first = _first_definers(placed, upstream)
    out: list[Placed] = []
    held: list[HeldBack] = []
    for p in placed:
        e = p.edit
        if e.action == "replace":
            out.append(p)
            continue
        pieces: list[tuple[str, int, str]] = []     # (text, commit, label it waits for)
        for chunk in paragraphs(e.text):
            waits = [(first[r], r) for r in labels_referenced(chunk)
                     if r in first and first[r] > p.commit]
            if not waits:
                pieces.append((chunk, p.commit, ""))
                continue
            commit, label = max(waits)
            if labels_defined(chunk) or not _balanced(chunk):
                raise ArrangeError(
                    f"{e.file}: text of commit '{names[p.commit]}' refers to '{label}', which "
                    f"only the later commit '{names[commit]}' adds, and cannot be held back "
                    "(it defines a label or opens an environment): move the reference")
            pieces.append((chunk, commit, label))
        merged: list[tuple[str, int, str]] = []
        for text, commit, label in pieces:
            if merged and merged[-1][1] == commit:
                merged[-1] = (merged[-1][0] + text, commit, merged[-1][2] or label)
            else:
                merged.append((text, commit, label))
        for text, commit, label in merged:
            out.append(Placed(Edit(e.file, e.anchor, text, e.area, e.action), commit))
            if commit != p.commit:
                held.append(HeldBack(e.file, p.commit, commit, label))
    return out, held


def prefix(placed: list[Placed], k: int) -> list[Edit]:
    """The edits of commits 0..k, in their original order."""
    return [p.edit for p in placed if p.commit <= k]


def check(placed: list[Placed], upstream: set[str], names: list[str]) -> None:
    """Every label referenced by inserted text of commits 0..k is defined by the
    tree or by commits 0..k, for every k (ArrangeError names the first gap)."""
    first = _first_definers(placed, upstream)
    for p in placed:
        for r in labels_referenced(p.edit.text):
            if r in upstream:
                continue
            if r not in first:
                raise ArrangeError(f"{p.edit.file}: commit '{names[p.commit]}' refers to "
                                   f"'{r}', which neither the tree nor the series defines")
            if first[r] > p.commit:
                raise ArrangeError(f"{p.edit.file}: commit '{names[p.commit]}' refers to "
                                   f"'{r}', which only the later commit '{names[first[r]]}' "
                                   "adds: that prefix of the series would not build")
