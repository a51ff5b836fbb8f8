"""virtio-console, port 0: an echo, or a port with a host end.

Port 0 only (VIRTIO_CONSOLE_F_MULTIPORT is not offered): receiveq is queue
0, transmitq queue 1. What the driver outputs (transmit buffers, and with
VIRTIO_CONSOLE_F_EMERG_WRITE the low byte of each write to ``emerg_wr``, at
any time, even before the device is set up) goes either back to port 0's
input (``echo``: how ``device-ref serve`` runs it) or to a host end the
harness reads (``host_output``), which can also type input
(``host_input``). Input waits until receive buffers can take it; a
receive buffer gets as many waiting bytes as it holds (a byte stream: one
write may come back over several buffers, several writes in one). With
VIRTIO_CONSOLE_F_SIZE the configuration shows 80 columns and 25 rows.
"""
from __future__ import annotations

import struct

from device_ref.device.features import (F_EVENT_IDX, F_INDIRECT_DESC, F_RING_PACKED, F_SWIOTLB,
                                        F_VERSION_1, bit)
from device_ref.device.negotiation import FeatureRules
from device_ref.devices.loop import LoopDevice
from device_ref.transport import BounceRegion
from device_ref.virtio_constants import (CONSOLE_CONFIG, CONSOLE_F_EMERG_WRITE, CONSOLE_F_SIZE,
                                         ID_CONSOLE)

RX, TX = 0, 1           # port 0's receiveq and transmitq
CONFIG_SIZE = 12        # cols, rows, max_nr_ports, emerg_wr
EMERG_AT, EMERG_SIZE = CONSOLE_CONFIG["emerg_wr"]
COLS, ROWS = 80, 25

RING_FEATURES = (bit(F_VERSION_1) | bit(F_INDIRECT_DESC) | bit(F_EVENT_IDX) | bit(F_RING_PACKED))


def console_config(cols: int, rows: int) -> bytes:
    cfg = bytearray(CONFIG_SIZE)
    struct.pack_into("<HH", cfg, CONSOLE_CONFIG["cols"][0], cols, rows)
    return bytes(cfg)


class ConsoleDevice(LoopDevice):
    rx_queue, tx_queue = RX, TX

    def __init__(self, bounce: BounceRegion | None = None, require_swiotlb: bool = False,
                 queue_size: int = 256, offer: int | None = None, echo: bool = True) -> None:
        offered = (RING_FEATURES | bit(CONSOLE_F_SIZE) | bit(CONSOLE_F_EMERG_WRITE)
                   | (bit(F_SWIOTLB) if bounce is not None else 0))
        if offer is not None:
            offered &= offer
        required = bit(F_VERSION_1) | (bit(F_SWIOTLB) if require_swiotlb else 0)
        super().__init__(ID_CONSOLE, num_queues=2, queue_size=queue_size,
                         rules=FeatureRules(offered=offered, required=required),
                         config=console_config(COLS, ROWS),
                         writable_config=((EMERG_AT, EMERG_SIZE),), bounce=bounce)
        self.bytes_sent = 0
        self.echo = echo
        self.host_output = bytearray()     # what reached the host end (echo off)

    def handle(self, queue: int, io) -> int:
        if queue != TX:
            return 0
        if io.writable:
            self.record("violation", "device-writable buffer on the transmitq")
        data = io.read(0, io.readable_len)
        self.bytes_sent += len(data)
        if data:
            self.output(data)
        return 0

    def output(self, data: bytes) -> None:
        """Bytes the driver sent out of port 0."""
        if self.echo:
            self.enqueue(data)
            self.deliver()
        else:
            self.host_output += data

    def host_input(self, data: bytes) -> None:
        """Bytes typed at the host end, for port 0's receiveq."""
        self.enqueue(data)
        self.deliver()

    def write_config(self, offset: int, data: bytes) -> None:
        # an emergency write: its low byte goes out (here: back in) at once,
        # whatever state the device is in
        if self.has_offered(CONSOLE_F_EMERG_WRITE) and offset <= EMERG_AT < offset + len(data):
            self.output(bytes([data[EMERG_AT - offset]]))
            return
        super().write_config(offset, data)

    def place(self, ring, data: bytes) -> tuple[bool, bool] | None:
        """As many waiting bytes as the next receive buffer holds."""
        chain = self.take(ring)
        if chain is None:
            return None
        if chain.readable_len:
            self.record("violation", "device-readable buffer on the receiveq")
        n = min(len(data), chain.writable_len)
        if n < len(data):
            self.backlog[0] = data[n:]
        return n == len(data), self.fill(ring, [chain], data[:n])
