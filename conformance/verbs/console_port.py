"""The console device seen from both ends of port 0: bytes the driver sends
on transmitq0 arrive at the host end, bytes typed at the host end arrive on
receiveq0; with VIRTIO_CONSOLE_F_MULTIPORT, the control messages on the two
control queues. The host end is the adapter's (``HostControls``)."""
from __future__ import annotations

import random
import struct

from device_ref.transport import TransportError
from device_ref.virtio_constants import CONSOLE_CONFIG, CONSOLE_CONTROL, CONSOLE_EVENTS

from conformance.engine.core import Engine, Reply
from conformance.engine.registry import INT, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped, Wedged

EVENT_NAMES = {v: k for k, v in CONSOLE_EVENTS.items()}
BUFFER_QUEUES = ("receiveq0", "control-receiveq")


def need_console(e: Engine) -> None:
    e.need_type("console", "console request")


def host_read(e: Engine) -> bytes:
    return e.via_host("reading the host end of the console", lambda h: h.console_read())


def sent(e: Engine) -> bytes:
    return b"".join(r.request for r in e.replies if r.what in ("tx", "emergency"))


def drain(e: Engine) -> None:
    """Connect the host end and take what is there: before anything was
    sent it is left over from before this test; after, it counts."""
    got = host_read(e)
    if got and sent(e):
        e.replies.append(Reply("host-got", b"", None, got))


@action("console_send", len=INT.range(1, 65536), seed=INT.with_default(0))
def console_send(e: Engine, len: int, seed: int) -> None:  # noqa: A002
    """Seeded bytes on transmitq0, waited for (the host end is connected and
    emptied first: a device may drop output nobody listens to)."""
    need_console(e)
    drain(e)
    data = random.Random(seed).randbytes(len)
    e.request(e.named_queue("transmitq0"), "tx", data)


@action("console_buffers", queue=TEXT.one_of(*BUFFER_QUEUES), count=INT.range(1, 64),
        len=INT.range(8, 65536))
def console_buffers(e: Engine, queue: str, count: int, len: int) -> None:  # noqa: A002
    """``count`` empty device-writable buffers on receiveq0 or the control
    receiveq, notified, not waited for."""
    need_console(e)
    q = e.named_queue(queue)
    for _ in range(count):
        e.request(q, queue, b"", len, wait=False)


@action("console_host_write", len=INT.range(1, 4096), seed=INT.with_default(0))
def console_host_write(e: Engine, len: int, seed: int) -> None:  # noqa: A002
    """Seeded bytes typed at the host end of port 0."""
    need_console(e)
    data = random.Random(seed).randbytes(len)
    e.via_host("writing the host end of the console", lambda h: h.console_write(data))
    e.replies.append(Reply("host", data, None, b""))


@action("console_control", event=TEXT.one_of(*CONSOLE_EVENTS), id=INT.range(0, (1 << 32) - 1),
        value=INT.range(0, 0xFFFF))
def console_control(e: Engine, event: str, id: int, value: int) -> None:  # noqa: A002
    """One control message on the control transmitq, waited for."""
    need_console(e)
    msg = struct.pack("<IHH", id, CONSOLE_EVENTS[event], value)
    e.request(e.named_queue("control-transmitq"), "control", msg)


@action("console_emergency_write", byte=INT.range(0, 255))
def console_emergency_write(e: Engine, byte: int) -> None:
    """Write one character into emerg_wr (a 32-bit write of the configuration)."""
    need_console(e)
    drain(e)
    off, size = CONSOLE_CONFIG["emerg_wr"]
    try:
        e.t.write_config(off, byte.to_bytes(size, "little"))
    except TransportError as exc:
        raise Wedged(f"the emerg_wr write failed: {exc}") from None
    e.replies.append(Reply("emergency", bytes([byte]), None, b""))


@expectation("console_host", what=TEXT.one_of("received"))
def expect_console_host(e: Engine, what: str) -> None:
    """The host end received, in order, every byte the driver sent on
    transmitq0 and wrote into emerg_wr since the test began."""
    need_console(e)
    want = sent(e)
    if not want:
        raise Skipped("nothing was sent to the host end")
    got = b"".join(r.data for r in e.replies if r.what == "host-got")

    def arrived() -> bool:
        nonlocal got
        got += host_read(e)
        return len(got) >= len(want)

    e.run_until(arrived)
    if got != want:
        raise Failed(f"the host end got {len(got)} bytes{', different' if got[:len(want)] != want[:len(got)] else ''}",
                     f"the {len(want)} bytes sent")


def used(e: Engine, what: str) -> list[Reply]:
    out = []
    for r in e.replies:
        if r.what == what:
            e.finish_reply(r)
            if r.used_len is not None:
                out.append(r)
    return out


@expectation("console_rx", what=TEXT.one_of("matches"))
def expect_console_rx(e: Engine, what: str) -> None:
    """The receiveq0 buffers used hold, in order, every byte typed at the host end."""
    need_console(e)
    want = b"".join(r.request for r in e.replies if r.what == "host")
    if not want:
        raise Skipped("nothing was typed at the host end")

    def data() -> bytes:
        return b"".join(r.data[:r.used_len] for r in used(e, "receiveq0"))

    e.run_until(lambda: len(data()) >= len(want))
    got = data()
    if got != want:
        raise Failed(f"receiveq0 returned {len(got)} bytes"
                     f"{', different' if got[:len(want)] != want[:len(got)] else ''}",
                     f"the {len(want)} bytes typed at the host end")


@expectation("console_ports", what=TEXT.one_of("added_once_in_range"))
def expect_console_ports(e: Engine, what: str) -> None:
    """At least one VIRTIO_CONSOLE_DEVICE_ADD came on the control receiveq,
    and no port was added twice or at or past max_nr_ports."""
    need_console(e)

    def messages() -> list[tuple[int, int, int]]:
        return [struct.unpack_from("<IHH", r.data) for r in used(e, "control-receiveq")
                if r.used_len >= CONSOLE_CONTROL]

    e.run_until(lambda: any(m[1] == CONSOLE_EVENTS["DEVICE_ADD"] for m in messages()))
    adds = [m[0] for m in messages() if m[1] == CONSOLE_EVENTS["DEVICE_ADD"]]
    if not adds:
        seen = ", ".join(f"{EVENT_NAMES.get(ev, ev)}({pid})" for pid, ev, _v in messages())
        raise Failed(f"control messages: {seen or 'none'}", "a VIRTIO_CONSOLE_DEVICE_ADD")
    off, size = CONSOLE_CONFIG["max_nr_ports"]
    try:
        most = int.from_bytes(e.config(off, size), "little")
    except TransportError as exc:
        raise Wedged(f"reading max_nr_ports failed: {exc}") from None
    twice = sorted({p for p in adds if adds.count(p) > 1})
    beyond = sorted(p for p in set(adds) if p >= most)
    if twice or beyond:
        raise Failed(f"DEVICE_ADD for ports {adds} (max_nr_ports {most})",
                     "each port added once, below max_nr_ports")
