"""Reference devices in checking mode: the device judges its driver.

``CheckingDevice`` is a mixin over a reference device type. It sees what a
device can see of its driver (feature acceptance, status writes, queue
placement, kicks, every chain, every request) and records in ``check_log``
each rule the driver breaks, keyed by the expectation the vectors use; the
device itself carries on exactly as the plain reference device would.
``CheckingBlkDevice`` adds the block request rules.

``finish()`` is for a caller that knows the driver is idle (the in-process
runner, a test): buffers made available but never notified while the
device asked for notifications are judged then. Over vhost-user the
back-end cannot know that (a kick may still be on its way when the
front-end stops the rings), so ``serve --check-driver`` does not call it.
"""
from __future__ import annotations

import struct

from device_ref.checking import ring_view
from device_ref.checking.queue_check import CheckingQueue
from device_ref.checking.records import Log
from device_ref.device.features import (ACKNOWLEDGE, DRIVER, DRIVER_OK, F_EVENT_IDX, F_IN_ORDER,
                                        F_INDIRECT_DESC, F_RING_PACKED, F_SWIOTLB, F_VERSION_1,
                                        FAILED, FEATURES_OK, has)
from device_ref.devices.blk import (CFG_SEG_MAX, F_SEG_MAX, HEADER, SECTOR, T_FLUSH, T_GET_ID,
                                    T_IN, T_OUT, BlkDevice)
from device_ref.devices.console import ConsoleDevice
from device_ref.devices.net import TX, NetDevice, header_size
from device_ref.devices.rng import RngDevice
from device_ref.virtio_constants import (ETH_HLEN, NET_F_CSUM, NET_F_MRG_RXBUF,
                                         NET_HDR_NUM_BUFFERS)
from device_ref.ring.layout import ring_areas

DRIVER_BITS = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | FAILED
PREREQUISITE = {DRIVER: ACKNOWLEDGE, FEATURES_OK: DRIVER, DRIVER_OK: FEATURES_OK}
# Names for the features this module speaks about in its evidence.
FEATURE_NAMES = {F_VERSION_1: "VIRTIO_F_VERSION_1", F_SWIOTLB: "VIRTIO_F_SWIOTLB"}
# Block request types that carry segments (facts): discard, write zeroes, secure erase.
T_DISCARD, T_WRITE_ZEROES, T_SECURE_ERASE = 11, 13, 14
SEGMENT = struct.Struct("<QII")   # sector, num_sectors, flags
ID_BYTES = 20


def _bits(mask: int) -> list[int]:
    return [b for b in range(mask.bit_length()) if mask >> b & 1]


