"""The checking network and console devices: a driver's frames, bytes and
receive buffers are judged, and a driver that keeps the rules (the
reference one) is not."""
from __future__ import annotations

import struct

from device_ref.checking.device import CheckingConsoleDevice, CheckingNetDevice
from device_ref.driver.console import ConsoleDriver
from device_ref.device.features import F_VERSION_1, bit
from device_ref.driver.net import RX, TX, NetDriver
from device_ref.transport_inproc import InProcTransport
from device_ref.virtio_constants import NET_F_MRG_RXBUF

FRAME = b"\xff" * 6 + bytes.fromhex("020000000009") + b"\x88\xb5" + bytes(100)


def _rig(offer: int = ~0):
    dev = CheckingNetDevice(offer=offer)
    drv = NetDriver(InProcTransport(dev, ram_size=1 << 20)).init()
    return dev, drv


def test_reference_driver_traffic_leaves_no_violation():
    dev, drv = _rig()
    for _ in range(4):
        rx = drv.submit_rx()
        drv.wait(drv.submit_frame(FRAME))
        assert drv.frame_of(drv.wait(rx)) == FRAME
    assert not dev.check_log.violations, [v.property for v in dev.check_log.violations]


def test_header_fields_a_driver_must_leave_zero_are_recorded():
    """num_buffers 0, flags 0 without CSUM, gso_type NONE without host segmentation."""
    dev, drv = _rig()
    hdr = bytearray(drv.header_size)
    hdr[0], hdr[1] = 0x80, 1
    struct.pack_into("<H", hdr, 10, 3)
    rx = drv.submit_rx()
    drv.wait(drv.submit(TX, [bytes(hdr) + FRAME], []))
    drv.wait(rx)
    for prop in ("tx_flags_zero", "tx_gso_none", "tx_num_buffers_zero"):
        got = dev.check_log.of(f"net_frames {prop}")
        assert got and got[0].evidence, prop


def test_small_receive_buffers_are_recorded_by_feature():
    """Without MRG_RXBUF a buffer should hold a full frame (SHOULD); with it,
    each must hold the header (MUST)."""
    dev, drv = _rig(offer=~bit(NET_F_MRG_RXBUF))
    assert drv.negotiated >> F_VERSION_1 & 1
    drv.submit(RX, [], [200])
    drv.submit_frame(FRAME)
    drv.poll()
    small = dev.check_log.of("net_frames rx_buffer_full_size")
    assert small and small[0].evidence["bytes"] == 200
    dev, drv = _rig()
    drv.submit(RX, [], [8])
    drv.submit(RX, [], [1000])
    drv.wait(drv.submit_frame(FRAME))
    assert dev.check_log.of("net_frames rx_buffer_holds_header")


def test_console_buffers_in_the_wrong_direction_are_recorded():
    """Port 0: receiveq buffers device-writable only, transmitq buffers
    device-readable only; the reference driver keeps both."""
    dev = CheckingConsoleDevice()
    drv = ConsoleDriver(InProcTransport(dev, ram_size=1 << 20)).init()
    rx = drv.submit_rx(64)
    drv.wait(drv.submit_write(b"hello\r\n"))
    assert drv.received(drv.wait(rx)) == b"hello\r\n"
    assert not dev.check_log.violations
    drv.submit(0, [b"in the wrong place"], [32])
    drv.wait(drv.submit(1, [b"out"], [8]))
    assert dev.check_log.of("console_queues tx_readable_only")
    assert dev.check_log.of("console_queues rx_writable_only")
