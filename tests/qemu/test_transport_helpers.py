"""Pure pieces of the register transports and the QEMU launcher (no QEMU)."""
from __future__ import annotations

import pytest

from device_ref.qemu.machine import MachineSpec, QemuMachine, QemuSetupError
from device_ref.qemu.models import ModelError, family, model_args, parse_props
from device_ref.transports.bus import natural_pieces, read_block, write_block
from device_ref.transports.mmio import legacy_block
from device_ref.transports.pci import ecam_address, notification_value


class ByteBus:
    """A RegisterBus over a dict of bytes that records each access width."""

    def __init__(self) -> None:
        self.mem: dict[int, int] = {}
        self.widths: list[tuple[int, int]] = []

    def read(self, addr, width):
        self.widths.append((addr, width))
        return int.from_bytes(bytes(self.mem.get(addr + i, 0) for i in range(width)), "little")

    def write(self, addr, width, value):
        self.widths.append((addr, width))
        for i, b in enumerate(value.to_bytes(width, "little")):
            self.mem[addr + i] = b

    def let_run(self):
        pass


def test_natural_pieces_are_aligned_and_cover_the_range():
    assert natural_pieces(0, 8) == [(0, 4), (4, 4)]
    assert natural_pieces(1, 6) == [(1, 1), (2, 2), (4, 2), (6, 1)]
    assert natural_pieces(20, 4) == [(20, 4)]
    for off in range(8):
        for n in range(10):
            pieces = natural_pieces(off, n)
            assert sum(w for _o, w in pieces) == n
            assert all(o % w == 0 for o, w in pieces)


def test_block_access_round_trips_with_natural_widths():
    bus = ByteBus()
    write_block(bus, 0x1000, 2, b"abcdefg")
    assert read_block(bus, 0x1000, 2, 7) == b"abcdefg"
    assert (0x1004, 4) in bus.widths


def test_notification_value_layouts():
    assert notification_value(3, 0x1234) == 0x1234_0003
    # packed: 15-bit offset and the wrap counter in bit 31
    assert notification_value(1, 0x7FFF, wrap=1) == 0xFFFF_0001
    assert notification_value(1, 5, wrap=0) == 0x0005_0001


def test_legacy_block_puts_the_used_ring_on_the_next_page():
    avail, used, total = legacy_block(256)
    assert avail == 4096
    assert used == 8192          # 4096 + 6 + 512 rounds up to the next page
    assert total == 8192 + 6 + 8 * 256
    assert legacy_block(8)[1] == 4096


def test_ecam_address():
    assert ecam_address(0xB000_0000, 0, 4) == 0xB002_0000
    assert ecam_address(0xB000_0000, 1, 0, 2) == 0xB010_2000


def test_model_args_give_each_family_a_local_backend(tmp_path):
    blk = model_args("virtio-blk-pci", {}, tmp_path, {"addr": "4"})
    assert blk.device == "virtio-blk-pci,drive=disk0,addr=4,id=dut"
    assert blk.files["disk"].stat().st_size > 0
    rng = model_args("virtio-rng-device", {"max-bytes": "64"}, tmp_path)
    assert "rng-builtin,id=rng0" in rng.before
    net = model_args("virtio-net-pci", {}, tmp_path)
    dgram = next(a for a in net.before if a.startswith("dgram"))
    sock = str(net.files["net"])                                 # no host network: a Unix
    assert sock.startswith(str(tmp_path))                        # socket in the machine's
    assert f"local.path={sock}" in dgram and f"remote.path={sock}" in dgram   # dir, to itself
    assert "romfile=" in net.device                              # no iPXE boot attempt
    con = model_args("virtio-serial-pci", {}, tmp_path)
    assert con.after == ["-device", "virtconsole,chardev=con0,nr=0"]
    scsi = model_args("virtio-scsi-pci", {}, tmp_path)
    assert scsi.after == ["-device", "scsi-hd,drive=sdisk0,channel=0,scsi-id=0,lun=0"]
    assert family("virtio-blk-pci-non-transitional") == "blk"


def test_bad_model_names_and_props_are_refused(tmp_path):
    with pytest.raises(ModelError):
        model_args("virtio-blk-pci,drive=x", {}, tmp_path)
    with pytest.raises(ModelError, match="KEY=VALUE"):
        parse_props("packed")
    assert parse_props("packed=on,queue-size=64") == {"packed": "on", "queue-size": "64"}


def test_missing_qemu_binary_is_a_setup_error(tmp_path):
    spec = MachineSpec("q35", "virtio-rng-pci", qemu=str(tmp_path / "no-qemu"))
    with pytest.raises(QemuSetupError, match="not found"):
        with QemuMachine(spec):
            pass


def test_env_var_chooses_the_binary(monkeypatch):
    monkeypatch.setenv("CONFORMANCE_QEMU", "/opt/my/qemu")
    assert MachineSpec("q35", "virtio-rng-pci").binary() == "/opt/my/qemu"
    assert MachineSpec("q35", "virtio-rng-pci", qemu="/x").binary() == "/x"
