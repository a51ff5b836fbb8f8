"""The docs site's Coverage page: our statements by module, and, given the
upstream tree, every upstream normative block by chapter and device type
with the statements that restate, amend or extend it, whether each is
tested or why it cannot be, and its latest verdict on each device.

Drawn from `specc.audit.coverage` (what `specc audit --coverage` prints), so
what that model learns shows here too.
"""
from __future__ import annotations


from docutils.nodes import make_id

from specc.audit.coverage import BlockCoverage, Coverage, StatementCoverage
from specc.emit.escape import rst_text
from specc.emit.rst import (ROLES, SiteIndex, Verdict, anchor, device_verdicts_rst, heading,
                             link_text, list_table)
from specc.model import Module

COVERAGE_PAGE = "coverage"
DEVICE_TYPES_CHAPTER = "Device Types"
_STATUS = {"tested": ":status-tested:`tested`",
           "untestable": ":status-untestable:`untestable`",
           "restated": ":status-uncovered:`restated, not tested`",
           "missing": ":status-uncovered:`not yet covered`"}



def block_anchor(label: str) -> str:
    """The id of an upstream block's row on the coverage page."""
    return make_id(label)


def _group(b: BlockCoverage) -> str:
    """The chapter, or for the device types chapter the device type."""
    path = b.label.split(":", 1)[-1].split(" / ")
    if b.chapter == DEVICE_TYPES_CHAPTER and len(path) > 1:
        return f"{DEVICE_TYPES_CHAPTER}: {path[1]}"
    return b.chapter


def _verdicts(rid: str, verdicts: dict[str, Verdict] | None) -> str:
    v = (verdicts or {}).get(rid)
    if v is None:
        return "\\-"
    if v.devices:
        return device_verdicts_rst(v, rid)
    return f":verdict-{v.overall.lower()}:`{v.overall}`"


def _statement_cells(s: StatementCoverage, idx: SiteIndex,
                     verdicts: dict[str, Verdict] | None) -> list[str]:
    """Statement (linked to its card, with how it is tied to the block), state, verdicts."""
    where = idx.statements.get(s.id)
    name = f"`{link_text(s.id)} <{where[0]}.html#{anchor(s.id)}>`__" if where else rst_text(s.id)
    if s.tested:
        state = ":status-tested:`tested`"
    elif s.untestable is not None:
        state = f":status-untestable:`untestable`: {rst_text(s.untestable)}"
    else:
        state = ":status-uncovered:`not tested`"
    how = "" if s.how == "restates" else f" ({s.how})"
    if s.cites:
        how = f" (cites {rst_text(s.cites)})"
    return [f"{name}{how}", state, _verdicts(s.id, verdicts)]


def _module_rows(modules: list[Module], verdicts: dict[str, Verdict] | None) -> list[list[str]]:
    rows = []
    for m in modules:
        stmts = list(m.all_statements())
        tested = sum(1 for s in stmts if s.checks)
        untestable = sum(1 for s in stmts if s.untestable is not None and not s.checks)
        run = sum(1 for s in stmts if verdicts and s.id in verdicts)
        rows.append([f"`{m.name} <{m.name}.html>`__", m.kind, str(len(stmts)), str(tested),
                     str(untestable), str(len(stmts) - tested - untestable),
                     str(run) if verdicts is not None else "\\-"])
    return rows


def _untestable_rows(modules: list[Module], idx: SiteIndex) -> list[list[str]]:
    rows = []
    for m in modules:
        for s in m.all_statements():
            if s.untestable is not None and not s.checks:
                rows.append([f"`{link_text(s.id)} <{m.name}.html#{anchor(s.id)}>`__",
                             rst_text(s.keyword or "?"), rst_text(s.untestable.plain())])
    return rows


