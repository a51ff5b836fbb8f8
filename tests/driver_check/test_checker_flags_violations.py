"""Each rule the checking device knows, broken on purpose by a driver built
on the raw ring layer (or by low-level transport calls), must be recorded
under its property; the rule is stated with each test."""
from __future__ import annotations

import struct

import pytest

from device_ref.devices.blk import BlkOptions
from device_ref.device.features import ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK
from device_ref.driver.blk import header
from device_ref.driver.core import ALL
from device_ref.ring.hostile import Desc
from device_ref.transport import QueueConfig

from .rigs import (BOUNCE, F_INDIRECT_DESC, F_IN_ORDER, F_VERSION_1, INDIRECT, NEXT, QUEUE,
                   T_DISCARD, T_FLUSH, T_GET_ID, T_IN, WRITE, blk_read_parts, make,
                   split_read_chain)


@pytest.fixture
def rigs():
    made = []

    def build(*a, **kw):
        r = make(*a, **kw)
        made.append(r)
        return r
    yield build
    for r in made:
        r.close()


def only(rig, prop: str, *also: str) -> None:
    """``prop`` was recorded, with evidence, and nothing else but ``also``
    (one mistake that breaks two rules at once)."""
    got = rig.log.of(prop)
    assert got, f"{prop} not recorded; saw {sorted(rig.props())}"
    assert got[0].detail and got[0].evidence
    assert rig.props() <= {prop, *also}, sorted(rig.props())


# -- chains (split) ---------------------------------------------------------------

def test_readable_after_writable(rigs):
    """Every device-readable descriptor comes before every device-writable one."""
    r = rigs()
    raw = r.raw()
    h, d, s = blk_read_parts(r)
    raw.write_desc(0, Desc(s, 1, WRITE | NEXT, 1))
    raw.write_desc(1, Desc(h, 16, NEXT, 2))
    raw.write_desc(2, Desc(d, 512, WRITE, 0))
    raw.publish([0])
    r.kick()
    only(r, "driver_chains readable_first")
    assert r.log.of("driver_chains readable_first")[0].evidence["desc"] == 1


def test_chain_that_loops(rigs):
    """A chain may not loop: its NEXT links must end."""
    r = rigs()
    raw = r.raw()
    h, d, _s = blk_read_parts(r)
    raw.write_desc(0, Desc(h, 16, NEXT, 1))
    raw.write_desc(1, Desc(d, 512, WRITE | NEXT, 0))
    raw.publish([0])
    r.kick()
    # IN_ORDER is negotiated, so pointing back at 0 also breaks "next is x + 1".
    only(r, "driver_chains bounded", "driver_chains in_order_next")


def test_chain_over_4_gib(rigs):
    """The lengths of one chain may not add up to more than 2^32 bytes."""
    r = rigs()
    raw = r.raw()
    h, d, s = blk_read_parts(r)
    raw.write_desc(0, Desc(h, 16, NEXT, 1))
    raw.write_desc(1, Desc(d, 0xF000_0000, WRITE | NEXT, 2))
    raw.write_desc(2, Desc(d, 0x2000_0000, WRITE | NEXT, 3))
    raw.write_desc(3, Desc(s, 1, WRITE, 0))
    raw.publish([0])
    r.kick()
    assert any("over 2^32" in v.detail for v in r.log.of("driver_chains bounded"))


def test_indirect_without_the_feature(rigs):
    """INDIRECT only when VIRTIO_F_INDIRECT_DESC was negotiated."""
    r = rigs(features=ALL & ~(1 << F_INDIRECT_DESC))
    raw = r.raw()
    h, d, s = blk_read_parts(r)
    table = r.buf(48)
    raw.write_table(table, [Desc(h, 16, NEXT, 1), Desc(d, 512, WRITE | NEXT, 2),
                            Desc(s, 1, WRITE, 0)])
    raw.write_desc(0, Desc(table, 48, INDIRECT, 0))
    raw.publish([0])
    r.kick()
    only(r, "driver_chains indirect_only_if_negotiated")


def test_indirect_with_next(rigs):
    """A descriptor that refers to an indirect table has no NEXT."""
    r = rigs()
    raw = r.raw()
    h, d, s = blk_read_parts(r)
    table = r.buf(48)
    raw.write_table(table, [Desc(h, 16, NEXT, 1), Desc(d, 512, WRITE | NEXT, 2),
                            Desc(s, 1, WRITE, 0)])
    raw.write_desc(0, Desc(table, 48, INDIRECT | NEXT, 1))
    raw.write_desc(1, Desc(s, 1, WRITE, 0))
    raw.publish([0])
    r.kick()
    only(r, "driver_chains no_indirect_with_next")


