"""Transport registers: the PCI and MMIO register rules, read and written by name.

These verbs work on the register-level transports (``device_ref.transports``:
QEMU's models over the gdbstub, the reference devices behind in-process
register models); over any other transport they SKIP.

Register names: on PCI the fields of the common configuration
(``queue_size``, ``config_msix_vector``, ...) plus ``isr``; on MMIO the
registers of the MMIO block (``queue_num_max``, ``interrupt_status``, ...).
``queue`` selects a queue first: a number, ``beyond`` (the first index past
the device's queues) or ``max`` (0xFFFF). ``via=window`` reaches a PCI
common configuration field through the PCI configuration access capability
instead of its BAR.
"""
from __future__ import annotations

from device_ref.transport import TransportError
from device_ref import virtio_constants as R
from device_ref.transports.driver_rules import RULES
from device_ref.transports.layout_facts import MMIO_FACTS, PCI_FACTS, mmio_facts, pci_facts
from device_ref.transports.mmio import MmioTransport
from device_ref.transports.pci import PciTransport

from conformance.engine.core import Engine
from conformance.engine.registry import INT, TEXT, StepError, action, expectation
from conformance.outcomes import Failed, Skipped, Wedged

OPS = ("==", "!=", "<", "<=", ">", ">=", "has", "lacks")
REGISTER_NAMES = (*R.COMMON, "isr", "pci_status", *R.MMIO)
# MMIO registers a legacy (version 1) device does not have
VERSION_2_ONLY = ("queue_ready", "queue_desc_low", "queue_desc_high", "queue_driver_low",
                  "queue_driver_high", "queue_device_low", "queue_device_high", "shm_sel",
                  "shm_len_low", "shm_len_high", "shm_base_low", "shm_base_high",
                  "queue_reset", "config_generation")
REG = TEXT.one_of(*REGISTER_NAMES)
QUEUE = TEXT.one_of("0", "1", "2", "3", "beyond", "max").with_default("")
VIA = TEXT.one_of("direct", "window").with_default("direct")


def _transport(e: Engine) -> PciTransport | MmioTransport:
    t = e.t
    if not isinstance(t, (PciTransport, MmioTransport)):
        raise Skipped(f"needs register access to the PCI or MMIO transport; the device is "
                      f"reached over {e.s.transport_kind}")
    return t


def _queue_index(e: Engine, t, queue: str) -> int | None:
    if queue == "":
        return None
    if queue == "beyond":
        return t.num_queues()
    if queue == "max":
        return 0xFFFF
    if not queue.isdigit():
        raise StepError(f"queue={queue!r} is not a number, beyond or max")
    return int(queue)


def _select(t, q: int | None) -> None:
    if q is None:
        return
    if isinstance(t, PciTransport):
        t.common_write("queue_select", q)
    else:
        t.reg_write("queue_sel", q)


def _locate(t, reg: str, via: str) -> tuple[int, int] | None:
    """(address, width) of a named register, or None when this transport lacks it."""
    if isinstance(t, PciTransport):
        if reg == "isr":
            return t.isr, 1
        if reg == "pci_status":
            return t.cfg.base + R.PCI_STATUS, 2
        if reg not in R.COMMON or not t.has_common(reg):
            return None
        off, width = R.COMMON[reg]
        return t.common + off, width
    if reg not in R.MMIO or (t.legacy and reg in VERSION_2_ONLY):
        return None
    return t.base + R.MMIO[reg], 4


def _access(e: Engine, reg: str, queue: str, via: str, value: int | None = None) -> int:
    t = _transport(e)
    where = _locate(t, reg, via)
    if where is None:
        legacy = " (a legacy version 1 device)" if getattr(t, "legacy", False) else ""
        raise Skipped(f"the {t.kind} transport{legacy} has no register {reg!r}")
    if via == "window" and not isinstance(t, PciTransport):
        raise Skipped("the configuration access window is PCI's")
    try:
        _select(t, _queue_index(e, t, queue))
        addr, width = where
        if via == "window":
            cap = t.common_cap
            off = addr - t.layout.bars[cap.bar]
            if value is None:
                return t.window_read(cap.bar, off, width)
            t.window_write(cap.bar, off, width, value)
            return value
        if value is None:
            return t.bus.read(addr, width)
        t.bus.write(addr, width, value)
        return value
    except TransportError as exc:
        raise Wedged(f"register access failed: {exc}") from None


@action("reg_write", reg=REG, value=INT.range(0, 0xFFFF_FFFF), queue=QUEUE, via=VIA)
def reg_write(e: Engine, reg: str, value: int, queue: str = "", via: str = "direct") -> None:
    _access(e, reg, queue, via, value)


@action("reg_read", reg=REG, queue=QUEUE, via=VIA)
def reg_read(e: Engine, reg: str, queue: str = "", via: str = "direct") -> None:
    e.registers[reg] = _access(e, reg, queue, via)


def _compare(got: int, op: str, value: int) -> bool:
    return {"==": got == value, "!=": got != value, "<": got < value, "<=": got <= value,
            ">": got > value, ">=": got >= value, "has": got & value == value,
            "lacks": not got & value}[op]


