"""Batch edges the short paths of the C core take decisions on: a pop
batch whose segment buffer runs out after a long chain, segments moving
between regions inside one batch, single- and multi-segment chains mixed
in one add batch.  Expected values follow from the ring rules (chains
come out in ring order, a chain is popped whole or not at all, a segment
must lie inside one region)."""
from __future__ import annotations

import pytest

from device_ref.ring import ChainBatch, PopBatch, RingError, RingErrorCode, UsedBatch

from .rig import BASE, make_rig

BUF = BASE + 0x8000


@pytest.mark.parametrize("layout", ["split", "packed"])
def test_pop_stops_before_a_chain_whose_segments_do_not_fit(backend, layout):
    rig = make_rig(backend, layout, size=4)
    chains = ChainBatch(3, 5)
    chains.append([(BUF, 8), (BUF + 8, 8)], [(BUF + 16, 8)], 1)     # three segments
    chains.append([], [(BUF + 32, 8)], 2)
    chains.append([], [(BUF + 48, 8)], 3)
    # five descriptors do not fit a ring of 4: the third chain waits
    assert rig.drv.add_batch(chains) == (2, True)
    pop = PopBatch(4, 4)                       # room for four segments
    assert rig.dev.pop_batch(pop) == 2
    recs = pop.records()
    assert [(r[1], r[2]) for r in recs] == [(3, 8), (1, 8)]          # (segments, writable bytes)
    rig.dev.push_batch(pop, fill=True)
    used = UsedBatch(4)
    assert rig.drv.collect_batch(used) == 2
    assert used.items() == [(1, 8), (2, 8)]
    # now a one-segment chain, then the rest of a full segment buffer
    again = ChainBatch(2, 4)
    again.append([], [(BUF + 64, 8)], 4)
    again.append([(BUF + 80, 8), (BUF + 88, 8)], [(BUF + 96, 8)], 5)
    assert rig.drv.add_batch(again)[0] == 2
    small = PopBatch(4, 4)
    assert rig.dev.pop_batch(small) == 2
    assert [c.segments[0].gpa for c in small.chain_list()] == [BUF + 64, BUF + 80]


@pytest.mark.parametrize("layout", ["split", "packed"])
def test_pop_segment_buffer_exactly_full(backend, layout):
    rig = make_rig(backend, layout, size=4)
    first = ChainBatch(1, 3)
    first.append([(BUF, 8), (BUF + 8, 8)], [(BUF + 16, 8)], 1)
    assert rig.drv.add_batch(first) == (1, True)
    second = ChainBatch(1, 1)
    second.append([], [(BUF + 32, 8)], 2)
    assert rig.drv.add_batch(second)[0] == 1
    pop = PopBatch(4, 4)                       # 3 + 1 segments: exactly full
    assert rig.dev.pop_batch(pop) == 2
    assert [len(c.segments) for c in pop.chain_list()] == [3, 1]


@pytest.mark.parametrize("layout", ["split", "packed"])
def test_segments_in_two_regions_and_across_their_border(backend, layout):
    rig = make_rig(backend, layout, size=8)
    second = BASE + 0x20000
    rig.mem.add_region(second, bytearray(0x1000))
    chains = ChainBatch(4, 4)
    chains.append([], [(BUF, 16)], 1)
    chains.append([], [(second, 16)], 2)               # other region
    chains.append([], [(BUF + 16, 16)], 3)             # and back
    chains.append([], [(second + 0x1000 - 8, 16)], 4)  # runs past the second region's end
    assert rig.drv.add_batch(chains)[0] == 4
    pop = PopBatch(8, 8)
    with pytest.raises(RingError) as err:
        rig.dev.pop_batch(pop)
    assert err.value.code == RingErrorCode.OUT_OF_BOUNDS
    assert err.value.count == 3                        # the three good chains came out first
    assert [c.segments[0].gpa for c in pop.chain_list()] == [BUF, second, BUF + 16]


@pytest.mark.parametrize("layout", ["split", "packed"])
def test_mixed_add_batch_keeps_ring_order(backend, layout):
    rig = make_rig(backend, layout, size=8)
    chains = ChainBatch(4, 6)
    chains.append([], [(BUF, 8)], 10)
    chains.append([(BUF + 8, 8)], [(BUF + 16, 8), (BUF + 24, 8)], 11)
    chains.append([(BUF + 32, 8)], [], 12)
    chains.append([], [(BUF + 40, 8)], 13)
    assert rig.drv.add_batch(chains) == (4, True)
    assert rig.drv.num_free == 8 - 6
    pop = PopBatch(4, 8)
    assert rig.dev.pop_batch(pop) == 4
    got = [(len(c.segments), c.writable_len, c.readable_len) for c in pop.chain_list()]
    assert got == [(1, 8, 0), (3, 16, 8), (1, 0, 8), (1, 8, 0)]
    rig.dev.push_batch(pop, fill=True)
    used = UsedBatch(8)
    assert rig.drv.collect_batch(used) == 4
    assert used.items() == [(10, 8), (11, 16), (12, 0), (13, 8)]
    assert rig.drv.num_free == 8