def test_nested_indirect(rigs):
    """No INDIRECT inside an indirect table."""
    r = rigs()
    raw = r.raw()
    h, d, s = blk_read_parts(r)
    inner, outer = r.buf(48), r.buf(16)
    raw.write_table(inner, [Desc(h, 16, NEXT, 1), Desc(d, 512, WRITE | NEXT, 2),
                            Desc(s, 1, WRITE, 0)])
    raw.write_table(outer, [Desc(inner, 48, INDIRECT, 0)])
    raw.write_desc(0, Desc(outer, 16, INDIRECT, 0))
    raw.publish([0])
    r.kick()
    only(r, "driver_chains no_nested_indirect")


def test_chain_longer_than_the_queue(rigs):
    """No chain, indirect tables counted, has more descriptors than the queue size."""
    r = rigs()
    raw = r.raw()
    n = QUEUE + 1
    h, _d, s = blk_read_parts(r)
    data = r.buf(512 * (n - 2))
    entries = [Desc(h, 16, NEXT, 1)]
    entries += [Desc(data + 512 * k, 512, WRITE | NEXT, k + 2) for k in range(n - 2)]
    entries.append(Desc(s, 1, WRITE, 0))
    table = r.buf(16 * n)
    raw.write_table(table, entries)
    raw.write_desc(0, Desc(table, 16 * n, INDIRECT, 0))
    raw.publish([0])
    r.kick()
    only(r, "driver_chains within_queue_size")


def test_in_order_next_skips_a_slot(rigs):
    """With VIRTIO_F_IN_ORDER, descriptor x chains to x + 1."""
    r = rigs()
    assert r.device.negotiated >> F_IN_ORDER & 1
    raw = r.raw()
    h, d, s = blk_read_parts(r)
    raw.write_desc(0, Desc(h, 16, NEXT, 2))
    raw.write_desc(2, Desc(d, 512, WRITE | NEXT, 3))
    raw.write_desc(3, Desc(s, 1, WRITE, 0))
    raw.publish([0])
    r.kick()
    only(r, "driver_chains in_order_next")


def test_too_many_data_descriptors_for_seg_max(rigs):
    """A blk request carries at most seg_max data descriptors (seg_max read from config)."""
    r = rigs(blk_opts=BlkOptions(seg_max=8))
    seg_max = struct.unpack("<I", r.device.read_config(12, 4))[0]
    assert seg_max == 8
    raw = r.raw()
    n = seg_max + 1
    h, _d, s = blk_read_parts(r)
    data = r.buf(512 * n)
    entries = [Desc(h, 16, NEXT, 1)]
    entries += [Desc(data + 512 * k, 512, WRITE | NEXT, k + 2) for k in range(n)]
    entries.append(Desc(s, 1, WRITE, 0))
    table = r.buf(16 * len(entries))
    raw.write_table(table, entries)
    raw.write_desc(0, Desc(table, 16 * len(entries), INDIRECT, 0))
    raw.publish([0])
    r.kick()
    only(r, "driver_chains within_device_limit")


# -- split ring fields -----------------------------------------------------------------

def test_available_idx_moves_backwards(rigs):
    """The available idx never goes back."""
    r = rigs()
    raw = r.raw()
    split_read_chain(r, raw)
    raw.publish([0])
    r.kick()
    assert not r.props()
    raw.publish([], idx=(raw.avail_idx - 1) & 0xFFFF)
    r.kick()
    only(r, "driver_queues avail_idx_monotonic")


def test_available_flags_out_of_range(rigs):
    """Without EVENT_IDX the available ring's flags are 0 or 1 (with it, 0)."""
    r = rigs()
    raw = r.raw()
    raw.set_avail_flags(2)
    split_read_chain(r, raw)
    raw.publish([0])
    r.kick()
    only(r, "driver_queues avail_flags_valid")


class _DirtyUsedFlags:
    """A 'buffer layer' that runs just before DRIVER_OK: it leaves 1 in the
    used ring's flags, which the driver must have set to 0."""
    features = 0

    def install(self, drv) -> None:
        q = drv.queues[0]
        drv.t.memory.write(q.config.device, struct.pack("<H", 1))


def test_used_flags_not_zero_at_driver_ok(rigs):
    """The driver sets the used ring's flags to 0 when it allocates the ring."""
    r = rigs(layer=_DirtyUsedFlags())
    only(r, "driver_queues used_flags_initialised")


