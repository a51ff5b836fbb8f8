"""The reference virtio-rng driver."""
from __future__ import annotations

from device_ref.device.features import ID_ENTROPY
from device_ref.driver.core import Request, VirtioDriver


class RngDriver(VirtioDriver):
    DEVICE_ID = ID_ENTROPY

    def submit_read(self, n: int) -> Request:
        return self.submit(0, [], [n])

    def read(self, n: int) -> bytes:
        """Up to ``n`` random bytes: as many as the device says it wrote."""
        req = self.wait(self.submit_read(n))
        assert req.data is not None and req.used_len is not None
        return req.data[:req.used_len]
