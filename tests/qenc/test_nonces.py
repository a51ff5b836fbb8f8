"""No key and nonce pair ever repeats: 100,000 buffers through the reference
driver and device, with queue resets (new key for the queue) and device
resets (new keys for all) along the way, both through the transport
(VIRTIO_F_RING_RESET for the queue resets).

The rule under test (spec/queue_encryption.vspec): nonce = le64 counter |
le16 queue | u8 direction | u8 0, where the counter is the chain's
position on its queue since the queue's key was installed; a reset of the
queue or the device discards the key."""
from __future__ import annotations

import struct
from collections import defaultdict

from tests.qenc.rig import blk

BUFFERS = 100_000
QUEUE_RESET_EVERY = 7_000
DEVICE_RESET_EVERY = 30_000


def test_no_key_nonce_pair_repeats_across_100000_buffers_and_resets():
    dev, dlayer, t, drv, storage = blk("chacha20-poly1305", log=True, ring_reset=True)
    drv.init()
    device_resets = queue_resets = 0
    try:
        for i in range(1, BUFFERS + 1):
            # A flush carries a sealed header (driver to device) and a sealed
            # status byte (device to driver): two nonces per buffer.
            drv.flush()
            if i % DEVICE_RESET_EVERY == 0:
                drv.init()
                device_resets += 1
            elif i % QUEUE_RESET_EVERY == 0:
                assert drv.outstanding() == 0
                drv.reset_queue(0)      # VIRTIO_F_RING_RESET: through the transport
                queue_resets += 1
    finally:
        drv.shutdown()
        t.close()
    sealed = drv.buffer_layer.nonce_log + dlayer.nonce_log
    assert len(drv.buffer_layer.nonce_log) == BUFFERS
    assert len(dlayer.nonce_log) == BUFFERS
    assert len(set(sealed)) == len(sealed) == 2 * BUFFERS
    # Every nonce follows the construction, and under each key each
    # direction's counter runs 0, 1, 2, ... without a gap or a repeat.
    per_key = defaultdict(lambda: defaultdict(list))
    for key_id, n in sealed:
        counter, q, direction, zero = struct.unpack("<QHBB", n)
        assert (q, zero) == (0, 0) and direction in (0, 1)
        per_key[key_id][direction].append(counter)
    assert len(per_key) == 1 + device_resets + queue_resets
    for dirs in per_key.values():
        assert dirs[0] == list(range(len(dirs[0])))
        assert dirs[1] == list(range(len(dirs[1])))
    assert (device_resets, queue_resets) == (3, 14)
    assert len(dlayer.seen_keys) == 1 + device_resets + queue_resets   # each installed once


def test_seen_keys_are_bounded_to_the_latest_64_digests():
    # qenc.dev.refuse-seen-key: bounded state, digests only
    from device_ref.qenc.device_side import RECENT_KEYS, RecentKeys
    keys = RecentKeys(RECENT_KEYS)
    digests = [bytes([i]) * 32 for i in range(RECENT_KEYS + 1)]
    for d in digests:
        keys.add(d)
    assert len(keys) == RECENT_KEYS
    assert digests[0] not in keys            # the oldest is forgotten
    assert all(d in keys for d in digests[1:])
    keys.add(digests[1])                     # seen again: now the latest
    keys.add(bytes([200]) * 32)
    assert digests[1] in keys and digests[2] not in keys
