"""Group administration commands on an administration virtqueue
(VIRTIO_F_ADMIN_VQ): set the queue up, send commands, judge the status,
qualifier and result the owner device writes back."""
from __future__ import annotations

import struct

from device_ref.ring import PACKED, SPLIT
from device_ref.virtio_constants import (ADMIN_CMD_HEADER, ADMIN_OPCODES, ADMIN_QUALIFIER,
                                         ADMIN_RESULT_HEADER, ADMIN_STATUS, F_ADMIN_VQ,
                                         F_RING_PACKED, FEATURES_OK)

from conformance.engine.core import Engine, Reply
from conformance.engine.registry import HEX, INT, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped, Wedged

QUEUE_SIZE = 16
LIST_QUERY = ADMIN_OPCODES["LIST_QUERY"]
LIST_USE = ADMIN_OPCODES["LIST_USE"]
STATUS_NAMES = {v: k for k, v in ADMIN_STATUS.items()}
QUALIFIER_NAMES = {v: k for k, v in ADMIN_QUALIFIER.items()}


def admin_index(e: Engine) -> int:
    """Where the first administration virtqueue is (SKIP when the device or
    the transport has none to show)."""
    if not e.negotiated >> F_ADMIN_VQ & 1:
        raise Skipped("VIRTIO_F_ADMIN_VQ was not negotiated")
    report = getattr(e.t, "admin_queues", None)
    where = report() if report is not None else None
    if where is None:
        raise Skipped(f"the {e.s.transport_kind} transport here does not say where "
                      f"administration virtqueues are")
    index, count = where
    if count == 0:
        raise Failed("VIRTIO_F_ADMIN_VQ negotiated but the transport reports no "
                     "administration virtqueue", "at least one administration virtqueue")
    return index


def admin_replies(e: Engine) -> list[Reply]:
    return [r for r in e.replies if r.what == "admin"]


def last_admin(e: Engine) -> Reply:
    got = admin_replies(e)
    if not got:
        raise Skipped("no administration command was sent before the expectation")
    r = got[-1]
    if r.used_len is None:
        raise Wedged("the device never used the buffer of the last administration command")
    return r


def status_of(r: Reply) -> tuple[int, int]:
    """(status, status_qualifier) as the device left them in the writable part."""
    return struct.unpack_from("<HH", r.data.ljust(4, b"\0"))