@expectation("reg", reg=REG, op=TEXT.one_of(*OPS), value=INT.range(0, 0xFFFF_FFFF),
             queue=QUEUE, via=VIA)
def expect_reg(e: Engine, reg: str, op: str, value: int, queue: str = "",
               via: str = "direct") -> None:
    got = _access(e, reg, queue, via)
    if not _compare(got, op, value):
        where = f" (queue {queue})" if queue else ""
        raise Failed(f"{reg}{where} reads {got:#x}", f"{reg} {op} {value:#x}")


def _remembered(e: Engine, reg: str, verb: str) -> int:
    before = e.registers.get(reg)
    if before is None:
        raise StepError(f"expect {verb} {reg} needs an earlier reg_read reg={reg}")
    return before


@expectation("reg_same", reg=REG, queue=QUEUE, via=VIA)
def expect_reg_same(e: Engine, reg: str, queue: str = "", via: str = "direct") -> None:
    """The register still reads what ``reg_read`` saw."""
    before = _remembered(e, reg, "reg_same")
    got = _access(e, reg, queue, via)
    if got != before:
        raise Failed(f"{reg} changed from {before:#x} to {got:#x}", f"{reg} unchanged")


@expectation("reg_changed", reg=REG)
def expect_reg_changed(e: Engine, reg: str) -> None:
    """The register reads something else than ``reg_read`` saw."""
    before = _remembered(e, reg, "reg_changed")
    got = _access(e, reg, "", "direct")
    if got == before:
        raise Failed(f"{reg} still reads {got:#x}", f"{reg} different from {before:#x}")


@action("hold_interrupts")
def hold_interrupts(e: Engine) -> None:
    _transport(e).hold_interrupts()


@action("msix_disable")
def msix_disable(e: Engine) -> None:
    t = _transport(e)
    if not isinstance(t, PciTransport) or not t.msix_vectors:
        raise Skipped("needs a PCI device with MSI-X enabled")
    try:
        t.disable_msix()
    except TransportError as exc:
        raise Wedged(f"register access failed: {exc}") from None


@expectation("no_config_interrupt")
def expect_no_config_interrupt(e: Engine) -> None:
    e.drain()
    if e.config_irqs:
        raise Failed(f"{e.config_irqs} configuration change notification(s)",
                     "no configuration change notification")


@expectation("transport_layout", fact=TEXT.one_of(*PCI_FACTS, *MMIO_FACTS))
def expect_transport_layout(e: Engine, fact: str) -> None:
    t = _transport(e)
    try:
        if isinstance(t, PciTransport):
            if fact not in PCI_FACTS:
                raise Skipped(f"{fact} is an MMIO rule; the device is on PCI")
            facts = pci_facts(t, e.offered())
        else:
            if fact not in MMIO_FACTS:
                raise Skipped(f"{fact} is a PCI rule; the device is on MMIO")
            facts = mmio_facts(t)
    except TransportError as exc:
        raise Wedged(f"register access failed: {exc}") from None
    got = facts[fact]
    if got.holds is None:
        raise Skipped(got.evidence)
    if not got.holds:
        raise Failed(got.evidence, fact)


@expectation("queue_sizes", what=TEXT.one_of("power_of_two_or_zero"))
def expect_queue_sizes(e: Engine, what: str) -> None:
    """Every queue's size (and one past the last) is 0 or a power of two."""
    t = _transport(e)
    try:
        n = t.num_queues()
        sizes = {q: t.queue_max_size(q) for q in range(n + 1)}
    except TransportError as exc:
        raise Wedged(f"register access failed: {exc}") from None
    bad = {q: s for q, s in sizes.items() if s & (s - 1)}
    if bad:
        q, s = next(iter(bad.items()))
        raise Failed(f"queue {q} shows size {s}", "0 or a power of 2 for every queue")


@expectation("msix_mapping", what=TEXT.one_of("every_vector", "out_of_table"))
def expect_msix_mapping(e: Engine, what: str) -> None:
    """every_vector: the configuration event and queue 0 can each be mapped
    to every vector of the table and read back; out_of_table: a vector past
    the table reads back as NO_VECTOR."""
    t = _transport(e)
    if not isinstance(t, PciTransport) or not t.msix_vectors:
        raise Skipped("needs a PCI device with MSI-X")
    size = t.msix_vectors
    try:
        vectors = range(size) if what == "every_vector" else (size,)
        for field in ("config_msix_vector", "queue_msix_vector"):
            t.common_write("queue_select", 0)
            for v in vectors:
                t.common_write(field, v)
                got = t.common_read(field)
                want = v if what == "every_vector" else R.NO_VECTOR
                if got != want:
                    raise Failed(f"{field} written {v:#x} reads {got:#x}",
                                 f"{field} reads {want:#x}")
    except TransportError as exc:
        raise Wedged(f"register access failed: {exc}") from None


@expectation("driver_registers", rule=TEXT.one_of(*RULES))
def expect_driver_registers(e: Engine, rule: str) -> None:
    raise Skipped("judges a driver's register accesses: a driver-mode step "
                  "(given target driver)")
