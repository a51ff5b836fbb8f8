"""Linux's own virtio drivers, in a real guest, drive our vhost-user back-ends.

One guest boot (QEMU, TCG) on Debian 12's kernel (6.1) carries ten devices,
each served by its own ``device-ref serve`` process: block and entropy
devices, with split and with packed rings, with indirect descriptors and
EVENT_IDX offered or switched off. A second boot on the newer 6.12 kernel
carries a subset (a 6.12 boot takes about three times as long under TCG),
so a newer driver judges the back-ends too. Linux is the independent judge:
it must find the devices, negotiate what we expect, and move data through
them correctly.
"""
from __future__ import annotations

import contextlib
import hashlib
import re

import pytest

from . import qemu_guest as g
from .backends import CheckingBackends, GuestDevice as Case

pytestmark = [pytest.mark.linux_guest, pytest.mark.slow]

F_INDIRECT_DESC, F_EVENT_IDX, F_VERSION_1, F_RING_PACKED, F_SWIOTLB = 28, 29, 32, 34, 44
BLOCK = 4096
BLOCKS_PER_WRITE = 16
OFFSETS = (0, 77, 1000, 3000)          # in 4 KiB blocks
DISK_SIZE = 16 << 20
RNG_BYTES = 256

CASES = [Case(f"{kind}_{'packed' if packed else 'split'}_{'full' if extras else 'plain'}",
              kind, slot, packed, extras)
         for slot, (kind, packed, extras) in enumerate(
             [(k, p, e) for k in ("blk", "rng") for p in (False, True) for e in (True, False)],
             start=4)]
# A device that offers VIRTIO_F_SWIOTLB (bit 44) without requiring it: Linux
# does not know the bit, leaves it unaccepted, and the device must work on.
CASES.append(Case("blk_swiotlb_offered", "blk", 12, False, True, ("--swiotlb",)))
# QEMU asks for packed rings, our back-end does not offer them: split it is.
CASES.append(Case("blk_packed_withheld", "blk", 13, True, True, ("--no-packed",)))


# Devices whose driver is unbound and bound again after the data test: QEMU
# stops the rings (GET_VRING_BASE) on the reset and starts them afresh.
REBIND = ("blk_split_full", "blk_packed_full")

# Which devices each kernel's boot carries: all of them on 6.1; on 6.12 both
# ring layouts, both drivers, a rebind and the SWIOTLB offer.
NEWER = ("blk_split_full", "blk_packed_full", "rng_split_full", "rng_packed_plain",
         "blk_swiotlb_offered")
KERNEL_CASES = {"6.1": CASES, "6.12": [c for c in CASES if c.tag in NEWER]}
assert len(KERNEL_CASES["6.12"]) == len(NEWER)
PARAMS = [pytest.param(k, c, id=f"{k}-{c.tag}") for k, cases in KERNEL_CASES.items() for c in cases]


def params(pred) -> list:
    return [p for p in PARAMS if pred(p.values[1])]


def guest_script(cases: list[Case]) -> str:
    lines = [g.SHELL_LIB]
    rng_seen = 0
    for c in cases:
        slot = f"{c.slot:02x}"
        if c.kind == "blk":
            lines.append(f"report_virtio {c.tag} {slot}")
            lines.append(f"blk_rw {c.tag} {slot} {BLOCKS_PER_WRITE} "
                         + " ".join(map(str, OFFSETS)))
            if c.tag in REBIND:
                lines.append(f"blk_rebind {c.tag} {slot} {BLOCKS_PER_WRITE} {OFFSETS[1]}")
        else:
            # virtio-rng numbers its hwrngs in probe order, which is slot order.
            lines.append(f"rng_read {c.tag} {slot} virtio_rng.{rng_seen} {RNG_BYTES}")
            rng_seen += 1
    return "\n".join(lines) + "\n"