class CheckingDevice:
    """Mixin: put it before a ``VirtioDevice`` subclass."""

    writable_only = False   # the entropy device's queue takes device-writable buffers only

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.check_log = Log()
        self.status_writes: list[int] = []
        self._opened_since_reset: set[int] = set()
        self.on_reset = None    # called after each reset (serve writes its report then)
        self.seen_features = 0  # the last features that reached FEATURES_OK (kept past resets)
        # In-process only: alternate asking for and suppressing notifications
        # (the caller must then call poll(), since a quiet driver sends none).
        self.vary_notifications = False

    # -- what the checker knows -------------------------------------------------
    @property
    def layout(self) -> str:
        return "packed" if has(self.negotiated or self.seen_features, F_RING_PACKED) else "split"

    def data_limit(self) -> int | None:
        return None

    # -- status and features ----------------------------------------------------
    def write_status(self, value: int) -> None:
        self.status_writes.append(value)
        log = self.check_log
        before = self.status
        if value:
            cleared = before & DRIVER_BITS & ~value
            if cleared:
                log.add("status_never_cleared", f"status write {value:#x} clears {cleared:#x}",
                        before=before, written=value)
            added = value & DRIVER_BITS & ~before
            have = before
            for b in (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK):
                if added & b:
                    need = PREREQUISITE.get(b, 0)
                    if need and not have & need:
                        log.add("status_sequence", f"status bit {b:#x} set before {need:#x}",
                                before=before, written=value)
                    have |= b
            if added & FEATURES_OK:
                self._judge_features(self.driver_features())
        super().write_status(value)
        if self.status & FEATURES_OK:
            self.seen_features = self.negotiated

    def _judge_features(self, accepted: int) -> None:
        offered = self.device_features()
        extra = accepted & ~offered
        if extra:
            self.check_log.add("accepted_subset", f"driver accepted bits {_bits(extra)} the "
                               f"device did not offer", accepted=hex(accepted),
                               offered=hex(offered), not_offered=_bits(extra))
        if self.pool_only and not has(accepted, F_SWIOTLB):
            self.check_log.note("VIRTIO_F_SWIOTLB not accepted: buffers and rings are judged "
                                "against the restricted DMA pool the platform describes")
        for bit, level in ((F_VERSION_1, "must"), (F_SWIOTLB, "should")):
            if has(offered, bit) and not has(accepted, bit):
                name = FEATURE_NAMES[bit]
                self.check_log.add(f"accepted has {name}", f"{name} offered, not accepted",
                                   level=level, accepted=hex(accepted), offered=hex(offered))

    def reset(self) -> None:
        self._opened_since_reset.clear()
        super().reset()
        if self.on_reset is not None:
            self.on_reset()

    # -- queues -------------------------------------------------------------------
    def judged_region(self):
        """The region the driver's buffers and rings must lie in: the bounce
        region once VIRTIO_F_SWIOTLB is negotiated, and always for a device
        behind a restricted DMA pool (restricted_pool.py)."""
        if self.swiotlb or self.pool_only:
            return self.bounce_region()
        return None

    def _context(self, index: int, size: int) -> ring_view.Context:
        region = self.judged_region()
        return ring_view.Context(size=size, indirect=has(self.negotiated, F_INDIRECT_DESC),
                                 in_order=has(self.negotiated, F_IN_ORDER), region=region,
                                 writable_only=self.writable_only, data_limit=self.data_limit())

    def _open(self, index: int, q) -> None:
        cfg = q.config
        first = index not in self._opened_since_reset
        self._opened_since_reset.add(index)
        areas = ring_areas(self.layout, cfg.size)
        for name, spec in (("desc", areas.desc), ("driver", areas.driver),
                           ("device", areas.device)):
            addr = getattr(cfg, name)
            if addr % spec.align:
                self.check_log.add("driver_queues aligned", f"queue {index}: {name} area at "
                                   f"{addr:#x} is not aligned to {spec.align}", queue=index,
                                   area=name, addr=addr, align=spec.align)
            region = self.judged_region()
            if self.pool_only:
                self.check_log.addresses_against(region).add(addr, spec.size, f"{name} area")
            if region is not None and not region.contains(addr, spec.size):
                self.check_log.add("addresses inside_region", f"queue {index}: {name} area "
                                   f"{addr:#x}+{spec.size} lies outside the bounce region",
                                   queue=index, area=name, addr=addr, len=spec.size,
                                   what="ring")
        if first and self.memory is not None:
            self._first_look(index, cfg, q.base)
        super()._open(index, q)
        if q.ring is not None:
            q.ring = CheckingQueue(q.ring, index, cfg, self.layout == "packed",
                                   has(self.negotiated, F_EVENT_IDX),
                                   self._context(index, cfg.size), self.check_log)
            q.ring.vary = self.vary_notifications

    def _first_look(self, index: int, cfg, base: int | None) -> None:
        """The rings as the driver left them when it set DRIVER_OK."""
        try:
            if self.layout == "split":
                used_flags = struct.unpack("<H", self.memory.read(cfg.device, 2))[0]
                if used_flags != 0 and not base:
                    self.check_log.add("driver_queues used_flags_initialised", f"queue {index}: "
                                       f"used ring flags {used_flags:#x} at DRIVER_OK",
                                       queue=index, flags=used_flags)
                idx = struct.unpack("<H", self.memory.read(cfg.driver + 2, 2))[0]
                if idx != (base or 0):
                    self.check_log.note(f"queue {index}: {(idx - (base or 0)) & 0xFFFF} buffers "
                                        f"were available when the device started")
        except Exception:  # noqa: BLE001 - rings outside memory: the device reports that itself
            return

    # -- kicks ---------------------------------------------------------------------
    def notify(self, queue: int) -> None:
        counts = self.check_log.queue(queue)
        counts.kicks += 1
        if not self.status & DRIVER_OK:
            self.check_log.add("notify_before_driver_ok", f"queue {queue} notified with status "
                               f"{self.status:#x}", queue=queue, status=self.status)
        elif 0 <= queue < len(self.queues):
            ring = self.queues[queue].ring
            if isinstance(ring, CheckingQueue) and ring.suppressed():
                counts.kicks_while_suppressed += 1
                self.check_log.add("driver_queues quiet_when_suppressed", f"queue {queue} "
                                   f"notified while the device suppressed notifications",
                                   level="should", queue=queue)
        super().notify(queue)

    def poll(self, queue: int) -> None:
        """Look at ``queue`` without a notification (for a caller whose driver
        cannot have a kick in flight): buffers waiting there while the device
        asked to be notified were not notified; then process them."""
        ring = self.queues[queue].ring if 0 <= queue < len(self.queues) else None
        if isinstance(ring, CheckingQueue) and self._running():
            self._judge_unnotified(queue, ring)
        super().notify(queue)

    def finish(self) -> None:
        """Judge what needs an idle driver: buffers left without a notification."""
        for i, q in enumerate(self.queues):
            if isinstance(q.ring, CheckingQueue):
                self._judge_unnotified(i, q.ring)

    def _judge_unnotified(self, queue: int, ring: CheckingQueue) -> None:
        """Buffers waiting on ``queue`` that the driver never notified,
        while the device asked to be notified, break notifies_when_asked."""
        left = ring.unnotified()
        if left and not ring.suppressed():
            self.check_log.add("driver_queues notifies_when_asked", f"queue {queue}: {left} "
                               f"buffer(s) made available without a notification while "
                               f"the device asked for one", queue=queue, buffers=left)


