"""Fault injection: variants of the reference devices that each break one
requirement, to show the suite catches what it claims to check.

Each variant wraps the unmodified ``device_ref`` devices (a mixin in front
of ``BlkDevice`` / ``RngDevice`` / ``NetDevice`` / ``ConsoleDevice``; ``device_ref`` itself is
never edited)
and names the requirement it breaks. ``conformance mutants`` runs the suite
against each one: a variant is caught when some test of that requirement
ends FAIL or WEDGED.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from device_ref.device.features import (DEVICE_NEEDS_RESET, F_EVENT_IDX, F_IN_ORDER,
                                        F_RING_PACKED, F_SUSPEND, F_SWIOTLB, F_VERSION_1,
                                        SUSPEND, has)
from device_ref.devices.blk import HEADER, S_IOERR, BlkDevice, BlkOptions, MemoryStorage
from device_ref.devices.console import ConsoleDevice
from device_ref.devices.net import NetDevice
from device_ref.devices.rng import RngDevice
from device_ref.device.admin import AdminCommands, Outcome
from device_ref.device.chain import ChainIO
from device_ref.device.device_queue import DeviceQueue, ring_config
from device_ref.ring import DeviceQueue as RingDeviceQueue
from device_ref.ring.errors import RingError
from device_ref.qenc import algorithms as qenc_algorithms
from device_ref.qenc.algorithms import TAG_LEN
from device_ref.qenc.device_side import F_QUEUE_ENCRYPTION, DeviceQenc
from device_ref.transport import BounceRegion

from device_ref.transports.device_side import TransportFaults

from conformance.adapters.base import AdapterError, AdapterOptions
from conformance.adapters.ref import DISK_SECTORS, RNG_SEED, RefAdapter
from conformance.adapters.ref_registers import RegisterAdapter
from device_ref.device.chain import ChainIO


class _Silent:
    def queue_interrupt(self, queue: int) -> None:
        pass

    def config_interrupt(self) -> None:
        pass


# ---------------------------------------------------------------- the variants

class WrongUsedLength:
    """Reports one byte more than the buffer holds: after publishing a used
    element (split) it adds one to its length."""

    def notify(self, queue):
        before = self.counters.requests
        super().notify(queue)
        q = self.queues[queue] if 0 <= queue < len(self.queues) else None
        if q is None or q.ring is None or self.counters.requests == before \
                or self.negotiated >> 34 & 1:
            return
        mem, cfg = q.ring.memory, q.config
        idx = int.from_bytes(mem.read(cfg.device + 2, 2), "little")
        elem = cfg.device + 4 + 8 * ((idx - 1) % cfg.size)
        length = int.from_bytes(mem.read(elem + 4, 4), "little")
        mem.write(elem + 4, (length + 1).to_bytes(4, "little"))


class NotifiesWhenSuppressed:
    """Sends a used buffer notification after every batch, whatever the
    driver's suppression (flags or used_event) says."""

    def notify(self, queue):
        before = self.counters.queue_interrupts, self.counters.requests
        super().notify(queue)
        if self.counters.requests != before[1] and self.counters.queue_interrupts == before[0]:
            self._host.queue_interrupt(queue)


class IgnoresUsedEvent:
    """With VIRTIO_F_EVENT_IDX, never notifies: ignores the used_event the
    driver set."""

    def notify(self, queue):
        if not has(self.negotiated, F_EVENT_IDX):
            return super().notify(queue)
        host, self._host = self._host, _Silent()
        try:
            super().notify(queue)
        finally:
            self._host = host


