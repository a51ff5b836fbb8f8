"""QEMU 7.2's own device models as judges: the whole suite over the real PCI
and MMIO transports, one QEMU per device model, both layouts.

Every FAIL and WEDGED seen is judged in docs/conformance.md ("QEMU's device
models"); the ones that are QEMU defects are listed, per model, in
``known_failures/``. A run passes when nothing else fails and every listed
failure still fails (a listed one that now passes fails loudly, so the
lists stay true). Reports are kept in $CONFORMANCE_REPORT_DIR/qemu/.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conformance import expect_fail
from conformance.adapters.base import AdapterOptions
from conformance.select_adapter import parse_adapter
from conformance.report import build, json_report, terminal
from conformance.runner import RunOptions, run_suite
from conformance.verdicts import BAD, Verdict

pytestmark = [pytest.mark.qemu_model, pytest.mark.slow]
KNOWN = Path(__file__).with_name("known_failures")
JUDGES = (
    "qemu-pci:virtio-blk-pci", "qemu-pci:virtio-rng-pci", "qemu-pci:virtio-net-pci",
    "qemu-pci:virtio-serial-pci", "qemu-pci:virtio-balloon-pci", "qemu-pci:virtio-scsi-pci",
    "qemu-pci:virtio-gpu-pci", "qemu-pci:virtio-keyboard-pci",
    "qemu-pci:virtio-balloon-pci,free-page-reporting=on",
    "qemu-mmio:virtio-blk-device", "qemu-mmio:virtio-rng-device", "qemu-mmio:virtio-net-device",
    "qemu-mmio:virtio-blk-device,force-legacy=on", "qemu-mmio:virtio-rng-device,force-legacy=on",
    "qemu-mmio:virtio-net-device,force-legacy=on",
)


def report_name(spec: str) -> str:
    return spec.replace(":", "_").replace(",", "_").replace("=", "-")


@pytest.mark.parametrize("spec", JUDGES, ids=[report_name(s) for s in JUDGES])
def test_qemu_model_judged(suite, tmp_path, spec):
    runs = []
    for layout in ("split", "packed"):
        adapter = parse_adapter(spec, AdapterOptions(timeout=2.0))
        try:
            runs.append(run_suite(suite, adapter, RunOptions(layout=layout, step_timeout=2.0)))
        finally:
            adapter.close()
    results = [r for run in runs for r in run.results]
    listed = expect_fail.read(KNOWN / f"{report_name(spec)}.txt")
    outcome = expect_fail.apply(listed, results)
    report = build(suite, runs, expect_fail=outcome)
    name = report_name(spec)
    (tmp_path / f"{name}.json").write_text(json_report.render(report))
    (tmp_path / f"{name}.txt").write_text(terminal.render(report))
    keep = os.environ.get("CONFORMANCE_REPORT_DIR")
    if keep:
        where = Path(keep) / "qemu"
        where.mkdir(parents=True, exist_ok=True)
        for ext in ("json", "txt"):
            shutil.copy(tmp_path / f"{name}.{ext}", where / f"{name}.{ext}")
    for r in results:
        assert "unexpected error" not in r.reason, (r.check_id, r.reason)
        if r.verdict is Verdict.SKIP:
            assert r.reason.strip(), r.check_id
    unexpected = [(r.layout, r.check_id, r.reason) for r in results
                  if r.verdict in BAD and r.requirement not in listed]
    assert not unexpected, unexpected
    assert not outcome.now_passing, f"listed but now passing: {outcome.now_passing}"
    assert any(r.verdict is Verdict.PASS for r in results)
