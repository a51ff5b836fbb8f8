"""The ``expect ...`` steps: what the runner checks after the device acted.

A mixin of ``Harness`` (``conformance/harness.py``), which holds the state
these read: completions, the last block request, data written and read,
notifications counted since the last kick, the memory watch.
"""
from __future__ import annotations

import struct
import time

from device_ref.transport import PciBounceDescription, TransportError, decode_capability

from conformance import names
from conformance.outcomes import Failed, Skipped, Wedged

SECTOR = 512
ID_LEN = 20
DRIVER_MODE = ("driver under test: the harness plays the driver; driver-mode vectors run "
               "through conformance/driver_mode.py")
FEATURES_OK = 8


def _compare(op: str, a: int, b: int) -> bool:
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


class Expectations:
    """``expect_<verb>`` for every expectation verb of the vocabulary."""

    def expect_status(self, op: str, bits: list[str]) -> None:
        st = self.status()
        for b in bits:
            present = bool(st & names.STATUS_BITS[b])
            if present != (op == "has"):
                raise Failed(f"device status is {names.status_text(st)}",
                             f"status {op} {b}")

    def expect_features_ok(self, outcome: str) -> None:
        if not self.features_ok_written:
            raise Skipped("vector expects a FEATURES_OK outcome but never wrote FEATURES_OK")
        kept = bool(self.status() & FEATURES_OK)
        if outcome == "accepted" and not kept:
            raise Failed("FEATURES_OK did not stick (the device refused the features)",
                         "the device keeps FEATURES_OK")
        if outcome == "refused" and kept:
            raise Failed("FEATURES_OK stuck (the device accepted the features)",
                         "the device clears FEATURES_OK")

    def _last_used(self) -> Completion:
        self._collect()
        if not self.completions:
            raise Failed("no used buffer arrived", "a used buffer")
        return self.completions[-1]

    def expect_used_len(self, op: str, value: int) -> None:
        c = self._last_used()
        if not _compare(op, c.used_len, value):
            raise Failed(f"used length {c.used_len}", f"used length {op} {value}")

    def _last_blk_done(self, what: str) -> None:
        p = self.last_blk
        if p is None:
            raise Failed("no block request was made", what)
        if not p.done:
            self._collect()
        if not p.done:
            raise Failed("the last block request was never used (no completion)", what)

    def expect_blk_status(self, status: str) -> None:
        want = names.BLK_STATUS[status]
        self._last_blk_done(f"status {status}")
        if self.last_blk_status is None:
            raise Failed("no block request completed", f"status {status}")
        if self.last_blk_status != want:
            seen = {v: k for k, v in names.BLK_STATUS.items()}.get(self.last_blk_status,
                                                                  str(self.last_blk_status))
            raise Failed(f"status byte {seen} ({self.last_blk_status})",
                         f"status {status} ({want})")

    def expect_data(self, what: str) -> None:
        self._last_blk_done("data read back")
        if self.last_read is None:
            raise Failed("no data was read back", "data read back")
        sector, data = self.last_read
        compared = 0
        for i in range(len(data) // SECTOR):
            w = self.written.get(sector + i)
            if w is None:
                continue
            compared += 1
            got = data[i * SECTOR:(i + 1) * SECTOR]
            if got != w:
                off = next(k for k in range(SECTOR) if got[k] != w[k])
                raise Failed(f"sector {sector + i} differs from byte {off} "
                             f"(read {got[off]:#04x}, wrote {w[off]:#04x})",
                             "the data written earlier")
        if not compared:
            raise Skipped("nothing was written to the sectors read back, so nothing to compare")

    def expect_no_used(self) -> None:
        try:
            self._collect()
        except Failed as exc:
            raise Failed(f"a used entry appeared: {exc.observed}", "no used buffer") from None
        if self.since_kick:
            c = self.since_kick[0]
            raise Failed(f"{len(self.since_kick)} used buffer(s) since the kick (queue "
                         f"{c.queue}, length {c.used_len})", "no used buffer")
        for q in self.retired:
            try:
                used = q.collect()
            except Failed as exc:
                raise Failed(f"a used entry appeared on a ring set up before the reset: "
                             f"{exc.observed}", "nothing used from rings of before the reset") \
                    from None
            if used:
                raise Failed(f"the device used {len(used)} buffer(s) on queue {q.index} of a "
                             f"ring set up before the reset",
                             "nothing used from rings of before the reset")

    def expect_memory_outside_region(self, what: str) -> None:
        if not self.swiotlb:
            raise Skipped("VIRTIO_F_SWIOTLB is not negotiated, so there is no region to "
                          "stay inside")
        if self.s.watch is not None:
            problems = self.s.watch.violations()
            if problems:
                raise Failed("; ".join(problems[:3]), "guest memory outside the bounce "
                             "region untouched", critical=True)
            return
        if self.s.shares_only_bounce:
            return   # the back-end process was never given memory outside the region
        raise Skipped("this adapter cannot observe guest memory outside the region")

    def expect_notified(self) -> None:
        self._drain()
        if self.irqs_since_kick == 0:
            raise Failed("no used buffer notification since the kick", "a notification")

    def expect_not_notified(self) -> None:
        self._drain()
        if self.irqs_since_kick:
            raise Failed(f"{self.irqs_since_kick} used buffer notification(s) since the kick",
                         "no notification")

    def expect_config(self, field: str, op: str, value: int) -> None:
        table = names.CONFIG_FIELDS.get(self.device_type, {})
        short = field.split(".", 1)[1] if field.startswith("virtio_") and "." in field else field
        if short not in table:
            raise Skipped(f"configuration field {field} is unknown to this runner for a "
                          f"{self.device_type} device")
        off, size = table[short]
        try:
            got = int.from_bytes(self._config(off, size), "little")
        except TransportError as exc:
            raise Wedged(f"reading configuration failed: {exc}") from None
        if not _compare(op, got, value):
            raise Failed(f"{field} = {got}", f"{field} {op} {value}")

    def expect_id_string(self, what: str) -> None:
        if self.last_id is None:
            raise Failed("no GET_ID reply", "an id string")
        got = self.last_id
        text = got.split(b"\0", 1)[0]
        if self.s.expected_id is not None:
            want = self.s.expected_id[:ID_LEN]
            if text != want.rstrip(b"\0") or (len(want) < ID_LEN and b"\0" not in got):
                raise Failed(f"id {got!r}", f"{want!r}, NUL-terminated if shorter than 20 bytes")
        elif not all(0x20 <= c < 0x7F for c in text):
            raise Failed(f"id {got!r} is not printable text", "a printable id string")

    def expect_offered(self, features: list[str]) -> None:
        offered = self.offered()
        missing = [f for f in features if not offered >> self.feature(f) & 1]
        if missing:
            raise Failed(f"device offers {', '.join(names.feature_names(offered, self.device_type))}",
                         f"offers {', '.join(missing)}")

    def expect_accepted(self, op: str, features: list[str]) -> None:
        raise Skipped(DRIVER_MODE)

    def expect_addresses(self, where: str) -> None:
        raise Skipped(DRIVER_MODE)

    def expect_region(self, property: str) -> None:  # noqa: A002
        desc = self.t.bounce_description()
        if desc is None:
            raise Failed("the transport describes no bounce-buffer region", f"region {property}")
        try:
            region = desc.region()
        except TransportError as exc:
            raise Failed(f"the region description is invalid: {exc}", f"region {property}") \
                from None
        if property == "nonempty" and region.size <= 0:
            raise Failed("region length 0", "a non-empty region")
        if property == "page_aligned" and (region.base % 4096 or region.size % 4096):
            raise Failed(f"region {region.base:#x}+{region.size:#x}", "page-aligned region")
        if property == "within_bar":
            if not isinstance(desc, PciBounceDescription):
                raise Skipped("the region is described by the platform, not by a BAR")

    def expect_pci_capability(self, cfg_type: int, count: int = 1,
                              min_length: int = 0) -> None:
        caps = self.t.pci_capabilities() if hasattr(self.t, "pci_capabilities") else None
        if caps is None:
            raise Skipped("this transport has no PCI capability list")
        found = []
        for raw in caps:
            try:
                cap = decode_capability(raw)
            except TransportError as exc:
                raise Failed(f"malformed capability {bytes(raw).hex()}: {exc}",
                             "well-formed virtio structure capabilities") from None
            if cap.cfg_type == cfg_type:
                found.append(cap)
        want = f"{count} capabilities of cfg_type {cfg_type}" + \
            (f", each at least {min_length} bytes long" if min_length else "")
        if len(found) != count:
            raise Failed(f"{len(found)} of cfg_type {cfg_type}", want)
        short = [c.length for c in found if c.length < min_length]
        if short:
            raise Failed(f"length {short[0]}", want)

    def _access_log(self) -> None:
        raise Skipped("this adapter does not log the device's memory accesses")

    def expect_ring_access(self, what: str) -> None:
        self._access_log()

    def expect_writable_buffers(self, what: str) -> None:
        self._access_log()

    def expect_write_order(self, what: str) -> None:
        self._access_log()

    def expect_blk_lifetime(self, what: str) -> None:
        self._collect()
        data = getattr(self, "last_lifetime", None)
        if data is None or len(data) < 6:
            raise Failed("no GET_LIFETIME reply", "a 6-byte lifetime reply")
        pre_eol, est_a, est_b = struct.unpack("<HHH", data[:6])
        if pre_eol > 3 or est_a > 11 or est_b > 11:
            raise Failed(f"pre_eol_info {pre_eol}, estimates {est_a} and {est_b}",
                         "pre_eol_info <= 3 and estimates <= 11")

    def expect_blk_requests(self, property: str) -> None:  # noqa: A002
        raise Skipped(DRIVER_MODE)

    def expect_config_changed(self) -> None:
        self._drain()
        if not self.config_irqs:
            raise Failed("no configuration change notification arrived",
                         "a configuration change notification")

    def expect_accepted_subset(self) -> None:
        raise Skipped(DRIVER_MODE)

    def expect_driver_queues(self, property: str) -> None:  # noqa: A002
        raise Skipped(DRIVER_MODE)

    def expect_driver_chains(self, property: str) -> None:  # noqa: A002
        raise Skipped(DRIVER_MODE)

    def expect_io(self, what: str) -> None:
        if not self.io:
            raise Failed("no device_io requests were made", "requests of the last device_io")
        self._collect()
        for i, p in enumerate(self.io):
            if not p.done:
                raise Failed(f"request {i + 1} of {len(self.io)} was never used",
                             "every request used")
            if p.kind == "blk":
                if p.status != 0:
                    raise Failed(f"request {i + 1} ({'read' if p.count else 'write'} of sector "
                                 f"{p.sector}) ended with status {p.status}", "status OK (0)")
                if p.count:
                    want = self.io_written.get(p.sector)
                    got = (p.data or b"")[:SECTOR]
                    if want is not None and got != want:
                        raise Failed(f"sector {p.sector} read back differs from what was "
                                     f"written", "the data written")
            elif p.kind == "rng" and not p.used_len:
                raise Failed(f"entropy request {i + 1} used with length {p.used_len}",
                             "used length > 0")
        counts: dict[int, int] = {}
        for c in self.completions:
            counts[c.token] = counts.get(c.token, 0) + 1
        twice = [t for t, n in counts.items() if n > 1]
        if twice:
            raise Failed(f"{len(twice)} request(s) used more than once", "each used once")

    def expect_readable_buffers(self, what: str) -> None:
        mem = self.t.memory
        for addr, length, data in self.readable_log:
            if mem.read(addr, length) != data:
                raise Failed(f"the {length}-byte device-readable buffer at {addr:#x} changed",
                             "device-readable buffers unchanged")
        if self.readable_corrupted:
            raise Failed(f"the device wrote into {self.readable_corrupted[0]}",
                         "device-readable buffers unchanged")

    def expect_descriptors(self, what: str) -> None:
        if what == "unchanged":
            bad = [x for q in self.queues for x in q.changed_descriptors()]
            if bad:
                raise Failed(f"the device wrote into {bad[0]}" +
                             (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
                             "descriptors as the driver wrote them")
            return
        if not any(q.packed for q in self.queues):
            raise Skipped("stable_after_use is a packed-layout property")
        self._collect()
        time.sleep(0.05)
        bad = [x for q in self.queues for x in q.unstable_used()]
        if bad:
            raise Failed(f"{bad[0]} changed after the device marked it used",
                         "used descriptors keep their bytes")

    def expect_used_flags(self, op: str, value: int) -> None:
        q = self._queue(0)
        if q.packed:
            raise Skipped("the used ring flags exist in the split layout only")
        got = q.used_flags()
        if not _compare(op, got, value):
            raise Failed(f"used ring flags {got:#x}", f"used flags {op} {value}")

    def expect_completion_order(self, what: str) -> None:
        self._collect()
        seqs = [u.seq for q in self.queues for u in q.used_log]
        for q in self.queues:
            order = [u.seq for u in q.used_log]
            for a, b in zip(order, order[1:]):
                if b < a:
                    raise Failed(f"queue {q.index}: buffer {b + 1} used after buffer {a + 1}",
                                 "used in the order made available")
        if not seqs:
            raise Failed("no buffer was used", "buffers used in order")

    def expect_blk_data(self, what: str) -> None:
        if self.blk_before is None:
            raise Skipped("no block write was preceded by a read of its sectors")
        sector, before = self.blk_before
        if not before:
            return   # nothing of the write landed inside the disk to compare
        count = len(before) // SECTOR
        self._blk(0, sector, data_in=count * SECTOR, count=count)
        now = self.last_read[1] if self.last_read else b""
        if now != before:
            raise Failed(f"sectors {sector}..{sector + count - 1} changed", "sectors unchanged")

    def expect_entropy(self, what: str) -> None:
        self._collect()
        if not self.last_entropy:
            raise Failed("no entropy was returned", "non-zero entropy bytes")
        if not any(self.last_entropy):
            raise Failed(f"{len(self.last_entropy)} entropy bytes, all zero", "not all zero")

