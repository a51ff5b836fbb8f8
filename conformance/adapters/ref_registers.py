"""``ref-pci`` and ``ref-mmio``: the reference devices behind in-process PCI
and MMIO register models (``device_ref.transports.device_side``), reached
through the same register-level transports that drive QEMU.

So the transport vectors run in CI without QEMU, and transport-level
faults (``TransportFaults``) make the mutants that show those vectors catch
what they claim to. A fresh device and register model per test.
"""
from __future__ import annotations

from device_ref.transports.device_side import TransportFaults, register_rig

from conformance.adapters.base import Adapter, AdapterError, AdapterOptions, Session
from conformance.adapters.ref import reference_device, storage_resizer

KINDS = ("pci", "mmio")


class RegisterAdapter(Adapter):
    device_types = ("blk", "rng")

    def __init__(self, kind: str, opts: AdapterOptions, faults: TransportFaults | None = None,
                 label: str | None = None) -> None:
        if kind not in KINDS:
            raise AdapterError(f"register transport {kind!r} is not pci or mmio")
        self.kind = kind
        self.opts = opts
        self.faults = faults
        self.name = label or f"ref-{kind}"

    def open(self, device_type: str | None) -> Session:
        dtype = device_type or "blk"
        # no queue encryption and no administration virtqueue: neither its
        # register block nor admin_queue_index is modelled on these transports
        device = reference_device(dtype, None, queue_encryption=False, admin_queue=False)
        rig = register_rig(device, self.kind, self.faults)
        return Session(transport=rig.transport, device_type=dtype, transport_kind=self.kind,
                       synchronous=True, note=f"reference {dtype} device behind in-process "
                                              f"{self.kind} registers",
                       close_hook=rig.close,
                       resize=storage_resizer(device) if dtype == "blk" else None)

    def describe(self) -> str:
        return self.name
