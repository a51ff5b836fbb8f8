"""The network device: receive buffers, frames sent, and what came back.

A device under these verbs need not loop frames: ``net_receive`` waits for
frames to arrive on receiveq1 and the ``net_rx`` expectations judge the
buffers that were used, whatever put the frames there. Against a loop (the
reference device, DPDK testpmd in io forwarding) the frames are the ones
``net_send`` sent, and ``net_rx frames_match`` compares them.
"""
from __future__ import annotations

import builtins
import struct

from device_ref.virtio_constants import NET_F_GUEST_CSUM, NET_F_MRG_RXBUF, NET_HDR_NUM_BUFFERS

from conformance.engine.core import Engine, NetArrival, Pending, net_header_size
from conformance.engine.registry import INT, MAX_BUFFER, MAX_WAIT_MS, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped

RX_QUEUE, TX_QUEUE = "receiveq1", "transmitq1"
# what a le16 reads in a device-writable buffer the device never wrote: the
# runner fills those with 0xaa before offering them (engine/core.py, segments)
UNWRITTEN = 0xAAAA
MAX_FRAME = 65535
MAX_RX_BUFFERS = 1024
# A frame's first bytes: broadcast, from a locally administered address,
# ethertype 0x88b5 (local experimental); the rest counts up from the
# frame's number so that frames differ and a cut or a shift shows.
FRAME_HEAD = b"\xff" * 6 + bytes.fromhex("020000000002") + b"\x88\xb5"


def _need_net(e: Engine) -> None:
    e.need_type("net", "network verb")
    if not e.running():
        raise Skipped("network traffic before DRIVER_OK")


def _queue(e: Engine, name: str):
    spec = e.kind.queue_by_name(name, e.negotiated) if e.kind is not None else None
    if spec is None:
        raise Skipped(f"this device type has no {name}")
    return e.queue(spec.index)


def frame(number: int, length: int) -> bytes:
    body = bytes((number + i) & 0xFF for i in range(max(0, length - len(FRAME_HEAD))))
    return (FRAME_HEAD + body)[:length]


@action("net_fill_rx", count=INT.range(1, MAX_RX_BUFFERS), len=INT.range(1, MAX_BUFFER))
def net_fill_rx(e: Engine, count: int, len: int) -> None:  # noqa: A002
    """Offer ``count`` device-writable buffers of ``len`` bytes on receiveq1, one kick."""
    _need_net(e)
    q = _queue(e, RX_QUEUE)
    for _ in range(count):
        e.submit(q, [("w", len)], Pending("net_rx", q.index, []), kick=False)
    e.kick([q])


@action("net_send", len=INT.range(14, MAX_FRAME))
def net_send(e: Engine, len: int) -> None:  # noqa: A002
    """Send one frame of ``len`` bytes behind a zeroed header; wait for the buffer's use."""
    _need_net(e)
    q = _queue(e, TX_QUEUE)
    data = frame(builtins.len(e.net_sent), len)
    e.net_sent.append(data)
    e.submit(q, [("r", bytes(net_header_size(e.negotiated))), ("r", data)],
             Pending("net", q.index, []))


@action("net_receive", count=INT.range(1, MAX_RX_BUFFERS), timeout_ms=INT.range(0, MAX_WAIT_MS))
def net_receive(e: Engine, count: int, timeout_ms: int) -> None:
    """Wait until ``count`` frames arrived on receiveq1 (none arriving is not
    itself a failure: the expectations judge what came)."""
    _need_net(e)
    if e.run_until(lambda: len(frames(e)[0]) >= count or e.needs_reset(), timeout_ms / 1000):
        return
    if e.net_sent and not e.net_arrivals:
        raise Skipped(f"no frame came back on receiveq1 within {timeout_ms} ms: nothing says "
                      f"this device's far side returns frames, so there is nothing to judge")


