"""``qemu-pci:DEVICE[,PROPS]`` and ``qemu-mmio:DEVICE[,PROPS]``: one of QEMU's
own virtio device models, driven from the host over the real transport.

The adapter starts one QEMU for the run (``device_ref.qemu.machine``: TCG,
no guest OS, guest RAM shared with this process, the gdbstub for register
accesses) with the device model and a back-end bound to nothing outside the
machine. Each test gets a fresh transport on the same machine; the engine
resets the device. After a WEDGED verdict QEMU is started again, so one
stuck device model does not decide the rest of the run.

``qemu-pci`` uses q35 (virtio-pci); ``qemu-mmio`` uses microvm with the
version 2 register layout, or with ``force-legacy=on`` QEMU's default legacy
(version 1) layout. PROPS are the device model's own properties
(``packed=on``, ``queue-size=64``, ...). ``$CONFORMANCE_QEMU`` chooses the
binary and ``$CONFORMANCE_QEMU_ARGS`` adds arguments (split like a shell
line).
"""
from __future__ import annotations

import os
import shlex

from conformance.adapters.base import (Adapter, AdapterError, AdapterOptions, HostControls,
                                       Session, SetupError)
from device_ref.qemu.machine import MachineSpec, QemuMachine, QemuSetupError
from device_ref.qemu.models import ModelError, family, parse_props
from device_ref.transport import TransportError

ENV_QEMU_ARGS = "CONFORMANCE_QEMU_ARGS"
# the engine's device-type names by QEMU model family
DEVICE_TYPES = {"blk": "blk", "rng": "rng", "net": "net", "serial": "console",
                "console": "console", "balloon": "balloon", "scsi": "scsi", "gpu": "gpu",
                "keyboard": "input", "mouse": "input", "tablet": "input",
                "input-host": "input", "crypto": "crypto", "9p": "9p", "iommu": "iommu",
                "mem": "mem", "pmem": "pmem"}
LEGACY_PROP = "force-legacy"


def parse_qemu_spec(kind: str, text: str) -> MachineSpec:
    """``DEVICE[,PROPS]`` after ``qemu-pci:`` or ``qemu-mmio:``."""
    device, _sep, rest = text.partition(",")
    if not device:
        raise AdapterError(f"{kind} needs a device model: {kind}:DEVICE[,PROPS] "
                           f"(e.g. {kind}:virtio-rng-{'pci' if kind == 'qemu-pci' else 'device'})")
    try:
        props = parse_props(rest)
    except ModelError as exc:
        raise AdapterError(f"{kind}: {exc}") from None
    if kind == "qemu-pci":
        if not device.endswith(("-pci", "-pci-non-transitional", "-pci-transitional")):
            raise AdapterError(f"qemu-pci needs a PCI device model (virtio-...-pci), "
                               f"not {device!r}")
        machine, modern = "q35", True
    else:
        if not device.endswith("-device"):
            raise AdapterError(f"qemu-mmio needs an MMIO device model (virtio-...-device), "
                               f"not {device!r}")
        legacy = props.pop(LEGACY_PROP, "off")
        if legacy not in ("on", "off", "true", "false"):
            raise AdapterError(f"{LEGACY_PROP} must be on or off, not {legacy!r}")
        machine, modern = "microvm", legacy in ("off", "false")
    try:
        extra = tuple(shlex.split(os.environ.get(ENV_QEMU_ARGS, "")))
    except ValueError as exc:
        raise AdapterError(f"${ENV_QEMU_ARGS}: {exc}") from None
    return MachineSpec(machine, device, tuple(props.items()), mmio_modern=modern,
                       extra_args=extra)


