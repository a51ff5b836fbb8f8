"""The C backend's two ways into the core: the call glue (ring_glue.c,
used when built) and cffi's own calls (the fallback).  Both must behave
exactly like the Python twin."""
from __future__ import annotations

import pytest

from device_ref.ring import ChainBatch, DeviceQueue, DriverQueue, GuestMemory, PopBatch, UsedBatch, place_rings
from device_ref.ring import c_core

from .twin import random_run


def test_glue_is_built_and_used():
    # the benchmark and every C-backend caller go through it
    assert c_core._glue is not None, "device_ref.ring._ring_glue is not built: run .venv/bin/pip install -e ."
    mem = GuestMemory()
    mem.add_region(0, bytearray(1 << 16))
    cfg = place_rings("split", 8, 0)
    drv, dev = DriverQueue(mem, cfg, backend="c"), DeviceQueue(mem, cfg, backend="c")
    for call in (drv.add_batch, drv.collect_batch, dev.pop_batch, dev.push_batch):
        assert isinstance(call, c_core._glue.BatchCall)


@pytest.mark.parametrize("glue", [True, False], ids=["glue", "cffi"])
def test_backends_agree_through_either_path(monkeypatch, glue):
    if not glue:
        monkeypatch.setattr(c_core, "_glue", None)
    for seed in range(40):
        random_run(seed, 60)


@pytest.mark.parametrize("glue", [True, False], ids=["glue", "cffi"])
def test_round_trip_and_errors_through_either_path(monkeypatch, glue):
    if not glue:
        monkeypatch.setattr(c_core, "_glue", None)
    mem = GuestMemory()
    mem.add_region(0, bytearray(1 << 16))
    cfg = place_rings("split", 8, 0)
    drv, dev = DriverQueue(mem, cfg, backend="c"), DeviceQueue(mem, cfg, backend="c")
    chains = ChainBatch(9, 9)
    for k in range(9):
        chains.append([], [(0x8000 + 64 * k, 64)], 100 + k)
    # a ring of 8 takes 8 of the 9 one-descriptor chains
    assert drv.add_batch(chains) == (8, True)
    pop = PopBatch(8, 8)
    assert dev.pop_batch(pop) == 8
    assert [r[0] for r in pop.records()] == list(range(8))    # first-in first-out descriptors
    assert dev.push_batch(pop, fill=True) is True
    used = UsedBatch(8)
    assert drv.collect_batch(used) == 8
    assert used.items() == [(100 + k, 64) for k in range(8)]
    # a repeated push is a caller error: nothing in flight any more
    with pytest.raises(c_core.RingError) as err:
        dev.push_batch(pop)
    assert err.value.code == c_core.RingErrorCode.PUSH_UNKNOWN_ID
    # counts past a batch's buffers are refused before the core sees them
    used.max_entries = 9
    with pytest.raises(c_core.RingError) as err:
        drv.collect_batch(used)
    assert err.value.code == c_core.RingErrorCode.BAD_REQUEST


def test_glue_rejects_bad_arguments():
    mem = GuestMemory()
    mem.add_region(0, bytearray(1 << 16))
    cfg = place_rings("split", 8, 0)
    drv, dev = DriverQueue(mem, cfg, backend="c"), DeviceQueue(mem, cfg, backend="c")
    pop = PopBatch(8, 8)
    with pytest.raises(TypeError):
        drv.collect_batch()                       # the batch is required
    with pytest.raises(TypeError):
        drv.collect_batch(UsedBatch(8), 1)        # and is the only argument
    with pytest.raises(TypeError):
        dev.push_batch(pop, fil=True)             # unknown keyword
    with pytest.raises(TypeError):
        dev.push_batch(pop, True, fill=True)      # fill given twice
    with pytest.raises(AttributeError):
        drv.collect_batch(object())               # not a batch
    big = UsedBatch(8)
    big.max_entries = 1 << 32                     # counts are 32-bit
    with pytest.raises(OverflowError):
        drv.collect_batch(big)
    with pytest.raises(ValueError):
        c_core._glue.BatchCall(0, 0, 0, 0, len, len, None)   # null function and queue refused
    # push's options work positionally and by keyword
    assert dev.push_batch(pop, False, False) is False and dev.push_batch(pop, coalesce=False, fill=True) is False


def test_glue_reads_attributes_of_any_batch_type():
    """Slotted batch attributes are read at their offsets, anything else by
    name; switching between batch types on one queue re-resolves them."""

    class CappedUsed(UsedBatch):
        # max_entries as a property: not a slot, so the glue must look it up
        @property
        def max_entries(self) -> int:
            return self._cap

        @max_entries.setter
        def max_entries(self, value: int) -> None:
            self._cap = value

    mem = GuestMemory()
    mem.add_region(0, bytearray(1 << 16))
    cfg = place_rings("split", 8, 0)
    drv, dev = DriverQueue(mem, cfg, backend="c"), DeviceQueue(mem, cfg, backend="c")
    chains = ChainBatch(6, 6)
    for k in range(6):
        chains.append([(0x8000 + 16 * k, 16)], [], 7 + k)
    assert drv.add_batch(chains) == (6, True)
    pop = PopBatch(6, 8)
    assert dev.pop_batch(pop) == 6
    dev.push_batch(pop)                      # read-only buffers: used length 0
    capped, plain = CappedUsed(8), UsedBatch(1)
    capped.max_entries = 2
    got = []
    for batch in (capped, plain, capped, plain):
        n = drv.collect_batch(batch)
        assert n == batch.count
        got += batch.items()
        if batch is capped:
            assert n == 2                    # the property's value was used
    assert got == [(7 + k, 0) for k in range(6)]


def test_glue_calls_take_part_in_garbage_collection():
    import gc
    import weakref
    mem = GuestMemory()
    mem.add_region(0, bytearray(1 << 16))
    drv = DriverQueue(mem, place_rings("split", 8, 0), backend="c")
    mem.loop = drv.add_batch            # memory -> call -> (queue, map, memory): a cycle
    alive = weakref.ref(mem)
    del mem, drv
    gc.collect()
    assert alive() is None
