"""The reference devices behind in-process PCI and MMIO register models
(ref-pci, ref-mmio): the whole suite, transport vectors included, finds
nothing wrong with them, and the transport vectors do run there."""
from __future__ import annotations

import pytest

from conformance.adapters.base import AdapterError, AdapterOptions
from conformance.select_adapter import parse_adapter
from conformance.runner import RunOptions, run_suite
from conformance.verdicts import BAD, Verdict


@pytest.mark.parametrize("spec", ["ref-pci", "ref-mmio"])
def test_reference_devices_behind_registers_are_clean(suite, spec):
    seen = []
    for layout in ("split", "packed"):
        run = run_suite(suite, parse_adapter(spec, AdapterOptions(timeout=0.5)),
                        RunOptions(layout=layout, step_timeout=0.5))
        bad = [(r.check_id, r.reason) for r in run.results if r.verdict in BAD]
        assert not bad, bad[:3]
        seen += run.results
    prefix = "pci." if spec == "ref-pci" else "mmio."
    ran = [r for r in seen if r.requirement.startswith(prefix)
           and r.verdict in (Verdict.PASS, Verdict.REJECT)]
    assert len(ran) >= 10


def test_register_adapters_refuse_options():
    with pytest.raises(AdapterError, match="takes no options"):
        parse_adapter("ref-pci:fast")


def test_qemu_adapter_spec_errors_are_one_line():
    for text, msg in (("qemu-pci:", "needs a device model"),
                      ("qemu-pci:virtio-blk-device", "PCI device model"),
                      ("qemu-mmio:virtio-blk-pci", "MMIO device model"),
                      ("qemu-mmio:virtio-blk-device,force-legacy=maybe", "on or off"),
                      ("qemu-pci:virtio-blk-pci,packed", "KEY=VALUE"),
                      ("qemu-pci:virtio-frob-pci", "no device type")):
        with pytest.raises(AdapterError, match=msg):
            parse_adapter(text)
