"""Linux's virtio-blk, virtio-rng and virtio-net drivers, judged by checking
back-ends.

One guest boot (QEMU, TCG) with ten devices, each served by ``device-ref
serve --check-driver``: blk and rng, split and packed rings, indirect
descriptors and EVENT_IDX offered (and, for blk, switched off so Linux
builds direct chains), plus a blk device that offers VIRTIO_F_SWIOTLB, and
three virtio-net-pci devices whose network is the back-end (``-netdev
vhost-user``): split, packed, and split without VIRTIO_NET_F_MRG_RXBUF. The
guest writes and reads the disks (O_DIRECT), flushes them, reads their
serial (GET_ID), rebinds one blk driver (the rings stop and start again),
reads entropy, and sends small and large frames on each network interface,
which the back-end returns. Then every report must hold exactly the violations
docs/driver-check.md explains (the ``EXPLAINED`` table below is that page's
list): for Linux 6.1, only the SHOULD to accept VIRTIO_F_SWIOTLB, a bit it
does not know.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.linux_guest import qemu_guest as g
from tests.linux_guest.backends import CheckingBackends, GuestDevice as Case

pytestmark = [pytest.mark.linux_guest, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
F_INDIRECT_DESC, F_EVENT_IDX, F_VERSION_1, F_RING_PACKED = 28, 29, 32, 34
DISK_SIZE = 8 << 20
# Violations docs/driver-check.md explains as expected from Linux 6.1, by
# device: requirement id -> why (the page says it at length).
EXPLAINED: dict[str, dict[str, str]] = {
    "blk_swiotlb": {"swiotlb.rfb.drv.accept": "Linux 6.1 does not know bit 44, a proposal"},
}


CASES = [Case("blk_split", "blk", 4, False), Case("blk_packed", "blk", 5, True),
         Case("rng_split", "rng", 6, False), Case("rng_packed", "rng", 7, True),
         Case("blk_split_direct", "blk", 8, False, extras=False),
         Case("blk_packed_direct", "blk", 9, True, extras=False),
         Case("blk_swiotlb", "blk", 10, False, serve_args=("--swiotlb",)),
         Case("net_split", "net", 11, False), Case("net_packed", "net", 12, True),
         Case("net_split_nomrg", "net", 13, False, qemu_props=(("mrg_rxbuf", "off"),))]

# Guest side: on top of qemu_guest's helpers, a flush (fsync of the block
# device sends VIRTIO_BLK_T_FLUSH) and the serial (sysfs asks GET_ID).
EXTRA_SHELL = r"""
blk_flush_and_id() {
    tag=$1; slot=$2
    d=$(virtio_dir $slot) || { echo "@@ERROR $tag: no virtio device at slot $slot"; return 1; }
    name=$(ls $d/block 2>/dev/null)
    dd if=/dev/urandom of=/dev/$name bs=4096 seek=9 count=3 conv=fsync 2>/dev/null \
        || echo "@@ERROR $tag: write with fsync failed"
    echo "@@R $tag.serial $(cat /sys/block/$name/serial)"
}
"""


def guest_script() -> str:
    lines = [g.SHELL_LIB, EXTRA_SHELL]
    rng = 0
    for c in CASES:
        slot = f"{c.slot:02x}"
        if c.kind == "blk":
            lines.append(f"report_virtio {c.tag} {slot}")
            lines.append(f"blk_rw {c.tag} {slot} 16 0 300 1000 2032")
            lines.append(f"blk_flush_and_id {c.tag} {slot}")
            if c.packed:
                lines.append(f"blk_rebind {c.tag} {slot} 16 300")
        elif c.kind == "net":
            lines.append(f"net_loop {c.tag} {slot} {c.slot}")
        else:
            lines.append(f"rng_read {c.tag} {slot} virtio_rng.{rng} 512")
            rng += 1
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def checked(vectors_dir):
    with CheckingBackends("dc-") as backends:
        initrd = g.build_initramfs(guest_script(), backends.work / "initrd.cpio",
                                   drivers=("blk", "rng", "net"))
        for c in CASES:
            backends.start(c, DISK_SIZE, "--vectors", str(vectors_dir))
        backends.wait_listening()
        result = g.run_guest(initrd, backends.vhost_devices(), timeout=240)
        logs = backends.stop(timeout=15)
        for tag, p in backends.procs.items():
            assert p.returncode == 0, logs[tag]
        print(f"guest boot with checking back-ends took {result.seconds:.1f} s")
        reports = backends.reports()
        for tag, rep in reports.items():
            print(tag, [(c["layout"], c["accepted"], c["queues"], c["notes"])
                        for c in rep["connections"]])
        cli = {}
        for c in CASES:
            r = subprocess.run([sys.executable, "-m", "conformance.cli", "driver-report",
                                str(backends.report_path(c.tag)), "--vectors", str(vectors_dir)],
                               capture_output=True, text=True, timeout=60)
            cli[c.tag] = r
        keep = os.environ.get("CONFORMANCE_REPORT_DIR")
        if keep:   # the reports outlive the run (CI keeps that directory)
            where = Path(keep) / "linux-drivers"
            where.mkdir(parents=True, exist_ok=True)
            for c in CASES:
                shutil.copy(backends.report_path(c.tag), where / f"{c.tag}.json")
                (where / f"{c.tag}.txt").write_text(cli[c.tag].stdout)
        yield g.parse_report(result.output), reports, cli, logs


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.tag)
def test_linux_used_the_layout_and_features_under_check(checked, case):
    guest, reports, _, _ = checked
    f = g.feature_bits(guest[f"{case.tag}.features"])
    assert bool(f >> F_RING_PACKED & 1) == case.packed
    assert f >> F_VERSION_1 & 1
    assert bool(f >> F_INDIRECT_DESC & 1) == bool(f >> F_EVENT_IDX & 1) == case.extras
    conns = reports[case.tag]["connections"]
    assert conns, "the checking back-end saw no connection"
    # What the back-end saw negotiated is what the guest says it negotiated
    # (bits 0..63; the guest shows transport bits QEMU keeps to itself too).
    seen = int(conns[-1]["accepted"], 16)
    assert seen & ((1 << 50) - 1) & ~(1 << 30) == f & seen, (hex(seen), hex(f))
    assert all(c["layout"] == ("packed" if case.packed else "split") for c in conns)
    chains = sum(q["chains"] for c in conns for q in c["queues"].values())
    assert chains >= {"blk": 40, "net": 12}.get(case.kind, 1), "too little traffic to judge"
    compared = sum(q["compared"] for c in conns for q in c["queues"].values())
    assert compared == chains, "every chain is compared again before it is used"
    indirect = sum(q["indirect_chains"] for c in conns for q in c["queues"].values())
    longest = max(q["longest_chain"] for c in conns for q in c["queues"].values())
    if case.kind == "blk":
        # 64 KiB O_DIRECT requests have many segments: in indirect tables
        # when INDIRECT_DESC is negotiated, else as direct chains; both checked.
        assert (indirect > 0) == case.extras
        assert longest >= 3


def test_guest_did_the_work(checked):
    guest, _, _, _ = checked
    for c in CASES:
        if c.kind == "blk":
            for off in (0, 300, 1000, 2032):
                assert guest[f"{c.tag}.rw.{off}"].split()[0] == "same"
            assert guest[f"{c.tag}.serial"] == "device-ref-blk"
        elif c.kind == "net":
            # every frame sent came back: small and large pings, and IPv6's own
            tx, rx = guest[f"{c.tag}.tx"].split(), guest[f"{c.tag}.rx"].split()
            assert int(tx[0]) >= 6 and rx == tx, (tx, rx)
            assert guest[f"{c.tag}.rx_errors"] == "0 0"
        else:
            assert int(guest[f"{c.tag}.bytes"]) == 512


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.tag)
def test_linux_violations_are_exactly_the_explained_ones(checked, case):
    _, reports, cli, _ = checked
    found = {}
    for conn in reports[case.tag]["connections"]:
        for v in conn["violations"]:
            for rid in v["requirements"] or [v["property"]]:
                found.setdefault(rid, v["detail"])
    assert set(found) == set(EXPLAINED.get(case.tag, {})), found
    # The CLI agrees: exit 1 exactly when something was found.
    assert cli[case.tag].returncode == (1 if found else 0), cli[case.tag].stdout
    assert "connection 1" in cli[case.tag].stdout


def test_explained_violations_are_in_the_docs():
    text = (ROOT / "docs" / "driver-check.md").read_text()
    for tag, explained in EXPLAINED.items():
        for rid in explained:
            assert rid in text and tag in text
