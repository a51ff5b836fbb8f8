"""The hostile descriptor takes the direction of its queue's buffers, and a
net device's ordinary request is a frame whose header size follows the
negotiated features (docs/check-actions.md, submit_descriptor and shapes)."""
from __future__ import annotations

import struct

import pytest

from conformance.engine import address
from conformance.engine.core import Engine, net_header_size
from conformance.select_adapter import parse_adapter
from conformance.verbs.features import negotiate
from conformance.verbs.lifecycle import driver_ok
from conformance.verbs.memory import submit_descriptor
from conformance.verbs.queues import setup_queues
from device_ref.ring.hostile import DESC_F_WRITE
from device_ref.virtio_constants import (F_VERSION_1, NET_F_HASH_REPORT, NET_F_MRG_RXBUF,
                                         NET_HDR, NET_HDR_HASH, NET_HDR_LEGACY)


def _hostile_flags(device: str, flags: list[str] | None) -> int:
    adapter = parse_adapter("ref:swiotlb=off")
    session = adapter.open(device)
    try:
        e = Engine.start(session, "split")
        negotiate(e, [])
        setup_queues(e)
        driver_ok(e)
        q = e.hostile_queue()
        slot = q.next_slot
        submit_descriptor(e, address.parse("outside"), 512, flags)
        raw = e.t.memory.read(q.cfg.desc + 16 * slot, 16)
        return struct.unpack("<QIHH", raw)[2]
    finally:
        session.close()
        adapter.close()
        adapter.cleanup()


def test_a_queue_the_device_writes_gets_a_writable_hostile_descriptor():
    # rng's requestq carries device-writable buffers only: the vector's
    # missing write flag must not add a second fault to the address
    assert _hostile_flags("rng", None) & DESC_F_WRITE


@pytest.mark.parametrize("flags", [None, ["write"]])
def test_a_queue_used_both_ways_keeps_the_vectors_flags(flags):
    got = _hostile_flags("blk", flags)
    assert bool(got & DESC_F_WRITE) == bool(flags)


@pytest.mark.parametrize("features,size", [
    (0, NET_HDR_LEGACY),
    (1 << NET_F_MRG_RXBUF, NET_HDR),
    (1 << F_VERSION_1, NET_HDR),
    (1 << F_VERSION_1 | 1 << NET_F_HASH_REPORT, NET_HDR_HASH),
])
def test_net_header_size_follows_the_features(features, size):
    assert net_header_size(features) == size
