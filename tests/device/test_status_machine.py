"""Device status transitions, pinned to the spec's initialisation order.

Bit values (spec, "Device Status Field"): ACKNOWLEDGE 1, DRIVER 2,
DRIVER_OK 4, FEATURES_OK 8, DEVICE_NEEDS_RESET 64, FAILED 128.
"""
from device_ref.device.status import step


def test_initialisation_sequence_accumulates_bits():
    s = 0
    for written, expected in ((1, 1), (3, 3), (11, 11), (15, 15)):
        t = step(s, written, True)
        assert t.violation is None
        assert t.status == expected
        s = t.status


def test_features_ok_does_not_stick_when_features_refused():
    t = step(3, 11, False)
    assert t.status == 3 and not t.features_ok


def test_write_of_zero_is_reset():
    t = step(15, 0, True)
    assert t.reset and t.status == 0


def test_clearing_a_bit_is_a_violation_and_ignored():
    t = step(15, 11, True)
    assert t.status == 15 and t.violation


def test_driver_ok_before_features_ok_is_refused():
    t = step(3, 7, True)
    assert t.status == 3 and t.violation and not t.driver_ok


def test_driver_before_acknowledge_is_refused():
    assert step(0, 2, True).status == 0


def test_failed_sticks_from_any_state():
    assert step(3, 3 | 128, True).status == 131


def test_needs_reset_stays_set_when_driver_writes_back_status():
    # The device owns bit 64; a driver writing its own bits back keeps it.
    t = step(15 | 64, 15 | 64, True)
    assert t.status == 79 and t.violation is None


def test_one_write_may_carry_several_steps():
    t = step(0, 1 | 2 | 8, True)
    assert t.status == 11 and t.features_ok
