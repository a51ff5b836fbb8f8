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
    """The device cannot be reached (one line)."""


class SetupError(AdapterError):
    """The run cannot start as asked (no socket, a back-end that exits at once,
    a device type the adapter cannot serve, one connection only): one line,
    exit 2, no verdicts."""


@dataclass(frozen=True)
class DriverRig:
    """What driver-mode vectors need to judge the reference driver in process."""

    bounce: BounceRegion | None
    device_type: str | None


class HostControls(ABC):
    """What the machine around the device can be asked to do while it runs
    (QEMU: through its monitor): the outside events some device types react
    to. Each raises AdapterError when the machine refuses."""

    @abstractmethod
    def balloon_target(self, pages: int) -> None:
        """Balloon: ask for ``pages`` 4 KiB pages (num_pages) to be given up."""

    @abstractmethod
    def balloon_stats(self) -> dict[int, int]:
        """Balloon: the statistics the device last received, by tag (only
        those it holds a value for)."""

    @abstractmethod
    def stats_interval(self, seconds: int) -> None:
        """Balloon: have the device return the statistics buffer every
        ``seconds`` (0: never)."""

    @abstractmethod
    def key(self, name: str, down: bool) -> None:
        """Input: a key (a QEMU key code name, e.g. "a") pressed or released."""

    @abstractmethod
    def screen(self) -> tuple[int, int, bytes]:
        """GPU: what the first display shows (width, height, RGB bytes)."""

    @abstractmethod
    def console_write(self, data: bytes) -> None:
        """Console: bytes typed at the host end of port 0."""

    @abstractmethod
    def console_read(self) -> bytes:
        """Console: what reached the host end of port 0 since the last call."""


class PartialHost(HostControls):
    """Host controls that cause only some of the outside events: a subclass
    overrides the ones it has; every other is refused, naming ``owner``."""

    owner = "this adapter"

    def _none(self, what: str):
        raise AdapterError(f"{self.owner} has no {what}")

    def balloon_target(self, pages: int) -> None:
        self._none("balloon")

    def balloon_stats(self) -> dict[int, int]:
        return self._none("balloon")

    def stats_interval(self, seconds: int) -> None:
        self._none("balloon")

    def key(self, name: str, down: bool) -> None:
        self._none("keyboard")

    def screen(self) -> tuple[int, int, bytes]:
        return self._none("display")

    def console_write(self, data: bytes) -> None:
        self._none("console")

    def console_read(self) -> bytes:
        return self._none("console")


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
    alive: Callable[[], bool] | None = None        # out of process: is the device still there
    # A device on a real bus (QEMU's models): a DMA to an address with no RAM
    # behind it is not refused, the platform drops it, so "outside guest
    # memory" is not something the device can be judged on.
    bus_reaches_everything: bool = False
    # Each notification and status read costs a round trip that stops the
    # machine (QEMU through its gdbstub): tens of thousands of requests are
    # out of reach of a run.
    slow_notify: bool = False
    legacy: bool = False       # a legacy interface (MMIO version 1): no VIRTIO_F_VERSION_1
    host: HostControls | None = None   # outside events the adapter can cause (QEMU's monitor)

    def gone(self) -> bool:
        """Whether the device has gone away (connection closed, process exited)."""
        if self.alive is None:
            return False
        try:
            return not self.alive()
        except Exception:  # noqa: BLE001 - a broken probe means it is gone
            return True

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
    preflighted: bool = False          # preflight() passed (run_suite skips it then)
    spare: "Session | None" = None     # the session preflight opened, for the first test

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

    def log_tail(self, lines: int) -> list[str]:
        """The device's last ``lines`` lines of output, for a verdict's evidence."""
        return [x for x in self.logs().splitlines() if x.strip()][-lines:]

    def driver_rig(self) -> DriverRig | None:
        """For driver-mode vectors: the in-process rig, or None when this
        adapter cannot judge the reference driver."""
        return None

    def preflight(self, device_type: str | None = None) -> None:
        """Check the device can be reached as asked before any test runs
        (SetupError naming the cause). The session it opens is kept for the
        first test, so a back-end that serves one connection per process
        still runs a one-test selection."""
        try:
            self.spare = self.open(device_type)
        except AdapterError as exc:
            raise SetupError(str(exc)) from None
        self.preflighted = True

    def take_spare(self, device_type: str | None) -> Session | None:
        """The session preflight opened, if it is of the type a test wants."""
        spare, self.spare = self.spare, None
        if spare is not None and device_type not in (None, spare.device_type):
            spare.close()
            return None
        return spare


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
