"""Hostile rings: a driver side of a virtqueue where every field is the caller's.

The reference driver (``driver/core.py``) never writes a malformed ring. A
conformance runner and the device tests must, to see what a device does with
one, and must read back exactly what a device wrote. This module is the one
writer both use:

- ``RawSplit`` and ``RawPacked`` write descriptors, available entries and
  event-suppression fields with arbitrary values (addresses outside memory,
  loops, bad flags, wrong wrap bits) at known guest addresses and read the
  device's used entries without judging them (``VirtioDriver.take_raw``
  hands a queue over to them);
- ``HQueue`` builds on the same descriptor type to keep buffers in flight
  by token and judge used entries as a strict driver would: an id never
  made available, a used length beyond the buffer, a used entry on a slot
  never offered raise ``RingViolation``; a full queue raises ``QueueFull``.
"""
from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass, field

from device_ref.ring.layout import (DESC_F_AVAIL, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_USED,
                                    DESC_F_WRITE, PACKED, SPLIT, QueueConfig, ring_areas)
from device_ref.ring.memory import store_u16

_DESC = struct.Struct("<QIHH")   # split: addr, len, flags, next; packed: addr, len, id, flags
_U16 = struct.Struct("<H")
_USED = struct.Struct("<II")
DESC_FLAGS = {"next": DESC_F_NEXT, "write": DESC_F_WRITE, "indirect": DESC_F_INDIRECT}


class RingOutcome(Exception):
    """What a hostile-ring reader saw: ``observed`` versus ``expected``."""

    def __init__(self, observed: str, expected: str = "") -> None:
        super().__init__(observed)
        self.observed = observed
        self.expected = expected
        self.critical = False


class RingViolation(RingOutcome):
    """The device broke a ring rule (a used entry it had no right to write)."""


class QueueFull(RingOutcome):
    """No room for another chain: the device has not returned buffers."""


class ChainTooLong(RingOutcome):
    """The caller asked for a chain longer than the queue (nothing written)."""


@dataclass(frozen=True)
class Desc:
    addr: int
    len: int
    flags: int = 0
    next: int = 0           # split: next index; packed: buffer id

    def pack_split(self) -> bytes:
        return _DESC.pack(self.addr & (2**64 - 1), self.len & 0xFFFFFFFF, self.flags & 0xFFFF,
                          self.next & 0xFFFF)

    def pack_packed(self) -> bytes:
        return _DESC.pack(self.addr & (2**64 - 1), self.len & 0xFFFFFFFF, self.next & 0xFFFF,
                          self.flags & 0xFFFF)


class RawSplit:
    def __init__(self, memory, cfg: QueueConfig) -> None:
        self.mem = memory
        self.cfg = cfg
        self.size = cfg.size
        self.avail_idx = _U16.unpack(memory.read(cfg.driver + 2, 2))[0]
        self.last_used = _U16.unpack(memory.read(cfg.device + 2, 2))[0]

    def write_desc(self, index: int, d: Desc) -> None:
        self.mem.write(self.cfg.desc + 16 * index, d.pack_split())

    def write_table(self, addr: int, descs: list[Desc]) -> None:
        """An indirect table at ``addr``."""
        self.mem.write(addr, b"".join(d.pack_split() for d in descs))

    def publish(self, heads: list[int], idx: int | None = None) -> None:
        """Put ``heads`` in the available ring, then set avail idx (default: advanced by len(heads))."""
        for k, h in enumerate(heads):
            slot = (self.avail_idx + k) % self.size
            self.mem.write(self.cfg.driver + 4 + 2 * slot, _U16.pack(h & 0xFFFF))
        self.avail_idx = ((self.avail_idx + len(heads)) if idx is None else idx) & 0xFFFF
        self.mem.write(self.cfg.driver + 2, _U16.pack(self.avail_idx))

    def set_avail_flags(self, flags: int) -> None:
        self.mem.write(self.cfg.driver, _U16.pack(flags))

    def set_used_event(self, value: int) -> None:
        self.mem.write(self.cfg.driver + 4 + 2 * self.size, _U16.pack(value & 0xFFFF))

    def used_idx(self) -> int:
        return _U16.unpack(self.mem.read(self.cfg.device + 2, 2))[0]

    def used_flags(self) -> int:
        return _U16.unpack(self.mem.read(self.cfg.device, 2))[0]

    def avail_event(self) -> int:
        return _U16.unpack(self.mem.read(self.cfg.device + 4 + 8 * self.size, 2))[0]

    def take_used(self) -> list[tuple[int, int]]:
        """Every (id, len) the device published since the last call, unjudged."""
        out = []
        idx = self.used_idx()
        while self.last_used != idx:
            slot = self.last_used % self.size
            out.append(_USED.unpack(self.mem.read(self.cfg.device + 4 + 8 * slot, 8)))
            self.last_used = (self.last_used + 1) & 0xFFFF
        return out


