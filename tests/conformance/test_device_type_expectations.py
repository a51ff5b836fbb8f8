"""The expectations of the balloon, SCSI, GPU, input and console verbs judge
what a device returned (the replies the verbs logged): a conforming reply
holds, each kind of broken one fails with its evidence. Only QEMU's models
answer these requests for real (tests/qemu); here the replies are written
by hand into an engine over an in-process session."""
from __future__ import annotations

import struct

import pytest

from conformance.engine.core import Engine, Reply
from conformance.outcomes import Failed, Skipped
from conformance.select_adapter import parse_adapter
from conformance.verbs import console_port, gpu, input, scsi
from device_ref.virtio_constants import (CONSOLE_EVENTS, GPU_CMD, GPU_FLAG_FENCE, GPU_RESP,
                                         SAM_STATUS, SCSI_RESPONSES)


@pytest.fixture
def engine():
    adapter = parse_adapter("ref:swiotlb=off")
    session = adapter.open("blk")
    try:
        yield Engine.start(session, "split", step_timeout=0.05)
    finally:
        session.close()
        adapter.close()
        adapter.cleanup()


def as_type(e: Engine, device_type: str, replies: list[Reply]) -> Engine:
    e.device_type = device_type
    e.replies = replies
    return e


def scsi_reply(what: str, response: int, status: int, datain: bytes = b"",
               sense: bytes = b"") -> Reply:
    return Reply(what, b"", 108 + len(datain), b"", {
        "response": response, "status": status, "sense": sense, "datain": datain,
        "residual": 0, "dataout": b"", "lba": 0, "blocks": 1})


def test_scsi_codes_hold_for_defined_values_and_fail_otherwise(engine):
    good = [scsi_reply("inquiry", SCSI_RESPONSES["OK"], SAM_STATUS["GOOD"]),
            scsi_reply("read", SCSI_RESPONSES["BAD_TARGET"], 0xEE)]   # status unused then
    scsi.expect_scsi_codes(as_type(engine, "scsi", good), "valid")
    with pytest.raises(Failed, match="response byte 12"):
        scsi.expect_scsi_codes(as_type(engine, "scsi", [scsi_reply("read", 12, 0)]), "valid")
    with pytest.raises(Failed, match="status byte 0x03"):
        scsi.expect_scsi_codes(as_type(engine, "scsi", [scsi_reply("read", 0, 3)]), "valid")


def test_scsi_status_names_the_response_when_it_is_not_ok(engine):
    e = as_type(engine, "scsi", [scsi_reply("inquiry", SCSI_RESPONSES["OVERRUN"], 0)])
    with pytest.raises(Failed, match="response OVERRUN"):
        scsi.expect_scsi_status(e, "GOOD")
    e = as_type(engine, "scsi", [scsi_reply("read", 0, SAM_STATUS["CHECK_CONDITION"],
                                            sense=bytes([0x70, 0, 0x05]))])
    with pytest.raises(Failed, match="CHECK_CONDITION .sense key 5"):
        scsi.expect_scsi_status(e, "GOOD")


def test_scsi_data_judges_inquiry_and_capacity(engine):
    inquiry = bytes([0, 0, 5, 2, 31, 0, 0, 0]) + b"QEMU    QEMU HARDDISK   " + b"2.5+"
    scsi.expect_scsi_data(as_type(engine, "scsi", [scsi_reply("inquiry", 0, 0, inquiry)]),
                          "inquiry")
    with pytest.raises(Failed, match="INQUIRY data"):
        scsi.expect_scsi_data(as_type(engine, "scsi", [scsi_reply(
            "inquiry", 0, 0, bytes([0x60]) + inquiry[1:])]), "inquiry")
    scsi.expect_scsi_data(as_type(engine, "scsi", [scsi_reply(
        "read_capacity", 0, 0, struct.pack(">II", 8191, 512))]), "capacity")
    with pytest.raises(Failed, match="block length 500"):
        scsi.expect_scsi_data(as_type(engine, "scsi", [scsi_reply(
            "read_capacity", 0, 0, struct.pack(">II", 8191, 500))]), "capacity")


