"""The transport rules a driver is judged on: each catches a log that breaks
it, and the reference driver's own accesses break none."""
from __future__ import annotations

import pytest

from device_ref.devices.blk import BlkDevice, BlkOptions, MemoryStorage
from device_ref.driver.blk import BlkDriver
from device_ref.driver.core import DriverOptions
from device_ref import virtio_constants as R
from device_ref.transports.device_side import (MSIX_AT, PCI_CFG_AT, VENDOR_DATA_AT, Access,
                                               register_rig)
from device_ref.transports.driver_rules import RULES, DeviceFacts, judge, not_exercised

C = {name: off for name, (off, _w) in R.COMMON.items()}
M = R.MMIO
FACTS = DeviceFacts(msix_vectors=2, queue_max={0: 256})


def w(block, off, value, width=4):
    return Access("w", block, off, width, value)


def r(block, off, value=0, width=4):
    return Access("r", block, off, width, value)


BAD_LOGS = {
    "pci-read-only-fields": [w("common", C["num_queues"], 3, 2)],
    "pci-queue-size": [w("common", C["queue_size"], 3, 2)],
    "pci-configure-before-enable": [w("common", C["queue_select"], 0, 2),
                                    w("common", C["queue_enable"], 1, 2)],
    "pci-no-zero-enable": [w("common", C["queue_enable"], 0, 2)],
    "pci-wait-reset": [w("common", C["device_status"], 0, 1),
                       w("common", C["device_status"], 1, 1)],
    "pci-config-width": [r("device", 2, width=4)],
    "pci-msix-in-table": [w("common", C["config_msix_vector"], 5, 2)],
    "pci-msix-verify": [w("common", C["config_msix_vector"], 0, 2),
                        w("common", C["queue_select"], 0, 2)],
    "pci-capabilities-untouched": [w("cfg", 0x40 + 8, 0)],
    "pci-notify-value": [w("notify", 4, 0, 2)],
    "pci-isr-with-msix": [w("cfg", MSIX_AT + 2, 0x8000, 2), r("isr", 0, width=1)],
    "pci-cfg-window": [w("cfg", PCI_CFG_AT + 4, 4, 1), w("cfg", PCI_CFG_AT + 8, 0x2),
                       w("cfg", PCI_CFG_AT + 12, 4), r("cfg", PCI_CFG_AT + 16)],
    "pci-ignores-unusable": [r("unusable", 0)],
    "pci-vendor-data": [r("cfg", VENDOR_DATA_AT + 4), w("cfg", VENDOR_DATA_AT + 6, 1, 2)],
    "mmio-directions": [r("mmio", M["queue_notify"])],
    "mmio-access-width": [r("mmio", M["status"], width=1)],
    "mmio-init-order": [r("mmio", M["device_id"]), r("mmio", M["magic"]),
                        r("mmio", M["version"])],
    "mmio-select-before": [r("mmio", M["device_features"])],
    "mmio-queue-size-max": [w("mmio", M["queue_sel"], 0), w("mmio", M["queue_num"], 512)],
    "mmio-ready-queue-fixed": [w("mmio", M["queue_sel"], 0), w("mmio", M["queue_ready"], 1),
                               w("mmio", M["queue_desc_low"], 0x1000)],
    "mmio-interrupt-ack": [w("mmio", M["interrupt_ack"], 4)],
    "mmio-no-shm": [w("mmio", M["shm_sel"], 0)],
    "mmio-init-sequence": [w("mmio", M["status"], 0), w("mmio", M["status"], 1),
                           w("mmio", M["status"], 5)],
    "queue-reset-wait": [w("common", C["queue_reset"], 1, 2), w("common", C["queue_enable"], 1, 2)],
    "status-no-clear": [w("common", C["device_status"], 3, 1), w("common", C["device_status"], 1, 1)],
    "reset-after-failed": [w("mmio", M["status"], 3), w("mmio", M["status"], 0x83),
                           w("mmio", M["status"], 1)],
    "features-fixed-after-ok": [w("mmio", M["status"], 0xB), w("mmio", M["driver_features"], 1)],
    "config-unwritten-before-features-ok": [w("common", C["device_status"], 3, 1),
                                            w("device", 0, 1, 1)],
    "notify-after-driver-ok": [w("common", C["device_status"], 0xB, 1), w("notify", 0, 0, 2)],
    "suspend-when-live": [w("mmio", M["status"], 0xB), w("mmio", M["status"], 0x1B)],
    "quiet-while-suspended": [w("mmio", M["status"], 0xF), w("mmio", M["status"], 0x1F),
                              w("mmio", M["queue_notify"], 0)],
    "suspend-verified": [w("common", C["device_status"], 0xF, 1),
                         w("common", C["device_status"], 0x1F, 1),
                         w("common", C["device_status"], 0x1F, 1)],
    "wait-for-resume": [w("common", C["device_status"], 0xF, 1),
                        w("common", C["device_status"], 0x1F, 1),
                        r("common", C["device_status"], 0x1B, 1),
                        w("common", C["device_status"], 0x1F, 1), w("notify", 0, 0, 2)],
}

