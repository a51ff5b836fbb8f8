"""The looping reference devices (net, console): what is sent before any
receive buffer exists waits and comes out once buffers arrive; a reset
forgets it."""
from __future__ import annotations

from device_ref.devices.console import ConsoleDevice
from device_ref.devices.net import NetDevice
from device_ref.driver.console import ConsoleDriver
from device_ref.driver.net import NetDriver
from device_ref.transport_inproc import InProcTransport

FRAME = b"\xff" * 6 + bytes.fromhex("02000000000a") + b"\x88\xb5" + bytes(range(200))


def test_frames_sent_before_receive_buffers_wait_for_them():
    dev = NetDevice()
    drv = NetDriver(InProcTransport(dev, ram_size=1 << 20)).init()
    drv.wait(drv.submit_frame(FRAME))
    drv.wait(drv.submit_frame(FRAME[:60]))
    assert len(dev.backlog) == 2
    first, second = drv.submit_rx(), drv.submit_rx()
    assert drv.frame_of(drv.wait(first)) == FRAME
    assert drv.frame_of(drv.wait(second)) == FRAME[:60]
    assert not dev.backlog and dev.frames_delivered == 2


def test_a_reset_forgets_what_waits():
    dev = NetDevice()
    drv = NetDriver(InProcTransport(dev, ram_size=1 << 20)).init()
    drv.wait(drv.submit_frame(FRAME))
    drv.init()                       # resets the device
    assert not dev.backlog and not dev.held


def test_console_bytes_spread_over_small_buffers_in_order():
    dev = ConsoleDevice()
    drv = ConsoleDriver(InProcTransport(dev, ram_size=1 << 20)).init()
    drv.wait(drv.submit_write(b"hello, console\r\n"))
    parts = [drv.received(drv.wait(drv.submit_rx(5))) for _ in range(4)]
    assert b"".join(parts) == b"hello, console\r\n"
    assert [len(p) for p in parts] == [5, 5, 5, 1]
