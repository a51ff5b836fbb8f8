"""The traditional memory balloon: pages given up and taken back, the
statistics queue, and the outside events that drive it (a new target, the
statistics polling interval), caused through the adapter's host controls."""
from __future__ import annotations

import random
import struct

from device_ref.transport import TransportError
from device_ref.virtio_constants import (BALLOON_CONFIG, BALLOON_PFN_SHIFT, BALLOON_STAT,
                                         BALLOON_STAT_TAGS)

from conformance.engine.core import Engine, Pending, Reply
from conformance.engine.registry import INT, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped, Wedged

PAGE = 1 << BALLOON_PFN_SHIFT
# The statistics every buffer carries (the same subset each time, as the
# driver rules ask), and a tag no revision of the specification assigns.
STATS_SENT = ("MEMFREE", "MEMTOT", "AVAIL", "MINFLT")
UNKNOWN_TAG = 0x7FF0


def need_balloon(e: Engine) -> None:
    e.need_type("balloon", "balloon request")


def stats_replies(e: Engine) -> list[Reply]:
    return [r for r in e.replies if r.what == "stats"]


@action("balloon_pages", op=TEXT.one_of("inflate", "deflate"), pages=INT.range(1, 1024))
def balloon_pages(e: Engine, op: str, pages: int) -> None:
    """Inflate: give ``pages`` fresh 4 KiB guest pages (their frame numbers on
    inflateq); deflate: take back the last ``pages`` given (on deflateq)."""
    need_balloon(e)
    if op == "inflate":
        pfns = [e.ram.alloc(PAGE, PAGE) >> BALLOON_PFN_SHIFT for _ in range(pages)]
        e.balloon_pfns += pfns
    else:
        if len(e.balloon_pfns) < pages:
            raise Skipped(f"the vector deflates {pages} pages with {len(e.balloon_pfns)} "
                          f"in the balloon")
        pfns = e.balloon_pfns[-pages:]
        del e.balloon_pfns[-pages:]
    q = e.named_queue(f"{op}q")
    e.request(q, op, struct.pack(f"<{len(pfns)}I", *pfns))


