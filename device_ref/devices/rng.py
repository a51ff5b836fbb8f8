"""virtio-rng (entropy device): fills each device-writable buffer.

Entropy comes from the OS, or from a seeded generator so tests can predict
every byte.
"""
from __future__ import annotations

import os
import random

from device_ref.device.chain import ChainIO
from device_ref.device.core import VirtioDevice
from device_ref.device.features import (F_EVENT_IDX, F_IN_ORDER, F_INDIRECT_DESC, F_RING_PACKED,
                                        F_SWIOTLB, F_VERSION_1, ID_ENTROPY, bit)
from device_ref.device.negotiation import FeatureRules
from device_ref.transport import BounceRegion

RING_FEATURES = (bit(F_VERSION_1) | bit(F_INDIRECT_DESC) | bit(F_EVENT_IDX)
                 | bit(F_RING_PACKED) | bit(F_IN_ORDER))


# The most entropy one request gets (docs/vhost-user.md, "Limits"): a chain
# can list the same shared memory many times over, and the spec lets a
# device fill less than the buffer.
MAX_FILL = 1 << 20


class RngDevice(VirtioDevice):
    def __init__(self, seed: int | None = None, bounce: BounceRegion | None = None,
                 require_swiotlb: bool = False, queue_size: int = 256,
                 max_fill: int = MAX_FILL, offer: int | None = None) -> None:
        offered = RING_FEATURES | (bit(F_SWIOTLB) if bounce is not None else 0)
        if offer is not None:
            offered &= offer
        required = bit(F_VERSION_1) | (bit(F_SWIOTLB) if require_swiotlb else 0)
        super().__init__(ID_ENTROPY, num_queues=1, queue_size=queue_size,
                         rules=FeatureRules(offered=offered, required=required),
                         config=b"", bounce=bounce)
        self._rand = random.Random(seed) if seed is not None else None
        self.max_fill = max_fill  # the spec lets a device fill less than the buffer

    def entropy(self, n: int) -> bytes:
        return self._rand.randbytes(n) if self._rand is not None else os.urandom(n)

    def handle(self, queue: int, io: ChainIO) -> int:
        if io.readable:
            self.record("violation", "device-readable buffer on the entropy queue")
        n = min(self.max_fill, io.writable_len)
        if n == 0:
            return 0
        return io.write(0, self.entropy(n))