class QemuHost(HostControls):
    """Outside events through QEMU's monitor (a refusal is an AdapterError)."""

    def __init__(self, machine: QemuMachine) -> None:
        self.m = machine

    def _do(self, fn, *args):
        try:
            return fn(*args)
        except QemuSetupError as exc:
            raise AdapterError(str(exc)) from None

    def balloon_target(self, pages: int) -> None:
        self._do(self.m.set_balloon, pages)

    def balloon_stats(self) -> dict[int, int]:
        return self._do(self.m.balloon_stats)

    def stats_interval(self, seconds: int) -> None:
        self._do(self.m.set_stats_interval, seconds)

    def key(self, name: str, down: bool) -> None:
        self._do(self.m.send_key, name, down)

    def screen(self) -> tuple[int, int, bytes]:
        return self._do(self.m.screen)

    def console_write(self, data: bytes) -> None:
        self._do(self.m.console_write, data)

    def console_read(self) -> bytes:
        return self._do(self.m.console_read)


class QemuAdapter(Adapter):
    name = "qemu"

    def __init__(self, kind: str, text: str, opts: AdapterOptions) -> None:
        self.kind = kind
        self.spec = parse_qemu_spec(kind, text)
        self.opts = opts
        dtype = DEVICE_TYPES.get(family(self.spec.device))
        if dtype is None:
            raise AdapterError(f"{kind}: no device type known for {self.spec.device!r}")
        self.device_type = dtype
        self.device_types = (dtype,)
        self.machine: QemuMachine | None = None
        self.starts = 0
        self.last_log = ""

    def describe(self) -> str:
        mode = "" if self.kind == "qemu-pci" else \
            (" (version 2)" if self.spec.mmio_modern else " (legacy version 1)")
        return f"{self.kind}:{self.spec.device}" + \
            "".join(f",{k}={v}" for k, v in self.spec.props) + mode

    def _machine(self) -> QemuMachine:
        if self.machine is None or not self.machine.alive:
            self._stop()
            m = QemuMachine(self.spec)
            try:
                m.start()
            except QemuSetupError as exc:
                self.last_log = m.log_tail(20)
                m.close()
                raise SetupError(f"{self.describe()}: {exc}") from None
            except BaseException:
                m.close()
                raise
            self.machine = m
            self.starts += 1
        return self.machine

    def _stop(self) -> None:
        m, self.machine = self.machine, None
        if m is not None:
            self.last_log = m.log_tail(20)
            m.close()

    def open(self, device_type: str | None) -> Session:
        if device_type not in (None, self.device_type):
            raise SetupError(f"{self.describe()} is a {self.device_type} device, "
                             f"not {device_type}")
        m = self._machine()
        try:
            t = m.transport()
            t.reset()    # one machine serves every test: each starts from a reset device
            if self.device_type == "balloon":
                # and a balloon that wants no pages and no statistics (a reset keeps both)
                m.set_balloon(0)
                m.set_stats_interval(0)
        except (TransportError, QemuSetupError) as exc:
            raise AdapterError(f"{self.describe()}: {exc}") from None
        kind = "pci" if self.spec.machine == "q35" else "mmio"
        note = (f"QEMU {self.spec.label()}, " +
                (f"{t.msix_vectors} MSI-X vectors observed in guest RAM" if kind == "pci"
                 else f"virtio-mmio version {t.version}"))
        resize = None
        if m.model is not None and "disk" in m.model.files and self.device_type == "blk":
            def resize(sectors: int) -> None:
                try:
                    m.resize_disk(sectors * 512)
                except QemuSetupError as exc:
                    raise AdapterError(str(exc)) from None
        return Session(transport=t, device_type=self.device_type, transport_kind=kind,
                       synchronous=False, note=note, alive=lambda: m.alive, resize=resize,
                       bus_reaches_everything=True, slow_notify=True,
                       legacy=getattr(t, "legacy", False), host=QemuHost(m))

    def after_wedged(self) -> None:
        self._stop()

    def close(self) -> None:
        self._stop()

    def logs(self) -> str:
        if self.machine is not None:
            return self.machine.log_tail(20)
        return self.last_log
