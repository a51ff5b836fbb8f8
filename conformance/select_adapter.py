"""``--device`` text -> an adapter: ``ref``, ``ref-pci``, ``ref-mmio``, ``vhost-user:PATH``,
``spawn:COMMAND``, ``qemu-pci:DEVICE[,PROPS]``, ``qemu-mmio:DEVICE[,PROPS]``, ``mutant:NAME``."""
from __future__ import annotations

from conformance.adapters.base import Adapter, AdapterError, AdapterOptions
from conformance.adapters.qemu import QemuAdapter
from conformance.adapters.ref import RefAdapter
from conformance.adapters.ref_registers import RegisterAdapter
from conformance.adapters.spawn import SpawnAdapter
from conformance.adapters.vhost_user import VhostUserAdapter
from conformance.mutants import by_name


def parse_adapter(spec: str, options: AdapterOptions | None = None) -> Adapter:
    """``ref[:OPTS]``, ``ref-pci``, ``ref-mmio``, ``vhost-user:PATH``, ``spawn:COMMAND``,
    ``qemu-pci:DEVICE[,PROPS]``, ``qemu-mmio:DEVICE[,PROPS]`` or ``mutant:NAME``."""
    opts = options or AdapterOptions()
    kind, sep, rest = spec.partition(":")
    if kind == "ref":
        return RefAdapter.from_spec(rest, opts)
    if kind in ("ref-pci", "ref-mmio"):
        if rest:
            raise AdapterError(f"{kind} takes no options")
        return RegisterAdapter(kind[4:], opts)
    if kind in ("qemu-pci", "qemu-mmio"):
        return QemuAdapter(kind, rest, opts)
    if kind == "vhost-user":
        if not rest:
            raise AdapterError("vhost-user needs a socket path: vhost-user:PATH")
        return VhostUserAdapter(rest, opts)
    if kind == "spawn":
        if not rest.strip():
            raise AdapterError("spawn needs a command: spawn:COMMAND (with {socket})")
        return SpawnAdapter(rest, opts)
    if kind == "mutant":
        try:
            return by_name(rest).adapter(opts)
        except KeyError:
            raise AdapterError(f"unknown fault-injection variant {rest!r} "
                               f"(conformance mutants --list)") from None
    raise AdapterError(f"unknown device adapter {spec!r}: use ref, ref-pci, ref-mmio, "
                       f"vhost-user:PATH, spawn:COMMAND, qemu-pci:DEVICE, qemu-mmio:DEVICE "
                       f"or mutant:NAME")
