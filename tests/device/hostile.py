"""Hostile device doubles: they take the driver's buffers off the ring like
a real device, then write bad used entries (or misbehave otherwise)."""
from __future__ import annotations

import struct

from device_ref.device.features import F_RING_PACKED, has
from device_ref.devices.blk import BlkDevice
from device_ref.ring import DESC_F_AVAIL, DESC_F_USED, DESC_F_WRITE


class HostileBlk(BlkDevice):
    def __init__(self, *args, mode: str = "", **kw) -> None:
        super().__init__(*args, **kw)
        self.mode = mode
        self.evil = True
        self.driver = None            # set by the test, to look at the driver at reset time
        self.held_at_reset: list[int] = []
        self._gen_reads = 0

    # -- what the driver saw when it reset us ------------------------------
    def reset(self) -> None:
        if self.driver is not None:
            self.held_at_reset.append(self.driver.dma.in_use)
        super().reset()

    def config_generation(self) -> int:
        if self.evil and self.mode == "config_unstable":
            self._gen_reads += 1
            return self._gen_reads & 0xFF
        return super().config_generation()

    def notify(self, queue: int) -> None:
        if not self.evil or not self._running():
            return super().notify(queue)
        q = self.queues[queue]
        state = q.ring.ring.state      # packed: where the next chain starts, wrap in bit 15
        chains = q.ring.pop()          # the device now owns these buffers
        packed = has(self.negotiated, F_RING_PACKED)
        cfg = q.config
        mem = self.memory
        m = self.mode
        if m == "silent":
            return
        if m == "storm":
            for _ in range(5000):
                self._host.queue_interrupt(queue)
            return
        if m == "config_storm":
            for _ in range(5000):
                self._host.config_interrupt()
            return
        if m == "needs_reset":
            self.needs_reset("hostile double gives up")
            return
        c = chains[0]
        ident, ln = c.id, 1
        if m == "bad_id":
            ident = (c.id + 5) % cfg.size  # never made available
        elif m == "len_too_big":
            ln = c.writable_len + 100
        elif m == "no_status":
            ln = 0                      # completes without writing anything
        if packed:
            pos, wrap = state & 0x7FFF, state >> 15
            flags = DESC_F_WRITE | (DESC_F_AVAIL | DESC_F_USED if wrap else 0)
            other = 0 if wrap else DESC_F_AVAIL | DESC_F_USED
            if m == "wrong_wrap":
                flags = DESC_F_WRITE | other     # AVAIL == USED, but the other lap's value
            elif m == "bad_flags":
                # AVAIL != USED the other way round from an available descriptor
                flags = DESC_F_WRITE | (DESC_F_USED if wrap else DESC_F_AVAIL)
            mem.write(cfg.desc + 16 * pos + 8, struct.pack("<IHH", ln, ident, flags))
        else:
            used_idx = struct.unpack("<H", mem.read(cfg.device + 2, 2))[0]
            slot = used_idx % cfg.size
            mem.write(cfg.device + 4 + 8 * slot, struct.pack("<II", ident, ln))
            step = 6 if m == "idx_jump" else 1
            mem.write(cfg.device + 2, struct.pack("<H", (used_idx + step) & 0xFFFF))
        self._host.queue_interrupt(queue)
