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


def _kernel(series: str) -> g.Kernel:
    try:
        return g.find_kernel(series)
    except g.GuestSetupError as exc:
        pytest.fail(str(exc))


@pytest.mark.parametrize("series", g.SERIES)
def test_kernel_choice_is_by_series_not_by_what_sorts_last(series):
    k = _kernel(series)
    assert k.release.startswith(series + ".") and k.image.name == f"vmlinuz-{k.release}"
    assert g.find_kernel(series) == k


def test_unknown_kernel_series_is_a_setup_error():
    with pytest.raises(g.GuestSetupError, match="unknown kernel series '5.10'"):
        g.find_kernel("5.10")


@pytest.mark.parametrize("series, base_modules", [
    ("6.1", ("virtio_ring", "virtio", "virtio_pci")),
    ("6.12", ()),                      # virtio, virtio_ring and virtio_pci are built in
])
def test_initramfs_is_a_newc_archive_cpio_can_list(tmp_path, series, base_modules):
    kernel = _kernel(series)
    path = g.build_initramfs("echo hi\n", tmp_path / "i.cpio", drivers=("rng",), kernel=kernel)
    listing = subprocess.run(["cpio", "-it", "--quiet"], input=path.read_bytes(),
                             capture_output=True, check=True).stdout.decode().split()
    modules = {n for n in listing if n.startswith("modules/")}
    assert {"init", "checks.sh", "bin/busybox"} <= set(listing)
    assert modules == {f"modules/{m}.ko" for m in base_modules + ("virtio-rng",)} | (
        {"modules/virtio_pci_legacy_dev.ko", "modules/virtio_pci_modern_dev.ko"}
        if series == "6.1" else set())
    # 6.12 ships .ko.xz: what goes in is the plain ELF object busybox insmod loads
    extracted = subprocess.run(["cpio", "-i", "--quiet", "--to-stdout", "modules/virtio-rng.ko"],
                               input=path.read_bytes(), capture_output=True, check=True).stdout
    assert extracted[:4] == b"\x7fELF"
