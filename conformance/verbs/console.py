"""The console device, port 0: bytes written out, bytes read in.

A console need not echo. ``console_receive`` waits for bytes on port 0's
receiveq and SKIPs when none come; ``expect console_rx echoes`` then says
whether they are what was written, in order (the reference device and
anything else that loops its port back).
"""
from __future__ import annotations

import builtins
import time

from device_ref.transport import ConfigUnavailable, TransportError
from device_ref.virtio_constants import CONSOLE_CONFIG

from conformance.engine.core import Engine, Pending
from conformance.engine.registry import INT, MAX_BUFFER, MAX_WAIT_MS, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped, Wedged

RX_QUEUE, TX_QUEUE = "receiveq0", "transmitq0"
MAX_RX_BUFFERS = 1024


def _queue(e: Engine, name: str):
    if e.device_type != "console":
        raise Skipped(f"console verb on a {e.device_type} device")
    if not e.running():
        raise Skipped("console traffic before DRIVER_OK")
    spec = e.kind.queue_by_name(name, e.negotiated) if e.kind is not None else None
    if spec is None:
        raise Skipped(f"this device type has no {name}")
    return e.queue(spec.index)


def text(start: int, length: int) -> bytes:
    """Printable bytes that run on from ``start`` (a cut or a repeat shows)."""
    return bytes(0x21 + (start + i) % 94 for i in range(length))


@action("console_fill_rx", count=INT.range(1, MAX_RX_BUFFERS), len=INT.range(1, MAX_BUFFER))
def console_fill_rx(e: Engine, count: int, len: int) -> None:  # noqa: A002
    """Offer ``count`` device-writable buffers of ``len`` bytes on port 0's receiveq."""
    q = _queue(e, RX_QUEUE)
    for _ in range(count):
        e.submit(q, [("w", len)], Pending("console_rx", q.index, []), kick=False)
    e.kick([q])


@action("console_send", len=INT.range(1, MAX_BUFFER))
def console_send(e: Engine, len: int) -> None:  # noqa: A002
    """Write ``len`` bytes of text to port 0's transmitq; wait for the buffer's use."""
    q = _queue(e, TX_QUEUE)
    data = text(builtins.len(e.console_out), len)
    e.console_out += data
    e.submit(q, [("r", data)], Pending("console", q.index, []))


@action("console_emerg_write", byte=INT.range(0, 255))
def console_emerg_write(e: Engine, byte: int) -> None:
    """Write ``byte`` (as a le32) to the configuration field emerg_wr."""
    if e.device_type != "console":
        raise Skipped(f"console verb on a {e.device_type} device")
    offset, size = CONSOLE_CONFIG["emerg_wr"]
    try:
        e.t.write_config(offset, byte.to_bytes(size, "little"))
    except ConfigUnavailable as exc:
        raise Skipped(f"this transport gives no access to the configuration ({exc})") from None
    except TransportError as exc:
        raise Wedged(f"writing emerg_wr failed: {exc}") from None
    e.console_out += bytes([byte])


@action("console_receive", bytes=INT.range(1, MAX_BUFFER), timeout_ms=INT.range(0, MAX_WAIT_MS))
def console_receive(e: Engine, bytes: int, timeout_ms: int) -> None:  # noqa: A002
    """Wait up to ``timeout_ms`` until ``bytes`` bytes came in on port 0."""
    _queue(e, RX_QUEUE)
    deadline = time.monotonic() + timeout_ms / 1000
    while builtins.len(e.console_in) < bytes:
        e.collect()
        if builtins.len(e.console_in) >= bytes or e.needs_reset():
            return
        left = deadline - time.monotonic()
        if left <= 0:
            break
        e.wait_interrupts(min(left, 0.05))
    if e.console_out and not e.console_in:
        raise Skipped(f"nothing came in on port 0 within {timeout_ms} ms: nothing says this "
                      f"console's far side echoes, so there is nothing to judge")


@expectation("console_rx", what=TEXT.one_of("echoes"))
def expect_console_rx(e: Engine, what: str) -> None:
    e.collect()
    sent, got = builtins.bytes(e.console_out), builtins.bytes(e.console_in)
    if not sent:
        raise Failed("nothing was written to the console", "bytes written first")
    if got != sent:
        same = next((i for i in range(min(len(got), len(sent))) if got[i] != sent[i]),
                    min(len(got), len(sent)))
        raise Failed(f"{len(got)} bytes came in for {len(sent)} written; they differ from "
                     f"byte {same}", "every byte written, in order")