class UsedIndexUnwrapped:
    """With VIRTIO_F_EVENT_IDX on a split ring, decides each used buffer
    notification on a used index it counts on past 65535 without wrapping,
    against used_event as read: right until the index wraps, silent after."""

    def notify(self, queue):
        q = self.queues[queue] if 0 <= queue < len(self.queues) else None
        if (q is None or q.ring is None or not has(self.negotiated, F_EVENT_IDX)
                or has(self.negotiated, F_RING_PACKED)):
            return super().notify(queue)
        mem, cfg = q.ring.memory, q.config
        before = int.from_bytes(mem.read(cfg.device + 2, 2), "little")
        host, self._host = self._host, _Silent()
        try:
            super().notify(queue)
        finally:
            self._host = host
        after = int.from_bytes(mem.read(cfg.device + 2, 2), "little")
        counted = getattr(self, "_counted", {})
        self._counted = counted
        ring, old = counted.get(queue, (None, before))
        if ring is not q.ring:          # a new ring counts from where it starts
            old = before
        new = old + ((after - before) & 0xFFFF)
        counted[queue] = (q.ring, new)
        event = int.from_bytes(mem.read(cfg.driver + 4 + 2 * cfg.size, 2), "little")
        if old <= event < new:          # the bug: no arithmetic modulo 2^16
            self.counters.queue_interrupts += 1
            host.queue_interrupt(queue)


class CompletesOutOfOrder:
    """With VIRTIO_F_IN_ORDER on a split ring, returns each batch of buffers
    newest first (it writes the used ring itself: the ring core refuses to)."""

    def notify(self, queue):
        q = self.queues[queue] if 0 <= queue < len(self.queues) else None
        if q is None or q.ring is None or not self._running() \
                or not has(self.negotiated, F_IN_ORDER) or self.negotiated >> 34 & 1:
            return super().notify(queue)
        try:
            chains = q.ring.pop()
        except RingError as exc:
            self.needs_reset(f"queue {queue}: {exc}")
            return
        if not chains:
            return
        done = [(c.id, self.handle(queue, ChainIO(q.ring.memory, c.segments))) for c in chains]
        mem, cfg = q.ring.memory, q.config
        idx = int.from_bytes(mem.read(cfg.device + 2, 2), "little")
        for k, (cid, n) in enumerate(reversed(done)):
            slot = (idx + k) % cfg.size
            mem.write(cfg.device + 4 + 8 * slot, cid.to_bytes(4, "little") + n.to_bytes(4, "little"))
        mem.write(cfg.device + 2, ((idx + len(done)) & 0xFFFF).to_bytes(2, "little"))
        self._host.queue_interrupt(queue)


class WorksBeforeDriverOk:
    """Processes buffers as soon as FEATURES_OK is set, before DRIVER_OK."""

    def notify(self, queue):
        if self.status & 8 and not self.status & 4 and self.memory is not None:
            for i, q in enumerate(self.queues):
                if q.enabled and q.ring is None:
                    self._open(i, q)
            saved = self.status
            self.status |= 4
            try:
                super().notify(queue)
            finally:
                self.status = saved | (self.status & DEVICE_NEEDS_RESET)
            return
        super().notify(queue)


class _WideMemory:
    """Base for variants that ignore the bounce-region restriction: they get
    every guest region (through the harness's logging map) instead."""
    harness = None

    def use_harness(self, transport) -> None:
        self.harness = transport

    def set_memory(self, memory) -> None:
        if self.harness is not None and has(self.harness.device.driver_features(), F_SWIOTLB):
            memory = self.harness.wide_map()
        super().set_memory(memory)

    def reachable_memory(self):
        return self.memory          # the reference device narrows it; this one does not

    def _open(self, index, q):
        if self.harness is None or not isinstance(self.memory, type(self.harness.wide_map())):
            return super()._open(index, q)
        # the Python ring backend reads rings through the map, so the log sees it
        try:
            ring = RingDeviceQueue(self.memory, ring_config(q.config, self.negotiated),
                                   start=getattr(q, "base", None), backend="python")
            q.ring = DeviceQueue(self.memory, ring, q.config.size)
        except RingError as exc:
            self.needs_reset(f"queue {index}: {exc}")

    def _inside(self, io) -> bool:
        region = self.bounce_region()
        return not self.swiotlb or region is None or all(region.contains(s.gpa, s.len)
                                     for s in io.readable + io.writable)


class WritesOutsideRegion(_WideMemory):
    """Ignores VIRTIO_F_SWIOTLB: serves buffers wherever they are."""


