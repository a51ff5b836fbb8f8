"""A ``RegisterBus`` over QEMU's gdbstub in physical-memory mode.

Each access stops the vCPUs first (the stub answers commands only while
they are stopped); ``let_run`` continues them, so the device models that
work only while the machine runs (virtio-rng waits for a running VM) can
complete requests. Stub failures become ``TransportError``s.
"""
from __future__ import annotations

from device_ref.qemu.gdb_remote import GdbRemote, GdbRemoteError
from device_ref.transport import TransportError
from device_ref.transports.bus import WIDTHS


class StubBus:
    def __init__(self, remote: GdbRemote) -> None:
        self.remote = remote
        self.accesses = 0

    def _stopped(self) -> GdbRemote:
        try:
            self.remote.interrupt()
        except GdbRemoteError as exc:
            raise TransportError(str(exc)) from None
        return self.remote

    def read(self, addr: int, width: int) -> int:
        if width not in WIDTHS:
            raise TransportError(f"register access width {width} is not 1, 2, 4 or 8")
        remote = self._stopped()
        self.accesses += 1
        try:
            return int.from_bytes(remote.read_memory(addr, width), "little")
        except GdbRemoteError as exc:
            raise TransportError(f"read of {width} bytes at {addr:#x}: {exc}") from None

    def write(self, addr: int, width: int, value: int) -> None:
        if width not in WIDTHS:
            raise TransportError(f"register access width {width} is not 1, 2, 4 or 8")
        remote = self._stopped()
        self.accesses += 1
        try:
            remote.write_memory(addr, (value & ((1 << 8 * width) - 1)).to_bytes(width, "little"))
        except GdbRemoteError as exc:
            raise TransportError(f"write of {width} bytes at {addr:#x}: {exc}") from None

    def let_run(self) -> None:
        try:
            self.remote.resume()
        except GdbRemoteError as exc:
            raise TransportError(str(exc)) from None

    def stop(self) -> None:
        self._stopped()
