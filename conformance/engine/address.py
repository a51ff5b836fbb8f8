"""Address expressions of vectors (``region.end - 8``), read without ``eval``.

The grammar is small: integers (decimal or 0x hex), the names
``region.start``, ``region.end``, ``region.size`` and ``outside``, ``+``,
``-``, ``*``, unary minus and parentheses. An expression is at most
``MAX_LENGTH`` characters and ``MAX_DEPTH`` parentheses deep, every value
stays within ``MAX_MAGNITUDE`` while it is computed, and the result is
taken modulo 2^64 (a descriptor's address field). Anything else is an
``AddressError`` naming what is wrong.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Union

MAX_LENGTH = 200
MAX_DEPTH = 8
MAX_MAGNITUDE = 1 << 66
NAMES = ("region.start", "region.end", "region.size", "outside")

_TOKEN = re.compile(r"\s*(?:(0[xX][0-9a-fA-F]+|[0-9]+)|(region\.start|region\.end|region\.size"
                    r"|outside)|([-+*()]))")


class AddressError(ValueError):
    """An address expression that cannot be read."""


@dataclass(frozen=True)
class Num:
    value: int


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Op:
    op: str             # + - * or neg
    left: "Expr"
    right: "Expr | None" = None


Expr = Union[Num, Name, Op]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].isspace():
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            raise AddressError(f"address expression {text!r}: cannot read {text[pos:pos + 10]!r}")
        num, name, sym = m.groups()
        if num is not None:
            if len(num) > 20:
                raise AddressError(f"address expression {text!r}: number {num[:12]}... too long")
            out.append(("num", num))
        elif name is not None:
            out.append(("name", name))
        else:
            out.append(("sym", sym))
        pos = m.end()
    return out


def parse(text: str) -> Expr:
    if len(text) > MAX_LENGTH:
        raise AddressError(f"address expression is {len(text)} characters (at most {MAX_LENGTH})")
    toks = _tokens(text)
    pos = 0
    depth = 0

    def peek() -> tuple[str, str] | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise AddressError(f"address expression {text!r} ends too early")
        pos += 1
        return tok

    def expr() -> Expr:
        left = term()
        while peek() in (("sym", "+"), ("sym", "-")):
            left = Op(take()[1], left, term())
        return left

    def term() -> Expr:
        left = factor()
        while peek() == ("sym", "*"):
            take()
            left = Op("*", left, factor())
        return left

    def factor() -> Expr:
        nonlocal depth
        kind, value = take()
        if kind == "num":
            return Num(int(value, 0))
        if kind == "name":
            return Name(value)
        if value == "-":
            return Op("neg", factor())
        if value == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise AddressError(f"address expression {text!r} nests deeper than {MAX_DEPTH}")
            inner = expr()
            if take() != ("sym", ")"):
                raise AddressError(f"address expression {text!r}: missing ')'")
            depth -= 1
            return inner
        raise AddressError(f"address expression {text!r}: unexpected {value!r}")

    tree = expr()
    if pos != len(toks):
        raise AddressError(f"address expression {text!r}: unexpected {toks[pos][1]!r}")
    return tree


def names_in(tree: Expr) -> set[str]:
    if isinstance(tree, Name):
        return {tree.name}
    if isinstance(tree, Op):
        return names_in(tree.left) | (names_in(tree.right) if tree.right is not None else set())
    return set()


def evaluate(tree: Expr, lookup: Callable[[str], int]) -> int:
    """The value of ``tree`` modulo 2^64; AddressError when a step overflows the bound."""
    if isinstance(tree, Num):
        value = tree.value
    elif isinstance(tree, Name):
        value = lookup(tree.name)
    elif tree.op == "neg":
        value = -evaluate(tree.left, lookup)
    else:
        a = evaluate(tree.left, lookup)
        b = evaluate(tree.right, lookup)  # type: ignore[arg-type]
        value = a + b if tree.op == "+" else a - b if tree.op == "-" else a * b
    if abs(value) > MAX_MAGNITUDE:
        raise AddressError(f"address expression value exceeds 2^66 while computed")
    return value


def to_address(tree: Expr, lookup: Callable[[str], int]) -> int:
    return evaluate(tree, lookup) & ((1 << 64) - 1)
