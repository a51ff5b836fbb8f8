"""The adapter interface the runner drives, and the ADAPTER argument parser.

An adapter hands the runner one ``Session`` per test: a ``DriverTransport``
(the register view a driver has of the device) plus what the harness needs
to know about it (device type, transport kind, how to observe memory).
The runner plays the driver through the transport; the adapter decides
where the device lives: in this process, behind a socket, or in a process
the adapter starts.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

from device_ref.transport import BounceRegion, DriverTransport


class AdapterError(Exception):
    """The device cannot be reached (one line); the runner reports WEDGED."""


@dataclass
class Session:
    transport: DriverTransport
    device_type: str                   # blk, rng, fs, ... or "unknown"
    transport_kind: str                # pci, mmio, vhost-user
    bounce: BounceRegion | None = None
    # In-process only: the memory watch (see adapters/ref.py). None when the
    # device lives in another process, where the OS decides what it can map.
    watch: Any = None
    expected_id: bytes | None = None   # blk GET_ID string, when known
    shares_only_bounce: bool = False   # vhost-user: RAM never shared under SWIOTLB
    # The device does all its work inside the transport call that triggers it
    # (in-process): waiting after a kick cannot bring anything new.
    synchronous: bool = False
    note: str = ""
    close_hook: Callable[[], None] | None = None
    resize: Callable[[int], None] | None = None    # blk: grow/shrink the backing store

    def close(self) -> None:
        try:
            self.transport.close()
        except Exception:  # noqa: BLE001 - closing a broken device must not stop the run
            pass
        if self.close_hook is not None:
            self.close_hook()


@dataclass
class AdapterOptions:
    device_type: str | None = None     # for adapters that cannot tell (vhost-user)
    bounce: BounceRegion | None = None
    timeout: float = 2.0               # per step, seconds
    queue_size: int = 256
    start_timeout: float = 10.0
    extra: dict[str, str] = field(default_factory=dict)


class Adapter(ABC):
    name: str = "?"
    # device types this adapter can present; None: one fixed type
    device_types: tuple[str, ...] | None = None

    @abstractmethod
    def open(self, device_type: str | None) -> Session:
        """A session with a freshly reset device (of ``device_type`` if the
        adapter can choose). Raises AdapterError when the device is unreachable."""

    def begin_group(self, key: str) -> None:
        """A new test group starts (spawn: start the back-end)."""

    def end_group(self) -> None:
        """The group ended."""

    def after_wedged(self) -> None:
        """The device stopped working; make the next session start clean."""

    def close(self) -> None:
        """Stop everything the adapter started."""

    def describe(self) -> str:
        return self.name

    def cleanup(self) -> None:
        """Remove files the adapter made (after close; logs are read first)."""

    def logs(self) -> str:
        """Anything worth keeping from the device (spawned process output)."""
        return ""


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper()
    if t and t[-1] in units:
        return int(t[:-1], 0) * units[t[-1]]
    return int(t, 0)


def parse_bounce(text: str) -> BounceRegion:
    base, sep, size = text.partition(":")
    try:
        if not sep:
            raise ValueError
        region = BounceRegion(_size(base), _size(size))
    except ValueError:
        raise AdapterError(f"bounce region {text!r} is not BASE:SIZE (e.g. 0x100000000:8M)") \
            from None
    if region.size <= 0:
        raise AdapterError(f"bounce region {text!r} is empty")
    return region


def parse_adapter(spec: str, options: AdapterOptions | None = None) -> Adapter:
    """``ref[:OPTS]``, ``vhost-user:PATH``, ``spawn:COMMAND`` or ``mutant:NAME``."""
    opts = options or AdapterOptions()
    kind, sep, rest = spec.partition(":")
    if kind == "ref":
        from conformance.adapters.ref import RefAdapter  # noqa: PLC0415
        return RefAdapter.from_spec(rest, opts)
    if kind == "vhost-user":
        if not rest:
            raise AdapterError("vhost-user needs a socket path: vhost-user:PATH")
        from conformance.adapters.vhost_user import VhostUserAdapter  # noqa: PLC0415
        return VhostUserAdapter(rest, opts)
    if kind == "spawn":
        if not rest.strip():
            raise AdapterError("spawn needs a command: spawn:COMMAND (with {socket})")
        from conformance.adapters.spawn import SpawnAdapter  # noqa: PLC0415
        return SpawnAdapter(rest, opts)
    if kind == "mutant":
        from conformance.mutants import by_name  # noqa: PLC0415
        try:
            return by_name(rest).adapter(opts)
        except KeyError:
            raise AdapterError(f"unknown fault-injection variant {rest!r} "
                               f"(conformance mutants --list)") from None
    raise AdapterError(f"unknown device adapter {spec!r}: use ref, vhost-user:PATH, "
                       f"spawn:COMMAND or mutant:NAME")