class RawPacked:
    def __init__(self, memory, cfg: QueueConfig) -> None:
        self.mem = memory
        self.cfg = cfg
        self.size = cfg.size
        self.avail_pos, self.avail_wrap = 0, 1
        self.used_pos, self.used_wrap = 0, 1

    def avail_flags(self, flags: int, wrap: int | None = None) -> int:
        """``flags`` plus the AVAIL/USED bits that mark a descriptor available in lap ``wrap``."""
        w = self.avail_wrap if wrap is None else wrap
        return (flags & ~(DESC_F_AVAIL | DESC_F_USED)) | (DESC_F_AVAIL if w else DESC_F_USED)

    def write_desc(self, pos: int, d: Desc) -> None:
        """Write the descriptor at ring position ``pos`` with flags exactly as given."""
        base = self.cfg.desc + 16 * pos
        self.mem.write(base, struct.pack("<QI", d.addr & (2**64 - 1), d.len & 0xFFFFFFFF))
        self.mem.write(base + 12, _U16.pack(d.next & 0xFFFF))
        self.mem.write(base + 14, _U16.pack(d.flags & 0xFFFF))  # flags last: publishes

    def write_table(self, addr: int, descs: list[Desc]) -> None:
        self.mem.write(addr, b"".join(d.pack_packed() for d in descs))

    def add(self, descs: list[Desc], mark_available: bool = True) -> None:
        """Write a chain at the current avail position; flags get this lap's
        AVAIL/USED bits when ``mark_available`` (else exactly as given)."""
        for d in descs:
            flags = self.avail_flags(d.flags) if mark_available else d.flags
            self.write_desc(self.avail_pos, Desc(d.addr, d.len, flags, d.next))
            self.avail_pos += 1
            if self.avail_pos == self.size:
                self.avail_pos, self.avail_wrap = 0, self.avail_wrap ^ 1

    def read_desc(self, pos: int) -> Desc:
        addr, ln, ident, flags = _DESC.unpack(self.mem.read(self.cfg.desc + 16 * pos, 16))
        return Desc(addr, ln, flags, ident)

    def set_driver_event(self, off_wrap: int, flags: int) -> None:
        self.mem.write(self.cfg.driver, _U16.pack(off_wrap) + _U16.pack(flags))

    def device_event(self) -> tuple[int, int]:
        off_wrap, flags = struct.unpack("<HH", self.mem.read(self.cfg.device, 4))
        return off_wrap, flags

    def take_used(self, ndesc: dict[int, int] | None = None) -> list[tuple[int, int, int]]:
        """(id, len, flags) of each used descriptor in order; ``ndesc`` maps
        buffer id to its chain length so the scan skips whole chains."""
        out = []
        while True:
            d = self.read_desc(self.used_pos)
            a, u = bool(d.flags & DESC_F_AVAIL), bool(d.flags & DESC_F_USED)
            if not (a == u == bool(self.used_wrap)):
                return out
            out.append((d.next, d.len, d.flags))
            step = (ndesc or {}).get(d.next, 1)
            self.used_pos += step
            if self.used_pos >= self.size:
                self.used_pos -= self.size
                self.used_wrap ^= 1
            if len(out) >= self.size:
                return out


@dataclass
class Buf:
    id: int                  # split: head index; packed: buffer id
    token: int
    slots: list[int]         # descriptor slots taken in the ring
    writable_len: int
    seq: int                 # order in which buffers were made available


@dataclass
class Used:
    token: int
    length: int
    seq: int
    implied: bool = False    # IN_ORDER: completed by a later buffer's used entry


