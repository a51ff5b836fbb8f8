"""Parse and validate the line-oriented body of a ``check NAME { ... }``.

One step per line: ``result valid|invalid|acceptable``, ``comment "..."``,
``given VERB ARGS`` (precondition), ``expect VERB ARGS`` (expectation) or
``VERB ARGS`` (action).  ``#`` starts a comment.  Arguments are separated
by blanks; ``name=value`` is a named argument.
"""
from __future__ import annotations

import difflib
import re

from specc import actions
from specc.diagnostics import Diagnostic, error
from specc.model import RESULTS, Arg, Check, SourcePos, Step

_TOKEN = re.compile(r'"[^"]*"|[^\s"]+|"')
_NAMED = re.compile(r"^([a-z_][a-z0-9_]*)=(.*)$")
_INT = re.compile(r"^(0[xX][0-9a-fA-F]+|[0-9]+)$")
_FEATURE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_FIELD = re.compile(r"^[a-z_][a-z0-9_.]*$")
_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")
_EXPR_TOKEN = re.compile(r"\s*(0[xX][0-9a-fA-F]+|[0-9]+|[a-z_]+(?:\.[a-z_]+)?|[-+*()])")


def parse_check(name: str, statement_id: str, body: str, pos: SourcePos,
                diags: list[Diagnostic]) -> Check:
    """Build a Check from a CHECK_BODY token value (braces included)."""
    result = None
    comment = None
    pre: list[Step] = []
    steps: list[Step] = []
    inner = body[1:-1]
    line_no = pos.line
    col0 = pos.col + 1
    for i, raw in enumerate(inner.split("\n")):
        base_col = col0 if i == 0 else 1
        here_line = line_no + i
        text = raw.split("#", 1)[0] if '"' not in raw else _strip_comment(raw)
        toks = [(m.group(0), base_col + m.start()) for m in _TOKEN.finditer(text)]
        if not toks:
            continue
        head, head_col = toks[0]
        at = SourcePos(pos.file, here_line, head_col)
        if head == '"':
            diags.append(error("unterminated string in check step", at))
            continue
        if head == "result":
            if len(toks) != 2 or toks[1][0] not in RESULTS:
                diags.append(error("'result' takes one of: " + ", ".join(RESULTS), at,
                                   hint="valid: the device must accept it; invalid: it must "
                                        "refuse it; acceptable: either outcome conforms"))
            elif result is not None:
                diags.append(error("check has more than one 'result' line", at))
            else:
                result = toks[1][0]
            continue
        if head == "comment":
            if len(toks) != 2 or not toks[1][0].startswith('"'):
                diags.append(error('\'comment\' takes one quoted string: comment "..."', at))
            else:
                comment = toks[1][0][1:-1]
            continue
        if head in ("given", "expect"):
            kind = actions.PRECONDITION if head == "given" else actions.EXPECTATION
            if len(toks) < 2:
                diags.append(error(f"'{head}' needs a verb", at,
                                   hint="one of: " + ", ".join(actions.verbs_of(kind))))
                continue
            verb_tok, verb_col = toks[1]
            rest = toks[2:]
        else:
            kind = actions.ACTION
            verb_tok, verb_col = head, head_col
            rest = toks[1:]
        vpos = SourcePos(pos.file, here_line, verb_col)
        step = _step(kind, verb_tok, rest, vpos, pos.file, here_line, diags)
        if step is None:
            continue
        (pre if kind == actions.PRECONDITION else steps).append(step)
    if result is None:
        diags.append(error(f"check '{name}' has no 'result' line", pos,
                           hint="add: result valid | invalid | acceptable"))
    if not steps:
        diags.append(error(f"check '{name}' has no actions or expectations", pos))
    elif not any(s.kind == actions.EXPECTATION for s in steps):
        diags.append(error(f"check '{name}' observes nothing: add at least one 'expect' line", pos))
    return Check(id=f"{statement_id}/{name}", name=name, statement_id=statement_id,
                 result=result or "valid", comment=comment, preconditions=tuple(pre),
                 steps=tuple(steps), pos=pos)


def _strip_comment(raw: str) -> str:
    in_str = False
    for i, ch in enumerate(raw):
        if ch == '"':
            in_str = not in_str
        elif ch == "#" and not in_str:
            return raw[:i]
    return raw