def coverage_rst(modules: list[Module], idx: SiteIndex, cov: Coverage | None,
                 verdicts: dict[str, Verdict] | None) -> tuple[str, dict[str, str]]:
    """The page, and the anchor of each upstream block it lists (for the report pages)."""
    out = ["========\nCoverage\n========\n", ROLES,
           ".. role:: status-tested\n.. role:: status-untestable\n.. role:: status-uncovered\n"]
    out.append("Which normative statements the conformance suite tests, which cannot be "
               "tested and why, and which are not covered yet. A statement counts as tested "
               "when it has checks (the vectors are compiled from them); its latest verdict "
               "on each device comes from the conformance reports the site was built with.\n")
    out.append(heading("Our statements by module", 0))
    out.append(list_table(["Module", "Kind", "Statements", "Tested", "Untestable",
                           "Not covered", "Run by a report"], _module_rows(modules, verdicts)))
    labels: dict[str, str] = {}
    if cov is None:
        out.append(heading("Upstream blocks", 0))
        out.append("This site was built without an upstream spec tree, so the upstream "
                   "normative blocks are not listed; build it with ``specc docs --spec-tree "
                   "PATH`` (``specc build`` finds the tree itself).\n")
    else:
        out += _upstream(cov, idx, verdicts, labels)
    rows = _untestable_rows(modules, idx)
    if rows:
        out.append(heading("Untestable statements and why", 0))
        out.append(list_table(["Statement", "Keyword", "Why it cannot be tested"], rows))
    return "\n".join(out), labels


def _upstream(cov: Coverage, idx: SiteIndex, verdicts: dict[str, Verdict] | None,
              labels: dict[str, str]) -> list[str]:
    out = [heading("Upstream blocks by chapter", 0),
           f"Every normative block of the upstream tree, tested according to "
           f"{rst_text(cov.tested_from)}. A block is restated when a baseline module restates "
           f"it or a module amends one of its statements, tested when one of those statements "
           f"is tested; statements a proposal adds to a block are listed with it.\n"]
    groups: dict[str, list[BlockCoverage]] = {}
    for b in cov.blocks:
        groups.setdefault(_group(b), []).append(b)
    summary = []
    for g, blocks in groups.items():
        n = len(blocks)
        tested = sum(1 for b in blocks if b.status == "tested")
        restated = sum(1 for b in blocks if b.status != "missing")
        summary.append([f"`{link_text(g)}`_", str(n), str(restated), str(tested),
                        str(n - restated)])
    out.append(list_table(["Chapter or device type", "Blocks", "Restated or cited", "Tested",
                           "Not yet covered"], summary))
    out.append("The RFC 2119 keywords of the upstream blocks, by chapter: how many our modules "
               "restate, how many they cite (an upstream statement picked out by label and "
               "fingerprint, its words left upstream), how many are tested and how many are "
               "declared untestable with a reason.\n")
    kw_rows = []
    for name, f in cov.chapters + [("total", cov.totals)]:
        accounted = f.keywords_tested + f.keywords_untestable
        kw_rows.append([rst_text(name), str(f.keywords), str(f.keywords_restated),
                        str(f.keywords_cited), str(f.keywords_tested), str(f.keywords_untestable),
                        f"{100 * accounted / f.keywords:.1f}%" if f.keywords else "\\-"])
    out.append(list_table(["Chapter", "Keywords", "Restated", "Cited", "Tested", "Untestable",
                           "Accounted for"], kw_rows))
    if cov.unresolved:
        out.append("Citations this tree does not resolve:\n\n"
                   + "\n".join(f"- {rst_text(u)}" for u in cov.unresolved) + "\n")
    for g, blocks in groups.items():
        out.append(heading(g, 1))
        rows = []
        for b in blocks:
            a = block_anchor(b.label)
            cell = rst_text(b.label)
            if a not in labels.values():
                labels[b.label] = a
                cell = f"_`{link_text(b.label)}`"
            first = [f"{cell} ({rst_text(f'{b.file}:{b.line}')})", _STATUS[b.status]]
            if not b.statements:
                rows.append(first + ["\\-", "\\-", "\\-"])
            for i, st in enumerate(b.statements):
                # the block's cells on its first statement's row only
                rows.append((first if i == 0 else ["\\ ", "\\ "])
                            + _statement_cells(st, idx, verdicts))
        out.append(list_table(["Upstream block (where)", "Status", "Our statement", "Tested",
                               "Latest verdicts"], rows))
    return out
