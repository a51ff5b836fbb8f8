"""``vhost-user:PATH``: a back-end already listening on a Unix socket.

The runner plays the VMM's front-end (``device_ref.vhost_user``): each test
gets its own connection, with guest memory shared as memfd regions. With
VIRTIO_F_SWIOTLB negotiated only the bounce region is shared, so the
back-end process cannot reach anything else: the operating system, not the
runner, enforces the rule, and ``memory_outside_region`` holds by
construction. vhost-user does not say what device a back-end is, so the
type comes from the options (default blk).
"""
from __future__ import annotations

import os
import stat

from device_ref.transport import BounceRegion, TransportError
from device_ref.vhost_user.frontend import VhostUserTransport
from device_ref.vhost_user.gpu_display import DisplayEnd
from device_ref.device_types import UnknownDeviceType, device_type
from device_ref.virtio_constants import F_SWIOTLB

from conformance.adapters.base import (Adapter, AdapterError, AdapterOptions, PartialHost,
                                       Session, SetupError)
DEFAULT_BOUNCE = BounceRegion(0x1_0000_0000, 8 << 20)   # what `device-ref serve` uses
RAM_SIZE = 16 << 20


class DisplayHost(PartialHost):
    """The host side of a vhost-user GPU: the display the front-end
    serves. A front-end causes no other outside event."""

    owner = "a vhost-user front-end"

    def __init__(self, display: DisplayEnd) -> None:
        self.display = display

    def screen(self) -> tuple[int, int, bytes]:
        shown = self.display.screen()      # handles what is waiting first
        if self.display.error is not None:
            raise AdapterError(self.display.error)
        return shown


class VhostUserAdapter(Adapter):
    name = "vhost-user"
    device_types = None

    def __init__(self, path: str, opts: AdapterOptions) -> None:
        self.path = path
        self.opts = opts
        try:
            self.kind = device_type(opts.device_type or "blk")
        except UnknownDeviceType as exc:
            raise SetupError(str(exc)) from None
        self.device_type = self.kind.name
        self.device_types = (self.device_type,)

    def describe(self) -> str:
        return f"vhost-user:{self.path} ({self.device_type})"

    def _check_socket(self) -> None:
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            raise AdapterError(f"{self.path}: no such socket") from None
        except OSError as exc:
            raise AdapterError(f"{self.path}: {exc.strerror}") from None
        if not stat.S_ISSOCK(mode):
            raise AdapterError(f"{self.path}: not a Unix socket")

    def open(self, device_type: str | None) -> Session:
        self._check_socket()
        bounce = self.opts.bounce or DEFAULT_BOUNCE
        try:
            t = VhostUserTransport(self.path, self.kind.device_id, ram_size=RAM_SIZE,
                                   bounce=bounce, queue_size=self.opts.queue_size,
                                   timeout=max(self.opts.timeout, 1.0),
                                   display=self.device_type == "gpu")
        except (TransportError, OSError) as exc:
            raise AdapterError(str(exc)) from None
        # No feature, no region (the transport then describes none either).
        offers_swiotlb = bool(t.info.features >> F_SWIOTLB & 1)
        return Session(transport=t, device_type=self.device_type, transport_kind="vhost-user",
                       bounce=bounce if offers_swiotlb else None, shares_only_bounce=True,
                       note=f"vhost-user back-end at {self.path}",
                       alive=t.frontend.conn.peer_alive,
                       host=DisplayHost(t.display) if t.display is not None else None)
