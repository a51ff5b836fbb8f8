"""A device whose transmit queue feeds its own receive queue (net, console).

What the driver sends on the transmit queue is used at once (nothing
written) and kept in a bounded backlog; receive buffers are taken off their
ring only while something waits in the backlog, and filled by the device
type's ``place``. A kick of the receive queue (new buffers) and every
transmit kick deliver what waits. A receive buffer taken but not yet
filled is held, not lost, and goes first next time.
"""
from __future__ import annotations

from collections import deque

from device_ref.device.core import VirtioDevice
from device_ref.device.device_queue import RingFault

# Items waiting for receive buffers: a driver that sends without receiving
# must not grow the device without bound; past this the newest are dropped.
BACKLOG = 256


class LoopDevice(VirtioDevice):
    rx_queue = 0
    tx_queue = 1

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.backlog: deque = deque()
        self.held: deque = deque()      # receive chains taken off the ring, not yet used
        self.dropped = 0                # items lost: backlog full, or no buffer fits

    # -- what a reset forgets --------------------------------------------------
    def reset(self) -> None:
        self.backlog.clear()
        self.held.clear()
        super().reset()

    def reset_queue(self, queue: int) -> None:
        super().reset_queue(queue)
        if queue == self.rx_queue:
            self.held.clear()     # their ring is gone: never used

    # -- the transmit side ------------------------------------------------------
    def enqueue(self, item) -> None:
        """Keep ``item`` for the receive side (dropped when the backlog is full)."""
        if len(self.backlog) >= BACKLOG:
            self.dropped += 1
        else:
            self.backlog.append(item)

    def notify(self, queue: int) -> None:
        if queue == self.tx_queue:
            super().notify(queue)
        # a kick of the receive queue (new buffers) or items just sent
        self.deliver()

    # -- the receive side -------------------------------------------------------
    def deliver(self) -> None:
        """Place waiting items into receive buffers while there are both."""
        if not self._running() or not self.backlog:
            return
        ring = self.queues[self.rx_queue].ring
        if ring is None:
            return
        notify = False
        try:
            while self.backlog:
                got = self.place(ring, self.backlog[0])
                if got is None:
                    # out of buffers: ask to be told when more arrive, and
                    # look again in case they came meanwhile
                    if ring.rearm():
                        continue
                    break
                done, wanted = got
                if done:
                    self.backlog.popleft()
                notify = wanted or notify
        except RingFault as exc:
            self.needs_reset(f"queue {self.rx_queue}: {exc}")
            return
        if notify:
            self.counters.queue_interrupts += 1
            self._host.queue_interrupt(self.rx_queue)

    def take(self, ring):
        """The next receive buffer: one held from before, else off the ring (or None)."""
        if self.held:
            return self.held.popleft()
        return ring.pop_one()

    def place(self, ring, item) -> tuple[bool, bool] | None:
        """Put ``item`` (the oldest waiting) into receive buffers: (whether it
        is done with, whether the driver wants an interrupt), or None when
        there are too few buffers yet."""
        raise NotImplementedError

    def fill(self, ring, chains, data) -> bool:
        """Scatter ``data`` over ``chains`` in order, each to its end, and use
        them all at once; True if the driver wants an interrupt."""
        memory = ring.memory
        view = memoryview(data)
        used = []
        at = 0
        for chain in chains:
            start = at
            for seg in chain.segments:
                if not seg.writable or at >= len(view):
                    continue
                n = min(seg.len, len(view) - at)
                memory.write(seg.gpa, view[at:at + n])
                at += n
            used.append((chain.id, at - start))
        self.counters.requests += len(used)
        return ring.push_used(used)
