"""Driver side against a hostile device: what the device writes is validated
and each kind of lie ends in its own error code, on both backends."""
from __future__ import annotations

import pytest

from device_ref.ring import RingError, RingErrorCode as E

from .hostile import AVAIL, BUF, USED, WRITE, packed_desc, split_used, split_used_idx
from .rig import make_rig


def collect_error(r) -> E:
    with pytest.raises(RingError) as e:
        r.drv.collect()
    code = e.value.code
    with pytest.raises(RingError) as again:   # the queue stays broken
        r.drv.collect()
    assert again.value.code == code and r.drv.error == code
    return code


def split_with_two(backend, **kw):
    r = make_rig(backend, "split", device=False, **kw)
    r.drv.add([(BUF, 8)], [(BUF + 0x100, 16)], token=1)     # head 0 (descs 0, 1)
    r.drv.add([], [(BUF + 0x200, 32)], token=2)            # head 2
    return r


def test_split_used_index_past_outstanding(backend):
    r = split_with_two(backend)
    split_used(r, 0, 0, 0)
    split_used_idx(r, 3)
    assert collect_error(r) == E.USED_IDX_JUMP


@pytest.mark.parametrize("used_id", [1, 3, 4, 0xFFFFFFFF])
def test_split_used_id_never_made_available(backend, used_id):
    r = split_with_two(backend)     # heads are 0 and 2; 1 is inside a chain, 3 is free
    split_used(r, 0, used_id, 0)
    split_used_idx(r, 1)
    assert collect_error(r) == E.USED_ID_BAD


def test_split_used_id_returned_twice(backend):
    r = split_with_two(backend)
    split_used(r, 0, 2, 0)
    split_used(r, 1, 2, 0)
    split_used_idx(r, 2)
    with pytest.raises(RingError) as e:
        r.drv.collect()
    assert e.value.code == E.USED_ID_BAD and e.value.count == 1


def test_split_used_len_too_big(backend):
    r = split_with_two(backend)
    split_used(r, 0, 0, 17)         # head 0 has 16 writable bytes
    split_used_idx(r, 1)
    assert collect_error(r) == E.USED_LEN_TOO_BIG


def test_split_used_len_exactly_writable_is_fine(backend):
    r = split_with_two(backend)
    split_used(r, 0, 0, 16)
    split_used_idx(r, 1)
    assert r.drv.collect() == [(1, 16)]


def test_split_in_order_batch_past_used_index(backend):
    r = split_with_two(backend, in_order=True)
    split_used(r, 0, 2, 0)          # "both buffers done" but idx only moved by 1
    split_used_idx(r, 1)
    assert collect_error(r) == E.USED_IDX_JUMP


def packed_with_two(backend, **kw):
    r = make_rig(backend, "packed", device=False, **kw)
    r.drv.add([(BUF, 8)], [(BUF + 0x100, 16)], token=1)    # id 0, slots 0-1
    r.drv.add([], [(BUF + 0x200, 32)], token=2)           # id 1, slot 2
    return r


def test_packed_used_flags_of_other_lap(backend):
    r = packed_with_two(backend)
    packed_desc(r, 0, BUF, 0, 0, USED)      # AVAIL=0, USED=1: "available" in lap 2
    assert collect_error(r) == E.USED_BAD_FLAGS


def test_packed_used_wrong_wrap(backend):
    r = packed_with_two(backend)
    packed_desc(r, 0, BUF, 0, 0, 0)         # used with wrap 0 while the counter is 1
    assert collect_error(r) == E.USED_WRONG_WRAP


@pytest.mark.parametrize("used_id", [2, 3, 4, 0xFFFF])
def test_packed_used_id_not_in_flight(backend, used_id):
    r = packed_with_two(backend)
    packed_desc(r, 0, BUF, 0, used_id, AVAIL | USED)
    assert collect_error(r) == E.USED_ID_BAD


def test_packed_used_len_too_big(backend):
    r = packed_with_two(backend)
    packed_desc(r, 0, BUF, 33, 1, AVAIL | USED | WRITE)   # id 1 has 32 writable bytes
    assert collect_error(r) == E.USED_LEN_TOO_BIG


def test_packed_used_len_ignored_without_write_flag(backend):
    r = packed_with_two(backend)
    packed_desc(r, 0, BUF, 999, 1, AVAIL | USED)
    assert r.drv.collect() == [(2, 0)]
    assert r.drv.num_free == 2          # 4 - 3 in use + 1 returned (id 1 had one descriptor)


def test_packed_out_of_order_completion_skips_by_chain_length(backend):
    r = packed_with_two(backend)
    packed_desc(r, 0, BUF, 32, 1, AVAIL | USED | WRITE)   # id 1 (1 descriptor) first, at slot 0
    packed_desc(r, 1, BUF, 16, 0, AVAIL | USED | WRITE)   # then id 0 (2 descriptors), at slot 1
    assert r.drv.collect() == [(2, 32), (1, 16)]
    assert r.drv.num_free == 4