def gpu_reply(cmd: str, rtype: str, fenced: bool = False, flags: int = 0, fence_id: int = 0,
              sent: int = 0) -> Reply:
    return Reply(cmd, struct.pack("<I", GPU_CMD[cmd]), 24, b"",
                 {"type": GPU_RESP[rtype], "flags": flags, "fence_id": fence_id,
                  "fenced": fenced, "sent_fence": sent})


def test_gpu_responses_need_the_ok_type_each_command_calls_for(engine):
    ok = [gpu_reply("GET_DISPLAY_INFO", "OK_DISPLAY_INFO"),
          gpu_reply("RESOURCE_CREATE_2D", "OK_NODATA")]
    gpu.expect_gpu_responses(as_type(engine, "gpu", ok), "ok")
    wrong = [gpu_reply("GET_DISPLAY_INFO", "OK_NODATA")]
    with pytest.raises(Failed, match="response OK_NODATA"):
        gpu.expect_gpu_responses(as_type(engine, "gpu", wrong), "ok")
    err = [gpu_reply("TRANSFER_TO_HOST_2D", "ERR_INVALID_RESOURCE_ID")]
    with pytest.raises(Failed, match="ERR_INVALID_RESOURCE_ID"):
        gpu.expect_gpu_responses(as_type(engine, "gpu", err), "ok")


def test_gpu_fence_must_be_echoed_with_its_id(engine):
    echoed = [gpu_reply("RESOURCE_FLUSH", "OK_NODATA", True, GPU_FLAG_FENCE, 7, 7)]
    gpu.expect_gpu_fence(as_type(engine, "gpu", echoed), "echoed")
    for flags, fence_id in ((0, 7), (GPU_FLAG_FENCE, 8)):
        bad = [gpu_reply("RESOURCE_FLUSH", "OK_NODATA", True, flags, fence_id, 7)]
        with pytest.raises(Failed, match=f"flags {flags:#x}, fence_id {fence_id}"):
            gpu.expect_gpu_fence(as_type(engine, "gpu", bad), "echoed")
    with pytest.raises(Skipped):
        gpu.expect_gpu_fence(as_type(engine, "gpu", [gpu_reply("RESOURCE_FLUSH", "OK_NODATA")]),
                             "echoed")


def config_reply(data: bytes, size: int) -> Reply:
    return Reply("config", b"\x01\x00", None, data[:size], {"select": 1, "subsel": 0,
                                                            "size": size})


def test_input_string_counts_no_nul_terminator(engine):
    input.expect_input_config(as_type(engine, "input", [config_reply(b"Keyboard", 8)]),
                              "string")
    with pytest.raises(Failed, match="size 9"):
        input.expect_input_config(as_type(engine, "input", [config_reply(b"Keyboard\0", 9)]),
                                  "string")
    with pytest.raises(Failed, match="size 8"):
        input.expect_input_config(as_type(engine, "input", [config_reply(b"Keyboard", 8)]),
                                  "empty")


def control_reply(port: int, event: str) -> Reply:
    data = struct.pack("<IHH", port, CONSOLE_EVENTS[event], 0)
    return Reply("control-receiveq", b"", 8, data)


def test_console_ports_refuse_a_port_added_twice_or_out_of_range(engine, monkeypatch):
    # the in-process device is a blk one: max_nr_ports (offset 4) is given here
    monkeypatch.setattr(Engine, "config", lambda self, off, size: (2).to_bytes(size, "little"))
    e = as_type(engine, "console", [control_reply(0, "DEVICE_ADD"), control_reply(1, "DEVICE_ADD")])
    console_port.expect_console_ports(e, "added_once_in_range")
    e = as_type(engine, "console", [control_reply(0, "DEVICE_ADD"), control_reply(0, "DEVICE_ADD")])
    with pytest.raises(Failed, match=r"ports \[0, 0\]"):
        console_port.expect_console_ports(e, "added_once_in_range")
    e = as_type(engine, "console", [control_reply(2, "DEVICE_ADD")])
    with pytest.raises(Failed, match="max_nr_ports 2"):
        console_port.expect_console_ports(e, "added_once_in_range")
    e = as_type(engine, "console", [control_reply(0, "PORT_OPEN")])
    with pytest.raises(Failed, match="PORT_OPEN.0."):
        console_port.expect_console_ports(e, "added_once_in_range")
