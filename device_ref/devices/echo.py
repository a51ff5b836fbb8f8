"""A loopback device for measuring and testing data paths.

Not a virtio device type: it uses device id 0xFFF0, which no type has. Each
chain's device-readable bytes are written back into its device-writable
part (as many as fit), so a request exercises both directions of a queue
with any buffer size; the used length is the number of bytes written back.
"""
from __future__ import annotations

from device_ref.device.core import VirtioDevice
from device_ref.device.features import F_INDIRECT_DESC, F_RING_PACKED, F_SWIOTLB, F_VERSION_1, bit
from device_ref.device.negotiation import FeatureRules
from device_ref.transport import BounceRegion

ECHO_ID = 0xFFF0


class EchoDevice(VirtioDevice):
    """Loopback on one queue; offers SWIOTLB when given a bounce region."""

    def __init__(self, bounce: BounceRegion | None = None, queue_size: int = 256,
                 packed: bool = True) -> None:
        offered = (bit(F_VERSION_1) | bit(F_INDIRECT_DESC) | (bit(F_RING_PACKED) if packed else 0)
                   | (bit(F_SWIOTLB) if bounce else 0))
        super().__init__(ECHO_ID, num_queues=1, queue_size=queue_size,
                         rules=FeatureRules(offered=offered), config=b"", bounce=bounce)

    def handle(self, queue: int, io) -> int:
        n = min(io.readable_len, io.writable_len)
        return io.write(0, io.read_view(0, n))

    def handle_pair(self, queue: int, readable: memoryview, writable: memoryview) -> int:
        n = len(readable)
        if n == len(writable):      # the usual echo: no slices to make
            writable[:] = readable
            return n
        n = min(n, len(writable))
        writable[:n] = readable[:n]
        return n
