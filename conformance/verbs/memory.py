"""Guest memory: hostile descriptors, the bounce region, what the device touched."""
from __future__ import annotations

from device_ref.transport import PciBounceDescription, TransportError, decode_capability

from conformance.engine import address
from conformance.engine.core import Engine, Pending
from conformance.engine.registry import ADDR, FLAGS, INT, TEXT, StepError, action, expectation
from conformance.outcomes import Failed, Skipped
from device_ref.ring.hostile import DESC_F_NEXT, DESC_F_WRITE, DESC_FLAGS, Desc


def address_of(e: Engine, tree: address.Expr) -> int:
    """The value of a parsed address expression for this device and test."""
    used = address.names_in(tree)
    if any(n.startswith("region.") for n in used) and e.region is None:
        raise Skipped("address expression refers to a bounce region the device lacks")
    r = e.region
    values = {"region.start": r.base if r else 0, "region.end": r.end if r else 0,
              "region.size": r.size if r else 0,
              "outside": e.outside() if "outside" in used else 0}
    try:
        return address.to_address(tree, values.__getitem__)
    except address.AddressError as exc:
        raise StepError(f"{exc}") from None


def no_access_log(e: Engine) -> None:
    raise Skipped("this adapter does not log the device's memory accesses")


@action("submit_descriptor", addr=ADDR, len=INT.range(0, 0xFFFFFFFF),
        flags=FLAGS.one_of(*DESC_FLAGS).with_default(None))
def submit_descriptor(e: Engine, addr: address.Expr, len: int,  # noqa: A002
                      flags: list | None = None) -> None:
    q = e.hostile_queue()
    where = address_of(e, addr)
    bits = 0
    for f in flags or []:
        bits |= DESC_FLAGS[f] if isinstance(f, str) else int(f)
    # The buffer goes the way the queue's buffers go (net transmitq1: read by
    # the device), so the address is the only fault under test; a queue used
    # both ways keeps what the vector wrote.
    spec = e.queue_spec(q.index)
    if spec is not None and spec.direction == "to-device":
        bits &= ~DESC_F_WRITE
    elif spec is not None and spec.direction == "to-driver":
        bits |= DESC_F_WRITE
    writable = bool(bits & DESC_F_WRITE)
    seg = (where, len, writable, b"")
    token = next(e.tokens)
    nxt = 0 if not bits & DESC_F_NEXT else (q.next_slot + 1) % q.size
    e.making_available()
    q.add_chain([Desc(seg[0], seg[1], bits, nxt)], token, seg[1] if writable else 0)
    e.pending[token] = Pending("raw", q.index, [(seg[0], seg[1])] if writable else [])
    e.offending.append((token, q.index))


@expectation("memory_outside_region", what=TEXT)
def expect_memory_outside_region(e: Engine, what: str) -> None:
    if not e.swiotlb:
        raise Skipped("VIRTIO_F_SWIOTLB is not negotiated, so there is no region to "
                      "stay inside")
    if e.s.watch is not None:
        problems = e.s.watch.violations()
        if problems:
            raise Failed("; ".join(problems[:3]), "guest memory outside the bounce "
                         "region untouched", critical=True)
        return
    if e.s.shares_only_bounce:
        return   # the back-end process was never given memory outside the region
    raise Skipped("this adapter cannot observe guest memory outside the region")


@expectation("region", property=TEXT)
def expect_region(e: Engine, property: str) -> None:  # noqa: A002
    desc = e.t.bounce_description()
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


@expectation("pci_capability", cfg_type=INT, count=INT.with_default(1), min_length=INT.with_default(0))
def expect_pci_capability(e: Engine, cfg_type: int, count: int = 1,
                          min_length: int = 0) -> None:
    caps = e.t.pci_capabilities() if hasattr(e.t, "pci_capabilities") else None
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


@expectation("ring_access", what=TEXT)
def expect_ring_access(e: Engine, what: str) -> None:
    no_access_log(e)


@expectation("writable_buffers", what=TEXT)
def expect_writable_buffers(e: Engine, what: str) -> None:
    no_access_log(e)


@expectation("write_order", what=TEXT)
def expect_write_order(e: Engine, what: str) -> None:
    no_access_log(e)


@expectation("readable_buffers", what=TEXT)
def expect_readable_buffers(e: Engine, what: str) -> None:
    mem = e.t.memory
    for addr, length, data in e.readable_log:
        if mem.read(addr, length) != data:
            raise Failed(f"the {length}-byte device-readable buffer at {addr:#x} changed",
                         "device-readable buffers unchanged")
    for batch in e.readable_batches:
        changed = batch.changed_readable(mem.read(batch.base, len(batch.data)))
        if changed:
            addr, length = changed[0]
            raise Failed(f"the {length}-byte device-readable buffer at {addr:#x} changed",
                         "device-readable buffers unchanged")
    if e.readable_corrupted:
        raise Failed(f"the device wrote into {e.readable_corrupted[0]}",
                     "device-readable buffers unchanged")