def frames(e: Engine) -> tuple[list[list[NetArrival]], str | None]:
    """The used receive buffers cut into frames by the lengths of the frames
    sent (buffers in the order they were used); and what could not be cut
    (a frame whose buffers' lengths overrun it), else None."""
    hdr = net_header_size(e.negotiated)
    out: list[list[NetArrival]] = []
    arrivals = list(e.net_arrivals)
    at = 0
    for n, sent in enumerate(e.net_sent):
        total = hdr + len(sent)
        got: list[NetArrival] = []
        have = 0
        # without VIRTIO_NET_F_MRG_RXBUF a frame has one buffer, whatever its length
        while at < len(arrivals) and (have < total and has_merge(e) or not got):
            got.append(arrivals[at])
            have += arrivals[at].used_len
            at += 1
        if not got or (have < total and has_merge(e) and at >= len(arrivals)):
            break               # not here yet (or the rest of it may still come)
        out.append(got)
        if have > total:
            return out, (f"frame {n} ({total} bytes with the header) was given receive "
                         f"buffers with used lengths {[a.used_len for a in got]}, "
                         f"{have} bytes in all")
    return out, None


def has_merge(e: Engine) -> bool:
    return bool(e.negotiated >> NET_F_MRG_RXBUF & 1)


def _num_buffers(e: Engine, a: NetArrival) -> int | None:
    """num_buffers of a received header; None when the header in force has
    no such field (legacy without VIRTIO_NET_F_MRG_RXBUF: 10 bytes)."""
    if net_header_size(e.negotiated) < NET_HDR_NUM_BUFFERS + 2 or \
            len(a.data) < NET_HDR_NUM_BUFFERS + 2:
        return None
    return struct.unpack_from("<H", a.data, NET_HDR_NUM_BUFFERS)[0]


def _judge_frames(e: Engine, what: str) -> None:
    got, overrun = frames(e)
    if not e.net_sent:
        raise Failed("no frame was sent", "frames sent with net_send")
    if what == "frames_match" and len(got) < len(e.net_sent):
        raise Failed(f"{len(got)} of {len(e.net_sent)} frames sent came back on receiveq1",
                     "every frame sent received")
    if overrun is not None and what in ("frames_match", "filled_but_last", "num_buffers"):
        raise Failed(overrun, "used lengths that add up to the frame and its header")
    hdr = net_header_size(e.negotiated)
    for n, bufs in enumerate(got):
        sent = e.net_sent[n]
        data = b"".join(a.data[:a.used_len] for a in bufs)
        if what == "frames_match" and data[hdr:] != sent:
            cut = len(data) - hdr
            raise Failed(f"frame {n}: {cut} bytes received, {'different bytes' if cut == len(sent) else 'cut or padded'}",
                         f"the {len(sent)}-byte frame sent")
        if what == "num_buffers":
            nb = _num_buffers(e, bufs[0])
            if nb is None:
                raise Skipped("the header has no num_buffers under these features")
            if nb != len(bufs):
                untouched = (" (0xaaaa: the bytes the runner put in the buffer before offering "
                             "it, never written)" if nb == UNWRITTEN else "")
                raise Failed(f"frame {n} lies in {len(bufs)} receive buffer(s); num_buffers "
                             f"says {nb}{untouched}", f"num_buffers = {len(bufs)}")
        if what == "one_buffer" and len(bufs) != 1:
            # the buffer count only: num_buffers is judged by "num_buffers"
            raise Failed(f"frame {n} lies in {len(bufs)} receive buffers", "one buffer")
        if what == "filled_but_last":
            short = [i for i, a in enumerate(bufs[:-1]) if a.used_len != a.room]
            if short:
                a = bufs[short[0]]
                raise Failed(f"frame {n}: buffer {short[0]} of {len(bufs)} used for "
                             f"{a.used_len} of its {a.room} bytes", "every buffer but the "
                             "last filled to its end")
        if what == "header_clean" and not e.negotiated >> NET_F_GUEST_CSUM & 1:
            flags, gso = bufs[0].data[0], bufs[0].data[1]
            if flags:
                raise Failed(f"frame {n}: header flags {flags:#x}", "flags 0 without "
                             "VIRTIO_NET_F_GUEST_CSUM")
            if gso:
                raise Failed(f"frame {n}: gso_type {gso}", "gso_type NONE (0) with no "
                             "receive offload negotiated")


@expectation("net_rx", what=TEXT.one_of("frames_match", "num_buffers", "one_buffer",
                                        "filled_but_last", "header_clean"))
def expect_net_rx(e: Engine, what: str) -> None:
    e.collect()
    _judge_frames(e, what)
