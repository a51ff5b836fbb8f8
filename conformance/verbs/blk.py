"""The block device: requests, what they return, configuration fields."""
from __future__ import annotations

import random
import struct

from device_ref.transport import ConfigUnavailable, TransportError
from device_ref.virtio_constants import BLK_ID_LEN as ID_LEN
from device_ref.virtio_constants import BLK_SECTOR as SECTOR
from device_ref.virtio_constants import (BLK_STATUS, BLK_T_FLUSH, BLK_T_GET_ID,
                                         BLK_T_GET_LIFETIME, BLK_T_IN, BLK_T_OUT,
                                         BLK_T_WRITE_ZEROES)

from conformance import names
from conformance.engine.core import Engine, Pending, compare
from conformance.engine.registry import COMPARATOR, INT, MAX_SECTORS, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped, Wedged


def blk_submit(e: Engine, rtype: int, sector: int, data_out: bytes = b"", data_in: int = 0,
               count: int = 0, marker: int | None = None, wait: bool = True) -> int:
    e.need_type("blk", "block request")
    q = e.request_queue()
    parts: list[tuple[str, object]] = [("r", struct.pack("<IIQ", rtype, 0, sector))]
    if data_out:
        parts.append(("r", data_out))
    if data_in:
        parts.append(("w", data_in))
    parts.append(("w", 1))
    pending = Pending("blk", q.index, [], sector=sector if marker is None else marker,
                      count=count)
    return e.submit(q, parts, pending, wait)


def capacity(e: Engine) -> int:
    try:
        return int.from_bytes(e.config(0, 8), "little")
    except TransportError as exc:
        raise Wedged(f"reading the capacity failed: {exc}") from None


def remember_sectors(e: Engine, sector: int, count: int) -> None:
    """Read what the sectors hold first (the part inside the disk)."""
    cap = capacity(e)
    inside = max(0, min(count, cap - sector))
    if inside <= 0:
        e.blk_before = (sector, b"")
        return
    blk_submit(e, BLK_T_IN, sector, data_in=inside * SECTOR, count=inside)
    e.blk_before = (sector, e.last_read[1] if e.last_read else b"")


def last_blk_done(e: Engine, what: str) -> None:
    p = e.last_blk
    if p is None:
        raise Failed("no block request was made", what)
    if not p.done:
        e.collect()
    if not p.done:
        raise Failed("the last block request was never used (no completion)", what)


@action("blk_write", sector=INT, count=INT.range(1, MAX_SECTORS), seed=INT)
def blk_write(e: Engine, sector: int, count: int, seed: int) -> None:
    data = random.Random(seed).randbytes(count * SECTOR)
    blk_submit(e, BLK_T_OUT, sector, data_out=data)
    if e.last_blk_status == 0:
        for i in range(count):
            e.written[sector + i] = data[i * SECTOR:(i + 1) * SECTOR]


@action("blk_read", sector=INT, count=INT.range(1, MAX_SECTORS))
def blk_read(e: Engine, sector: int, count: int) -> None:
    e.last_read = None
    blk_submit(e, BLK_T_IN, sector, data_in=count * SECTOR, count=count)


@action("blk_flush")
def blk_flush(e: Engine) -> None:
    blk_submit(e, BLK_T_FLUSH, 0)


@action("blk_get_id")
def blk_get_id(e: Engine) -> None:
    e.last_id = None
    blk_submit(e, BLK_T_GET_ID, 0, data_in=ID_LEN, marker=-1)


@action("blk_request", type=INT.range(0, 0xFFFFFFFF))
def blk_request(e: Engine, type: int) -> None:  # noqa: A002
    blk_submit(e, type, 0)


@action("blk_past_end", op=TEXT.one_of("read", "write"),
        where=TEXT.one_of("at_end", "straddling"))
def blk_past_end(e: Engine, op: str, where: str) -> None:
    cap = capacity(e)
    sector, count = (cap, 1) if where == "at_end" else (cap - 1, 2)
    if op == "write":
        remember_sectors(e, sector, count)
        data = random.Random(99).randbytes(count * SECTOR)
        blk_submit(e, BLK_T_OUT, sector, data_out=data)
    else:
        blk_submit(e, BLK_T_IN, sector, data_in=count * SECTOR, count=count)


@action("blk_segment_request", type=INT.range(0, 0xFFFFFFFF), seg_flags=INT.range(0, 0xFFFFFFFF),
        sector=INT.with_default(0), num_sectors=INT.range(0, 0xFFFFFFFF).with_default(1))
