"""An unmodified Linux driver behind a restricted DMA pool, judged by a
device that can reach nothing but the pool.

An arm64 guest (our small kernel from Debian's source, with
CONFIG_DMA_RESTRICTED_POOL) boots on QEMU's ``virt`` machine with a
vhost-user-blk device on a virtio-mmio transport. Its device tree carries a
``restricted-dma-pool`` and the transport's ``memory-region`` points at it.
The back-end is ``device-ref serve --pool`` in checking mode: of the guest
RAM QEMU shares it maps the pool alone.

Positive, with split and with packed rings: the guest's O_DIRECT patterns
read back intact, the host file holds them, and every ring and buffer Linux
gave the device lay in the pool.
Negative control: the same guest without the ``memory-region`` reference
puts its rings in ordinary RAM; the device cannot reach them, reports it,
and the verdict names the rule and the first address outside.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from device_ref.device.features import F_ACCESS_PLATFORM, F_RING_PACKED, F_VERSION_1
from tests.linux_guest.backends import CheckingBackends, GuestDevice
from tests.linux_guest.qemu_guest import ReportError, feature_bits, parse_report

from . import guest as g

pytestmark = [pytest.mark.arm64_guest, pytest.mark.slow]

DISK_SIZE = 16 << 20
POOL_ARG = f"{g.POOL_BASE:#x}:{g.POOL_SIZE}"
# Requirement ids the pool judges against (spec/swiotlb.vspec).
RINGS_RULE = "swiotlb.drv.rings-inside"
ATTACHED = f"assigned reserved memory node restricted-dma@{g.POOL_BASE:x}"


def _say(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n[arm64 guest] {text}", flush=True)


def _run(tmp_path, kernel, vectors, reference: bool, io_timeout: int, packed: bool = False):
    """Boot once against a fresh pool-only checking back-end."""
    dtb = tmp_path / ("pool.dtb" if reference else "no-reference.dtb")
    dtb.write_bytes(g.add_pool(g.dump_dtb(tmp_path), reference=reference))
    initrd = g.build_initramfs(tmp_path)
    with CheckingBackends("arm64-") as backends:
        # QEMU's virtio-mmio offers the guest rings of up to 1024 entries and
        # Linux takes them all; the back-end must accept that size.
        dev = GuestDevice("blk", "blk", 0, packed=False,
                          serve_args=("--pool", POOL_ARG, "--queue-size", "1024"))
        backends.start(dev, DISK_SIZE, "--vectors", str(vectors))
        backends.wait_listening()
        booted = g.boot(kernel.image, initrd, dtb, backends.socket("blk"), io_timeout=io_timeout,
                        packed=packed)
        logs = backends.stop()
        report = backends.reports()["blk"]
        disk = backends.disks["blk"].read_bytes()
        verdict = subprocess.run([sys.executable, "-m", "conformance.cli", "driver-report",
                                  str(backends.report_path("blk")), "--vectors", str(vectors)],
                                 capture_output=True, text=True, timeout=60)
    return booted, logs["blk"], report, disk, verdict


@pytest.fixture(scope="module", params=["split", "packed"])
def positive(request, arm64_kernel, vectors_dir, tmp_path_factory):
    """Both ring layouts: Linux places either kind inside the pool."""
    packed = request.param == "packed"
    return (request.param,) + _run(tmp_path_factory.mktemp("pool"), arm64_kernel, vectors_dir,
                                   True, 60, packed)


@pytest.fixture(scope="module")
def negative(arm64_kernel, vectors_dir, tmp_path_factory):
    return _run(tmp_path_factory.mktemp("nopool"), arm64_kernel, vectors_dir, False, 5)


def test_kernel_has_the_restricted_pool(arm64_kernel, capsys):
    config = (arm64_kernel.image.parent / f"config-{arm64_kernel.key}").read_text()
    assert "CONFIG_DMA_RESTRICTED_POOL=y" in config
    how = "built" if arm64_kernel.built else "cached"
    _say(capsys, f"kernel {arm64_kernel.key}: {how} in {arm64_kernel.seconds:.1f} s "
                 f"({arm64_kernel.image.stat().st_size // 1024} KiB Image)")


def test_linux_bounces_through_the_pool_and_the_data_is_on_the_disk(positive, capsys):
    layout, booted, log, report, disk, _ = positive
    result = parse_report(booted.output)            # raises on any @@ERROR
    # Linux made the pool and gave it to the transport the device sits on.
    assert f"created restricted DMA pool at {g.POOL_BASE:#018x}" in booted.output, \
        booted.output[-3000:]
    assert ATTACHED in booted.output
    features = feature_bits(result["features"])
    assert features >> F_ACCESS_PLATFORM & 1 and features >> F_VERSION_1 & 1
    assert bool(features >> F_RING_PACKED & 1) == (layout == "packed")
    assert result["transport"].endswith(g.TRANSPORT.replace("/virtio_mmio@", "/") + ".virtio_mmio"
                                        "/virtio0"), result["transport"]
    ranges = {int(k.split(".", 1)[1]): v.split() for k, v in result.items()
              if k.startswith("verify.")}
    assert len(ranges) == 4 and all(v[1] == "ok" for v in ranges.values()), ranges
    for offset, (length, _) in ranges.items():
        assert disk[offset:offset + int(length)] == g.pattern(offset, int(length)), offset
    io_ns, written, read = (int(v) for v in result["io_ns"].split())
    rec = report["connections"][-1]["addresses"]
    _say(capsys, f"{layout}: boot+I/O {booted.seconds:.1f} s; guest I/O {io_ns / 1e6:.0f} ms for "
                 f"{written} B written + {read} B read; back-end saw {rec['data_bytes']} data "
                 f"bytes in {rec['ranges']} ranges ({rec['bytes']} B with headers, status, "
                 f"rings), all inside the pool; pool footprint {rec['footprint']} B of "
                 f"{g.POOL_SIZE}")
    assert rec["data_bytes"] >= written + read


def test_every_ring_and_buffer_linux_gave_lay_in_the_pool(positive):
    layout, _, log, report, _, verdict = positive
    (conn,) = [c for c in report["connections"] if c["queues"]]
    assert conn["layout"] == layout
    rec = conn["addresses"]
    assert rec["outside"] == 0 and rec["first_outside"] is None
    assert rec["region"] == [hex(g.POOL_BASE), hex(g.POOL_SIZE)]
    assert g.POOL_BASE <= int(rec["lowest"], 16)
    assert int(rec["highest_end"], 16) <= g.POOL_BASE + g.POOL_SIZE
    assert sum(q["chains"] for q in conn["queues"].values()) >= 8
    must = [v for v in conn["violations"] if v["level"] == "must"]
    assert not must, must
    # The one finding: bit 44 never reached Linux (QEMU 7.2 forwards only the
    # feature bits it knows), so it could not accept VIRTIO_F_SWIOTLB.
    assert {v["property"] for v in conn["violations"]} <= {"accepted has VIRTIO_F_SWIOTLB"}
    assert "mapped 0x4e000000+0x400000 (the pool)" in log
    assert "needs reset" not in log


def test_without_memory_region_linux_is_refused_and_the_verdict_names_the_rule(negative, capsys):
    booted, log, report, _, verdict = negative
    with pytest.raises(ReportError, match="io timed out"):
        parse_report(booted.output)
    # The pool exists, but nothing ties the device to it.
    assert "created restricted DMA pool" in booted.output and ATTACHED not in booted.output
    assert "needs reset" in log and "OUT_OF_BOUNDS" in log
    conn = [c for c in report["connections"] if c["violations"]][-1]
    outside = [v for v in conn["violations"] if v["property"] == "addresses inside_region"]
    assert outside and outside[0]["evidence"]["what"] == "ring"
    assert RINGS_RULE in outside[0]["requirements"]
    first = conn["addresses"]["first_outside"]
    addr = int(first["addr"], 16)
    assert not g.POOL_BASE <= addr < g.POOL_BASE + g.POOL_SIZE
    assert verdict.returncode == 1 and RINGS_RULE in verdict.stdout
    assert first["addr"] in verdict.stdout or f"{addr:#x}" in verdict.stdout
    _say(capsys, f"negative control: {booted.seconds:.1f} s; first address outside "
                 f"{first['addr']}+{first['len']} ({first['what']}), rule {RINGS_RULE}")
