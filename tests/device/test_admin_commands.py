"""The owner device's group administration commands (device_ref/device/admin.py)."""
from __future__ import annotations

import struct

from device_ref.device.admin import (AdminCommands, bitmap_opcodes, opcode_bitmap, reply)
from device_ref.virtio_constants import ADMIN_QUALIFIER, ADMIN_STATUS

EINVAL, OK = ADMIN_STATUS["EINVAL"], ADMIN_STATUS["OK"]


def cmd(opcode: int, group: int = 0, data: bytes = b"") -> bytes:
    return struct.pack("<HH12xQ", opcode, group, 0) + data


def test_list_query_reports_the_self_group_commands():
    out = AdminCommands().execute(cmd(0))
    assert (out.status, out.qualifier) == (OK, 0)
    assert bitmap_opcodes(out.result) == {0, 1, 7, 8, 9}


def test_unknown_group_then_opcode_qualifiers():
    c = AdminCommands()
    assert c.execute(cmd(0, group=1)).qualifier == ADMIN_QUALIFIER["INVALID_GROUP"]
    out = c.execute(cmd(0x7FFF))
    assert (out.status, out.qualifier) == (EINVAL, ADMIN_QUALIFIER["INVALID_OPCODE"])


def test_commands_need_list_use_and_reset_forgets_it():
    c = AdminCommands()
    assert c.execute(cmd(7)).status == EINVAL
    assert c.execute(cmd(1, data=opcode_bitmap({0, 1, 7}))).status == OK
    assert c.execute(cmd(7)).status == OK
    c.reset()
    assert c.execute(cmd(7)).status == EINVAL


def test_list_use_with_an_unsupported_opcode_changes_nothing():
    c = AdminCommands()
    c.execute(cmd(1, data=opcode_bitmap({0, 1, 7})))
    out = c.execute(cmd(1, data=opcode_bitmap({0, 1, 7, 63})))
    assert (out.status, out.qualifier) == (EINVAL, ADMIN_QUALIFIER["INVALID_FIELD"])
    assert c.execute(cmd(7)).status == OK


def test_short_request_reads_as_zero_and_reply_fits_the_room():
    out = AdminCommands().execute(b"\0\0")           # LIST_QUERY, group 0, cut short
    assert out.status == OK
    assert reply(out, 4) == struct.pack("<HH", OK, 0)
    assert len(reply(out, 64)) == 16