class ReadsOutsideRegion(_WideMemory):
    """Reads every device-readable buffer, even outside the region (it
    refuses to write outside, so only its reads give it away)."""

    def handle(self, queue, io):
        io.read(0, io.readable_len)
        if not self._inside(io):
            return 0
        return super().handle(queue, io)


class RingsOutsideRegion(_WideMemory):
    """Refuses buffers outside the region, but uses virtqueues placed
    outside it."""

    def handle(self, queue, io):
        if not self._inside(io):
            return 0
        return super().handle(queue, io)


class WritesReadableBuffer:
    """Writes a byte into the first device-readable buffer of each request."""

    def handle(self, queue, io):
        n = super().handle(queue, io)
        if io.readable:
            seg = io.readable[0]
            first = io.memory.read(seg.gpa, 1)
            io.memory.write(seg.gpa, bytes([first[0] ^ 0xFF]))
        return n


class KeepsRingsOnReset:
    """A reset forgets features and status but keeps the virtqueues it was
    using, and goes on serving them after the next DRIVER_OK."""

    def reset(self):
        kept = [q.ring for q in self.queues]
        super().reset()
        for q, ring in zip(self.queues, kept):
            q.ring = ring


class LosesRequests:
    """Takes every second request off the ring and never returns it."""
    seen = 0

    def _serve_batch(self, queue, ring, chains):
        keep = []
        for chain in chains:
            written = self.handle(queue, ChainIO(ring.memory, chain.segments))
            self.seen += 1
            if self.seen % 2:
                keep.append((chain.id, written))
        self.counters.requests += len(chains)
        return bool(keep) and ring.ring.push_many(keep)


class SpuriousNeedsReset:
    """Sets DEVICE_NEEDS_RESET after its fourth request, for no reason."""
    served = 0

    def handle(self, queue, io):
        n = super().handle(queue, io)
        self.served += 1
        if self.served == 4:
            self.needs_reset("no reason at all")
        return n


class StallsSilently:
    """On an error it stops serving the queue but never sets DEVICE_NEEDS_RESET."""
    stalled = False

    def needs_reset(self, reason):
        self.stalled = True
        self.record("needs_reset", f"(kept quiet) {reason}")

    def notify(self, queue):
        if not self.stalled:
            super().notify(queue)

    def reset(self):
        self.stalled = False
        super().reset()


class NoConfigNotification:
    """Sets DEVICE_NEEDS_RESET but does not send the configuration change
    notification that must go with it."""

    def needs_reset(self, reason):
        host, self._host = self._host, _Silent()
        try:
            super().needs_reset(reason)
        finally:
            self._host = host


class NoVersion1:
    """Does not offer VIRTIO_F_VERSION_1."""

    def device_features(self):
        return super().device_features() & ~(1 << F_VERSION_1)


class ForgetsSwiotlbAfterReset:
    """Stops offering VIRTIO_F_SWIOTLB once it has been reset."""

    def device_features(self):
        f = super().device_features()
        return f & ~(1 << F_SWIOTLB) if self.counters.resets else f


class WritesDescriptorTable:
    """Zeroes the length of each split-ring head descriptor it has used."""

    def notify(self, queue):
        q = self.queues[queue] if 0 <= queue < len(self.queues) else None
        before = self.counters.requests
        super().notify(queue)
        if q is None or q.config is None or self.counters.requests == before \
                or q.ring is None or (self.negotiated >> 34 & 1):
            return
        mem = q.ring.memory
        for i in range(q.config.size):
            addr = q.config.desc + 16 * i + 8
            if mem.read(addr, 4) != b"\0\0\0\0":
                mem.write(addr, b"\0\0\0\0")
                return


class HeaderMustBeAlone:
    """A block device that only understands a request header in a
    descriptor of its own (fails merged or fragmented framing)."""

    def handle(self, queue, io):
        if isinstance(self, BlkDevice) and io.readable and io.readable[0].len != HEADER.size:
            if io.writable_len:
                io.write(io.writable_len - 1, bytes([S_IOERR]))
            return 1
        return super().handle(queue, io)


