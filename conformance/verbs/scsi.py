"""The SCSI host device: SCSI commands on the first request queue, and
what their responses say (virtio response code, SAM status, sense, data)."""
from __future__ import annotations

import random
import struct

from device_ref.transport import TransportError
from device_ref.virtio_constants import (SAM_STATUS, SCSI_CDB_DEFAULT, SCSI_CONFIG,
                                         SCSI_INQUIRY, SCSI_READ_10, SCSI_READ_CAPACITY_10,
                                         SCSI_REQ_HEAD, SCSI_RESP_HEAD, SCSI_RESPONSES,
                                         SCSI_SENSE_DEFAULT, SCSI_SENSE_UNIT_ATTENTION,
                                         SCSI_WRITE_10)

from conformance.engine.core import Engine, Reply
from conformance.engine.registry import INT, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped

INQUIRY_LEN = 36
CAPACITY_LEN = 8
COMMANDS = ("inquiry", "read_capacity", "write", "read")
RESPONSE_NAMES = {v: k for k, v in SCSI_RESPONSES.items()}
STATUS_NAMES = {v: k for k, v in SAM_STATUS.items()}


def config_field(e: Engine, name: str, default: int) -> int:
    off, size = SCSI_CONFIG[name]
    try:
        value = int.from_bytes(e.config(off, size), "little")
    except TransportError:
        return default
    return value or default


def lun_bytes(target: int, lun: int) -> bytes:
    """The single-level LUN structure: 1, target, then the LUN in flat space."""
    return bytes([1, target, 0x40 | (lun >> 8), lun & 0xFF, 0, 0, 0, 0])


def cdb_for(command: str, lba: int, blocks: int) -> tuple[bytes, int]:
    """The CDB and how many data-in bytes the command returns (512-byte blocks)."""
    if command == "inquiry":
        return bytes([SCSI_INQUIRY, 0, 0, 0, INQUIRY_LEN, 0]), INQUIRY_LEN
    if command == "read_capacity":
        return bytes([SCSI_READ_CAPACITY_10]) + bytes(9), CAPACITY_LEN
    op = SCSI_READ_10 if command == "read" else SCSI_WRITE_10
    cdb = struct.pack(">BBIBHB", op, 0, lba, 0, blocks, 0)
    return cdb, blocks * 512 if command == "read" else 0


def sense_key(sense: bytes) -> int | None:
    if len(sense) < 3:
        return None
    if sense[0] & 0x7F in (0x70, 0x71):
        return sense[2] & 0x0F
    if sense[0] & 0x7F in (0x72, 0x73):
        return sense[1] & 0x0F
    return None


def send(e: Engine, command: str, target: int, lba: int, blocks: int, seed: int) -> Reply:
    cdb_size = config_field(e, "cdb_size", SCSI_CDB_DEFAULT)
    sense_size = config_field(e, "sense_size", SCSI_SENSE_DEFAULT)
    cdb, datain = cdb_for(command, lba, blocks)
    if len(cdb) > cdb_size:
        raise Skipped(f"the device takes CDBs of {cdb_size} bytes, this one has {len(cdb)}")
    dataout = random.Random(seed).randbytes(blocks * 512) if command == "write" else b""
    head = lun_bytes(target, 0) + struct.pack("<QBBB", next(e.tokens), 0, 0, 0)
    assert len(head) == SCSI_REQ_HEAD
    # header and data in descriptors of their own (default framing)
    reply = e.request(e.named_queue("requestq1"), command,
                      [head + cdb.ljust(cdb_size, b"\0"), dataout],
                      [SCSI_RESP_HEAD + sense_size, datain])
    sense_len, residual, _qual, status, response = struct.unpack_from("<IIHBB", reply.data)
    reply.extra.update(response=response, status=status, residual=residual,
                       sense=reply.data[SCSI_RESP_HEAD:SCSI_RESP_HEAD + min(sense_len, sense_size)],
                       datain=reply.data[SCSI_RESP_HEAD + sense_size:], dataout=dataout,
                       lba=lba, blocks=blocks)
    return reply


@action("scsi_command", command=TEXT.one_of(*COMMANDS), target=INT.range(0, 255).with_default(0),
        lba=INT.range(0, (1 << 32) - 1).with_default(0), blocks=INT.range(0, 256).with_default(1),
        seed=INT.with_default(0))