class CheckingRngDevice(CheckingDevice, RngDevice):
    writable_only = True


class CheckingBlkDevice(CheckingDevice, BlkDevice):
    def data_limit(self) -> int | None:
        if not has(self.negotiated, F_SEG_MAX):
            return None
        return struct.unpack("<I", self.config.read(CFG_SEG_MAX, 4))[0]

    def handle(self, queue: int, io) -> int:
        self._judge_request(queue, io)
        return super().handle(queue, io)

    def _judge_request(self, queue: int, io) -> None:
        header = io.read(0, HEADER.size)
        if len(header) < HEADER.size or io.writable_len == 0:
            return   # the device reports these itself (status byte or header missing)
        rtype, _reserved, sector = HEADER.unpack(header)
        log = self.check_log
        data_out = io.readable_len - HEADER.size
        data_in = io.writable_len - 1
        ev = {"queue": queue, "type": rtype, "sector": sector}
        if rtype in (T_IN, T_OUT):
            n = data_in if rtype == T_IN else data_out
            if log.addresses is not None:
                log.addresses.data_bytes += n
            if n % SECTOR:
                log.add("blk_requests io_multiple_of_512", f"{'read' if rtype == T_IN else 'write'}"
                        f" of {n} bytes", bytes=n, **ev)
            cap = self.capacity
            if sector + (n + SECTOR - 1) // SECTOR > cap:
                log.add("blk_requests within_capacity", f"{'read' if rtype == T_IN else 'write'}"
                        f" of sectors {sector}..{sector + (n + SECTOR - 1) // SECTOR - 1}, "
                        f"capacity {cap}", bytes=n, capacity=cap, **ev)
        elif rtype == T_FLUSH:
            if sector != 0:
                log.add("blk_requests flush_sector_zero", f"flush with sector {sector}", **ev)
            if data_out or data_in:
                log.add("blk_requests flush_no_data", f"flush carrying {data_out} readable and "
                        f"{data_in} writable data bytes", level="should", **ev)
        elif rtype == T_GET_ID:
            if data_in != ID_BYTES:
                log.add("blk_requests get_id_20_bytes", f"GET_ID with {data_in} data bytes",
                        bytes=data_in, **ev)
        elif rtype in (T_DISCARD, T_WRITE_ZEROES, T_SECURE_ERASE):
            if data_out % SEGMENT.size:
                log.add("blk_requests segment_data_whole", f"{data_out} bytes of segments",
                        bytes=data_out, **ev)
            if rtype == T_DISCARD:
                body = io.read(HEADER.size, data_out - data_out % SEGMENT.size)
                for k in range(len(body) // SEGMENT.size):
                    _s, _n, flags = SEGMENT.unpack_from(body, SEGMENT.size * k)
                    if flags & 1:
                        log.add("blk_requests discard_unmap_clear", f"discard segment {k} has "
                                f"unmap set", segment=k, flags=flags, **ev)


# Host segmentation features (HOST_TSO4, HOST_TSO6, HOST_ECN, HOST_UFO,
# HOST_USO): one of them lets a driver set gso_type; this device offers none.
NET_HOST_GSO = (11, 12, 13, 14, 56)
# Without MRG_RXBUF and receive segmentation, a receive buffer should hold a
# 1514-byte frame and the header.
NET_FULL_FRAME = 1514


class ReceiveWaits:
    """Mixin for the looping checking devices (net, console): buffers wait
    on the receive queue until something comes, by design, so they are no
    sign of a missing notification (notifies_when_asked is judged on the
    transmit queue only); each receive buffer the device takes off the ring
    is judged once, by ``_judge_rx_buffer``."""

    def _judge_unnotified(self, queue: int, ring: CheckingQueue) -> None:
        if queue != self.rx_queue:
            super()._judge_unnotified(queue, ring)

    def take(self, ring):
        fresh = not self.held
        chain = super().take(ring)
        if chain is not None and fresh:
            self._judge_rx_buffer(chain)
        return chain

    def _judge_rx_buffer(self, chain) -> None:
        raise NotImplementedError


class CheckingNetDevice(ReceiveWaits, CheckingDevice, NetDevice):
    """Judges the frames a driver sends and the receive buffers it offers."""

    def handle(self, queue: int, io) -> int:
        if queue == TX:
            self._judge_frame(io)
        return super().handle(queue, io)

    def _judge_frame(self, io) -> None:
        log = self.check_log
        n = header_size(self.negotiated)
        hdr = io.read(0, n)
        if io.readable_len < n + ETH_HLEN:
            log.add("net_frames tx_header_present", f"transmit buffer of {io.readable_len} "
                    f"bytes; the header alone is {n}", bytes=io.readable_len, header=n)
            return
        flags, gso = hdr[0], hdr[1]
        if flags and not has(self.negotiated, NET_F_CSUM):
            log.add("net_frames tx_flags_zero", f"frame sent with header flags {flags:#x} "
                    f"and VIRTIO_NET_F_CSUM not negotiated", flags=flags)
        if gso and not any(has(self.negotiated, b) for b in NET_HOST_GSO):
            log.add("net_frames tx_gso_none", f"frame sent with gso_type {gso} and no host "
                    f"segmentation feature negotiated", gso_type=gso)
        if n > NET_HDR_NUM_BUFFERS:
            nb = struct.unpack_from("<H", hdr, NET_HDR_NUM_BUFFERS)[0]
            if nb:
                log.add("net_frames tx_num_buffers_zero", f"frame sent with num_buffers {nb}",
                        num_buffers=nb)

    def _judge_rx_buffer(self, chain) -> None:
        room = chain.writable_len
        n = header_size(self.negotiated)
        if has(self.negotiated, NET_F_MRG_RXBUF):
            if room < n:
                self.check_log.add("net_frames rx_buffer_holds_header", f"receive buffer of "
                                   f"{room} bytes, header {n}", bytes=room, header=n)
        elif room < n + NET_FULL_FRAME:
            self.check_log.add("net_frames rx_buffer_full_size", f"receive buffer of {room} "
                               f"bytes without VIRTIO_NET_F_MRG_RXBUF", level="should",
                               bytes=room, wanted=n + NET_FULL_FRAME)


class CheckingConsoleDevice(ReceiveWaits, CheckingDevice, ConsoleDevice):
    """Judges the direction of the buffers on port 0's two queues."""

    def handle(self, queue: int, io) -> int:
        if queue == self.tx_queue and io.writable_len:
            self.check_log.add("console_queues tx_readable_only", f"transmitq buffer with "
                               f"{io.writable_len} device-writable bytes", queue=queue,
                               writable=io.writable_len)
        return super().handle(queue, io)

    def _judge_rx_buffer(self, chain) -> None:
        if chain.readable_len:
            self.check_log.add("console_queues rx_writable_only", f"receiveq buffer with "
                               f"{chain.readable_len} device-readable bytes",
                               queue=self.rx_queue, readable=chain.readable_len)


def checking_device(device_type: str, *args, **kwargs):
    """A checking device of ``device_type`` (blk, rng, net or console) built like
    the plain one."""
    cls = {"blk": CheckingBlkDevice, "rng": CheckingRngDevice, "net": CheckingNetDevice,
           "console": CheckingConsoleDevice}.get(device_type)
    if cls is None:
        raise ValueError(f"no checking device for type {device_type!r} (blk, rng, net, "
                         f"console)")
    return cls(*args, **kwargs)


# The expectation keys this checker judges. Others the vectors use are left
# out on purpose (docs/driver-check.md says why): notification_data_matches
# needs VIRTIO_F_NOTIFICATION_DATA (not offered), segments_within_limits needs
# discard or write zeroes (not offered).
CHECKED_PROPERTIES = frozenset({
    "accepted_subset", "addresses inside_region",
    "driver_queues aligned", "driver_queues avail_idx_monotonic",
    "driver_queues used_flags_initialised", "driver_queues avail_flags_valid",
    "driver_queues notifies_when_asked", "driver_queues quiet_when_suppressed",
    "driver_queues reuses_only_used",
    "driver_queues available_stay_put",
    "driver_chains readable_first", "driver_chains bounded", "driver_chains within_queue_size",
    "driver_chains within_device_limit", "driver_chains indirect_only_if_negotiated",
    "driver_chains no_nested_indirect", "driver_chains no_indirect_with_next",
    "driver_chains indirect_only_write_flag", "driver_chains in_order_next",
    "driver_chains head_exposed_last", "driver_chains writable_only",
    "blk_requests within_capacity", "blk_requests flush_sector_zero",
    "blk_requests flush_no_data", "blk_requests io_multiple_of_512",
    "blk_requests get_id_20_bytes", "blk_requests segment_data_whole",
    "blk_requests discard_unmap_clear",
    "net_frames tx_header_present", "net_frames tx_num_buffers_zero", "net_frames tx_flags_zero",
    "net_frames tx_gso_none", "net_frames rx_buffer_holds_header",
    "net_frames rx_buffer_full_size",
    "console_queues rx_writable_only", "console_queues tx_readable_only",
})
