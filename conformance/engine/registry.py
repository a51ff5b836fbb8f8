"""The verb registry: (kind, verb) -> function, with declared arguments.

Every verb of the check vocabulary (docs/check-actions.md) is a function of
an ``Engine`` registered here by the decorators ``precondition``, ``action``
and ``expectation``, which also declare each argument: its type, its range
or choices, and its default. ``bind`` checks a vector step against that
declaration before anything runs, so an argument the engine cannot use
(``len: "abc"``, ``len: -1``, ``op: "=~"``, an address expression it cannot
read) is a vector error, reported once with the step's source, never a
verdict about a device.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from conformance.engine import address
from conformance.vectors import Step, VectorError

# Limits on what a vector may ask for (docs/conformance.md, "Limits").
MAX_INT = (1 << 64) - 1
MAX_BUFFER = 1 << 20           # one buffer (rng_read len, a data part)
MAX_SECTORS = MAX_BUFFER // 512
MAX_REQUESTS = 100_000         # device_io count
MAX_NAMES = 256                # features or status bits listed in one step
MAX_TEXT = 4096                # one string argument (hex keys and plaintexts included)
MAX_WAIT_MS = 60_000           # wait_used timeout_ms

_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """How one argument is read: ``kind`` is int, text, hex, names, flags or addr."""

    kind: str
    low: int = 0
    high: int = MAX_INT
    choices: tuple[str, ...] = ()
    default: Any = _REQUIRED

    def with_default(self, value: Any) -> "Param":
        return replace(self, default=value)

    def range(self, low: int, high: int) -> "Param":
        return replace(self, low=low, high=high)

    def one_of(self, *choices: str) -> "Param":
        return replace(self, choices=choices)

    def read(self, value: Any) -> Any:
        """The value the verb gets; raises ValueError with what is wrong."""
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"must be an integer, not {_show(value)}")
            if not self.low <= value <= self.high:
                raise ValueError(f"{value} is outside {self.low}..{self.high}")
            return value
        if self.kind == "text":
            if not isinstance(value, str):
                raise ValueError(f"must be a string, not {_show(value)}")
            if len(value) > MAX_TEXT:
                raise ValueError(f"is {len(value)} characters long (at most {MAX_TEXT})")
            if self.choices and value not in self.choices:
                raise ValueError(f"is {_show(value)}, not one of {', '.join(self.choices)}")
            return value
        if self.kind == "hex":
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                raise ValueError(f"must be a hex string of at most {MAX_TEXT} digits, "
                                 f"not {_show(value)}")
            if len(value) % 2 or not all(c in "0123456789abcdefABCDEF" for c in value):
                raise ValueError(f"is {_show(value)}, not an even number of hex digits")
            return value
        if self.kind in ("names", "flags"):
            if not isinstance(value, list):
                raise ValueError(f"must be a list, not {_show(value)}")
            if len(value) > MAX_NAMES:
                raise ValueError(f"lists {len(value)} items (at most {MAX_NAMES})")
            for item in value:
                ok = isinstance(item, str) and len(item) <= 64 or (
                    self.kind == "flags" and isinstance(item, int)
                    and not isinstance(item, bool) and 0 <= item <= 0xFFFF)
                if not ok:
                    raise ValueError(f"holds {_show(item)}")
            if self.choices:
                bad = [x for x in value if isinstance(x, str) and x not in self.choices]
                if bad:
                    raise ValueError(f"holds {_show(bad[0])}, not one of {', '.join(self.choices)}")
            return list(value)
        if self.kind == "addr":
            if isinstance(value, int) and not isinstance(value, bool):
                return address.parse(str(value)) if value >= 0 else address.parse(f"0-{-value}")
            if not isinstance(value, str):
                raise ValueError(f"must be an address expression, not {_show(value)}")
            try:
                return address.parse(value)
            except address.AddressError as exc:
                raise ValueError(str(exc)) from None
        raise AssertionError(self.kind)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


INT = Param("int")
TEXT = Param("text")
HEX = Param("hex")
NAMES = Param("names")
FLAGS = Param("flags")
ADDR = Param("addr")
COMPARATOR = TEXT.one_of("==", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Verb:
    kind: str                       # precondition, action, expectation
    name: str
    fn: Callable[..., None]
    params: dict[str, Param]


REGISTRY: dict[tuple[str, str], Verb] = {}


def _register(kind: str, name: str, params: dict[str, Param]):
    def deco(fn: Callable[..., None]) -> Callable[..., None]:
        key = (kind, name)
        if key in REGISTRY:
            raise AssertionError(f"{kind} {name} registered twice")
        REGISTRY[key] = Verb(kind, name, fn, params)
        return fn
    return deco


def precondition(name: str, **params: Param):
    return _register("precondition", name, params)


def action(name: str, **params: Param):
    return _register("action", name, params)


def expectation(name: str, **params: Param):
    return _register("expectation", name, params)


@dataclass(frozen=True)
class Bound:
    """A step matched to its verb, its arguments read; ``verb`` None: unknown verb."""

    step: Step
    verb: Verb | None
    args: dict[str, Any]
    skip: str = ""          # why the step cannot run here (verb None)


class StepError(VectorError):
    """A step the engine cannot run as written (a vector error: exit 2)."""


def bind(step: Step, where: str = "") -> Bound:
    """Match a step to its verb and read its arguments (StepError when they do not fit).

    A verb this runner does not know is not an error: newer vectors may use
    verbs an older runner lacks, and such a test is SKIPped when it runs."""
    verb = REGISTRY.get((step.kind, step.verb))
    if verb is None:
        return Bound(step, None, {})
    at = f"{where or step.source}: {step.kind} '{step.verb}'"
    unknown = [k for k in step.args if k not in verb.params]
    if unknown:    # a newer vocabulary, as for an unknown verb: SKIP when it runs
        return Bound(step, None, {}, f"this runner does not understand the arguments of "
                     f"{step.kind} '{step.verb}' (unknown argument '{unknown[0]}'; it takes "
                     f"{', '.join(verb.params) or 'none'})")
    args: dict[str, Any] = {}
    for name, param in verb.params.items():
        if name not in step.args:
            if param.default is _REQUIRED:
                raise StepError(f"{at}: missing argument '{name}'")
            args[name] = param.default
            continue
        try:
            args[name] = param.read(step.args[name])
        except ValueError as exc:
            raise StepError(f"{at}: argument '{name}' {exc}") from None
    return Bound(step, verb, args)