def _step(kind: str, verb_name: str, toks: list[tuple[str, int]], vpos: SourcePos,
          file: str, line: int, diags: list[Diagnostic]) -> Step | None:
    verb = actions.lookup(kind, verb_name)
    if verb is None:
        other = [k for k in (actions.PRECONDITION, actions.ACTION, actions.EXPECTATION)
                 if actions.lookup(k, verb_name)]
        if other:
            word = {"precondition": "given", "expectation": "expect", "action": "(no prefix)"}
            hint = f"'{verb_name}' is a{'n' if other[0][0] in 'ae' else ''} {other[0]}: " \
                   f"write it as {word[other[0]]} {verb_name}"
        else:
            near = difflib.get_close_matches(verb_name, actions.verbs_of(kind), n=1)
            hint = (f"did you mean '{near[0]}'? " if near else "") + \
                f"the {kind}s are listed in docs/check-actions.md"
        diags.append(error(f"unknown {kind} '{verb_name}'", vpos, hint=hint, width=len(verb_name)))
        return None
    args: list[Arg] = []
    ok = True
    positional = [p for p in verb.params if p.positional]
    named = {p.name: p for p in verb.params if not p.positional}
    seen: set[str] = set()
    pi = 0
    for tok, col in toks:
        apos = SourcePos(file, line, col)
        m = _NAMED.match(tok)
        if m:
            pname, value = m.group(1), m.group(2)
            param = named.get(pname)
            if param is None:
                expected = ", ".join(f"{n}=" for n in named) or "no named arguments"
                diags.append(error(f"'{verb.name}' has no argument '{pname}'", apos,
                                   hint=f"it takes: {expected}", width=len(pname)))
                ok = False
                continue
            if pname in seen:
                diags.append(error(f"argument '{pname}' given twice", apos, width=len(pname)))
                ok = False
                continue
            seen.add(pname)
            vpos_arg = SourcePos(file, line, col + len(pname) + 1)
            if not _valid(param, value, vpos_arg, verb.name, diags):
                ok = False
            args.append(Arg(pname, value, apos))
            continue
        if pi >= len(positional):
            diags.append(error(f"unexpected argument '{tok}' to '{verb.name}'", apos,
                               hint=_usage(verb), width=len(tok)))
            ok = False
            continue
        param = positional[pi]
        if not param.repeat:
            pi += 1
        if not _valid(param, tok, apos, verb.name, diags):
            ok = False
        args.append(Arg(None, tok, apos))
    # missing arguments
    filled_pos = sum(1 for a in args if a.name is None)
    need = [p for p in positional if not p.optional]
    need_count = len(need)
    if filled_pos < need_count:
        diags.append(error(f"'{verb.name}' is missing an argument", vpos, hint=_usage(verb),
                           width=len(verb.name)))
        ok = False
    for p in named.values():
        if not p.optional and p.name not in seen:
            diags.append(error(f"'{verb.name}' needs {p.name}=...", vpos, hint=_usage(verb),
                               width=len(verb.name)))
            ok = False
    if not ok:
        return None
    return Step(verb.name, kind, tuple(args), vpos)


def _usage(verb: actions.Verb) -> str:
    parts = []
    for p in verb.params:
        shown = "|".join(p.choices) if p.choices else p.name.upper()
        if p.positional:
            s = shown + ("..." if p.repeat else "")
        else:
            s = f"{p.name}={shown}"
        parts.append(f"[{s}]" if p.optional else s)
    prefix = {"precondition": "given ", "expectation": "expect ", "action": ""}[verb.kind]
    return "usage: " + prefix + " ".join([verb.name] + parts)


def _valid(param: actions.Param, value: str, pos: SourcePos, verb: str,
           diags: list[Diagnostic]) -> bool:
    problem = None
    t = param.type
    if t == "enum":
        if value not in param.choices:
            problem = f"'{value}' is not one of: {', '.join(param.choices)}"
    elif t == "int":
        if not _INT.match(value):
            problem = f"{param.name} must be an integer, not '{value}'"
    elif t == "feature":
        if not _FEATURE.match(value):
            problem = f"'{value}' is not a feature name"
    elif t == "status_bit":
        if value not in actions.STATUS_BITS:
            problem = f"'{value}' is not a device status bit ({', '.join(actions.STATUS_BITS)})"
    elif t == "flags":
        parts = value.split("|")
        bad = [p for p in parts if p not in actions.DESC_FLAGS and not _INT.match(p)]
        if bad:
            problem = f"unknown descriptor flag '{bad[0]}' (flags: {', '.join(actions.DESC_FLAGS)})"
    elif t == "expr":
        problem = _expr_problem(value)
    elif t == "field":
        if not _FIELD.match(value):
            problem = f"'{value}' is not a field name"
    elif t == "hex":
        if not _HEX.match(value):
            problem = f"{param.name} must be lower-case hex digits in pairs, not '{value}'"
    if problem:
        diags.append(error(f"bad argument to '{verb}': {problem}", pos, width=len(value)))
        return False
    return True


def _expr_problem(value: str) -> str | None:
    """Address expressions: integers, region.start/end/size, outside, + - * ( )."""
    pos = 0
    depth = 0
    expect_operand = True
    while pos < len(value):
        m = _EXPR_TOKEN.match(value, pos)
        if not m:
            return f"cannot read address expression '{value}' at '{value[pos:]}'"
        tok = m.group(1)
        pos = m.end()
        if tok == "(":
            if not expect_operand:
                return f"missing operator before '(' in '{value}'"
            depth += 1
        elif tok == ")":
            depth -= 1
            if depth < 0 or expect_operand:
                return f"unbalanced ')' in '{value}'"
        elif tok in "+-*":
            if expect_operand and tok != "-":
                return f"missing operand before '{tok}' in '{value}'"
            expect_operand = True
            continue
        else:
            if not expect_operand:
                return f"missing operator before '{tok}' in '{value}'"
            if not _INT.match(tok) and tok not in actions.EXPR_NAMES:
                return f"unknown name '{tok}' in address expression (known: {', '.join(actions.EXPR_NAMES)})"
            expect_operand = False
            continue
        if tok == ")":
            expect_operand = False
    if depth != 0:
        return f"unbalanced '(' in '{value}'"
    if expect_operand:
        return f"address expression '{value}' ends with an operator"
    return None