def list_result(r: Reply) -> set[int]:
    """The opcodes a LIST_QUERY result sets, within the used length."""
    body = r.data[ADMIN_RESULT_HEADER:max(r.used_len or 0, ADMIN_RESULT_HEADER)]
    body = body[:len(body) // 8 * 8]
    out: set[int] = set()
    for i in range(len(body) // 8):
        (word,) = struct.unpack_from("<Q", body, 8 * i)
        out |= {64 * i + b for b in range(64) if word >> b & 1}
    return out


@action("admin_setup")
def admin_setup(e: Engine) -> None:
    """Set up the first administration virtqueue (after FEATURES_OK, before DRIVER_OK)."""
    if not e.status() & FEATURES_OK:
        raise Skipped("administration virtqueue set up before FEATURES_OK")
    index = admin_index(e)
    layout = PACKED if e.negotiated >> F_RING_PACKED & 1 else SPLIT
    where = e.placement
    if where == "default":
        where = "inside" if e.swiotlb else "outside_region"
    size = min(QUEUE_SIZE, e.t.queue_max_size(index))
    if layout == SPLIT:
        size = 1 << (size.bit_length() - 1)
    e.queues = sorted([*e.queues, e.setup_queue(index, layout, size, where)],
                      key=lambda q: q.index)


@action("admin_command", opcode=INT.range(0, 0xFFFF), group=INT.range(0, 0xFFFF).with_default(0),
        member=INT.with_default(0), data=HEX.with_default(""),
        result=INT.range(0, 4096).with_default(8), cut=INT.range(1, 4096).with_default(None))
def admin_command(e: Engine, opcode: int, group: int = 0, member: int = 0, data: str = "",
                  result: int = 8, cut: int | None = None) -> None:
    """One command on the administration virtqueue, waited for: the header
    and ``data`` device-readable (only its first ``cut`` bytes when given),
    the status header and ``result`` bytes of room device-writable."""
    index = admin_index(e)
    q = next((x for x in e.queues if x.index == index), None)
    if q is None:
        raise Skipped("the administration virtqueue was not set up (vector lacks admin_setup)")
    head = struct.pack("<HH12xQ", opcode, group, member)
    assert len(head) == ADMIN_CMD_HEADER
    readable = head + bytes.fromhex(data)
    e.request(q, "admin", [readable[:cut] if cut is not None else readable],
              ADMIN_RESULT_HEADER + result)


@action("admin_use", listed=TEXT.one_of("queried", "base"))
def admin_use(e: Engine, listed: str) -> None:
    """LIST_USE for the self group: queried, every opcode the last LIST_QUERY
    result set; base, the two list commands alone."""
    if listed == "queried":
        query = [r for r in admin_replies(e) if r.request[:2] == struct.pack("<H", LIST_QUERY)]
        if not query or query[-1].used_len is None:
            raise Skipped("admin_use queried needs a LIST_QUERY answered before it")
        opcodes = list_result(query[-1]) or {LIST_QUERY, LIST_USE}
    else:
        opcodes = {LIST_QUERY, LIST_USE}
    words = [0] * (max(opcodes) // 64 + 1)
    for op in opcodes:
        words[op // 64] |= 1 << (op % 64)
    admin_command(e, LIST_USE, data=struct.pack(f"<{len(words)}Q", *words).hex(), result=0)


@expectation("admin_status", status=TEXT.one_of(*ADMIN_STATUS, "not_OK"),
             qualifier=TEXT.one_of(*ADMIN_QUALIFIER).with_default(None))
def expect_admin_status(e: Engine, status: str, qualifier: str | None = None) -> None:
    """The last command's status (not_OK: anything but OK) and, when given, its qualifier."""
    r = last_admin(e)
    if (r.used_len or 0) < 4:
        raise Failed(f"the device wrote {r.used_len} byte(s) of the status header",
                     "status and status_qualifier written (at least 4 bytes used)")
    got, qual = status_of(r)
    shown = f"status {STATUS_NAMES.get(got, hex(got))}, qualifier {QUALIFIER_NAMES.get(qual, hex(qual))}"
    if status == "not_OK":
        if got == ADMIN_STATUS["OK"]:
            raise Failed(shown, "a status other than OK")
    elif got != ADMIN_STATUS[status]:
        raise Failed(shown, f"status {status}")
    if qualifier is not None and qual != ADMIN_QUALIFIER[qualifier]:
        raise Failed(shown, f"qualifier {qualifier}")


@expectation("admin_list", what=TEXT.one_of("list_commands", "kept", "capability_commands"))
def expect_admin_list(e: Engine, what: str) -> None:
    """list_commands: the last LIST_QUERY result sets opcodes 0 and 1;
    kept: it sets every opcode the first LIST_QUERY of the test set (the
    supported list never shrinks); capability_commands: it sets all three
    capability commands or none of them."""
    queries = [r for r in admin_replies(e)
               if r.request[:2] == struct.pack("<H", LIST_QUERY) and r.used_len is not None
               and status_of(r)[0] == ADMIN_STATUS["OK"]]
    if not queries:
        raise Skipped("no LIST_QUERY completed with status OK before the expectation")
    last = list_result(queries[-1])
    if what == "list_commands":
        if not {LIST_QUERY, LIST_USE} <= last:
            raise Failed(f"LIST_QUERY sets opcodes {sorted(last)}", "opcodes 0 and 1 set")
        return
    if what == "capability_commands":
        caps = {ADMIN_OPCODES[n] for n in ("CAP_ID_LIST_QUERY", "DEVICE_CAP_GET", "DRIVER_CAP_SET")}
        if last & caps and not caps <= last:
            raise Failed(f"LIST_QUERY sets opcodes {sorted(last)}",
                         f"all of the capability commands {sorted(caps)} or none")
        return
    first = list_result(queries[0])
    if not first <= last:
        raise Failed(f"opcodes {sorted(first - last)} reported supported earlier and not now",
                     "every opcode reported once still reported")


@expectation("admin_header", what=TEXT.one_of("written"))
def expect_admin_header(e: Engine, what: str) -> None:
    """The device wrote the whole 8-byte status header of every administration
    command (status, qualifier, and the reserved bytes as zero)."""
    got = admin_replies(e)
    if not got:
        raise Skipped("no administration command was sent before the expectation")
    for r in got:
        if r.used_len is None:
            raise Wedged("an administration command was never used")
        if r.used_len < ADMIN_RESULT_HEADER:
            raise Failed(f"used length {r.used_len} for a command with "
                         f"{len(r.data)} writable bytes", "the 8-byte status header written")
        if r.data[4:ADMIN_RESULT_HEADER] != bytes(4):
            raise Failed(f"reserved bytes {r.data[4:8].hex()} after the status",
                         "reserved bytes set to zero")