class Boots:
    """One boot per kernel series, made on first use and kept for the module:
    (report, per-case server logs, disks, per-case checking reports)."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.stack = stack
        self.done: dict[str, tuple | BaseException] = {}

    def __call__(self, series: str) -> tuple:
        if series not in self.done:
            try:
                self.done[series] = self._boot(series)
            except Exception as exc:   # one failed boot fails its tests without booting again
                self.done[series] = exc
        got = self.done[series]
        if isinstance(got, BaseException):
            raise got
        return got

    def _boot(self, series: str) -> tuple:
        kernel = g.find_kernel(series)
        cases = KERNEL_CASES[series]
        backends = self.stack.enter_context(CheckingBackends(f"lg{series}-"))
        initrd = g.build_initramfs(guest_script(cases), backends.work / "initrd.cpio",
                                   kernel=kernel)
        # Every device runs in checking mode: it judges Linux's driver too.
        for c in cases:
            backends.start(c, DISK_SIZE)
        backends.wait_listening()
        result = g.run_guest(initrd, backends.vhost_devices(), timeout=240, kernel=kernel)
        logs = backends.stop(timeout=10)
        checks = backends.reports()
        print(f"guest boot on {kernel.release} took {result.seconds:.1f} s")
        report = g.parse_report(result.output)
        report["kernel"] = kernel.release
        return report, logs, backends.disks, checks


@pytest.fixture(scope="module")
def boots():
    with contextlib.ExitStack() as stack:
        yield Boots(stack)


def _features(report: dict[str, str], tag: str) -> int:
    return g.feature_bits(report[f"{tag}.features"])


@pytest.mark.parametrize("series, case", PARAMS)
def test_guest_negotiated_the_expected_ring_features(boots, series, case):
    report, _, _, _ = boots(series)
    device_id = {"blk": "0x0002", "rng": "0x0004"}[case.kind]
    assert report[f"{case.tag}.device"] == device_id
    f = _features(report, case.tag)
    assert f >> F_VERSION_1 & 1, "a modern device must negotiate VERSION_1"
    # Linux uses a packed ring exactly when QEMU passes RING_PACKED on and we offer it.
    assert bool(f >> F_RING_PACKED & 1) == case.ring_packed
    assert bool(f >> F_INDIRECT_DESC & 1) == case.extras
    assert bool(f >> F_EVENT_IDX & 1) == case.extras
    assert not f >> F_SWIOTLB & 1, f"Linux {series} cannot accept a bit it does not know"


@pytest.mark.parametrize("series", list(KERNEL_CASES))
def test_guest_report_has_exactly_the_expected_results(boots, series):
    report, _, _, _ = boots(series)
    # the boot ran the kernel of the series asked for, not whichever sorts last
    assert report["kernel"].startswith(series + ".")
    expected = {"kernel"}
    for c in KERNEL_CASES[series]:
        expected |= {f"{c.tag}.device", f"{c.tag}.features"}
        if c.kind == "blk":
            expected |= {f"{c.tag}.size"} | {f"{c.tag}.rw.{o}" for o in OFFSETS}
            if c.tag in REBIND:
                expected.add(f"{c.tag}.rebind.{OFFSETS[1]}")
        else:
            expected |= {f"{c.tag}.current", f"{c.tag}.bytes", f"{c.tag}.distinct"}
    assert set(report) == expected


@pytest.mark.parametrize("series, case", PARAMS)
def test_checking_device_judges_linux_drivers(boots, series, case):
    """Each back-end ran the checking device (serve --check-driver): it
    watched every status write, feature choice, ring and chain Linux's driver
    made. Linux must break no rule; the only remark allowed is that it does
    not accept VIRTIO_F_SWIOTLB where it is offered (a SHOULD it cannot know)."""
    _, logs, _, checks = boots(series)
    doc = checks[case.tag]
    assert doc["device"] == case.kind and doc["connections"], doc
    conn = doc["connections"][0]
    assert conn["layout"] == ("packed" if case.ring_packed else "split")
    queue = conn["queues"]["0"]
    # what the device itself saw the driver do, independent of the guest's report
    if case.kind == "blk":
        # 2 x len(OFFSETS) data requests plus probe reads; 3 descriptors each
        assert queue["chains"] >= 2 * len(OFFSETS) and queue["longest_chain"] == 3
        assert (queue["indirect_chains"] > 0) == case.extras
    else:
        assert queue["chains"] >= 1 and queue["longest_chain"] == 1
    props = {(v["property"], v["level"]) for c in doc["connections"] for v in c["violations"]}
    if "--swiotlb" in case.serve_args:
        assert props == {("accepted has VIRTIO_F_SWIOTLB", "should")}
    else:
        assert props == set(), doc
    closed = re.findall(r"connection \d+ closed: .* (\d+) driver violations", logs[case.tag])
    assert closed, logs[case.tag]


@pytest.mark.parametrize("series, case", params(lambda c: c.kind == "blk"))
def test_guest_block_data_round_trips(boots, series, case):
    report, logs, disks, _ = boots(series)
    assert int(report[f"{case.tag}.size"]) == DISK_SIZE
    with open(disks[case.tag], "rb") as f:
        for off in OFFSETS:
            verdict, digest = report[f"{case.tag}.rw.{off}"].split()
            assert verdict == "same", f"read back differs at block {off}"
            assert re.fullmatch(r"[0-9a-f]{64}", digest)
            # Independent of the guest: our back-end put exactly those bytes in the file.
            f.seek(off * BLOCK)
            assert hashlib.sha256(f.read(BLOCK * BLOCKS_PER_WRITE)).hexdigest() == digest
    assert " error" not in logs[case.tag]


@pytest.mark.parametrize("series, tag", [(k, c.tag) for k, cases in KERNEL_CASES.items()
                                         for c in cases if c.tag in REBIND])
def test_guest_driver_rebind_restarts_rings_and_keeps_data(boots, series, tag):
    """Unbinding the driver resets the device; QEMU stops our rings with
    GET_VRING_BASE and starts them again on the next probe. The data
    written before must read back the same afterwards."""
    report, logs, _, _ = boots(series)
    before = report[f"{tag}.rw.{OFFSETS[1]}"].split()[1]
    assert report[f"{tag}.rebind.{OFFSETS[1]}"] == before
    assert " error" not in logs[tag]


@pytest.mark.parametrize("series, case", params(lambda c: c.kind == "rng"))
def test_guest_reads_entropy_from_hwrng(boots, series, case):
    report, logs, _, _ = boots(series)
    rng_index = [c.tag for c in KERNEL_CASES[series] if c.kind == "rng"].index(case.tag)
    assert report[f"{case.tag}.current"] == f"virtio_rng.{rng_index}"
    assert int(report[f"{case.tag}.bytes"]) == RNG_BYTES
    # 256 random bytes hit about 160 distinct values; a stuck source hits 1.
    assert int(report[f"{case.tag}.distinct"]) > 100
    served = re.findall(r"(\d+) requests", logs[case.tag])
    assert served and int(served[-1]) > 0, logs[case.tag]
    assert " error" not in logs[case.tag]