def test_buffer_made_available_without_a_kick(rigs):
    """While the device asks for notifications, a new buffer is followed by one."""
    r = rigs()
    raw = r.raw()
    split_read_chain(r, raw)
    raw.publish([0])
    r.device.finish()
    only(r, "driver_queues notifies_when_asked")


class _RewritingBlk:
    """Plays a driver that changes a descriptor while the device holds it:
    during the first request, the descriptor's length is rewritten."""

    def handle(self, queue, io):
        if not getattr(self, "_done", False):
            self._done = True
            q = self.queues[0]
            cfg = q.config
            at = cfg.desc + 8 + (0 if not self.layout == "packed" else 0)
            self.memory.write(at, struct.pack("<I", 4242))
        return super().handle(queue, io)


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
def test_descriptor_changed_while_the_device_holds_it(rigs, packed):
    """A descriptor made available keeps its bytes until the device has used it."""
    from device_ref.checking.device import CheckingBlkDevice
    cls = type("RewritingBlk", (_RewritingBlk, CheckingBlkDevice), {})
    r = rigs(packed=packed, device_cls=cls, features=ALL & ~(1 << F_INDIRECT_DESC))
    r.driver.write(0, b"\x01" * 512)
    if packed:   # on a packed ring the same write also reuses a slot not yet used
        only(r, "driver_queues available_stay_put", "driver_queues reuses_only_used")
        only(r, "driver_queues reuses_only_used", "driver_queues available_stay_put")
    else:
        only(r, "driver_queues available_stay_put")


# -- packed lists -----------------------------------------------------------------------

def test_packed_head_available_before_the_rest(rigs):
    """The first descriptor of a list is made available only after the others."""
    r = rigs(packed=True)
    raw = r.raw()
    h, d, s = blk_read_parts(r)
    raw.write_desc(2, Desc(s, 1, WRITE, 0))          # not marked available
    raw.write_desc(1, Desc(d, 512, WRITE | NEXT, 0))  # not marked available
    raw.write_desc(0, Desc(h, 16, raw.avail_flags(NEXT), 0))
    r.kick()
    only(r, "driver_chains head_exposed_last")


def test_packed_indirect_entry_with_next(rigs):
    """In a packed indirect table, entries carry no flag but WRITE."""
    r = rigs(packed=True)
    raw = r.raw()
    h, d, s = blk_read_parts(r)
    table = r.buf(48)
    raw.write_table(table, [Desc(h, 16, NEXT, 0), Desc(d, 512, WRITE | NEXT, 0),
                            Desc(s, 1, WRITE, 0)])
    raw.add([Desc(table, 48, INDIRECT, 0)])
    r.kick()
    only(r, "driver_chains indirect_only_write_flag")


def test_packed_indirect_in_a_list(rigs):
    """A packed descriptor with INDIRECT is not part of a NEXT-linked list."""
    r = rigs(packed=True)
    raw = r.raw()
    h, d, s = blk_read_parts(r)
    table = r.buf(32)
    raw.write_table(table, [Desc(d, 512, WRITE, 0), Desc(s, 1, WRITE, 0)])
    raw.add([Desc(h, 16, NEXT, 0), Desc(table, 32, INDIRECT, 0)])
    r.kick()
    only(r, "driver_chains no_indirect_with_next")


# -- negotiation and status ---------------------------------------------------------------

def _negotiate_raw(r, features: int) -> None:
    t = r.transport
    t.write_status(0)
    t.write_status(ACKNOWLEDGE)
    t.write_status(ACKNOWLEDGE | DRIVER)
    t.write_driver_features(features)
    t.write_status(ACKNOWLEDGE | DRIVER | FEATURES_OK)


def test_feature_accepted_that_was_not_offered(rigs):
    """The driver accepts only offered features (bit 50 is never offered here)."""
    r = rigs(init=False)
    offered = r.transport.read_device_features()
    assert not offered >> 50 & 1
    _negotiate_raw(r, offered | 1 << 50)
    only(r, "accepted_subset")
    assert r.log.of("accepted_subset")[0].evidence["not_offered"] == [50]


def test_version_1_offered_not_accepted(rigs):
    """A driver accepts VIRTIO_F_VERSION_1 when it is offered."""
    r = rigs(init=False)
    _negotiate_raw(r, r.transport.read_device_features() & ~(1 << F_VERSION_1))
    only(r, "accepted has VIRTIO_F_VERSION_1")


