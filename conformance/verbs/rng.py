"""The entropy device: requests and what they return."""
from __future__ import annotations

from conformance.engine.core import Engine, Pending
from conformance.engine.registry import INT, MAX_BUFFER, TEXT, action, expectation
from conformance.outcomes import Failed


@action("rng_read", len=INT.range(1, MAX_BUFFER))
def rng_read(e: Engine, len: int) -> None:  # noqa: A002
    e.need_type("rng", "entropy request")
    q = e.request_queue()
    e.last_entropy = None
    e.submit(q, [("w", len)], Pending("rng", q.index, []), wait=False)


@expectation("entropy", what=TEXT)
def expect_entropy(e: Engine, what: str) -> None:
    e.collect()
    if not e.last_entropy:
        raise Failed("no entropy was returned", "non-zero entropy bytes")
    if not any(e.last_entropy):
        raise Failed(f"{len(e.last_entropy)} entropy bytes, all zero", "not all zero")