def stats_buffer(seed: int, order: str, unknown: bool) -> tuple[bytes, dict[int, int]]:
    rnd = random.Random(seed)
    values = {BALLOON_STAT_TAGS[name]: rnd.randrange(1, 1 << 40) for name in STATS_SENT}
    tags = sorted(values, reverse=order == "descending")
    entries = [struct.pack("<HQ", t, values[t]) for t in tags]
    if unknown:
        entries.insert(len(entries) // 2, struct.pack("<HQ", UNKNOWN_TAG, rnd.randrange(1 << 63)))
    assert all(len(x) == BALLOON_STAT for x in entries)
    return b"".join(entries), values


@action("balloon_stats", seed=INT, order=TEXT.one_of("ascending", "descending"),
        unknown=INT.range(0, 1))
def balloon_stats(e: Engine, seed: int, order: str, unknown: int) -> None:
    """Make one statistics buffer available on statsq and notify (the device
    keeps it until it wants fresh statistics)."""
    need_balloon(e)
    data, values = stats_buffer(seed, order, bool(unknown))
    reply = e.request(e.named_queue("statsq"), "stats", data, wait=False)
    reply.extra["values"] = values


@action("balloon_stats_interval", seconds=INT.range(0, 60))
def balloon_stats_interval(e: Engine, seconds: int) -> None:
    """Have the device ask for fresh statistics every ``seconds``."""
    need_balloon(e)
    e.via_host("setting the statistics interval", lambda h: h.stats_interval(seconds))


@action("balloon_target", pages=INT.range(0, 1 << 20))
def balloon_target(e: Engine, pages: int) -> None:
    """Ask the device, from outside, to want ``pages`` pages in the balloon."""
    need_balloon(e)
    e.via_host("setting the balloon target", lambda h: h.balloon_target(pages))


@expectation("balloon_stats", what=TEXT.one_of("recorded", "returned"))
def expect_balloon_stats(e: Engine, what: str) -> None:
    """recorded: the device holds the values of the last statistics buffer
    (its host view, read through the adapter); returned: the device used the
    last buffer before this one (it wanted fresh statistics)."""
    need_balloon(e)
    sent = stats_replies(e)
    if not sent:
        raise Skipped("no statistics buffer was made available")
    if what == "returned":
        e.collect()
        for r in sent:
            e.finish_reply(r)
        earlier = sent[-2] if len(sent) > 1 else sent[-1]
        if earlier.used_len is None:
            raise Failed("the statistics buffer was never used",
                         "the buffer used once the device wants fresh statistics")
        return
    want = sent[-1].extra["values"]
    got: dict[int, int] = {}

    def holds_them() -> bool:
        nonlocal got
        got = e.via_host("reading the device's statistics", lambda h: h.balloon_stats())
        return all(got.get(t) == v for t, v in want.items())

    if e.run_until(holds_them):     # the machine runs meanwhile
        return
    names = {v: k for k, v in BALLOON_STAT_TAGS.items()}
    show = lambda d: ", ".join(f"{names.get(t, t)}={d[t]}" for t in sorted(d)) or "none"  # noqa: E731
    raise Failed(f"the device holds {show({t: got[t] for t in got if t in want})}",
                 f"the values sent: {show(want)}")


@action("balloon_poison", value=INT.range(0, 0xFFFFFFFF))
def balloon_poison(e: Engine, value: int) -> None:
    """Write ``value`` into poison_val (the driver does so before DRIVER_OK)."""
    need_balloon(e)
    at, _width = BALLOON_CONFIG["poison_val"]
    try:
        e.t.write_config(at, struct.pack("<I", value))
    except TransportError as exc:
        raise Wedged(f"writing poison_val failed: {exc}") from None
    e.replies.append(Reply("poison", b"", None, b"", {"value": value}))


@action("balloon_report", pages=INT.range(1, 256))
def balloon_report(e: Engine, pages: int) -> None:
    """Report ``pages`` free 4 KiB pages, page-aligned and filled with the
    last poison_val written (0 if none), as one device-writable buffer on
    reporting_vq; waits until the device used it."""
    need_balloon(e)
    if not e.running():
        raise Skipped("a report before DRIVER_OK (the vector lacks driver_ok)")
    poison = [r.extra["value"] for r in e.replies if r.what == "poison"]
    value = poison[-1] if poison else 0
    q = e.named_queue("reporting_vq")
    size = pages * PAGE
    addr = e.alloc(size, PAGE)
    data = struct.pack("<I", value) * (size // 4)
    e.t.memory.write(addr, data)
    pending = Pending("reply", q.index, [])
    reply = Reply("report", b"", None, b"", {"pending": pending, "poison": value})
    e.replies.append(reply)
    segs = [(addr, size, True, data)]
    token = e.offer(q, e.descs(q, segs), segs, pending)
    e.kick([q])
    e.wait_token(token)
    e.finish_reply(reply)


@expectation("balloon_reported", what=TEXT.one_of("poisoned"))
def expect_balloon_reported(e: Engine, what: str) -> None:
    """poisoned: every page of every report the device used still holds the
    poison_val it was filled with (the device may discard a reported page,
    but not leave it holding anything else)."""
    need_balloon(e)
    reports = [r for r in e.replies if r.what == "report"]
    if not reports:
        raise Skipped("no free pages were reported")
    for r in reports:
        e.finish_reply(r)
        want = struct.pack("<I", r.extra["poison"])
        if r.used_len is None:
            raise Skipped("the report was never used")
        for off in range(0, len(r.data), 4):
            if r.data[off:off + 4] != want:
                raise Failed(f"byte {off} of a reported range holds {r.data[off:off + 4].hex()}",
                             f"poison_val {want.hex()} in every reported page")