@pytest.mark.parametrize("layout", ["split", "packed"])
def test_indirect_chain_leaves_less_room_than_chains_left(backend, layout):
    # one descriptor carrying three segments, then three one-segment chains:
    # four descriptors in a ring of 4, six segments for a buffer of 4
    rig = make_rig(backend, layout, size=4, indirect=True)
    chains = ChainBatch(4, 6)
    chains.append([(BUF, 8)], [(BUF + 8, 8), (BUF + 16, 8)], 1, indirect=BASE + 0xC000)
    for k in range(3):
        chains.append([], [(BUF + 32 + 8 * k, 8)], 2 + k)
    assert rig.drv.add_batch(chains) == (4, True)
    pop = PopBatch(4, 4)
    assert rig.dev.pop_batch(pop) == 2                 # 3 + 1 segments; the next chain waits
    assert [len(c.segments) for c in pop.chain_list()] == [3, 1]
    rest = PopBatch(4, 4)
    assert rig.dev.pop_batch(rest) == 2
    assert [c.segments[0].gpa for c in rest.chain_list()] == [BUF + 40, BUF + 48]


@pytest.mark.parametrize("layout", ["split", "packed"])
def test_counts_beyond_a_batch_buffer_are_refused(backend, layout):
    # batch counts are plain attributes; set past the buffers they would
    # make the core read or write outside them: a caller error, nothing done
    rig = make_rig(backend, layout, size=4)
    chains = ChainBatch(2, 2)
    chains.append([], [(BUF, 8)], 1)
    chains.count = 3
    with pytest.raises(RingError) as err:
        rig.drv.add_batch(chains)
    assert err.value.code == RingErrorCode.BAD_REQUEST
    assert rig.drv.num_free == 4
    chains.count, chains.nsegs = 1, 3
    with pytest.raises(RingError) as err:
        rig.drv.add_batch(chains)
    assert err.value.code == RingErrorCode.BAD_REQUEST
    chains.nsegs = 1
    assert rig.drv.add_batch(chains) == (1, True)
    pop = PopBatch(1, 4)
    for attr, value in (("max_chains", 2), ("max_segs", 5)):
        setattr(pop, attr, value)
        with pytest.raises(RingError) as err:
            rig.dev.pop_batch(pop)
        assert err.value.code == RingErrorCode.BAD_REQUEST
        setattr(pop, attr, {"max_chains": 1, "max_segs": 4}[attr])
    assert rig.dev.error is None and rig.dev.pop_batch(pop) == 1
    pop.count = 2
    with pytest.raises(RingError) as err:
        rig.dev.push_batch(pop, fill=True)
    assert err.value.code == RingErrorCode.BAD_REQUEST
    pop.count = 1
    assert rig.dev.push_batch(pop, fill=True) is True
    used = UsedBatch(1)
    used.max_entries = 2
    with pytest.raises(RingError) as err:
        rig.drv.collect_batch(used)
    assert err.value.code == RingErrorCode.BAD_REQUEST
    assert rig.drv.error is None
    used.max_entries = 1
    assert rig.drv.collect_batch(used) == 1 and used.items() == [(1, 8)]


def test_append_pair_writes_what_append_writes():
    a, b = ChainBatch(2, 4), ChainBatch(2, 4)
    a.append([(BUF, 100)], [(BUF + 128, 50)], 7)
    a.append([(BUF + 256, 1)], [(BUF + 512, 2)], 8)
    b.append_pair(BUF, 100, BUF + 128, 50, 7)
    b.append_pair(BUF + 256, 1, BUF + 512, 2, 8)
    assert (a.segs, a.chains, a.count, a.nsegs) == (b.segs, b.chains, b.count, b.nsegs)
    with pytest.raises(RingError) as e:
        b.append_pair(BUF, 1, BUF + 8, 1, 9)          # the batch is full
    assert e.value.code == RingErrorCode.BAD_REQUEST


@pytest.mark.parametrize("layout", ["split", "packed"])
def test_popped_chains_of_every_length_read_back_in_order(backend, layout):
    rig = make_rig(backend, layout, size=16)
    chains = ChainBatch(4, 16)
    chains.append([(BUF, 8)], [(BUF + 8, 8)], 1)                       # the usual pair
    chains.append([(BUF + 16, 4), (BUF + 20, 4)], [(BUF + 24, 8)], 2)  # three
    chains.append([], [(BUF + 32, 8)], 3)                              # one
    chains.append([(BUF + 40, 8)], [(BUF + 48, 8)], 4)
    assert rig.drv.add_batch(chains)[0] == 4
    pop = PopBatch(4, 16)
    assert rig.dev.pop_batch(pop) == 4
    got = [[(s.gpa, s.len, s.writable) for s in c.segments] for c in pop.chain_list()]
    assert got == [[(BUF, 8, False), (BUF + 8, 8, True)],
                   [(BUF + 16, 4, False), (BUF + 20, 4, False), (BUF + 24, 8, True)],
                   [(BUF + 32, 8, True)],
                   [(BUF + 40, 8, False), (BUF + 48, 8, True)]]
    pop.set_written(1, 5)
    assert [r[3] for r in pop.records()] == [0, 5, 0, 0]
