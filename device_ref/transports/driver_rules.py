"""The PCI and MMIO transport rules a driver is bound by, judged from the
register accesses a device saw (``device_side.RegisterSpace(log=True)``).

Each rule is a pure function of the access log (and a few facts about the
device: its MSI-X table size, its queues' maximum sizes, whether the packed
layout was negotiated) returning the violations it found, as sentences.
The conformance engine's driver mode runs the reference driver over the
in-process register models and asks these functions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from device_ref import virtio_constants as R
from device_ref.transports.device_side import (MSIX_AT, PCI_CFG_AT, UNUSABLE_CAPS,
                                               VENDOR_DATA_AT, Access, _CAPS)

_COMMON = {off: name for name, (off, _w) in R.COMMON.items()}
_MMIO = {off: name for name, off in R.MMIO.items()}
# MMIO registers by direction (the register table of the MMIO transport)
MMIO_WRITE_ONLY = {"device_features_sel", "driver_features", "driver_features_sel",
                   "guest_page_size", "queue_sel", "queue_num", "queue_align", "queue_notify",
                   "interrupt_ack", "queue_desc_low", "queue_desc_high", "queue_driver_low",
                   "queue_driver_high", "queue_device_low", "queue_device_high", "shm_sel"}
MMIO_READ_ONLY = {"magic", "version", "device_id", "vendor_id", "device_features",
                  "queue_num_max", "interrupt_status", "config_generation", "shm_len_low",
                  "shm_len_high", "shm_base_low", "shm_base_high"}
_QUEUE_SETUP = {"queue_num", "queue_desc_low", "queue_desc_high", "queue_driver_low",
                "queue_driver_high", "queue_device_low", "queue_device_high"}


@dataclass
class DeviceFacts:
    msix_vectors: int = 0
    queue_max: dict[int, int] = field(default_factory=dict)
    packed: bool = False


def _common(a: Access) -> str | None:
    return _COMMON.get(a.offset) if a.block == "common" else None


def _mmio(a: Access) -> str | None:
    return _MMIO.get(a.offset) if a.block == "mmio" and a.offset < R.MMIO_CONFIG else None


def _show(a: Access) -> str:
    return f"{'read' if a.op == 'r' else 'write'} of {a.width} bytes at {a.block}+{a.offset:#x}" + \
        (f" value {a.value:#x}" if a.op == "w" else "")


# -- PCI ----------------------------------------------------------------------------

def pci_read_only_fields(log, facts):
    ro = {"device_feature", "num_queues", "config_generation", "queue_notify_off"}
    return [_show(a) for a in log if a.op == "w" and _common(a) in ro]


def pci_queue_size(log, facts):
    out = []
    for a in log:
        if a.op == "w" and _common(a) == "queue_size":
            bad = a.value == 0 if facts.packed else (a.value == 0 or a.value & (a.value - 1))
            if bad:
                out.append(_show(a))
    return out


def pci_configure_before_enable(log, facts):
    out, sel, done = [], 0, {}
    for a in log:
        name = _common(a)
        if a.op != "w" or name is None:
            continue
        if name == "device_status" and a.value == 0:
            done = {}
        elif name == "queue_select":
            sel = a.value
        elif name in ("queue_size", "queue_desc_lo", "queue_driver_lo", "queue_device_lo"):
            done.setdefault(sel, set()).add(name)
        elif name == "queue_enable" and a.value == 1:
            missing = {"queue_desc_lo", "queue_driver_lo", "queue_device_lo"} - done.get(sel, set())
            if missing:
                out.append(f"queue {sel} enabled before {', '.join(sorted(missing))} was written")
    return out


def pci_no_zero_enable(log, facts):
    return [_show(a) for a in log if a.op == "w" and _common(a) == "queue_enable" and a.value == 0]


def pci_wait_reset(log, facts):
    out, waiting = [], False
    for a in log:
        name = _common(a)
        if a.op == "w" and name == "device_status" and a.value == 0:
            waiting = True
        elif a.op == "r" and name == "device_status" and a.value == 0:
            waiting = False
        elif waiting and a.op == "w" and a.block in ("common", "notify", "device"):
            out.append(f"{_show(a)} before device_status read back 0 after a reset")
            waiting = False
    return out


def config_access_width(log, facts):
    block = "device"
    return [_show(a) for a in log if a.block == block and (a.width not in (1, 2, 4)
                                                          or a.offset % a.width)]


def pci_msix_in_table(log, facts):
    out = []
    for a in log:
        if a.op == "w" and _common(a) in ("config_msix_vector", "queue_msix_vector"):
            if a.value != R.NO_VECTOR and a.value >= facts.msix_vectors:
                out.append(f"{_show(a)} with a table of {facts.msix_vectors}")
    return out


def pci_msix_verify(log, facts):
    out = []
    for i, a in enumerate(log):
        name = _common(a)
        if a.op == "w" and name in ("config_msix_vector", "queue_msix_vector"):
            nxt = next((b for b in log[i + 1:] if b.block == "common"), None)
            if nxt is None or nxt.op != "r" or _common(nxt) != name:
                out.append(f"{name} written {a.value:#x} and not read back next")
    return out


def pci_capabilities_untouched(log, facts):
    starts = [at for at, _t, _o, _l in _CAPS] + [PCI_CFG_AT] + [c[0] for c in UNUSABLE_CAPS]
    out = []
    for a in log:
        if a.op != "w" or a.block != "cfg":
            continue
        for at in starts:
            size = 20 if at == PCI_CFG_AT else 16
            if at <= a.offset < at + size and not (at == PCI_CFG_AT and a.offset >= at + 4):
                out.append(_show(a))
    return out


def pci_notify_value(log, facts):
    out = []
    for a in log:
        if a.op == "w" and a.block == "notify":
            queue = a.offset // 4      # the in-process model's notify_off_multiplier
            if a.width != 2 or a.value != queue:
                out.append(f"{_show(a)} (queue {queue} expects a 16-bit write of {queue})")
    return out


def pci_isr_with_msix(log, facts):
    enabled = False
    out = []
    for a in log:
        if a.block == "cfg" and a.op == "w" and a.offset == MSIX_AT + R.MSIX_CONTROL:
            enabled = bool(a.value & R.MSIX_CONTROL_ENABLE)
        if enabled and a.block == "isr" and a.op == "r":
            out.append(f"{_show(a)} with MSI-X enabled")
    return out


def pci_vendor_data(log, facts):
    """The vendor data capability: at most its header and vendor_id are read
    (to qualify it), nothing is written."""
    out = []
    for a in log:
        if a.block == "cfg" and VENDOR_DATA_AT <= a.offset < VENDOR_DATA_AT + 8:
            if a.op == "w" or a.offset + a.width > VENDOR_DATA_AT + 6:
                out.append(_show(a))
    return out


def pci_ignores_unusable(log, facts):
    """No access reaches the structure only a reserved cfg_type, or a second
    capability of a type, describes."""
    return [_show(a) for a in log if a.block == "unusable"]


def pci_cfg_window(log, facts):
    """Accesses to pci_cfg_data only with an aligned offset inside a range
    another capability describes (here: BAR 4's structures, 4 KiB each)."""
    out, bar, offset, length = [], 0, 0, 0
    ranges = [(4, off, size) for _at, _t, off, size in _CAPS]
    for a in log:
        if a.block != "cfg" or not PCI_CFG_AT + 4 <= a.offset < PCI_CFG_AT + 20:
            continue
        if a.op == "w" and a.offset == PCI_CFG_AT + 4:
            bar = a.value & 0xFF
        elif a.op == "w" and a.offset == PCI_CFG_AT + 8:
            offset = a.value
        elif a.op == "w" and a.offset == PCI_CFG_AT + 12:
            length = a.value
        elif a.offset == PCI_CFG_AT + 16:
            inside = any(b == bar and o <= offset and offset + length <= o + n
                         for b, o, n in ranges)
            if not length or offset % length or not inside:
                out.append(f"pci_cfg_data used with bar {bar}, offset {offset:#x}, "
                           f"length {length}")
    return out


# -- MMIO ---------------------------------------------------------------------------

def mmio_directions(log, facts):
    out = []
    for a in log:
        if a.block != "mmio" or a.offset >= R.MMIO_CONFIG:
            continue
        name = _mmio(a)
        if name is None:
            out.append(f"{_show(a)}: no register there")
        elif a.op == "r" and name in MMIO_WRITE_ONLY:
            out.append(f"{_show(a)}: {name} is write-only")
        elif a.op == "w" and name in MMIO_READ_ONLY:
            out.append(f"{_show(a)}: {name} is read-only")
    return out


def mmio_access_width(log, facts):
    return [_show(a) for a in log if a.block == "mmio" and (
        (a.offset < R.MMIO_CONFIG and (a.width != 4 or a.offset % 4))
        or (a.offset >= R.MMIO_CONFIG and (a.width not in (1, 2, 4) or a.offset % a.width)))]


def mmio_init_order(log, facts):
    first = [_mmio(a) for a in log if a.block == "mmio"][:3]
    if first != ["magic", "version", "device_id"]:
        return [f"the first accesses were {first}, not MagicValue, Version, DeviceID"]
    return []


def mmio_select_before(log, facts):
    out, dsel, gsel = [], False, False
    for a in log:
        name = _mmio(a)
        if name == "device_features_sel" and a.op == "w":
            dsel = True
        elif name == "driver_features_sel" and a.op == "w":
            gsel = True
        elif name == "device_features" and a.op == "r":
            if not dsel:
                out.append("DeviceFeatures read without a DeviceFeaturesSel write before it")
            dsel = False
        elif name == "driver_features" and a.op == "w":
            if not gsel:
                out.append("DriverFeatures written without a DriverFeaturesSel write before it")
            gsel = False
    return out


def mmio_queue_size_max(log, facts):
    out, sel = [], 0
    for a in log:
        name = _mmio(a)
        if a.op == "w" and name == "queue_sel":
            sel = a.value
        elif a.op == "w" and name == "queue_num" and a.value > facts.queue_max.get(sel, 0):
            out.append(f"QueueNum {a.value} for queue {sel} (QueueNumMax "
                       f"{facts.queue_max.get(sel, 0)})")
    return out


def mmio_ready_queue_fixed(log, facts):
    out, sel, ready = [], 0, set()
    for a in log:
        name = _mmio(a)
        if name is None:
            continue
        if a.op == "w" and name == "status" and a.value == 0:
            ready = set()
        elif a.op == "w" and name == "queue_sel":
            sel = a.value
        elif a.op == "w" and name == "queue_ready":
            (ready.add if a.value else ready.discard)(sel)
        elif name in _QUEUE_SETUP and sel in ready:
            out.append(f"{_show(a)} while queue {sel} is ready")
    return out


def mmio_interrupt_ack(log, facts):
    out, seen = [], False
    for a in log:
        name = _mmio(a)
        if name == "interrupt_status" and a.op == "r":
            seen = True
        elif name == "interrupt_ack" and a.op == "w":
            if a.value & ~(R.MMIO_INT_VRING | R.MMIO_INT_CONFIG):
                out.append(f"InterruptACK {a.value:#x} sets undefined bits")
            if not seen:
                out.append("InterruptACK written without reading InterruptStatus first")
            seen = False
    return out


def mmio_no_shm(log, facts):
    shm = {"shm_sel", "shm_len_low", "shm_len_high", "shm_base_low", "shm_base_high"}
    return [_show(a) for a in log if _mmio(a) in shm]


def queue_reset_wait(log, facts):
    """After writing 1 to queue_reset / QueueReset the driver reads it until
    0 before it writes any other queue field."""
    out, waiting = [], False
    for a in log:
        name = _common(a) or _mmio(a)
        if name == "queue_reset" and a.op == "w" and a.value == 1:
            waiting = True
        elif name == "queue_reset" and a.op == "r" and a.value == 0:
            waiting = False
        elif waiting and a.op == "w" and name is not None and name.startswith("queue_"):
            out.append(f"{_show(a)} before the queue reset read back 0")
            waiting = False
    return out


def mmio_init_sequence(log, facts):
    """Each Status write after a reset adds bits in the general order:
    ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK."""
    order = (1, 2, 8, 4)
    out, have = [], 0
    for a in log:
        if _mmio(a) != "status" or a.op != "w":
            continue
        if a.value == 0:
            have = 0
            continue
        new = a.value & ~have & 0x0F
        if a.value & have != have:
            out.append(f"Status {a.value:#x} drops bits of {have:#x}")
        for bit in order:
            if new & bit and any(not have & b and not a.value & b
                                 for b in order[:order.index(bit)]):
                out.append(f"Status {a.value:#x} sets {bit:#x} before the bits due first")
        have = a.value
    return out


# -- the general initialisation rules, judged the same over PCI and MMIO --------------

def _status_write(a: Access) -> bool:
    return a.op == "w" and (_common(a) == "device_status" or _mmio(a) == "status")


def _since_reset(log, bit: int):
    """Each access with whether a status write holding `bit` came since the last reset."""
    seen = False
    for a in log:
        if _status_write(a):
            if a.value == 0:
                seen = False
            elif a.value & bit:
                seen = True
        yield a, seen


def status_no_clear(log, facts):
    """A status write other than 0 (a reset) keeps every bit the driver set before."""
    out, have = [], 0
    for a in log:
        if not _status_write(a):
            continue
        if a.value and a.value & have != have:
            out.append(f"status {a.value:#x} clears bits of {have:#x} without a reset")
        have = a.value & 0xFF
    return out


def reset_after_failed(log, facts):
    """After setting FAILED the driver's next status write is 0 (a reset)."""
    out, failed = [], False
    for a in log:
        if not _status_write(a):
            continue
        if failed and a.value != 0:
            out.append(f"status {a.value:#x} written after FAILED without a reset first")
        failed = bool(a.value & R.FAILED)
    return out


def features_fixed_after_ok(log, facts):
    """No driver feature write once FEATURES_OK was set, until a reset."""
    return [f"{_show(a)} after FEATURES_OK" for a, ok in _since_reset(log, R.FEATURES_OK)
            if ok and a.op == "w" and (_common(a) == "driver_feature" or _mmio(a) == "driver_features")]


def config_unwritten_before_features_ok(log, facts):
    """No write to the device-specific configuration before FEATURES_OK."""
    return [f"{_show(a)} before FEATURES_OK" for a, ok in _since_reset(log, R.FEATURES_OK)
            if not ok and a.op == "w" and (a.block == "device" or
                                           (a.block == "mmio" and a.offset >= R.MMIO_CONFIG))]


def notify_after_driver_ok(log, facts):
    """No available buffer notification before DRIVER_OK."""
    return [f"{_show(a)} before DRIVER_OK" for a, ok in _since_reset(log, R.DRIVER_OK)
            if not ok and a.op == "w" and (a.block == "notify" or _mmio(a) == "queue_notify")]


# -- VIRTIO_F_SUSPEND, judged the same over PCI and MMIO ---------------------------------

def _status_read(a: Access) -> bool:
    return a.op == "r" and (_common(a) == "device_status" or _mmio(a) == "status")


def _suspend_phases(log):
    """Each access with the phase it falls in: "running", "suspended" (from a
    status write that sets SUSPEND to the write that sets DRIVER_OK again) or
    "resuming" (from that write until a status read shows the device running)."""
    phase = "running"
    for a in log:
        if _status_write(a):
            if a.value == 0:
                phase = "running"
            elif phase == "running" and a.value & R.SUSPEND:
                yield a, "suspend-write"
                phase = "suspended"
                continue
            elif phase == "suspended" and a.value & R.DRIVER_OK:
                yield a, "resume-write"
                phase = "resuming"
                continue
        elif phase == "resuming" and _status_read(a) and a.value & R.DRIVER_OK \
                and not a.value & R.SUSPEND:
            phase = "running"
        yield a, phase


def suspend_when_live(log, facts):
    """SUSPEND is set only while DRIVER_OK is."""
    out, have = [], 0
    for a in log:
        if _status_write(a):
            if a.value & R.SUSPEND and not have & (R.DRIVER_OK | R.SUSPEND):
                out.append(f"status {a.value:#x} sets SUSPEND without DRIVER_OK")
            have = a.value
    return out


def quiet_while_suspended(log, facts):
    """While suspended: no notification, no device configuration write."""
    return [f"{_show(a)} while the device is suspended" for a, phase in _suspend_phases(log)
            if phase == "suspended" and a.op == "w" and (
                a.block in ("notify", "device") or _mmio(a) == "queue_notify"
                or (a.block == "mmio" and a.offset >= R.MMIO_CONFIG))]


def suspend_verified(log, facts):
    """After setting SUSPEND the driver reads status and sees the device
    suspended (SUSPEND set, DRIVER_OK clear) before it resumes it."""
    out, pending = [], False
    for a, phase in _suspend_phases(log):
        if phase == "suspend-write":
            pending = True
        elif pending and _status_read(a) and a.value & R.SUSPEND and not a.value & R.DRIVER_OK:
            pending = False
        elif pending and phase == "resume-write":
            out.append("resumed without first reading status to see the device suspended")
            pending = False
    if pending:
        out.append("set SUSPEND and never read status to see the device suspended")
    return out


def wait_for_resume(log, facts):
    """After setting DRIVER_OK again, no notification until a status read
    shows the device running (DRIVER_OK set, SUSPEND clear)."""
    return [f"{_show(a)} before status showed the device resumed"
            for a, phase in _suspend_phases(log)
            if phase == "resuming" and a.op == "w" and (a.block == "notify"
                                                        or _mmio(a) == "queue_notify")]


RULES: dict[str, tuple[str, Callable]] = {
    "pci-read-only-fields": ("pci", pci_read_only_fields),
    "pci-queue-size": ("pci", pci_queue_size),
    "pci-configure-before-enable": ("pci", pci_configure_before_enable),
    "pci-no-zero-enable": ("pci", pci_no_zero_enable),
    "pci-wait-reset": ("pci", pci_wait_reset),
    "pci-config-width": ("pci", config_access_width),
    "pci-msix-in-table": ("pci", pci_msix_in_table),
    "pci-msix-verify": ("pci", pci_msix_verify),
    "pci-capabilities-untouched": ("pci", pci_capabilities_untouched),
    "pci-notify-value": ("pci", pci_notify_value),
    "pci-isr-with-msix": ("pci", pci_isr_with_msix),
    "pci-cfg-window": ("pci", pci_cfg_window),
    "pci-ignores-unusable": ("pci", pci_ignores_unusable),
    "pci-vendor-data": ("pci", pci_vendor_data),
    "mmio-directions": ("mmio", mmio_directions),
    "mmio-access-width": ("mmio", mmio_access_width),
    "mmio-init-order": ("mmio", mmio_init_order),
    "mmio-select-before": ("mmio", mmio_select_before),
    "mmio-queue-size-max": ("mmio", mmio_queue_size_max),
    "mmio-ready-queue-fixed": ("mmio", mmio_ready_queue_fixed),
    "mmio-interrupt-ack": ("mmio", mmio_interrupt_ack),
    "mmio-no-shm": ("mmio", mmio_no_shm),
    "mmio-init-sequence": ("mmio", mmio_init_sequence),
    "queue-reset-wait": ("any", queue_reset_wait),
    "status-no-clear": ("any", status_no_clear),
    "reset-after-failed": ("any", reset_after_failed),
    "features-fixed-after-ok": ("any", features_fixed_after_ok),
    "config-unwritten-before-features-ok": ("any", config_unwritten_before_features_ok),
    "notify-after-driver-ok": ("any", notify_after_driver_ok),
    "suspend-when-live": ("any", suspend_when_live),
    "quiet-while-suspended": ("any", quiet_while_suspended),
    "suspend-verified": ("any", suspend_verified),
    "wait-for-resume": ("any", wait_for_resume),
}


# Rules about something a driver may never do: with no such status write in
# the log there is nothing to judge (the verdict is SKIP, not PASS).
_NEEDS_STATUS_BIT = {"reset-after-failed": R.FAILED, "suspend-when-live": R.SUSPEND,
                     "quiet-while-suspended": R.SUSPEND, "suspend-verified": R.SUSPEND,
                     "wait-for-resume": R.SUSPEND}


def not_exercised(rule: str, log: list[Access]) -> str | None:
    """Why ``log`` gives ``rule`` nothing to judge, or None when it does."""
    need = _NEEDS_STATUS_BIT.get(rule)
    if need is None or any(_status_write(a) and a.value & need for a in log):
        return None
    name = "FAILED" if need == R.FAILED else "SUSPEND"
    return f"the driver under test never set {name}, so {rule} had nothing to judge"


def judge(rule: str, log: list[Access], facts: DeviceFacts) -> list[str]:
    """The violations of ``rule`` in ``log``."""
    return RULES[rule][1](log, facts)
