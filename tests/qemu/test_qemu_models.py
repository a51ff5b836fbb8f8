"""The reference driver against QEMU's own virtio device models, over the real
PCI (q35) and MMIO (microvm, version 2 and legacy) transports.

One QEMU per device configuration, shared by the tests of that
configuration (a module-scoped parametrised fixture), always stopped.
"""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from device_ref.cli import main as device_ref_main
from device_ref.device.features import F_RING_PACKED, has
from device_ref.driver.blk import BlkDriver
from device_ref.driver.core import DriverOptions
from device_ref.driver.rng import RngDriver
from device_ref.qemu.machine import MachineSpec, QemuMachine
from device_ref.transport import TransportError
from device_ref import virtio_constants as R
from device_ref.transports.layout_facts import bar_size, pci_facts

pytestmark = pytest.mark.qemu_model

CONFIGS = {
    "pci-blk": MachineSpec("q35", "virtio-blk-pci"),
    "pci-rng": MachineSpec("q35", "virtio-rng-pci"),
    "mmio-blk": MachineSpec("microvm", "virtio-blk-device", mmio_modern=True),
    "mmio-rng": MachineSpec("microvm", "virtio-rng-device", mmio_modern=True),
    "mmio-legacy-blk": MachineSpec("microvm", "virtio-blk-device"),
    "mmio-legacy-rng": MachineSpec("microvm", "virtio-rng-device"),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def machine(request):
    with QemuMachine(CONFIGS[request.param]) as m:
        yield m


def _driver(m: QemuMachine, **kw):
    cls = BlkDriver if "blk" in m.spec.device else RngDriver
    return cls(m.transport(**kw), DriverOptions(timeout=5.0)).init()


def test_probe_finds_the_device_and_its_structures(machine):
    t = machine.transport()
    assert t.device_id() == (2 if "blk" in machine.spec.device else 4)
    assert t.num_queues() >= 1 and t.queue_max_size(0) >= 8
    if t.kind == "pci":
        names = {c.name for c in t.layout.caps}
        assert {"common", "notify", "isr", "device"} <= names
        assert t.notify_cap.notify_multiplier == 4     # QEMU: one 4-byte slot per queue
        assert t.msix_vectors >= 2
    else:
        assert t.version == (2 if machine.spec.mmio_modern else 1)
    t.close()


def test_driver_round_trip(machine):
    drv = _driver(machine)
    try:
        if isinstance(drv, BlkDriver):
            assert drv.capacity == (4 << 20) // 512
            for sector, n in ((0, 512), (7, 4096), (drv.capacity - 8, 4096)):
                data = os.urandom(n)
                drv.write(sector, data, segments=2)
                assert drv.read(sector, n, segments=3) == data
            drv.flush()
        else:
            blob = b"".join(drv.read(64) for _ in range(8))
            assert 8 <= len(blob) <= 512 and len(set(blob)) > 16
    finally:
        drv.shutdown()
        drv.t.close()


def test_completion_raises_an_interrupt_the_host_observes(machine):
    drv = _driver(machine)
    try:
        req = drv.submit_read(0, 512) if isinstance(drv, BlkDriver) else drv.submit_read(32)
        irq = drv.t.wait_interrupts(5.0)
        assert irq.queues.get(0, 0) >= 1
        drv.wait(req)
        assert req.used_len and req.used_len > 0
    finally:
        drv.shutdown()
        drv.t.close()


def test_reset_returns_status_zero_and_the_driver_starts_again(machine):
    drv = _driver(machine)
    try:
        assert drv.t.read_status() & 4        # DRIVER_OK
        drv.t.reset()
        assert drv.t.read_status() == 0
        drv.init()
        assert drv.read(0, 512) if isinstance(drv, BlkDriver) else drv.read(16)
    finally:
        drv.shutdown()
        drv.t.close()


def test_pci_without_msix_polls_the_isr():
    with QemuMachine(CONFIGS["pci-rng"]) as m:
        t = m.transport(msix=False)
        assert t.msix_vectors == 0
        drv = RngDriver(t, DriverOptions(timeout=5.0)).init()
        req = drv.submit_read(32)
        assert drv.t.wait_interrupts(5.0).queues.get(0, 0) >= 1
        assert len(drv.wait(req).data) == 32
        drv.shutdown()
        t.close()


def test_packed_ring_over_mmio_negotiates_and_completes():
    """The MMIO transport never writes feature select 2 or 3 without feature
    bits there: QEMU 7.2 would take it as select 1 and drop bits 32-63."""
    spec = MachineSpec("microvm", "virtio-rng-device", (("packed", "on"),), mmio_modern=True)
    with QemuMachine(spec) as m:
        drv = RngDriver(m.transport(), DriverOptions(timeout=5.0)).init()
        assert has(drv.negotiated, F_RING_PACKED)
        req = drv.wait(drv.submit_read(32))
        assert req.done and req.error is None
        drv.shutdown()
        drv.t.close()


def test_qemu_is_stopped_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with QemuMachine(CONFIGS["mmio-legacy-rng"]) as m:
            proc = m.proc
            raise RuntimeError("test failure inside the block")
    assert proc.poll() is not None
    with pytest.raises(KeyboardInterrupt):
        with QemuMachine(CONFIGS["mmio-legacy-rng"]) as m:
            proc = m.proc
            raise KeyboardInterrupt
    assert proc.poll() is not None


def test_a_wedged_qemu_gives_a_transport_error_and_is_killed():
    with QemuMachine(CONFIGS["mmio-legacy-rng"]) as m:
        proc = m.proc
        t = m.transport()
        m.remote.timeout = 0.5
        os.kill(proc.pid, signal.SIGSTOP)     # QEMU stops answering
        with pytest.raises(TransportError, match="did not answer"):
            t.read_status()
    assert proc.poll() is not None            # SIGTERM stays pending; SIGKILL ends it


def test_mmio_feature_select_above_one_in_qemu_7_2():
    """Evidence for docs/conformance.md: QEMU 7.2's virtio-mmio answers
    DeviceFeaturesSel 2 with bits 32-63 again instead of bits 64-95 (none)."""
    with QemuMachine(CONFIGS["mmio-rng"]) as m:
        t = m.transport()
        t.reg_write("device_features_sel", 1)
        high = t.reg_read("device_features")
        t.reg_write("device_features_sel", 2)
        third = t.reg_read("device_features")
        assert high & 1                      # VERSION_1 (bit 32)
        version = subprocess.run([m.spec.binary(), "--version"], capture_output=True,
                                 text=True).stdout
        if "version 7.2" in version:
            assert third == high
        t.close()


def test_selftest_against_qemu_models(capsys):
    assert device_ref_main(["selftest", "--qemu", "pci", "--requests", "4"]) == 0
    out = capsys.readouterr().out
    assert "QEMU pci:virtio-blk-pci" in out and "QEMU pci:virtio-rng-pci" in out
    assert "selftest passed: 2 combinations" in out
    assert device_ref_main(["selftest", "--qemu", "mmio-legacy", "--device", "blk",
                            "--requests", "4"]) == 0
    assert "virtio-mmio version 1" in capsys.readouterr().out


def test_selftest_qemu_setup_errors_are_one_line(capsys, tmp_path):
    assert device_ref_main(["selftest", "--qemu", "pci", "--qemu-binary",
                            str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "Traceback" not in err
    assert device_ref_main(["selftest", "--qemu", "pci", "--swiotlb", "on"]) == 2
    assert device_ref_main(["selftest", "--qemu", "mmio-legacy", "--layout", "packed"]) == 2
    assert device_ref_main(["selftest", "--qemu", "pci", "--device", "rng",
                            "--qemu-arg=-no-such-option"]) == 2
    assert "QEMU exited" in capsys.readouterr().err


def test_pci_layout_facts_and_configuration_window_on_qemu():
    """Every layout rule holds for QEMU's virtio-rng-pci, and the PCI
    configuration access capability reaches the common configuration."""
    with QemuMachine(CONFIGS["pci-rng"]) as m:
        t = m.transport()
        facts = pci_facts(t, t.read_device_features())
        assert all(f.holds is not False for f in facts.values()), facts
        assert facts["pci-cfg-present"].holds and facts["msix-table-size"].holds
        t.write_status(1)
        common = t.common_cap
        assert t.window_read(common.bar, common.offset + 0x14, 1) == 1
        t.window_write(common.bar, common.offset + 0x14, 1, 3)
        assert t.read_status() == 3
        assert bar_size(t.cfg, t.common_cap.bar) >= 0x4000
        assert m.transport().layout.bars == t.layout.bars      # sizing restored the BAR
        t.close()


@pytest.mark.parametrize("config", ["pci-blk", "mmio-blk"])
def test_disk_resize_over_qmp_is_a_config_change(config):
    """A QMP block_resize reaches the driver as a configuration interrupt and
    a new config_generation, with the new capacity in the configuration."""
    with QemuMachine(CONFIGS[config]) as m:
        drv = _driver(m)
        t = drv.t
        before = t.config_generation()
        m.resize_disk(8 << 20)
        assert t.wait_interrupts(5.0).config >= 1
        assert int.from_bytes(t.read_config(0, 8), "little") == (8 << 20) // 512
        assert t.config_generation() != before
        drv.shutdown()
        t.close()
