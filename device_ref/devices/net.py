"""virtio-net as a loop: every frame sent on transmitq1 comes back on receiveq1.

The device has no wire. A frame the driver sends is taken off transmitq1
(that buffer is used at once, with nothing written) and kept in a short
backlog until receive buffers can take it; then it is written into
receiveq1 behind a fresh virtio_net_hdr (no offloads: flags 0, gso_type
NONE) whose num_buffers says how many receive buffers hold it. Without
VIRTIO_NET_F_MRG_RXBUF a frame goes into one buffer, which must hold all of
it; with it, a frame may run over several, each filled to its end but the
last, and all of them are used together.

Receive buffers are taken off the ring only when a frame is waiting: a
driver that fills receiveq1 and sends nothing sees none of them used. A
buffer taken for a frame that did not fit (without MRG_RXBUF) or for a
frame still waiting for more buffers (with it) is held, not lost, and goes
to the next frame.
"""
from __future__ import annotations

import struct

from device_ref.device.features import (F_EVENT_IDX, F_INDIRECT_DESC, F_RING_PACKED, F_SWIOTLB,
                                        F_VERSION_1, bit, has)
from device_ref.device.negotiation import FeatureRules
from device_ref.devices.loop import LoopDevice
from device_ref.transport import BounceRegion
from device_ref.virtio_constants import (ETH_HLEN, ID_NET, NET_CONFIG, NET_F_MAC, NET_F_MRG_RXBUF,
                                         NET_F_MTU, NET_F_STATUS, NET_HDR, NET_HDR_LEGACY,
                                         NET_HDR_NUM_BUFFERS, NET_S_LINK_UP)

RX, TX = 0, 1           # receiveq1, transmitq1 (no multiqueue, no control queue)
CONFIG_SIZE = 12        # mac, status, max_virtqueue_pairs, mtu
DEFAULT_MAC = bytes.fromhex("525400c0ffee")
DEFAULT_MTU = 1500

RING_FEATURES = (bit(F_VERSION_1) | bit(F_INDIRECT_DESC) | bit(F_EVENT_IDX) | bit(F_RING_PACKED))
NET_FEATURES = bit(NET_F_MAC) | bit(NET_F_STATUS) | bit(NET_F_MTU) | bit(NET_F_MRG_RXBUF)


def net_config(mac: bytes, mtu: int) -> bytes:
    cfg = bytearray(CONFIG_SIZE)
    cfg[NET_CONFIG["mac"][0]:NET_CONFIG["mac"][0] + 6] = mac
    struct.pack_into("<H", cfg, NET_CONFIG["status"][0], NET_S_LINK_UP)
    struct.pack_into("<H", cfg, NET_CONFIG["max_virtqueue_pairs"][0], 1)
    struct.pack_into("<H", cfg, NET_CONFIG["mtu"][0], mtu)
    return bytes(cfg)


def header_size(negotiated: int) -> int:
    """Bytes of virtio_net_hdr in front of each frame (this device never
    offers VIRTIO_NET_F_HASH_REPORT)."""
    if has(negotiated, F_VERSION_1) or has(negotiated, NET_F_MRG_RXBUF):
        return NET_HDR
    return NET_HDR_LEGACY


class NetDevice(LoopDevice):
    rx_queue, tx_queue = RX, TX

    def __init__(self, mac: bytes = DEFAULT_MAC, mtu: int = DEFAULT_MTU,
                 bounce: BounceRegion | None = None, require_swiotlb: bool = False,
                 queue_size: int = 256, offer: int | None = None) -> None:
        offered = RING_FEATURES | NET_FEATURES | (bit(F_SWIOTLB) if bounce is not None else 0)
        if offer is not None:
            offered &= offer
        required = bit(F_VERSION_1) | (bit(F_SWIOTLB) if require_swiotlb else 0)
        super().__init__(ID_NET, num_queues=2, queue_size=queue_size,
                         rules=FeatureRules(offered=offered, required=required),
                         config=net_config(mac, mtu), bounce=bounce)
        self.mtu = mtu
        self.frames_sent = 0            # frames the driver transmitted
        self.frames_delivered = 0       # frames written into receive buffers

    # -- transmit -------------------------------------------------------------
    def handle(self, queue: int, io) -> int:
        if queue != TX:
            return 0
        if io.writable:
            self.record("violation", "device-writable buffer on transmitq1")
        hdr = header_size(self.negotiated)
        self.frames_sent += 1
        if io.readable_len < hdr + ETH_HLEN:
            self.record("violation", f"transmitted buffer of {io.readable_len} bytes holds no "
                        f"{hdr}-byte header and Ethernet header")
            self.dropped += 1
        else:
            self.enqueue(io.read(hdr, io.readable_len - hdr))
        return 0

    # -- receive --------------------------------------------------------------
    def place(self, ring, frame: bytes) -> tuple[bool, bool] | None:
        """Write ``frame`` into receive buffers behind a header and use them:
        one buffer that holds it all without MRG_RXBUF (a frame that does not
        fit is dropped, the buffer kept), as many as it takes with it."""
        hdr = header_size(self.negotiated)
        total = hdr + len(frame)
        merge = has(self.negotiated, NET_F_MRG_RXBUF)
        chains = []
        room = 0
        while room < total:
            chain = self.take(ring)
            if chain is None:
                self.held.extendleft(reversed(chains))
                return None
            if chain.readable_len:
                self.record("violation", "device-readable buffer on receiveq1")
            if not merge and chain.writable_len < total:
                self.held.appendleft(chain)
                self.dropped += 1
                self.record("dropped", f"{total}-byte frame, {chain.writable_len}-byte "
                            f"receive buffer and no VIRTIO_NET_F_MRG_RXBUF")
                return True, False
            if merge and chain.writable_len < hdr and not chains:
                self.record("violation", f"receive buffer of {chain.writable_len} bytes is "
                            f"shorter than the {hdr}-byte header")
            chains.append(chain)
            room += chain.writable_len
        header = bytearray(hdr)
        if hdr > NET_HDR_NUM_BUFFERS:
            struct.pack_into("<H", header, NET_HDR_NUM_BUFFERS, self.num_buffers(len(chains)))
        self.frames_delivered += 1
        return True, self.fill(ring, chains, bytes(header) + frame)

    def num_buffers(self, used: int) -> int:
        """What the header's num_buffers says for a frame over ``used`` buffers."""
        return used
