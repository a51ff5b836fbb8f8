"""A bare driver for tests that need exact control of what goes on a ring
(a FUSE request, a deliberately odd chain): ring-core driver queue plus the
vhost-user transport, nothing else."""
from __future__ import annotations

import time

from device_ref.ring import PACKED, SPLIT, DriverQueue, place_rings
from device_ref.transport import QueueConfig
from device_ref.vhost_user.frontend import VhostUserTransport

F_INDIRECT, F_EVENT_IDX, F_VERSION_1, F_RING_PACKED = 28, 29, 32, 34


class RawDevice:
    """Negotiate, set up queues at fixed addresses, submit chains, wait for them."""

    def __init__(self, transport: VhostUserTransport, features: int, queue_size: int,
                 queues: int = 1, ring_base: int = 0x10000):
        self.t = transport
        t = transport
        t.write_status(1)
        t.write_status(3)
        t.write_driver_features(features)
        t.write_status(11)
        if not t.read_status() & 8:
            raise AssertionError("FEATURES_OK did not stick")
        layout = PACKED if features >> F_RING_PACKED & 1 else SPLIT
        self.queues: list[DriverQueue] = []
        base = ring_base
        for q in range(queues):
            rc = place_rings(layout, queue_size, base, event_idx=bool(features >> F_EVENT_IDX & 1),
                             indirect=bool(features >> F_INDIRECT & 1))
            t.set_queue(q, QueueConfig(queue_size, rc.desc, rc.driver, rc.device))
            t.enable_queue(q)
            self.queues.append(DriverQueue(t.memory, rc))
            base += 0x10000 + queue_size * 32
        t.write_status(15)

    def submit(self, q: int, out, in_, token: int) -> None:
        if self.queues[q].add(out, in_, token):
            self.t.notify(q)

    def wait(self, q: int, tokens: set[int], timeout: float = 10.0) -> dict[int, int]:
        """Used length by token, once every token in ``tokens`` came back."""
        done: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        while not tokens <= done.keys():
            for token, length in self.queues[q].collect():
                done[token] = length
            if tokens <= done.keys():
                break
            if self.queues[q].enable_interrupts():
                continue  # used buffers arrived while asking to be told about them
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"tokens {sorted(tokens - done.keys())} not completed")
            self.t.wait_interrupts(min(left, 0.5))
        return done