class UsesForgedBuffers(DeviceQenc):
    """With VIRTIO_F_QUEUE_ENCRYPTION, a chain that fails authentication is
    counted as refused, then carried out anyway on its raw bytes, and the
    result is written back unsealed: unauthenticated data is used and
    released."""

    def serve(self, queue, io, handle):
        before = self.rejected
        used = super().serve(queue, io, handle)
        if self.rejected != before:
            return handle(queue, io)
        return used


class FillsHalf:
    """An entropy device that fills half of each buffer (as the spec allows)
    and, with VIRTIO_F_QUEUE_ENCRYPTION, seals its reply the way the first
    draft did: the whole area encrypted and the tag at the end of the
    writable part, past the used length it reports (the reply plus 16)."""

    def handle(self, queue, io):
        if isinstance(self, RngDevice):
            return io.write(0, self.entropy(io.writable_len // 2))
        return super().handle(queue, io)


class SealsWholeArea(DeviceQenc):
    """The first draft's reply format (see FillsHalf)."""

    def _seal_reply(self, c, n, reply, io):
        area = bytearray(io.writable_len - TAG_LEN)
        area[:len(reply)] = reply
        sealed = bytearray(io.writable_len)
        c.sealer.seal_into(n, area, sealed, len(reply))
        io.write(0, sealed)
        return len(reply) + TAG_LEN


class RefusesListedAlgorithm(DeviceQenc):
    """With VIRTIO_F_QUEUE_ENCRYPTION, lists ChaCha20-Poly1305 in its
    supported_algorithms register but refuses a commit of it (DEVICE_NEEDS_RESET), as
    a device whose register does not match its build would."""

    def _install(self, c, setup, checked=False):
        if c.enable and c.algorithm == qenc_algorithms.CHACHA20_POLY1305:
            self.device.needs_reset(f"queue {c.queue}: ChaCha20-Poly1305 is not built in")
            return
        super()._install(c, setup, checked)


class AcceptsUnlistedAlgorithm(DeviceQenc):
    """With VIRTIO_F_QUEUE_ENCRYPTION, a commit of an algorithm value its
    supported_algorithms register does not list quietly leaves the queue unprotected
    instead of signalling DEVICE_NEEDS_RESET."""

    def _install(self, c, setup, checked=False):
        if c.enable and not qenc_algorithms.advertises(self.algorithms, c.algorithm):
            c = replace(c, enable=0)
        super()._install(c, setup, checked)


class IgnoresNumBuffers:
    """A network device that spreads a frame over several receive buffers
    (VIRTIO_NET_F_MRG_RXBUF) but always says num_buffers = 1."""

    def num_buffers(self, used):
        return 1


class DropsFrames:
    """A network device that loses every second frame it is given to send."""

    def handle(self, queue, io):
        used = super().handle(queue, io)
        if isinstance(self, NetDevice) and self.frames_sent % 2 == 0 and self.backlog:
            self.backlog.pop()
        return used


class TruncatesFrames:
    """A network device that passes on only the first 60 bytes of each frame."""

    def handle(self, queue, io):
        used = super().handle(queue, io)
        if isinstance(self, NetDevice) and self.backlog and len(self.backlog[-1]) > 60:
            self.backlog[-1] = self.backlog[-1][:60]
        return used


class HidesConfigBeforeFeaturesOk:
    """Reads of the device-specific configuration give zeros until the
    driver has set FEATURES_OK."""

    def read_config(self, offset, length):
        if not self.status & 8:
            return bytes(length)
        return super().read_config(offset, length)


class DropsBytes:
    """A console that loses every third byte it is given to output (the
    first, the fourth, ...), on the transmitq and through emerg_wr alike."""

    bytes_seen = 0

    def output(self, data):
        seen = self.bytes_seen
        self.bytes_seen = seen + len(data)
        data = bytes(b for i, b in enumerate(data) if (seen + i) % 3)
        if data:
            super().output(data)


class RunsWhileSuspended:
    """With VIRTIO_F_SUSPEND (which it offers): shows itself suspended but
    goes on serving every buffer the driver makes available."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rules = replace(self.rules, offered=self.rules.offered | (1 << F_SUSPEND))

    def _running(self):
        if self.status & SUSPEND and not self.status & DEVICE_NEEDS_RESET:
            return True
        return super()._running()


class _CommandsIgnoringUse(AdminCommands):
    def refusal(self, opcode, group):
        if opcode in self.supported.get(group, ()):
            return None
        return super().refusal(opcode, group)


class IgnoresListUse:
    """A block device with an administration virtqueue that carries out every
    command it supports, whether LIST_USE enabled it or not."""

    def add_admin_queue(self, commands=None, size=64):
        super().add_admin_queue(_CommandsIgnoringUse(), size)


class _CommandsAcceptingAnything(AdminCommands):
    def refusal(self, opcode, group):
        return None if group in self.supported else super().refusal(opcode, group)

    def run(self, opcode, group, data):
        if opcode not in self.supported[group]:
            return Outcome.ok()
        return super().run(opcode, group, data)


class AcceptsUnknownOpcodes:
    """A block device with an administration virtqueue that reports success
    for an opcode it does not know."""

    def add_admin_queue(self, commands=None, size=64):
        super().add_admin_queue(_CommandsAcceptingAnything(), size)


class _Plain:
    """No change to the device itself (the fault is in a layer)."""


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str               # the requirement id it violates
    mixin: type
    doc: str
    layer: type = DeviceQenc  # the queue-encryption layer the device carries

    def factory(self) -> Callable[[str, BounceRegion | None], object]:
        blk = type(f"{self.mixin.__name__}Blk", (self.mixin, BlkDevice), {})
        rng = type(f"{self.mixin.__name__}Rng", (self.mixin, RngDevice), {})
        net = type(f"{self.mixin.__name__}Net", (self.mixin, NetDevice), {})
        console = type(f"{self.mixin.__name__}Console", (self.mixin, ConsoleDevice), {})

        def make(device_type: str, bounce: BounceRegion | None):
            if device_type == "blk":
                dev = blk(MemoryStorage(DISK_SECTORS * 512), BlkOptions(), bounce=bounce)
                dev.add_admin_queue()       # as the reference block device has
            elif device_type == "rng":
                dev = rng(seed=RNG_SEED, bounce=bounce)
            elif device_type == "net":
                return net(bounce=bounce)   # no queue encryption, as the reference net device
            elif device_type == "console":
                return console(bounce=bounce, echo=False)
            else:
                raise AdapterError(f"no {device_type} variant")
            # as enable_device() does for the reference devices, with this layer
            dev.rules = replace(dev.rules, offered=dev.rules.offered | (1 << F_QUEUE_ENCRYPTION))
            dev.buffer_layer = self.layer(dev)
            return dev
        return make

    def adapter(self, opts: AdapterOptions | None = None) -> RefAdapter:
        return RefAdapter(opts or AdapterOptions(), swiotlb=True, factory=self.factory(),
                          label=f"mutant:{self.name}")


@dataclass(frozen=True)
class TransportMutant:
    """A reference device behind in-process PCI or MMIO registers that get
    one transport rule wrong (``TransportFaults``)."""
    name: str
    breaks: str
    kind: str                 # pci or mmio
    faults: TransportFaults
    doc: str

    def adapter(self, opts: AdapterOptions | None = None) -> RegisterAdapter:
        return RegisterAdapter(self.kind, opts or AdapterOptions(), self.faults,
                               label=f"mutant:{self.name}")


def _m(name: str, breaks: str, mixin: type, layer: type = DeviceQenc) -> Mutant:
    doc = (layer if mixin is _Plain else mixin).__doc__ or ""
    return Mutant(name, breaks, mixin, " ".join(doc.split()), layer)


MUTANTS: tuple[Mutant, ...] = (
    _m("wrong-used-length", "base.split.dev.len-written", WrongUsedLength),
    _m("notifies-when-suppressed", "base.notif.dev.flag-set-quiet", NotifiesWhenSuppressed),
    _m("ignores-used-event", "base.notif.dev.event-reached", IgnoresUsedEvent),
    _m("used-index-unwrapped", "base.notif.dev.event-reached", UsedIndexUnwrapped),
    _m("completes-out-of-order", "base.rfb.dev.in-order", CompletesOutOfOrder),
    _m("works-before-driver-ok", "base.status.dev.idle-before-driver-ok", WorksBeforeDriverOk),
    _m("writes-outside-region", "swiotlb.dev.no-access-outside", WritesOutsideRegion),
    _m("reads-outside-region", "swiotlb.dev.no-access-outside", ReadsOutsideRegion),
    _m("rings-outside-region", "swiotlb.dev.no-access-outside", RingsOutsideRegion),
    _m("writes-readable-buffer", "base.split.dev.no-write-readable", WritesReadableBuffer),
    _m("keeps-rings-on-reset", "base.reset.dev.silent-after", KeepsRingsOnReset),
    _m("loses-requests", "base.blk.dev.basic-requests", LosesRequests),
    _m("spurious-needs-reset", "base.notif.dev.spurious", SpuriousNeedsReset),
    _m("stalls-silently", "base.status.dev.set-needs-reset", StallsSilently),
    _m("no-config-notification", "base.status.dev.notify-needs-reset", NoConfigNotification),
    _m("no-version-1", "base.rfb.dev.offer-version-1", NoVersion1),
    _m("forgets-swiotlb-after-reset", "swiotlb.dev.reset-reoffer", ForgetsSwiotlbAfterReset),
    _m("writes-descriptor-table", "base.split.dev.no-write-table", WritesDescriptorTable),
    _m("header-must-be-alone", "base.framing.dev.any-arrangement", HeaderMustBeAlone),
    _m("hides-config-before-features-ok", "base.cfg.dev.read-before-features-ok",
       HidesConfigBeforeFeaturesOk),
    _m("runs-while-suspended", "base.suspend.dev.quiet", RunsWhileSuspended),
    _m("uses-forged-buffers", "qenc.dev.refuse-forged", _Plain, UsesForgedBuffers),
    _m("tag-at-area-end", "qenc.dev.seal-writable", FillsHalf, SealsWholeArea),
    _m("refuses-listed-algorithm", "qenc.dev.listed-installs", _Plain, RefusesListedAlgorithm),
    _m("accepts-unlisted-algorithm", "qenc.dev.reserved-algorithm", _Plain,
       AcceptsUnlistedAlgorithm),
    _m("ignores-num-buffers", "base.net.dev.num-buffers-spread", IgnoresNumBuffers),
    _m("drops-frames", "base.net.dev.mtu-forward", DropsFrames),
    _m("truncates-frames", "base.net.dev.mtu-forward", TruncatesFrames),
    _m("drops-bytes", "base.console.dev.emerg-output", DropsBytes),
    _m("ignores-list-use", "base.admin.grp.dev.validate-used", IgnoresListUse),
    _m("accepts-unknown-opcodes", "base.admin.grp.dev.not-ok", AcceptsUnknownOpcodes),
    TransportMutant("ignores-queue-enable", "pci.dev.reset-queue-enable", "pci",
                    TransportFaults(ignore_queue_enable=True),
                    "PCI: writes of 1 to queue_enable are ignored; the queue never runs and "
                    "queue_enable keeps reading 0."),
    TransportMutant("odd-queue-size", "pci.dev.split-queue-size", "pci",
                    TransportFaults(queue_size=100),
                    "PCI: queue_size shows 100, not a power of 2, for every queue."),
    TransportMutant("feature-select-alias", "pci.dev.device-feature-select", "pci",
                    TransportFaults(feature_select_alias=True),
                    "PCI: a feature select above 1 acts as 1 (device_feature repeats bits "
                    "32-63), as QEMU 7.2's virtio-mmio does."),
    TransportMutant("frozen-config-generation", "mmio.dev.config-generation", "mmio",
                    TransportFaults(frozen_generation=True),
                    "MMIO: ConfigGeneration stays 0 across configuration changes."),
    TransportMutant("keeps-queue-ready-on-reset", "mmio.dev.reset-clears", "mmio",
                    TransportFaults(keep_enable_on_reset=True),
                    "MMIO: QueueReady still reads 1 after a device reset."),
)


def by_name(name: str) -> Mutant | TransportMutant:
    for m in MUTANTS:
        if m.name == name:
            return m
    raise KeyError(name)
