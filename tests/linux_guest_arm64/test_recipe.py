"""The arm64 guest's recipe without building or booting anything: the
kernel fragment and its check, the build key, the device-tree edit."""
from __future__ import annotations

import shutil

import fdt
import pytest

from . import guest as g
from . import kernel as k


def test_fragment_parses_both_forms_and_rejects_junk():
    opts = k.fragment_options("# comment\nCONFIG_A=y\n\n# CONFIG_B is not set\nCONFIG_C=\"x\"\n")
    assert opts == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": '"x"'}
    with pytest.raises(k.KernelBuildError, match="not a CONFIG_X=value line"):
        k.fragment_options("VIRTIO=y\n")


def test_a_dropped_option_is_named():
    wanted = {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": "y"}
    final = "CONFIG_A=y\n# CONFIG_C is not set\n"          # B absent counts as n
    assert k.missing_options(wanted, final) == ["CONFIG_C=y (got n)"]


def test_committed_fragment_asks_for_the_pool_and_virtio_mmio():
    opts = k.fragment_options(k.FRAGMENT.read_text())
    for name in ("CONFIG_DMA_RESTRICTED_POOL", "CONFIG_OF_RESERVED_MEM", "CONFIG_VIRTIO_MMIO",
                 "CONFIG_VIRTIO_BLK", "CONFIG_SERIAL_AMBA_PL011_CONSOLE", "CONFIG_DEVTMPFS"):
        assert opts[name] == "y", name


@pytest.mark.skipif(not k.SOURCE_TARBALL.is_file() or shutil.which(k.CROSS_COMPILE + "gcc") is None,
                    reason="linux-source-6.1 or gcc-aarch64-linux-gnu not installed")
def test_key_follows_the_fragment():
    text = k.FRAGMENT.read_text()
    assert k.build_key(text) == k.build_key(text)
    assert k.build_key(text) != k.build_key(text + "CONFIG_PCI=y\n")


def test_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VIRTIO_SPECC_CACHE", str(tmp_path))
    assert k.cache_root() == tmp_path
    monkeypatch.delenv("VIRTIO_SPECC_CACHE")
    assert k.cache_root() == k.HERE.parent.parent / ".cache"


@pytest.fixture(scope="module")
def virt_dtb(tmp_path_factory) -> bytes:
    return g.dump_dtb(tmp_path_factory.mktemp("dtb"))


def _phandles(tree: fdt.FDT) -> list[int]:
    return [p.value for _, _, props in tree.walk() for p in props if p.name == "phandle"]


def test_pool_node_and_reference(virt_dtb):
    tree = fdt.parse_dtb(g.add_pool(virt_dtb))
    pool = tree.get_node(f"/reserved-memory/restricted-dma@{g.POOL_BASE:x}")
    assert pool.get_property("compatible").value == "restricted-dma-pool"
    assert list(pool.get_property("reg").data) == [0, g.POOL_BASE, 0, g.POOL_SIZE]
    assert pool.get_property("no-map") is None and pool.get_property("reusable") is None
    handle = pool.get_property("phandle").value
    assert _phandles(tree).count(handle) == 1
    assert tree.get_node(g.TRANSPORT).get_property("memory-region").value == handle


def test_negative_control_tree_has_the_pool_but_no_reference(virt_dtb):
    tree = fdt.parse_dtb(g.add_pool(virt_dtb, reference=False))
    assert tree.exist_node(f"/reserved-memory/restricted-dma@{g.POOL_BASE:x}")
    assert tree.get_node(g.TRANSPORT).get_property("memory-region") is None


def test_unknown_transport_is_a_setup_error(virt_dtb):
    with pytest.raises(g.GuestSetupError, match="no /virtio_mmio@dead"):
        g.add_pool(virt_dtb, transport="/virtio_mmio@dead")
