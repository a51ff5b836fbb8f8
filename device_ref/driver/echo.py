"""The driver for the loopback device (device_ref.devices.echo)."""
from __future__ import annotations

from device_ref.driver.core import VirtioDriver

ECHO_ID = 0xFFF0


class EchoDriver(VirtioDriver):
    DEVICE_ID = ECHO_ID
