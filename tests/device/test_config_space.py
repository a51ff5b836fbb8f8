import pytest

from device_ref.device.config_space import ConfigSpace
from device_ref.transport import TransportError


def test_device_update_bumps_generation_and_wraps_at_8_bits():
    c = ConfigSpace(bytes(8))
    assert c.generation == 0
    c.device_update(0, b"\x01")
    assert c.generation == 1 and c.read(0, 2) == b"\x01\x00"
    for _ in range(255):
        c.device_update(0, b"\x02")
    assert c.generation == 0


def test_driver_may_write_only_writable_ranges():
    c = ConfigSpace(bytes(8), writable=((4, 1),))
    c.driver_write(4, b"\x01")
    assert c.read(4, 1) == b"\x01" and c.generation == 0
    with pytest.raises(TransportError):
        c.driver_write(0, b"\x01")


def test_access_outside_config_is_an_error():
    with pytest.raises(TransportError):
        ConfigSpace(bytes(8)).read(6, 4)
