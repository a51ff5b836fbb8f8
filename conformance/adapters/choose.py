"""``--device`` text -> an adapter: ``ref``, ``vhost-user:PATH``, ``spawn:COMMAND``, ``mutant:NAME``."""
from __future__ import annotations

from conformance.adapters.base import Adapter, AdapterError, AdapterOptions
from conformance.adapters.ref import RefAdapter
from conformance.adapters.spawn import SpawnAdapter
from conformance.adapters.vhost_user import VhostUserAdapter
from conformance.mutants import by_name


def parse_adapter(spec: str, options: AdapterOptions | None = None) -> Adapter:
    """``ref[:OPTS]``, ``vhost-user:PATH``, ``spawn:COMMAND`` or ``mutant:NAME``."""
    opts = options or AdapterOptions()
    kind, sep, rest = spec.partition(":")
    if kind == "ref":
        return RefAdapter.from_spec(rest, opts)
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
    raise AdapterError(f"unknown device adapter {spec!r}: use ref, vhost-user:PATH, "
                       f"spawn:COMMAND or mutant:NAME")
