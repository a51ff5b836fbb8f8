"""The guest harness's own rules, without booting: the initramfs format and
the strict reading of the guest's report."""
from __future__ import annotations

import subprocess

import pytest

from . import qemu_guest as g


def test_report_is_read_between_markers_and_kernel_noise_is_ignored():
    out = "\n".join(["[    1.0] virtio_blk virtio0: [vda] 32768 512-byte blocks",
                     "@@R early ignored", "@@BEGIN", "@@R a.x 1", "[    2.0] random: crng init",
                     "@@R b.y two words", "@@END", "@@R late ignored"])
    assert g.parse_report(out) == {"a.x": "1", "b.y": "two words"}


@pytest.mark.parametrize("out, why", [
    ("@@R a 1\n@@END", "incomplete"),
    ("@@BEGIN\n@@R a 1", "incomplete"),
    ("@@BEGIN\n@@R a 1\n@@R a 2\n@@END", "reported twice"),
    ("@@BEGIN\n@@R a\n@@END", "malformed"),
    ("@@BEGIN\n@@ERROR insmod virtio_blk\n@@END", "guest reported errors"),
])
def test_report_problems_fail_loudly(out, why):
    with pytest.raises(g.ReportError, match=why):
        g.parse_report(out)


def test_feature_string_is_bit_zero_first():
    assert g.feature_bits("0100000000000000000000000000000000100") == (1 << 1) | (1 << 34)
    with pytest.raises(g.ReportError):
        g.feature_bits("01x")


def test_initramfs_is_a_newc_archive_cpio_can_list(tmp_path):
    try:
        g.find_kernel()
    except g.GuestSetupError as exc:
        pytest.fail(str(exc))
    path = g.build_initramfs("echo hi\n", tmp_path / "i.cpio", drivers=("rng",))
    listing = subprocess.run(["cpio", "-it", "--quiet"], input=path.read_bytes(),
                             capture_output=True, check=True).stdout.decode().split()
    for name in ("init", "checks.sh", "bin/busybox", "modules/virtio_ring.ko",
                 "modules/virtio_pci.ko", "modules/virtio-rng.ko"):
        assert name in listing
    assert "modules/virtio_blk.ko" not in listing