def test_swiotlb_offered_not_accepted_is_a_should(rigs):
    """A driver SHOULD accept VIRTIO_F_SWIOTLB when offered (recorded at SHOULD level)."""
    r = rigs(init=False, bounce=BOUNCE)
    _negotiate_raw(r, r.transport.read_device_features() & ~(1 << 44))
    v = r.log.of("accepted has VIRTIO_F_SWIOTLB")
    assert v and v[0].level == "should"


def test_status_step_skipped(rigs):
    """Each status bit is set after the one before it (DRIVER_OK needs FEATURES_OK)."""
    r = rigs(init=False)
    t = r.transport
    t.write_status(0)
    t.write_status(ACKNOWLEDGE)
    t.write_status(ACKNOWLEDGE | DRIVER_OK)
    only(r, "status_sequence")


def test_status_bit_cleared(rigs):
    """The driver never clears a status bit (only a reset, writing 0, does)."""
    r = rigs(init=False)
    t = r.transport
    t.write_status(0)
    t.write_status(ACKNOWLEDGE)
    t.write_status(ACKNOWLEDGE | DRIVER)
    t.write_status(ACKNOWLEDGE)
    only(r, "status_never_cleared")


def test_notification_before_driver_ok(rigs):
    """No available buffer notification before DRIVER_OK."""
    r = rigs(init=False)
    t = r.transport
    t.write_status(0)
    t.write_status(ACKNOWLEDGE)
    t.notify(0)
    only(r, "notify_before_driver_ok")


def test_misaligned_ring(rigs):
    """Split: descriptor table 16-aligned, available ring 2, used ring 4."""
    r = rigs(init=False)
    t = r.transport
    _negotiate_raw(r, r.transport.read_device_features() & ~(1 << 34))
    base = t.ram_ranges()[0][0] + 0x10000
    t.set_queue(0, QueueConfig(8, base + 8, base + 0x1001, base + 0x2002))
    t.enable_queue(0)
    t.write_status(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
    areas = {v.evidence["area"] for v in r.log.of("driver_queues aligned")}
    assert areas == {"desc", "driver", "device"}


def test_addresses_outside_the_bounce_region(rigs):
    """With VIRTIO_F_SWIOTLB every buffer lies inside the bounce region."""
    r = rigs(bounce=BOUNCE)
    assert r.device.swiotlb
    raw = r.raw()
    split_read_chain(r, raw)   # buffers from ordinary RAM
    raw.publish([0])
    r.kick()
    got = r.log.of("addresses inside_region")
    assert got and all(not BOUNCE.contains(v.evidence["addr"], v.evidence["len"]) for v in got)


# -- block requests -----------------------------------------------------------------------

@pytest.mark.parametrize("out, in_, prop", [
    ([header(T_IN, 2048)], [512, 1], "blk_requests within_capacity"),
    ([header(T_IN, 2047)], [1024, 1], "blk_requests within_capacity"),
    ([header(T_FLUSH, 7)], [1], "blk_requests flush_sector_zero"),
    ([header(T_FLUSH, 0), b"x" * 512], [1], "blk_requests flush_no_data"),
    ([header(T_IN, 0)], [100, 1], "blk_requests io_multiple_of_512"),
    ([header(T_GET_ID, 0)], [10, 1], "blk_requests get_id_20_bytes"),
    ([header(T_DISCARD, 0), b"s" * 10], [1], "blk_requests segment_data_whole"),
    ([header(T_DISCARD, 0), struct.pack("<QII", 0, 1, 1)], [1],
     "blk_requests discard_unmap_clear"),
], ids=["past-end", "straddles-end", "flush-sector", "flush-data", "io-100-bytes",
        "get-id-10-bytes", "segment-10-bytes", "discard-unmap"])
def test_block_request_fields(rigs, out, in_, prop):
    """Requests the block device's driver rules forbid (capacity 2048 sectors)."""
    r = rigs()
    r.driver.wait(r.driver.submit(0, out, in_))
    only(r, prop)


def test_readable_buffer_on_the_entropy_queue(rigs):
    """The entropy queue takes device-writable buffers only."""
    r = rigs(kind="rng")
    r.driver.wait(r.driver.submit(0, [b"x" * 8], [64]))
    only(r, "driver_chains writable_only")


def test_unreadable_table_is_noted_not_blamed_on_a_rule(rigs):
    """An indirect table outside guest memory: the device refuses it itself;
    the checker says it could not judge it instead of naming a rule."""
    r = rigs()
    raw = r.raw()
    raw.write_desc(0, Desc(0x7_0000_0000, 48, INDIRECT, 0))
    raw.publish([0])
    r.kick()
    assert not r.log.violations
    assert any("not in the device's memory" in n for n in r.log.notes)