def blk_segment_request(e: Engine, type: int, seg_flags: int, sector: int = 0,  # noqa: A002
                        num_sectors: int = 1) -> None:
    seg = struct.pack("<QII", sector, num_sectors, seg_flags)
    blk_submit(e, type, 0, data_out=seg)
    if e.last_blk_status == 0:
        # DISCARD, SECURE_ERASE: contents undefined; WRITE_ZEROES: zeroes
        # (remembered for a range small enough to read back).
        for s in [s for s in e.written if sector <= s < sector + num_sectors]:
            del e.written[s]
        if type == BLK_T_WRITE_ZEROES and num_sectors <= MAX_SECTORS:
            for s in range(sector, sector + num_sectors):
                e.written[s] = bytes(SECTOR)


@action("blk_get_lifetime")
def blk_get_lifetime(e: Engine) -> None:
    e.last_lifetime = None
    blk_submit(e, BLK_T_GET_LIFETIME, 0, data_in=6, marker=-2)


@expectation("blk_status", status=TEXT.one_of(*BLK_STATUS))
def expect_blk_status(e: Engine, status: str) -> None:
    want = BLK_STATUS[status]
    last_blk_done(e, f"status {status}")
    if e.last_blk_status is None:
        raise Failed("no block request completed", f"status {status}")
    if e.last_blk_status != want:
        seen = {v: k for k, v in BLK_STATUS.items()}.get(e.last_blk_status,
                                                              str(e.last_blk_status))
        raise Failed(f"status byte {seen} ({e.last_blk_status})",
                     f"status {status} ({want})")


@expectation("data", what=TEXT)
def expect_data(e: Engine, what: str) -> None:
    last_blk_done(e, "data read back")
    if e.last_read is None:
        raise Failed("no data was read back", "data read back")
    sector, data = e.last_read
    compared = 0
    for i in range(len(data) // SECTOR):
        w = e.written.get(sector + i)
        if w is None:
            continue
        compared += 1
        got = data[i * SECTOR:(i + 1) * SECTOR]
        if got != w:
            off = next(k for k in range(SECTOR) if got[k] != w[k])
            raise Failed(f"sector {sector + i} differs from byte {off} "
                         f"(read {got[off]:#04x}, wrote {w[off]:#04x})",
                         "the data written earlier")
    if not compared:
        raise Skipped("nothing was written to the sectors read back, so nothing to compare")


@expectation("config", field=TEXT, op=COMPARATOR, value=INT)
def expect_config(e: Engine, field: str, op: str, value: int) -> None:
    table = names.CONFIG_FIELDS.get(e.device_type, {})
    short = field.split(".", 1)[1] if field.startswith("virtio_") and "." in field else field
    if short not in table:
        raise Skipped(f"configuration field {field} is unknown to this runner for a "
                      f"{e.device_type} device")
    off, size = table[short]
    try:
        got = int.from_bytes(e.config(off, size), "little")
    except ConfigUnavailable as exc:
        raise Skipped(f"this transport gives no access to the configuration ({exc})") from None
    except TransportError as exc:
        raise Wedged(f"reading configuration failed: {exc}") from None
    if not compare(op, got, value):
        raise Failed(f"{field} = {got}", f"{field} {op} {value}")


@expectation("id_string", what=TEXT)
def expect_id_string(e: Engine, what: str) -> None:
    if e.last_id is None:
        raise Failed("no GET_ID reply", "an id string")
    got = e.last_id
    text = got.split(b"\0", 1)[0]
    if e.s.expected_id is not None:
        want = e.s.expected_id[:ID_LEN]
        if text != want.rstrip(b"\0") or (len(want) < ID_LEN and b"\0" not in got):
            raise Failed(f"id {got!r}", f"{want!r}, NUL-terminated if shorter than 20 bytes")
    elif not all(0x20 <= c < 0x7F for c in text):
        raise Failed(f"id {got!r} is not printable text", "a printable id string")


@expectation("blk_lifetime", what=TEXT)
def expect_blk_lifetime(e: Engine, what: str) -> None:
    e.collect()
    data = e.last_lifetime
    if data is None or len(data) < 6:
        raise Failed("no GET_LIFETIME reply", "a 6-byte lifetime reply")
    pre_eol, est_a, est_b = struct.unpack("<HHH", data[:6])
    if pre_eol > 3 or est_a > 11 or est_b > 11:
        raise Failed(f"pre_eol_info {pre_eol}, estimates {est_a} and {est_b}",
                     "pre_eol_info <= 3 and estimates <= 11")


@expectation("blk_data", what=TEXT)
def expect_blk_data(e: Engine, what: str) -> None:
    if e.blk_before is None:
        raise Skipped("no block write was preceded by a read of its sectors")
    sector, before = e.blk_before
    if not before:
        return   # nothing of the write landed inside the disk to compare
    count = len(before) // SECTOR
    blk_submit(e, BLK_T_IN, sector, data_in=count * SECTOR, count=count)
    now = e.last_read[1] if e.last_read else b""
    if now != before:
        raise Failed(f"sectors {sector}..{sector + count - 1} changed", "sectors unchanged")
