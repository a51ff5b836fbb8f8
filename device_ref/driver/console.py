"""The reference virtio-console driver: port 0 only, bytes out on the
transmitq, buffers for bytes in on the receiveq."""
from __future__ import annotations

from device_ref.driver.core import Request, VirtioDriver
from device_ref.virtio_constants import ID_CONSOLE

RX, TX = 0, 1


class ConsoleDriver(VirtioDriver):
    DEVICE_ID = ID_CONSOLE

    def num_queues(self) -> int:
        return min(2, self.t.num_queues())     # port 0: receiveq, transmitq

    def submit_rx(self, size: int = 256) -> Request:
        return self.submit(RX, [], [size])

    def submit_write(self, data: bytes) -> Request:
        return self.submit(TX, [data], [])

    def received(self, req: Request) -> bytes:
        """The bytes a used receive buffer holds."""
        assert req.data is not None and req.used_len is not None
        return req.data[:req.used_len]