@dataclass
class HQueue:
    mem: object
    cfg: QueueConfig
    index: int
    inflight: "OrderedDict[int, Buf]" = field(default_factory=OrderedDict)
    seq: int = 0
    # the order buffers came back in, as counters (no record per buffer):
    # how many were used, the last one's sequence number, and the first
    # pair used out of the order they were made available in
    used_count: int = 0
    last_used_seq: int = -1
    order_break: tuple[int, int] | None = None    # (earlier seq, later seq) used after it

    def __post_init__(self) -> None:
        areas = ring_areas(self.cfg.layout, self.cfg.size)
        for addr, spec in ((self.cfg.desc, areas.desc), (self.cfg.driver, areas.driver),
                           (self.cfg.device, areas.device)):
            self.mem.write(addr, bytes(spec.size))
        self.size = self.cfg.size
        self.packed = self.cfg.layout == PACKED
        # direct views of the three areas: the hot path skips the map lookup
        self.dview = self.mem.translate(self.cfg.desc, areas.desc.size)
        self.drv_view = self.mem.translate(self.cfg.driver, areas.driver.size)
        self.dev_view = self.mem.translate(self.cfg.device, areas.device.size)
        self.next_slot = 0           # split: next descriptor index to hand out
        self.free_slots = set(range(self.size))
        self.avail_idx = 0           # split
        self.last_used = 0           # split
        self.avail_pos, self.avail_wrap = 0, 1      # packed
        self.used_pos, self.used_wrap = 0, 1        # packed
        self.free_ids = list(range(self.size))      # packed buffer ids
        self.dead: dict[int, int] = {}              # packed: slot -> slots never offered
        self.split_written: dict[int, bytes] = {}   # split: slot -> bytes we wrote
        self.tables: dict[int, bytes] = {}          # indirect tables we wrote
        self.used_snapshots: dict[int, bytes] = {}  # packed: used slots, as first seen

    # ------------------------------------------------------------------ writing
    def _slots(self, n: int) -> list[int]:
        """The next n descriptor slots, in ring order (IN_ORDER wants that)."""
        if n > self.size:
            raise ChainTooLong(f"a chain of {n} descriptors does not fit a queue of {self.size}")
        if self.packed:
            slots = [(self.avail_pos + i) % self.size for i in range(n)]
        else:
            slots = [(self.next_slot + i) % self.size for i in range(n)]
        if any(s not in self.free_slots for s in slots):
            raise QueueFull(f"queue {self.index} is full: the device has not returned "
                         f"{len(self.inflight)} buffer(s)", "buffers returned")
        return slots

    def write_table(self, addr: int, descs: list[Desc]) -> None:
        data = b"".join(d.pack_packed() if self.packed else d.pack_split() for d in descs)
        self.mem.write(addr, data)
        self.tables[addr] = data

    def add_chain(self, descs: list[Desc], token: int, writable_len: int,
                  publish: bool = True) -> Buf:
        """Write a chain (flags as given, NEXT links filled in for split) and
        make it available. ``descs`` as laid out; the last has no NEXT."""
        slots = self._slots(len(descs))
        if self.packed:
            bid = self.free_ids.pop(0) if self.free_ids else 0
            wraps = []
            w = self.avail_wrap
            for i, s in enumerate(slots):
                if i and s == 0:
                    w ^= 1
                wraps.append(w)
            # every descriptor but the head first, the head last: it publishes
            for i in list(range(1, len(descs))) + [0]:
                d = descs[i]
                avail_bits = (DESC_F_AVAIL if wraps[i] else DESC_F_USED) if publish else \
                    ((DESC_F_AVAIL | DESC_F_USED) if wraps[i] else 0)
                flags = (d.flags & ~(DESC_F_AVAIL | DESC_F_USED)) | avail_bits
                off = 16 * slots[i]
                self.dview[off:off + 16] = Desc(d.addr, d.len, flags, bid).pack_packed()
            for s in slots:
                self.free_slots.discard(s)
                self.used_snapshots.pop(s, None)
            self.avail_pos += len(slots)
            if self.avail_pos >= self.size:
                self.avail_pos -= self.size
                self.avail_wrap ^= 1
            buf = Buf(bid, token, slots, writable_len, self.seq)
            if not publish:
                self.dead[slots[0]] = len(slots)
                return buf
        else:
            for i, (s, d) in enumerate(zip(slots, descs)):
                nxt = d.next
                if d.flags & DESC_F_NEXT and d.next == -1:
                    nxt = slots[i + 1] if i + 1 < len(slots) else slots[0]
                raw = Desc(d.addr, d.len, d.flags, max(nxt, 0)).pack_split()
                self.dview[16 * s:16 * s + 16] = raw
                self.split_written[s] = raw
                self.free_slots.discard(s)
            self.next_slot = (slots[-1] + 1) % self.size
            buf = Buf(slots[0], token, slots, writable_len, self.seq)
            slot = self.avail_idx % self.size
            store_u16(self.drv_view, 4 + 2 * slot, slots[0])
            if publish:
                self.avail_idx = (self.avail_idx + 1) & 0xFFFF
                store_u16(self.drv_view, 2, self.avail_idx)
            else:
                for s in slots:
                    self.free_slots.add(s)
                return buf
        self.seq += 1
        self.inflight[buf.id] = buf
        return buf

    def add_uniform(self, base: int, stride: int, shape: list[tuple[int, int, int]],
                    tokens: list[int], writable_len: int) -> None:
        """Split only: make ``len(tokens)`` chains of one ``shape`` available
        at once. Chain ``i`` lies at ``base + i * stride``; ``shape`` gives
        each descriptor's (offset in the chain's block, length, flags; NEXT
        is filled in). The same ring as ``add_chain`` called for each chain
        with ``publish``, in one descriptor write and one avail idx update."""
        assert not self.packed
        k, n, size = len(shape), len(tokens), self.size
        if k > size:
            raise ChainTooLong(f"a chain of {k} descriptors does not fit a queue of {size}")
        first = self.next_slot
        slots = [(first + j) % size for j in range(n * k)]
        free = self.free_slots
        if n * k > len(free) or any(s not in free for s in slots):
            raise QueueFull(f"queue {self.index} is full: the device has not returned "
                            f"{len(self.inflight)} buffer(s)", "buffers returned")
        total = n * k
        addrs = [base + i * stride + off for i in range(n) for off, _ln, _f in shape]
        links = [(s + 1) % size for s in slots]
        for j in range(k - 1, total, k):
            links[j] = 0            # the last descriptor of a chain links nowhere
        flags = [f | DESC_F_NEXT if j + 1 < k else f & ~DESC_F_NEXT
                 for j, (_o, _ln, f) in enumerate(shape)] * n
        lens = [ln for _o, ln, _f in shape] * n
        raw = struct.pack("<" + "QIHH" * total,
                          *[x for quad in zip(addrs, lens, flags, links) for x in quad])
        # the descriptors, in at most two runs (the table wraps)
        run = min(total, size - first)
        self.dview[16 * first:16 * (first + run)] = raw[:16 * run]
        if run < total:
            self.dview[0:16 * (total - run)] = raw[16 * run:]
        self.split_written.update(zip(slots, [raw[j:j + 16] for j in range(0, 16 * total, 16)]))
        free.difference_update(slots)
        self.next_slot = (slots[-1] + 1) % size
        heads = slots[::k]
        avail = self.avail_idx
        for i, (token, head) in enumerate(zip(tokens, heads)):
            _U16.pack_into(self.drv_view, 4 + 2 * ((avail + i) % size), head)
            self.inflight[head] = Buf(head, token, slots[i * k:i * k + k], writable_len, self.seq)
            self.seq += 1
        self.avail_idx = (avail + n) & 0xFFFF
        _U16.pack_into(self.drv_view, 2, self.avail_idx)

    def rebase(self, index: int) -> None:
        """Split, nothing in flight: put the ring where one that has made
        ``index`` buffers available, all used, would be (avail and used idx
        both ``index``), for a device told to resume there."""
        assert not self.packed and not self.inflight
        self.avail_idx = self.last_used = index & 0xFFFF
        _U16.pack_into(self.drv_view, 2, self.avail_idx)
        _U16.pack_into(self.dev_view, 2, self.last_used)

    # ------------------------------------------------------------------ event fields
    def set_avail_flags(self, value: int) -> None:
        self.mem.write(self.cfg.driver, _U16.pack(value & 0xFFFF))

    def used_idx(self) -> int:
        return _U16.unpack_from(self.dev_view, 2)[0]

    def used_flags(self) -> int:
        return _U16.unpack(self.mem.read(self.cfg.device, 2))[0]

    def arm(self) -> None:
        """Split with EVENT_IDX: ask for a notification at the next used entry
        (what a driver does before it sleeps)."""
        if not self.packed and self.cfg.event_idx:
            store_u16(self.drv_view, 4 + 2 * self.size, self.last_used)

    def set_used_event(self, value: int) -> None:
        self.mem.write(self.cfg.driver + 4 + 2 * self.size, _U16.pack(value & 0xFFFF))

    # ------------------------------------------------------------------ collecting
    def _complete(self, buf: Buf, length: int, implied: bool = False) -> Used:
        del self.inflight[buf.id]
        for s in buf.slots:
            self.free_slots.add(s)
        if self.packed:
            self.free_ids.append(buf.id)
        if length > buf.writable_len:
            raise RingViolation(f"used length {length} for a buffer with {buf.writable_len} "
                         f"device-writable bytes (queue {self.index})",
                         f"used length <= {buf.writable_len}")
        self.used_count += 1
        if buf.seq < self.last_used_seq and self.order_break is None:
            self.order_break = (self.last_used_seq, buf.seq)
        self.last_used_seq = buf.seq
        return Used(buf.token, length, buf.seq, implied)

    def _take(self, bid: int, length: int) -> list[Used]:
        buf = self.inflight.get(bid)
        if buf is None:
            raise RingViolation(f"used entry for id {bid}, which is not in flight on queue "
                         f"{self.index}", "used ids the driver made available")
        out = []
        if self.cfg.in_order:
            for earlier in [b for b in self.inflight.values() if b.seq < buf.seq]:
                out.append(self._complete(earlier, 0, implied=True))
        out.append(self._complete(buf, length))
        return out

    def collect(self) -> list[Used]:
        return self._collect_packed() if self.packed else self._collect_split()

    def _collect_split(self) -> list[Used]:
        idx = self.used_idx()
        pending = (idx - self.last_used) & 0xFFFF
        if pending > len(self.inflight):
            raise RingViolation(f"used idx moved by {pending} with {len(self.inflight)} buffer(s) in "
                         f"flight (queue {self.index})", "used idx within the buffers in flight")
        out = []
        in_order, inflight = self.cfg.in_order, self.inflight
        while self.last_used != idx:
            slot = self.last_used % self.size
            bid, length = _USED.unpack_from(self.dev_view, 4 + 8 * slot)
            self.last_used = (self.last_used + 1) & 0xFFFF
            buf = None if in_order else inflight.get(bid)
            if buf is not None:
                out.append(self._complete(buf, length))
            else:
                out += self._take(bid, length)
        return out

    def _collect_packed(self) -> list[Used]:
        out = []
        for _ in range(self.size + 1):
            if self.used_pos in self.dead:
                n = self.dead.pop(self.used_pos)
                for k in range(n):
                    self.free_slots.add((self.used_pos + k) % self.size)
                self._advance(n)
                continue
            if not self.inflight:
                return out
            raw = bytes(self.dview[16 * self.used_pos:16 * self.used_pos + 16])
            _addr, length, bid, flags = _DESC.unpack(raw)
            a, u = bool(flags & DESC_F_AVAIL), bool(flags & DESC_F_USED)
            if not (a == u == bool(self.used_wrap)):
                return out
            buf = self.inflight.get(bid)
            if buf is None:
                raise RingViolation(f"used descriptor at slot {self.used_pos} carries id {bid}, which "
                             f"is not in flight (queue {self.index})",
                             "used ids the driver made available")
            if not flags & DESC_F_WRITE:
                length = 0      # the length of a used descriptor without WRITE is reserved: ignored
            done = self._take(bid, length)
            slots = self._slots_of(buf) if self.cfg.in_order else len(buf.slots)
            self.used_snapshots[self.used_pos] = raw
            self._advance(slots)
            out += done
        return out

    def _slots_of(self, last: Buf) -> int:
        # IN_ORDER batch: the used entry stands for every buffer up to ``last``
        return (last.slots[-1] - self.used_pos) % self.size + 1

    def _advance(self, n: int) -> None:
        self.used_pos += n
        if self.used_pos >= self.size:
            self.used_pos -= self.size
            self.used_wrap ^= 1

    # ------------------------------------------------------------------ observations
    def changed_descriptors(self) -> list[str]:
        out = []
        if not self.packed:
            for s, raw in self.split_written.items():
                if self.mem.read(self.cfg.desc + 16 * s, 16) != raw:
                    out.append(f"descriptor {s} of queue {self.index}")
        for addr, raw in self.tables.items():
            if self.mem.read(addr, len(raw)) != raw:
                out.append(f"indirect table at {addr:#x}")
        return out

    def unstable_used(self) -> list[str]:
        return [f"used descriptor at slot {s} of queue {self.index}"
                for s, raw in self.used_snapshots.items()
                if s in self.free_slots and self.mem.read(self.cfg.desc + 16 * s, 16) != raw]
