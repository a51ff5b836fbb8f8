"""One virtqueue under watch: wraps the device's queue (``DeviceQueue``).

At every pop the checker reads, on its own, each chain the ring core just
popped (``ring_view``), records what breaks a rule, and keeps a copy of
every descriptor and indirect table byte. Just before the device publishes
those chains as used it reads the same bytes again: any difference is a
descriptor the driver changed while the device owned it. Split rings also
have their available ``idx`` and ``flags`` watched at every pop.

The device's behaviour does not change: the wrapped queue pops, pushes and
re-arms exactly as before, and the checker only reads guest memory.
"""
from __future__ import annotations

import struct

from device_ref.checking import ring_view
from device_ref.checking.records import Log
from device_ref.ring.errors import RingError
from device_ref.ring.layout import EVENT_FLAGS_DISABLE, USED_F_NO_NOTIFY

U16 = struct.Struct("<H")


class CheckingQueue:
    def __init__(self, inner, index: int, cfg, packed: bool, event_idx: bool,
                 ctx: ring_view.Context, log: Log) -> None:
        self.inner = inner
        self.index = index
        self.cfg = cfg                 # transport QueueConfig: size, desc, driver, device
        self.packed = packed
        self.event_idx = event_idx
        self.ctx = ctx
        self.log = log
        self.pending: list[ring_view.Chain] = []
        self.last_avail_idx = self._avail_idx() if not packed else None
        # Varying notification requests (in-process runs only, see rearm):
        self.vary = False
        self.asking = True     # the driver initialised the fields to "notify me"
        self.passes = 0

    # -- what core.VirtioDevice uses ---------------------------------------
    @property
    def memory(self):
        return self.inner.memory

    @property
    def ring(self):
        return self.inner.ring

    def set_written(self, i: int, written: int) -> None:
        self.inner.set_written(i, written)

    def rearm(self) -> bool:
        """End of a processing pass. Normally: ask for the next notification,
        as the plain device does. With ``vary`` (set by an in-process caller
        that also polls, ``CheckingDevice.poll``): every other pass suppress
        notifications instead, and while asking set the field that does not
        apply to a value that would suppress them, so a driver that reads
        the wrong field is caught either way."""
        if not self.vary:
            return self.inner.rearm()
        self.passes += 1
        if self.passes % 2 == 0:
            self._write_suppress()
            self.asking = False
            return False
        more = self.inner.rearm()
        self._write_decoy()
        self.asking = True
        return more

    def _write_avail_event_behind(self) -> None:
        """Split: avail_event just behind the next index, so no new buffer
        crosses it (asks for no notification under EVENT_IDX)."""
        cfg = self.cfg
        self.inner.memory.write(cfg.device + 4 + 8 * cfg.size,
                                U16.pack((self.inner.ring.state - 1) & 0xFFFF))

    def _write_suppress(self) -> None:
        mem, cfg = self.inner.memory, self.cfg
        if self.packed:
            mem.write(cfg.device + 2, U16.pack(EVENT_FLAGS_DISABLE))
        elif self.event_idx:
            self._write_avail_event_behind()
        else:
            mem.write(cfg.device, U16.pack(USED_F_NO_NOTIFY))

    def _write_decoy(self) -> None:
        if self.packed:
            return   # packed has one flags field; nothing else applies
        if self.event_idx:
            self.inner.memory.write(self.cfg.device, U16.pack(USED_F_NO_NOTIFY))  # to be disregarded
        else:
            self._write_avail_event_behind()                                      # to be disregarded

    def _taken(self, take):
        """``take()`` from the wrapped queue, and where the ring stood before
        it; a ring error is observed (what the device had read) and raised."""
        start = self.inner.ring.state
        try:
            return start, take()
        except RingError as exc:
            self._observe(start, getattr(exc, "count", 0) + 1, None)
            raise

    def pop(self):
        start, chains = self._taken(self.inner.pop)
        if chains:
            self._observe(start, len(chains), chains)
        return chains

    @property
    def batch(self):
        return self.inner.batch

    @property
    def loops(self):
        return self.inner.loops

    def pop_records(self) -> int:
        """``DeviceQueue.pop_records``, observed like ``pop``: the records
        stay in ``batch``."""
        return len(self.pop())

    def push(self, coalesce: bool = False) -> bool:
        self._compare()
        return self.inner.push(coalesce)

    def pop_one(self):
        """``DeviceQueue.pop_one``, observed like ``pop``."""
        start, chain = self._taken(self.inner.pop_one)
        if chain is not None:
            self._observe(start, 1, [chain])
        return chain

    def push_used(self, items: list[tuple[int, int]]) -> bool:
        """``DeviceQueue.push_used``: the chains named are compared again first."""
        ids = {i for i, _n in items}
        mine = [c for c in self.pending if (c.id if self.packed else c.head) in ids]
        self.pending = [c for c in self.pending if c not in mine]
        keep, self.pending = self.pending, mine
        self._compare()
        self.pending = keep
        return self.inner.push_used(items)

    # -- observation -----------------------------------------------------------
    def _read(self, addr: int, length: int) -> bytes:
        return self.inner.memory.read(addr, length)

    def _avail_idx(self) -> int | None:
        try:
            return U16.unpack(self._read(self.cfg.driver + 2, 2))[0]
        except Exception:  # noqa: BLE001
            return None

    def _observe_split_avail(self) -> None:
        try:
            flags, idx = struct.unpack("<HH", self._read(self.cfg.driver, 4))
        except Exception:  # noqa: BLE001
            return
        allowed = (0,) if self.event_idx else (0, 1)
        if flags not in allowed:
            self.log.add("driver_queues avail_flags_valid", f"queue {self.index}: available "
                         f"ring flags {flags:#x} (allowed: {', '.join(map(str, allowed))})",
                         queue=self.index, flags=flags, event_idx=self.event_idx)
        last = self.last_avail_idx
        if last is not None and idx != last:
            moved = (idx - last) & 0xFFFF
            if moved > self.cfg.size:
                self.log.add("driver_queues avail_idx_monotonic", f"queue {self.index}: "
                             f"available idx went from {last} to {idx}", queue=self.index,
                             before=last, after=idx, queue_size=self.cfg.size)
        self.last_avail_idx = idx

    def _observe(self, start: int, count: int, chains) -> None:
        counts = self.log.queue(self.index)
        if not self.packed:
            self._observe_split_avail()
        pos, wrap = (start & 0x7FFF, start >> 15) if self.packed else (start, 0)
        for k in range(count):
            if self.packed:
                chain = ring_view.parse_packed(self._read, self.cfg.desc, pos, wrap, self.ctx)
                pos, wrap = chain.next_pos
            else:
                slot = self.cfg.driver + 4 + 2 * ((start + k) % self.cfg.size)
                try:
                    head = U16.unpack(self._read(slot, 2))[0]
                except Exception:  # noqa: BLE001
                    return
                if head >= self.cfg.size:
                    self.log.add("driver_chains bounded", f"queue {self.index}: available "
                                 f"ring entry {(start + k) % self.cfg.size} names descriptor "
                                 f"{head} of a table of {self.cfg.size}", queue=self.index,
                                 head=head)
                    return
                chain = ring_view.parse_split(self._read, self.cfg.desc, head, self.ctx)
            if chains is not None and k < len(chains):
                expect = chains[k].id
                got = chain.id if self.packed else chain.head
                if got != expect:
                    # The driver rewrote the ring between the ring core's read and
                    # ours: the bytes no longer describe what the device popped.
                    self.log.add("driver_queues available_stay_put", f"queue {self.index}: "
                                 f"chain read as id {got} right after the device popped id "
                                 f"{expect}", queue=self.index, popped=expect, reread=got)
            for p in chain.problems:
                self.log.add(p.property, f"queue {self.index}: {p.detail}",
                             queue=self.index, **p.evidence)
            for n in chain.notes:
                self.log.note(f"queue {self.index}: {n}")
            if self.log.addresses is not None:
                for addr, length in chain.tables:
                    self.log.addresses.add(addr, length, "indirect table")
                for d in chain.descs:
                    self.log.addresses.add(d.addr, d.len, "buffer")
            counts.chains += 1
            counts.descriptors += len(chain.descs)
            counts.indirect_chains += chain.indirect
            counts.longest_chain = max(counts.longest_chain, len(chain.descs))
            if chains is not None and k < len(chains):
                self.pending.append(chain)

    def _compare(self) -> None:
        counts = self.log.queue(self.index)
        for chain in self.pending:
            counts.compared += 1
            for addr, before in chain.snapshot:
                try:
                    now = self._read(addr, len(before))
                except Exception:  # noqa: BLE001
                    continue
                if now == before:
                    continue
                at = next(i for i in range(len(before)) if now[i] != before[i]) // 16 * 16
                what = {"queue": self.index, "head": chain.head, "addr": addr + at,
                        "before": before[at:at + 16].hex(), "after": now[at:at + 16].hex()}
                self.log.add("driver_queues available_stay_put", f"queue {self.index}: "
                             f"descriptor bytes at {addr + at:#x} changed while the device "
                             f"held the chain at {chain.head}", **what)
                if self.packed:
                    self.log.add("driver_queues reuses_only_used", f"queue {self.index}: "
                                 f"slot at {addr + at:#x} rewritten before the device marked "
                                 f"it used", **what)
        self.pending.clear()

    # -- notifications ------------------------------------------------------------
    def suppressed(self) -> bool:
        """Whether the device currently asks not to be notified."""
        if self.vary:
            return not self.asking
        try:
            if self.packed:
                return U16.unpack(self._read(self.cfg.device + 2, 2))[0] == EVENT_FLAGS_DISABLE
            if self.event_idx:
                return False   # avail_event is judged against the index, below
            return bool(U16.unpack(self._read(self.cfg.device, 2))[0] & USED_F_NO_NOTIFY)
        except Exception:  # noqa: BLE001
            return False

    def unnotified(self) -> int:
        """Buffers the driver made available that the device has not seen
        (it consumes everything at each kick, so these came after the last one)."""
        state = self.inner.ring.state
        try:
            if self.packed:
                pos, wrap = state & 0x7FFF, state >> 15
                flags = U16.unpack(self._read(self.cfg.desc + 16 * pos + 14, 2))[0]
                return int(ring_view.packed_available(flags, wrap))
            return (self._avail_idx() - state) & 0xFFFF
        except Exception:  # noqa: BLE001
            return 0
