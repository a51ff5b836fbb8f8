"""The input device: configuration queries (select/subsel, then size and
the data) and events on eventq, caused through the adapter's host controls."""
from __future__ import annotations

import struct

from device_ref.transport import TransportError
from device_ref.virtio_constants import EV_SYN, INPUT_CFG_DATA, INPUT_EVENT

from conformance.engine.core import Engine, Reply
from conformance.engine.registry import INT, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped, Wedged

CONFIG_DATA = 128
DEVIDS = 8


def need_input(e: Engine) -> None:
    e.need_type("input", "input request")


@action("input_config", select=INT.range(0, 255), subsel=INT.range(0, 255))
def input_config(e: Engine, select: int, subsel: int) -> None:
    """Write select and subsel, then read size and the bytes it covers."""
    need_input(e)
    try:
        e.t.write_config(0, bytes([select]))
        e.t.write_config(1, bytes([subsel]))
        raw = e.config(0, INPUT_CFG_DATA + CONFIG_DATA)
    except TransportError as exc:
        raise Wedged(f"the configuration query failed: {exc}") from None
    size = raw[2]
    e.replies.append(Reply("config", bytes([select, subsel]), None,
                           raw[INPUT_CFG_DATA:INPUT_CFG_DATA + min(size, CONFIG_DATA)],
                           {"select": select, "subsel": subsel, "size": size}))


@expectation("input_config", what=TEXT.one_of("empty", "string", "devids", "bitmap"))
def expect_input_config(e: Engine, what: str) -> None:
    """empty: size 0; string: size bytes of printable text (no NUL terminator
    counted in size); devids: size 8 (struct virtio_input_devids); bitmap:
    size above 0 with a bit set."""
    need_input(e)
    queries = [r for r in e.replies if r.what == "config"]
    if not queries:
        raise Skipped("no configuration query was made")
    r = queries[-1]
    size, data = r.extra["size"], r.data
    where = f"select {r.extra['select']:#04x} subsel {r.extra['subsel']}"
    if what == "empty" and size:
        raise Failed(f"{where}: size {size}", "size 0 (nothing there)")
    if what == "string" and (not size or size > CONFIG_DATA
                             or not all(0x20 <= c < 0x7F for c in data)):
        raise Failed(f"{where}: size {size}, {data!r}", "size bytes of printable text, no NUL terminator")
    if what == "devids" and size != DEVIDS:
        raise Failed(f"{where}: size {size}", f"size {DEVIDS}")
    if what == "bitmap" and (not size or size > CONFIG_DATA or not any(data)):
        raise Failed(f"{where}: size {size}, {data.hex()}", "a bitmap with a bit set")


@action("input_buffers", count=INT.range(1, 64))
def input_buffers(e: Engine, count: int) -> None:
    """Make ``count`` empty event buffers available on eventq and notify."""
    need_input(e)
    q = e.named_queue("eventq")
    for _ in range(count):
        e.request(q, "event", b"", INPUT_EVENT, wait=False)


@action("input_key", key=TEXT, release=INT.range(0, 1).with_default(1))
def input_key(e: Engine, key: str, release: int) -> None:
    """Press (and with release=1 release) a key from outside (a QEMU key code
    name, e.g. "a")."""
    need_input(e)
    e.via_host("pressing the key", lambda h: h.key(key, True))
    if release:
        e.via_host("releasing the key", lambda h: h.key(key, False))


def events(e: Engine) -> list[tuple[int, int, int]]:
    out = []
    for r in e.replies:
        if r.what == "event":
            e.finish_reply(r)
            if r.used_len is not None and len(r.data) >= INPUT_EVENT:
                out.append(struct.unpack_from("<HHi", r.data))
    return out


@expectation("input_event", type=INT.range(0, 0xFFFF), code=INT.range(0, 0xFFFF),
             value=INT.range(-(1 << 31), (1 << 31) - 1))
def expect_input_event(e: Engine, type: int, code: int, value: int) -> None:  # noqa: A002
    """An event of this type, code and value came on eventq, followed there by
    an EV_SYN that ends its update (waits up to the step timeout)."""
    need_input(e)
    want = (type, code, value)

    def ended(got: list[tuple[int, int, int]]) -> bool:
        return want in got and any(ev[0] == EV_SYN for ev in got[got.index(want):])

    if e.run_until(lambda: ended(events(e))):
        return
    got = events(e)
    shown = ", ".join(f"({t}, {c}, {v})" for t, c, v in got) or "no event"
    raise Failed(f"eventq: {shown}", f"({type}, {code}, {value}) then an EV_SYN")



@expectation("input_updates", what=TEXT.one_of("whole"))
def expect_input_updates(e: Engine, what: str) -> None:
    """whole: once the step timeout has passed, the events that came on eventq
    end with an EV_SYN, so no update was cut short: the device delivered each
    one entirely (at once or after buffers came) or dropped it entirely.
    Delivering nothing holds too."""
    need_input(e)
    e.run_until(lambda: False)      # the whole step timeout
    got = events(e)
    if got and got[-1][0] != EV_SYN:
        shown = ", ".join(f"({t}, {c}, {v})" for t, c, v in got)
        raise Failed(f"eventq: {shown} (no EV_SYN after the last event)",
                     "each update whole, ending with an EV_SYN, or none of it")