def scsi_command(e: Engine, command: str, target: int, lba: int, blocks: int, seed: int) -> None:
    """One command to LUN 0 of ``target`` on requestq1; a unit attention (the
    device reporting its reset) is answered by sending the command once more."""
    e.need_type("scsi", "SCSI command")
    reply = send(e, command, target, lba, blocks, seed)
    x = reply.extra
    if x["response"] == 0 and x["status"] == SAM_STATUS["CHECK_CONDITION"] and \
            sense_key(x["sense"]) == SCSI_SENSE_UNIT_ATTENTION:
        e.remarks.append(f"{command}: unit attention first, sent again")
        send(e, command, target, lba, blocks, seed)


def last(e: Engine) -> Reply:
    done = [r for r in e.replies if "response" in r.extra]
    if not done:
        raise Failed("no SCSI command was answered", "a response")
    return done[-1]


@expectation("scsi_response", response=TEXT.one_of(*SCSI_RESPONSES))
def expect_scsi_response(e: Engine, response: str) -> None:
    r = last(e)
    got = r.extra["response"]
    if got != SCSI_RESPONSES[response]:
        raise Failed(f"{r.what}: response {RESPONSE_NAMES.get(got, got)}", f"response {response}")


@expectation("scsi_status", status=TEXT.one_of(*SAM_STATUS))
def expect_scsi_status(e: Engine, status: str) -> None:
    r = last(e)
    x = r.extra
    if x["response"] != SCSI_RESPONSES["OK"]:
        raise Failed(f"{r.what}: response {RESPONSE_NAMES.get(x['response'], x['response'])}",
                     f"response OK with status {status}")
    if x["status"] != SAM_STATUS[status]:
        raise Failed(f"{r.what}: status {STATUS_NAMES.get(x['status'], hex(x['status']))} "
                     f"(sense key {sense_key(x['sense'])})", f"status {status}")


@expectation("scsi_codes", what=TEXT.one_of("valid"))
def expect_scsi_codes(e: Engine, what: str) -> None:
    """Every response byte is one the specification defines, and every status
    byte of a response OK is a SAM status code."""
    answered = [r for r in e.replies if "response" in r.extra]
    if not answered:
        raise Failed("no SCSI command was answered", "responses to judge")
    for r in answered:
        x = r.extra
        if x["response"] not in RESPONSE_NAMES:
            raise Failed(f"{r.what}: response byte {x['response']}",
                         "one of VIRTIO_SCSI_S_OK .. VIRTIO_SCSI_S_FAILURE (0..9)")
        if x["response"] == 0 and x["status"] not in STATUS_NAMES:
            raise Failed(f"{r.what}: status byte {x['status']:#04x}", "a SAM status code")


@expectation("scsi_data", what=TEXT.one_of("inquiry", "capacity", "matches"))
def expect_scsi_data(e: Engine, what: str) -> None:
    """inquiry: standard INQUIRY data (a connected LUN, printable vendor and
    product); capacity: a last block address and a block length of at least
    512 that is a power of 2; matches: the last read returned what the last
    write to the same blocks sent."""
    r = last(e)
    data = r.extra["datain"]
    if what == "inquiry":
        if r.what != "inquiry":
            raise Skipped("the last command was no INQUIRY")
        text = data[8:32]
        if data[0] >> 5 != 0 or not all(0x20 <= c < 0x7F for c in text):
            raise Failed(f"INQUIRY data {data[:36].hex()}",
                         "peripheral qualifier 0 and printable vendor and product")
        return
    if what == "capacity":
        if r.what != "read_capacity":
            raise Skipped("the last command was no READ CAPACITY")
        last_lba, length = struct.unpack_from(">II", data)
        if last_lba == 0 or length < 512 or length & (length - 1):
            raise Failed(f"last block {last_lba}, block length {length}",
                         "a disk of more than one block of a power-of-2 length")
        return
    writes = [w for w in e.replies if w.what == "write" and w.extra.get("response") == 0
              and w.extra.get("lba") == r.extra["lba"]]
    if r.what != "read" or not writes:
        raise Skipped("no read of blocks written earlier")
    sent = writes[-1].extra["dataout"]
    if data[:len(sent)] != sent:
        off = next(i for i in range(len(sent)) if data[i] != sent[i])
        raise Failed(f"read back differs from byte {off}", "the bytes written")