# A driver that suspends and resumes a device by the book, over PCI.
SUSPEND_CYCLE = [w("common", C["device_status"], 0xF, 1), w("notify", 0, 0, 2),
                 w("common", C["device_status"], 0x1F, 1),
                 r("common", C["device_status"], 0x1B, 1),
                 w("common", C["device_status"], 0x1F, 1),
                 r("common", C["device_status"], 0xF, 1), w("notify", 0, 0, 2)]


@pytest.mark.parametrize("rule", ["suspend-when-live", "quiet-while-suspended",
                                  "suspend-verified", "wait-for-resume"])
def test_suspend_rules_accept_a_suspend_and_resume_by_the_book(rule):
    assert judge(rule, SUSPEND_CYCLE, FACTS) == [], rule


# The same rules read correctly on the other transport, and a reset reopens what they close.
GOOD_LOGS = {
    "status-no-clear": [w("mmio", M["status"], 3), w("mmio", M["status"], 0), w("mmio", M["status"], 1)],
    "reset-after-failed": [w("common", C["device_status"], 0x83, 1), w("common", C["device_status"], 0, 1),
                           w("common", C["device_status"], 1, 1)],
    "features-fixed-after-ok": [w("common", C["device_status"], 0xB, 1),
                                w("common", C["device_status"], 0, 1),
                                w("common", C["driver_feature"], 1)],
    "config-unwritten-before-features-ok": [w("mmio", M["status"], 0xB),
                                            w("mmio", R.MMIO_CONFIG, 1)],
    "notify-after-driver-ok": [w("mmio", M["status"], 0xF), w("mmio", M["queue_notify"], 0)],
}
BAD_OTHER_TRANSPORT = {
    "status-no-clear": [w("mmio", M["status"], 3), w("mmio", M["status"], 2)],
    "features-fixed-after-ok": [w("common", C["device_status"], 0xB, 1),
                                w("common", C["driver_feature"], 1)],
    "config-unwritten-before-features-ok": [w("mmio", M["status"], 3),
                                            w("mmio", R.MMIO_CONFIG + 4, 1)],
    "notify-after-driver-ok": [w("mmio", M["status"], 0xB), w("mmio", M["queue_notify"], 0)],
}


@pytest.mark.parametrize("rule", sorted(GOOD_LOGS))
def test_general_rules_accept_a_conforming_log(rule):
    assert judge(rule, GOOD_LOGS[rule], FACTS) == [], rule


@pytest.mark.parametrize("rule", sorted(BAD_OTHER_TRANSPORT))
def test_general_rules_read_both_transports(rule):
    assert judge(rule, BAD_OTHER_TRANSPORT[rule], FACTS), rule


def test_every_rule_has_a_breaking_log():
    assert set(BAD_LOGS) == set(RULES)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rule_catches_its_violation(rule):
    assert judge(rule, BAD_LOGS[rule], FACTS), rule


@pytest.mark.parametrize("kind", ["pci", "mmio"])
def test_reference_driver_breaks_no_rule(kind):
    rig = register_rig(BlkDevice(MemoryStorage(1 << 20), BlkOptions()), kind, log=True)
    drv = BlkDriver(rig.transport, DriverOptions()).init()
    try:
        drv.write(0, b"x" * 4096, segments=2)
        assert drv.read(0, 4096) == b"x" * 4096
        drv.init()                        # a reset and a second initialisation
        drv.flush()
        log = rig.space.log
        facts = DeviceFacts(msix_vectors=getattr(rig.model, "vectors", 0),
                            queue_max={0: rig.model.max_size(0)})
        for rule, (where, _fn) in RULES.items():
            if where in (kind, "any"):
                assert judge(rule, log, facts) == [], rule
        assert any(a.block in ("common", "mmio") for a in log)
    finally:
        drv.shutdown()
        rig.close()


def test_rules_about_a_step_never_taken_have_nothing_to_judge():
    plain = [w("mmio", M["status"], 0xF), w("mmio", M["queue_notify"], 0)]
    assert "never set SUSPEND" in not_exercised("quiet-while-suspended", plain)
    assert "never set FAILED" in not_exercised("reset-after-failed", plain)
    assert not_exercised("reset-after-failed", BAD_LOGS["reset-after-failed"]) is None
    assert not_exercised("quiet-while-suspended", SUSPEND_CYCLE) is None
    assert not_exercised("status-no-clear", plain) is None

