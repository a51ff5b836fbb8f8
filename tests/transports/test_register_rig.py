"""The PCI and MMIO driver transports against the reference devices behind
in-process register models (no QEMU): the same transport code that drives
QEMU, with every register rule observable."""
from __future__ import annotations

import os

import pytest

from device_ref.devices.blk import BlkDevice, BlkOptions, MemoryStorage
from device_ref.devices.rng import RngDevice
from device_ref.driver.blk import BlkDriver
from device_ref.driver.core import ALL, DriverOptions
from device_ref.driver.errors import RequestTimeout
from device_ref.driver.rng import RngDriver
from device_ref.transport import TransportError
from device_ref import virtio_constants as R
from device_ref.transports.device_side import TransportFaults, register_rig
from device_ref.transports.pci import MSI_DATA

SPLIT_ONLY = ALL & ~(1 << 34)


def blk_rig(kind, faults=None):
    return register_rig(BlkDevice(MemoryStorage(1 << 20), BlkOptions()), kind, faults)


@pytest.mark.parametrize("kind", ["pci", "mmio"])
@pytest.mark.parametrize("mask", [SPLIT_ONLY, ALL], ids=["split", "packed"])
def test_blk_round_trip_over_registers(kind, mask):
    rig = blk_rig(kind)
    drv = BlkDriver(rig.transport, DriverOptions(features=mask)).init()
    try:
        assert drv.layout == ("packed" if mask == ALL else "split")
        data = os.urandom(8192)
        drv.write(5, data, segments=3)
        assert drv.read(5, 8192, segments=2) == data
        assert drv.capacity == (1 << 20) // 512
    finally:
        drv.shutdown()
        rig.close()


def test_pci_probe_reads_the_capability_list():
    rig = blk_rig("pci")
    t = rig.transport
    try:
        assert [c.name for c in t.layout.caps] == ["common", "isr", "device", "notify", "pci-cfg",
                                                   "cfg_type 7", "common", "device", "vendor"]
        assert t.common_cap.at == 0x40 and t.device_cap.bar == 4   # the usable ones
        assert t.notify_cap.notify_multiplier == 4
        assert t.msix_vectors == 2 and t.device_id() == 2
    finally:
        rig.close()


def test_msix_message_lands_in_guest_ram_and_masking_holds_it():
    rig = register_rig(RngDevice(seed=3), "pci")
    t = rig.transport
    drv = RngDriver(t, DriverOptions()).init()
    try:
        slot = t.mailbox + 8 * t.queue_vector(0)
        req = drv.submit_read(16)
        assert int.from_bytes(t.memory.read(slot, 4), "little") == MSI_DATA | t.queue_vector(0)
        assert t.take_interrupts().queues == {0: 1}
        assert t.memory.read(slot, 4) == bytes(4)          # the poll cleared it
        drv.wait(req)
        # mask the queue's entry: the next completion writes nothing
        entry = t.msix_table + 16 * t.queue_vector(0)
        rig.space.write(entry + 12, 4, R.MSIX_ENTRY_MASKED)
        drv.submit_read(16)
        assert t.memory.read(slot, 4) == bytes(4)
    finally:
        drv.shutdown()
        rig.close()


@pytest.mark.parametrize("kind", ["pci", "mmio"])
def test_feature_select_above_one_reads_zero_and_alias_fault_repeats_bits(kind):
    for alias in (False, True):
        rig = blk_rig(kind, TransportFaults(feature_select_alias=alias))
        t = rig.transport
        try:
            sel, reg = (("device_feature_select", "device_feature") if kind == "pci"
                        else ("device_features_sel", "device_features"))
            write = t.common_write if kind == "pci" else t.reg_write
            read = t.common_read if kind == "pci" else t.reg_read
            write(sel, 1)
            high = read(reg)
            write(sel, 2)
            assert read(reg) == (high if alias else 0)
        finally:
            rig.close()


def test_pci_configuration_access_window_reaches_the_common_configuration():
    rig = blk_rig("pci")
    t = rig.transport
    try:
        t.write_status(1)
        common = t.common_cap
        assert t.window_read(common.bar, common.offset + 0x14, 1) == 1     # device_status
        t.window_write(common.bar, common.offset + 0x14, 1, 3)
        assert t.read_status() == 3
    finally:
        rig.close()


def test_out_of_range_queue_select_shows_size_zero():
    rig = blk_rig("pci")
    t = rig.transport
    try:
        t.common_write("queue_select", 7)
        assert t.common_read("queue_size") == 0
        assert t.queue_max_size(0) == 256
    finally:
        rig.close()


def test_config_generation_moves_on_a_config_change():
    dev = BlkDevice(MemoryStorage(1 << 20), BlkOptions())
    rig = register_rig(dev, "mmio")
    drv = BlkDriver(rig.transport, DriverOptions()).init()
    try:
        before = rig.transport.config_generation()
        dev.update_config(0, (4096).to_bytes(8, "little"))
        assert rig.transport.config_generation() != before
        assert rig.transport.wait_interrupts(0.1).config == 1
    finally:
        drv.shutdown()
        rig.close()


def test_a_device_that_ignores_queue_enable_never_serves():
    rig = blk_rig("pci", TransportFaults(ignore_queue_enable=True))
    drv = BlkDriver(rig.transport, DriverOptions(timeout=0.2)).init()
    try:
        with pytest.raises(RequestTimeout):
            drv.read(0, 512)
    finally:
        drv.shutdown()
        rig.close()


def test_unknown_register_kind_is_an_error():
    with pytest.raises(TransportError, match="not one of"):
        blk_rig("ccw")
