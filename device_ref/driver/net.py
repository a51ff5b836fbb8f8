"""The reference virtio-net driver: frames out on transmitq1, buffers for
frames in on receiveq1 (no offloads, one queue pair)."""
from __future__ import annotations

from device_ref.device.features import F_VERSION_1, bit, has
from device_ref.driver.core import Request, VirtioDriver
from device_ref.virtio_constants import (ID_NET, NET_F_MAC, NET_F_MRG_RXBUF, NET_F_MTU,
                                         NET_F_STATUS, NET_HDR, NET_HDR_LEGACY)

RX, TX = 0, 1
# Room for the longest frame without offloads: an MTU of 1500 and the
# Ethernet header (the driver does not ask for VLAN tags).
MAX_FRAME = 1514


class NetDriver(VirtioDriver):
    DEVICE_ID = ID_NET
    DEVICE_FEATURES = bit(NET_F_MAC) | bit(NET_F_STATUS) | bit(NET_F_MTU) | bit(NET_F_MRG_RXBUF)

    def num_queues(self) -> int:
        return min(2, self.t.num_queues())     # receiveq1, transmitq1

    @property
    def header_size(self) -> int:
        n = self.negotiated
        return NET_HDR if has(n, F_VERSION_1) or has(n, NET_F_MRG_RXBUF) else NET_HDR_LEGACY

    def submit_rx(self) -> Request:
        """One receive buffer, big enough for a whole frame and its header."""
        return self.submit(RX, [], [self.header_size + MAX_FRAME])

    def submit_frame(self, frame: bytes) -> Request:
        """Send ``frame`` behind a header with no offloads (flags 0, gso_type
        NONE, num_buffers 0)."""
        return self.submit(TX, [bytes(self.header_size) + frame], [])

    def frame_of(self, req: Request) -> bytes:
        """The frame a used receive buffer holds (one buffer: every frame fits)."""
        assert req.data is not None and req.used_len is not None
        return req.data[self.header_size:req.used_len]
