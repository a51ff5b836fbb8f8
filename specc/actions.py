"""The check-step vocabulary: the contract between spec checks and the
conformance runner.

Each verb is a precondition (``given VERB ...``: a vector is skipped when it
does not hold), an action (a step the runner makes the driver or device
take) or an expectation (``expect VERB ...``: an observation the runner
checks).  Parameters are positional (written bare, in order) or named
(written ``name=value``).  docs/check-actions.md documents every verb; a
test keeps that page and this table in step.
"""
from __future__ import annotations

from dataclasses import dataclass

PRECONDITION = "precondition"
ACTION = "action"
EXPECTATION = "expectation"

STATUS_BITS = ("ACKNOWLEDGE", "DRIVER", "DRIVER_OK", "FEATURES_OK", "SUSPEND",
               "DEVICE_NEEDS_RESET", "FAILED")
DESC_FLAGS = ("next", "write", "indirect")
COMPARATORS = ("==", "!=", "<", "<=", ">", ">=")
# names an address expression may use besides integers and + - *
EXPR_NAMES = ("region.start", "region.end", "region.size", "outside")


# transport registers by name: PCI common configuration fields and the ISR
# byte, then MMIO registers (the runtime keeps their offsets)
TRANSPORT_REGISTERS = (
    "device_feature_select", "device_feature", "driver_feature_select", "driver_feature",
    "config_msix_vector", "num_queues", "device_status", "config_generation", "queue_select",
    "queue_size", "queue_msix_vector", "queue_enable", "queue_notify_off", "queue_desc_lo",
    "queue_desc_hi", "queue_driver_lo", "queue_driver_hi", "queue_device_lo",
    "queue_device_hi", "queue_notify_data", "queue_reset", "isr", "pci_status",
    "magic", "version", "device_id", "vendor_id", "device_features", "device_features_sel",
    "driver_features", "driver_features_sel", "queue_sel", "queue_num_max", "queue_num",
    "queue_ready", "queue_notify", "interrupt_status", "interrupt_ack", "status",
    "queue_desc_low", "queue_desc_high", "queue_driver_low", "queue_driver_high",
    "queue_device_low", "queue_device_high", "shm_sel", "shm_len_low", "shm_len_high",
    "shm_base_low", "shm_base_high")
DRIVER_REGISTER_RULES = (
    "pci-read-only-fields", "pci-queue-size", "pci-configure-before-enable",
    "pci-no-zero-enable", "pci-wait-reset", "pci-config-width", "pci-msix-in-table",
    "pci-msix-verify", "pci-capabilities-untouched", "pci-notify-value", "pci-isr-with-msix",
    "pci-cfg-window", "pci-ignores-unusable", "pci-vendor-data",
    "mmio-directions", "mmio-access-width", "mmio-init-order", "mmio-select-before",
    "mmio-queue-size-max", "mmio-ready-queue-fixed", "mmio-interrupt-ack", "mmio-no-shm",
    "queue-reset-wait", "mmio-init-sequence", "status-no-clear", "reset-after-failed",
    "features-fixed-after-ok", "config-unwritten-before-features-ok", "notify-after-driver-ok",
    "blk-writeback-after-features-ok",
    "suspend-when-live", "quiet-while-suspended", "suspend-verified", "wait-for-resume")
QUEUE_CHOICES = ("0", "1", "2", "3", "beyond", "max")
LAYOUT_FACTS = ("vendor-id", "device-id", "non-transitional-ids", "common-present", "notify-present", "isr-present",
                "pci-cfg-present", "common-aligned", "device-cfg-aligned", "notify-aligned",
                "notify-multiplier", "notify-length", "notify-layout-data", "cap-len",
                "shm-in-bar", "shm-unique-id",
                "vendor-data", "msix-table-size", "pci-basics", "magic", "version")


@dataclass(frozen=True)
class Param:
    name: str
    type: str                       # feature, int, enum, expr, status_bit, flags, field, value, hex
    choices: tuple[str, ...] = ()
    positional: bool = False
    repeat: bool = False            # one or more values (positional only)
    optional: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Verb:
    name: str
    kind: str
    params: tuple[Param, ...]
    doc: str


def _p(name, type_, *choices, positional=False, repeat=False, optional=False, doc=""):
    return Param(name, type_, tuple(choices), positional, repeat, optional, doc)


_VERBS = (
    # ---- preconditions --------------------------------------------------
    Verb("device", PRECONDITION, (_p("type", "enum", "blk", "rng", "net", "console", "balloon",
                                     "scsi", "gpu", "input", "any", positional=True),),
         "The device under test is of this type (any: every type)."),
    Verb("layout", PRECONDITION, (_p("layout", "enum", "split", "packed", "any", positional=True),),
         "Run with this virtqueue layout; packed needs VIRTIO_F_RING_PACKED offered."),
    Verb("offered", PRECONDITION, (_p("features", "feature", positional=True, repeat=True),),
         "Skip unless the device offers every listed feature."),
    Verb("transport", PRECONDITION,
         (_p("transport", "enum", "any", "pci", "mmio", "vhost-user", positional=True),),
         "Run only over this transport."),
    Verb("target", PRECONDITION, (_p("side", "enum", "device", "driver", positional=True),),
         "Which side is under test: a device (driven by the reference driver, the "
         "default) or a driver (observed by a checking device)."),
    Verb("region", PRECONDITION, (_p("state", "enum", "present", "absent", positional=True),),
         "Run only if the transport does (present) or does not (absent) describe a "
         "bounce-buffer region for the device."),
    # ---- actions --------------------------------------------------------
    Verb("reset", ACTION, (), "Reset the device (write 0 to device status) and wait for it to read back 0."),
    Verb("negotiate", ACTION, (_p("features", "feature", positional=True, repeat=True, optional=True),),
         "ACKNOWLEDGE, DRIVER, accept these offered features plus VERSION_1, then FEATURES_OK."),
    Verb("negotiate_offered", ACTION, (),
         "Like negotiate, accepting every feature the device offers (SKIP if the "
         "reference driver cannot drive one of them)."),
    Verb("accept_raw", ACTION, (_p("features", "feature", positional=True, repeat=True, optional=True),),
         "Write exactly these driver features (none: write 0), even if the device did not offer them."),
    Verb("set_status", ACTION, (_p("bits", "status_bit", positional=True, repeat=True),),
         "Write device status with these bits added to the current value."),
    Verb("setup_queues", ACTION, (), "Allocate and configure every virtqueue the device type needs."),
    Verb("driver_ok", ACTION, (), "Set DRIVER_OK."),
    Verb("blk_write", ACTION, (_p("sector", "int"), _p("count", "int"), _p("seed", "int")),
         "Write count sectors from sector, with data from a seeded generator."),
    Verb("blk_read", ACTION, (_p("sector", "int"), _p("count", "int")),
         "Read count sectors from sector."),
    Verb("blk_flush", ACTION, (), "Send a VIRTIO_BLK_T_FLUSH request."),
    Verb("blk_get_id", ACTION, (), "Send a VIRTIO_BLK_T_GET_ID request with a 20-byte buffer."),
    Verb("blk_request", ACTION, (_p("type", "int"),), "Send a request of this raw type number."),
    Verb("rng_read", ACTION, (_p("len", "int"),), "Offer a device-writable buffer of len bytes to the entropy device."),
    Verb("net_fill_rx", ACTION, (_p("count", "int"), _p("len", "int")),
         "Offer count device-writable buffers of len bytes on the network device's receiveq1, "
         "with one notification."),
    Verb("net_send", ACTION, (_p("len", "int"),),
         "Send one frame of len bytes (14 or more) on transmitq1 behind a zeroed "
         "virtio_net_hdr, and wait for its buffer to be used."),
    Verb("net_receive", ACTION, (_p("count", "int"), _p("timeout_ms", "int")),
         "Wait up to timeout_ms for count frames to arrive on receiveq1 (none arriving is not "
         "itself a failure)."),
    Verb("submit_descriptor", ACTION,
         (_p("addr", "expr"), _p("len", "int"), _p("flags", "flags", optional=True)),
         "Make one descriptor available as-is (hostile or edge values allowed)."),
    Verb("place_rings", ACTION, (_p("where", "enum", "inside", "outside_region", "straddling"),),
         "Place the virtqueue structures relative to the bounce-buffer region."),
    Verb("kick", ACTION, (), "Send an available buffer notification."),
    Verb("wait_used", ACTION, (_p("timeout_ms", "int"),),
         "Wait up to timeout_ms for a used buffer (no used buffer is not itself a failure)."),
    Verb("driver_io", ACTION, (_p("count", "int"),),
         "Driver under test: let it perform count ordinary requests."),
    # ---- expectations ---------------------------------------------------
    Verb("status", EXPECTATION,
         (_p("op", "enum", "has", "lacks", positional=True),
          _p("bits", "status_bit", positional=True, repeat=True)),
         "Device status has (or lacks) every listed bit."),
    Verb("suspend", EXPECTATION, (_p("state", "enum", "suspended", "resumed", positional=True),),
         "VIRTIO_F_SUSPEND: device status shows the device suspended (SUSPEND set, DRIVER_OK "
         "clear) or resumed (DRIVER_OK set, SUSPEND clear); a device that sets "
         "DEVICE_NEEDS_RESET instead, which the rule allows when it cannot, makes the "
         "vector SKIP."),
    Verb("needs_reset_if_stuck", EXPECTATION, (),
         "After a hostile buffer: device status has DEVICE_NEEDS_RESET, unless the queue "
         "that got it still moves (a later ordinary buffer on it is used)."),
    Verb("features_ok", EXPECTATION,
         (_p("outcome", "enum", "accepted", "refused", "either", positional=True),),
         "After FEATURES_OK was written: the device kept it (accepted) or cleared it (refused)."),
    Verb("used_len", EXPECTATION,
         (_p("op", "enum", *COMPARATORS, positional=True), _p("value", "int", positional=True)),
         "The length in the last used element compares so."),
    Verb("blk_status", EXPECTATION, (_p("status", "enum", "OK", "IOERR", "UNSUPP", positional=True),),
         "The status byte of the last block request."),
    Verb("data", EXPECTATION, (_p("what", "enum", "matches", positional=True),),
         "Data read back equals the data written earlier with the same sectors."),
    Verb("no_used", EXPECTATION, (), "No used buffer appeared since the last kick."),
    Verb("memory_outside_region", EXPECTATION,
         (_p("what", "enum", "unchanged", positional=True),),
         "Guest memory outside the bounce-buffer region is byte-identical to before."),
    Verb("notified", EXPECTATION, (), "A used buffer notification arrived."),
    Verb("not_notified", EXPECTATION, (), "No used buffer notification arrived."),
    Verb("config", EXPECTATION,
         (_p("field", "field", positional=True), _p("op", "enum", *COMPARATORS, positional=True),
          _p("value", "int", positional=True)),
         "A device configuration field compares so with value."),
    Verb("id_string", EXPECTATION, (_p("what", "enum", "matches", positional=True),),
         "The GET_ID reply is the device's configured id, NUL-terminated if shorter than 20 bytes."),
    Verb("offered", EXPECTATION, (_p("features", "feature", positional=True, repeat=True),),
         "The device offers every listed feature."),
    Verb("accepted", EXPECTATION,
         (_p("op", "enum", "has", "lacks", positional=True),
          _p("features", "feature", positional=True, repeat=True)),
         "Driver under test: the features it accepted include (lack) every listed one."),
    Verb("accepted_subset", EXPECTATION, (),
         "Driver under test: every feature it accepted was offered."),
    Verb("config_changed", EXPECTATION, (),
         "A configuration change notification arrived."),
    Verb("addresses", EXPECTATION, (_p("where", "enum", "inside_region", positional=True),),
         "Driver under test: every ring and buffer address it gave lies inside the region."),
    Verb("region", EXPECTATION,
         (_p("property", "enum", "nonempty", "within_bar", "page_aligned", positional=True),),
         "The bounce-buffer region the transport describes has this property."),
    Verb("entropy", EXPECTATION, (_p("what", "enum", "nonzero", positional=True),),
         "The entropy device wrote bytes that are not all zero."),
    Verb("net_rx", EXPECTATION,
         (_p("what", "enum", "frames_match", "num_buffers", "one_buffer", "filled_but_last",
             "header_clean", positional=True),),
         "The receive buffers used, cut into frames by the lengths sent: frames_match (every "
         "frame sent came back unchanged), num_buffers (each header's num_buffers is the "
         "number of buffers its frame lies in), one_buffer (each frame in one buffer), "
         "filled_but_last (each buffer of a frame but its last used to its full length), "
         "header_clean (flags and gso_type zero when no receive offload was negotiated)."),
    # ---- added for the baseline modules (virtqueues, blk, rng) --------------
    Verb("framing", ACTION,
         (_p("style", "enum", "separate", "merged", "fragmented"),
          _p("chunk", "int", optional=True)),
         "Until the next reset, lay out each request's buffer as: separate (one descriptor per "
         "part of the request, e.g. blk header, data, status: the default), merged (adjacent "
         "parts the device accesses in the same direction share one descriptor), fragmented "
         "(like separate, with every part longer than chunk bytes, default 64, split into "
         "descriptors of chunk bytes); in a valid check, a request whose chain would exceed the "
         "queue size or the device's advertised limit (blk: seg_max) makes the vector SKIP."),
    Verb("submit_shape", ACTION,
         (_p("shape", "enum", "plain", "not_available", "loop", "longer_than_queue",
             "over_4g", "write_before_read", "nested_indirect", "indirect_and_next",
             "direct_then_indirect", "indirect_write_flag", "indirect_extra_flags"),),
         "Make one ordinary request of the device type (blk: read of sector 0 with a 512-byte "
         "data buffer; rng: 64-byte buffer) available, built in this shape, without notifying; "
         "see the shape table in check-actions.md."),
    Verb("device_io", ACTION, (_p("count", "int"), _p("batch", "int", optional=True)),
         "Perform count ordinary requests of the device type, batch at a time (default 1): "
         "each batch is made available with one notification and waited for as a whole; blk: "
         "one-sector writes of seeded data to sectors 0, 1, ... then read back one by one; "
         "rng: 64-byte reads; net: SKIP (frames sent would come back into later tests' "
         "receive buffers on a network that returns them); console: SKIP (its output goes to "
         "transmitq0, queue 1, not the queue 0 such checks prepare)."),
    Verb("set_avail_flags", ACTION, (_p("value", "int"),),
         "Split layout: write value as-is into the flags field of the available ring."),
    Verb("set_used_event", ACTION, (_p("ahead", "int"),),
         "Split layout: set used_event (the field after the available ring's entries) to the "
         "used ring's current idx plus ahead, modulo 65536 (meaningful with VIRTIO_F_EVENT_IDX)."),
    Verb("blk_past_end", ACTION,
         (_p("op", "enum", "read", "write"), _p("where", "enum", "at_end", "straddling")),
         "Block request beyond capacity: at_end: one sector starting at sector capacity; "
         "straddling: two sectors starting at capacity-1 (writes use seeded data)."),
    Verb("blk_segment_request", ACTION,
         (_p("type", "int"), _p("seg_flags", "int"), _p("sector", "int", optional=True),
          _p("num_sectors", "int", optional=True)),
         "Send a discard, write-zeroes or secure-erase request (type) with one segment: "
         "sector (default 0), num_sectors (default 1), and this raw flags word; a write-zeroes "
         "request that completes with OK counts as writing zeroes for 'expect data matches'."),
    Verb("queue_reset", ACTION, (),
         "With VIRTIO_F_RING_RESET negotiated: reset the request queue (queue 0) through the "
         "transport and wait until the transport reports it reset."),
    Verb("queue_reenable", ACTION, (_p("size", "int", optional=True),),
         "Set the request queue (queue 0) up again after queue_reset, with fresh zeroed rings of "
         "this size (default: the size it had), and enable it; later requests use it."),
    Verb("blk_get_lifetime", ACTION, (),
         "Send a VIRTIO_BLK_T_GET_LIFETIME request with a 6-byte device-writable data buffer."),
    Verb("backend_resize", ACTION, (_p("sectors", "int"),),
         "Blk: change the size of the device's backing storage to this many 512-byte sectors "
         "while the device runs (adapters that control the back-end; others SKIP)."),
    Verb("io", EXPECTATION, (_p("what", "enum", "all_ok", positional=True),),
         "Every request of the last device_io was used exactly once, with status OK (blk) or "
         "a used length above 0 (rng), and blk data read back equal to what was written."),
    Verb("readable_buffers", EXPECTATION, (_p("what", "enum", "unchanged", positional=True),),
         "Every device-readable buffer the driver made available since the last reset is "
         "byte-identical to what the driver wrote into it."),
    Verb("descriptors", EXPECTATION,
         (_p("what", "enum", "unchanged", "stable_after_use", positional=True),),
         "unchanged: the split descriptor table and every indirect table hold exactly what the "
         "driver wrote; stable_after_use: a packed descriptor, once the device marked it used, "
         "keeps its bytes until the driver reuses its slot (sampled again after 50 ms)."),
    Verb("used_flags", EXPECTATION,
         (_p("op", "enum", *COMPARATORS, positional=True), _p("value", "int", positional=True)),
         "Split layout: the flags field of the used ring compares so with value."),
    Verb("completion_order", EXPECTATION,
         (_p("what", "enum", "available_order", positional=True),),
         "Buffers were used in the order they were made available (counting, under "
         "VIRTIO_F_IN_ORDER, the buffers that one used entry stands for)."),
    Verb("blk_data", EXPECTATION, (_p("what", "enum", "unchanged", positional=True),),
         "The sectors the last block write covered still hold what they held before it "
         "(the runner read them first)."),
    Verb("driver_queues", EXPECTATION,
         (_p("property", "enum", "aligned", "avail_idx_monotonic", "used_flags_initialised",
             "avail_flags_valid", "notifies_when_asked", "quiet_when_suppressed",
             "notification_data_matches",
             "reuses_only_used", "available_stay_put", positional=True),),
         "Driver under test: its virtqueues had this property throughout; see check-actions.md."),
    Verb("blk_lifetime", EXPECTATION, (_p("what", "enum", "no_reserved_values", positional=True),),
         "The reply to the last VIRTIO_BLK_T_GET_LIFETIME request holds no reserved value: "
         "pre_eol_info at most 3, both lifetime estimates at most 11."),
    Verb("write_order", EXPECTATION,
         (_p("what", "enum", "used_len_before_idx", "data_before_used", positional=True),),
         "From the log of the device's memory writes (adapters that log device accesses; "
         "others SKIP): used_len_before_idx: split: each used element was written before the "
         "used idx that publishes it; data_before_used: at least len bytes of each buffer's "
         "device-writable part were written before the buffer was published as used."),
    Verb("writable_buffers", EXPECTATION, (_p("what", "enum", "unread", positional=True),),
         "From the log of the device's memory reads (adapters that log device accesses; "
         "others SKIP): the device read no byte of a device-writable buffer."),
    Verb("ring_access", EXPECTATION, (_p("what", "enum", "none_since_reset", positional=True),),
         "From the log of the device's memory accesses (adapters that log device accesses; "
         "others SKIP): the device neither read nor wrote any virtqueue area or buffer since "
         "the last reset completed."),
    Verb("blk_requests", EXPECTATION,
         (_p("property", "enum", "within_capacity", "flush_sector_zero", "flush_no_data",
             "io_multiple_of_512", "get_id_20_bytes", "segment_data_whole",
             "segments_within_limits", "discard_unmap_clear", positional=True),),
         "Driver under test, blk: every request it sent had this property; see "
         "check-actions.md."),
    Verb("console_queues", EXPECTATION,
         (_p("property", "enum", "rx_writable_only", "tx_readable_only", positional=True),),
         "Driver under test, console: every receiveq buffer was device-writable only, every "
         "transmitq buffer device-readable only."),
    Verb("net_frames", EXPECTATION,
         (_p("property", "enum", "tx_num_buffers_zero", "tx_flags_zero", "tx_gso_none",
             "tx_header_present", "rx_buffer_holds_header", "rx_buffer_full_size",
             positional=True),),
         "Driver under test, net: every frame it sent or receive buffer it offered had this "
         "property; see check-actions.md."),
    Verb("driver_chains", EXPECTATION,
         (_p("property", "enum", "readable_first", "bounded", "within_queue_size",
             "within_device_limit", "indirect_only_if_negotiated", "no_nested_indirect",
             "no_indirect_with_next", "indirect_only_write_flag", "in_order_next",
             "head_exposed_last", "writable_only", positional=True),),
         "Driver under test: every descriptor chain it made available had this property; "
         "see check-actions.md."),
    # ---- queue encryption (spec/queue_encryption.vspec) ---------------------
    Verb("qenc_keys", ACTION,
         (_p("alg", "enum", "null", "aes-256-gcm", "chacha20-poly1305", "unsupported"),
          _p("key", "hex")),
         "Between FEATURES_OK and DRIVER_OK (or after, to test the refusal): write this algorithm "
         "and 32-byte key into the queue-encryption registers for every queue (key_queue, "
         "algorithm, key, then key_commit 1); later qenc_submit steps seal with it and each "
         "queue's counter starts at 0. A cipher the device's supported_algorithms register does not list "
         "makes the vector SKIP; unsupported writes the lowest value the register does not list."),
    Verb("qenc_submit", ACTION,
         (_p("plaintext", "hex", optional=True), _p("writable", "int", optional=True),
          _p("nonce_queue", "int", optional=True),
          _p("direction", "enum", "to_device", "to_driver", optional=True),
          _p("counter", "int", optional=True),
          _p("tamper", "enum", "none", "ciphertext", "tag", "aad", optional=True)),
         "Make one chain available on the request queue without notifying: plaintext sealed "
         "with the installed key as its device-readable part (nonce of nonce_queue, direction "
         "and counter; defaults: the request queue, to_device, the chain's own counter; "
         "tamper: flip a bit of the ciphertext or the tag, or seal with a length one more than "
         "the plaintext's in the associated data), then, when writable is above 0, a device-writable "
         "part of writable plus 16 bytes (with neither plaintext nor writable: an 8-byte writable part, too "
         "short for a tag); the chain spends the next counter of the queue either way."),
    Verb("qenc_sealed", EXPECTATION,
         (_p("nonce", "hex"), _p("aad", "hex"), _p("ciphertext", "hex"), _p("tag", "hex")),
         "Known answer: the last qenc_submit sealed with this nonce and associated data and "
         "produced this ciphertext and tag."),
    Verb("qenc_reply", EXPECTATION,
         (_p("plaintext", "hex", optional=True), _p("nonce", "hex", optional=True),
          _p("aad", "hex", optional=True), _p("ciphertext", "hex", optional=True),
          _p("tag", "hex", optional=True)),
         "The first used-length bytes of the device-writable part of the last qenc_submit "
         "chain (ciphertext, then the tag) open with the key and the to_driver nonce of that "
         "chain's counter, the associated data carrying the used length less 16, and the device "
         "wrote nothing past the used length; given values must match the plaintext, the nonce "
         "and associated data used, and the ciphertext and tag the device wrote."),
    Verb("qenc_refused", EXPECTATION, (),
         "The last qenc_submit chain was used with length 0 and its device-writable part still "
         "holds what the runner put there: no plaintext was released and nothing written."),
    Verb("qenc_registers", EXPECTATION, (_p("what", "enum", "zero", positional=True),),
         "Every byte of the write-only queue-encryption registers (all but supported_algorithms) reads "
         "as zero."),
    Verb("qenc_algorithms", EXPECTATION, (_p("what", "enum", "well_formed", positional=True),),
         "The supported_algorithms register lists NULL (bit 0), at least one cipher, and no reserved "
         "value (bits 3 to 31 clear)."),
    Verb("reg_write", ACTION,
         (_p("reg", "enum", *TRANSPORT_REGISTERS), _p("value", "int"),
          _p("queue", "enum", *QUEUE_CHOICES, optional=True),
          _p("via", "enum", "direct", "window", optional=True)),
         "PCI or MMIO: write a transport register by name (queue= selects a queue first; "
         "via=window goes through the PCI configuration access capability). SKIP on other "
         "transports or when this transport has no such register."),
    Verb("reg_read", ACTION,
         (_p("reg", "enum", *TRANSPORT_REGISTERS),
          _p("queue", "enum", *QUEUE_CHOICES, optional=True),
          _p("via", "enum", "direct", "window", optional=True)),
         "PCI or MMIO: read a transport register and remember the value (expect reg_same / "
         "reg_changed compare with it)."),
    Verb("hold_interrupts", ACTION, (),
         "PCI or MMIO: stop reading (and on MMIO acknowledging) the ISR status / "
         "InterruptStatus while waiting, so what the device shows stays visible."),
    Verb("msix_disable", ACTION, (),
         "PCI: turn MSI-X off; interrupts are then the ISR status. SKIP without MSI-X."),
    Verb("no_config_interrupt", EXPECTATION, (),
         "No configuration change notification arrived."),
    Verb("reg", EXPECTATION,
         (_p("reg", "enum", *TRANSPORT_REGISTERS, positional=True),
          _p("op", "enum", *COMPARATORS, "has", "lacks", positional=True),
          _p("value", "int", positional=True),
          _p("queue", "enum", *QUEUE_CHOICES, optional=True),
          _p("via", "enum", "direct", "window", optional=True)),
         "PCI or MMIO: a transport register compares so with value (has / lacks: every / no "
         "bit of value is set)."),
    Verb("reg_same", EXPECTATION,
         (_p("reg", "enum", *TRANSPORT_REGISTERS, positional=True),
          _p("queue", "enum", *QUEUE_CHOICES, optional=True),
          _p("via", "enum", "direct", "window", optional=True)),
         "The register reads what the last reg_read of it saw."),
    Verb("reg_changed", EXPECTATION,
         (_p("reg", "enum", *TRANSPORT_REGISTERS, positional=True),),
         "The register reads something other than what the last reg_read of it saw."),
    Verb("transport_layout", EXPECTATION,
         (_p("fact", "enum", *LAYOUT_FACTS, positional=True),),
         "PCI or MMIO: a layout rule holds (ids, capabilities present, aligned and long "
         "enough, notify multiplier, MSI-X table size, MMIO magic and version); SKIP when the "
         "rule's subject is absent (no shared memory capability, a legacy MMIO device)."),
    Verb("queue_sizes", EXPECTATION,
         (_p("what", "enum", "power_of_two_or_zero", positional=True),),
         "PCI or MMIO: every queue's size, and that shown for one index past the last, is 0 "
         "or a power of 2."),
    Verb("msix_mapping", EXPECTATION,
         (_p("what", "enum", "every_vector", "out_of_table", positional=True),),
         "PCI with MSI-X: the configuration event and queue 0 map to every vector of the "
         "table and read it back (every_vector), or a vector past the table reads back "
         "NO_VECTOR (out_of_table)."),
    Verb("driver_queue_reset", ACTION, (),
         "Driver under test: reset the request queue alone (VIRTIO_F_RING_RESET, offered by "
         "the checking device for this step) and set it up again."),
    Verb("driver_registers", EXPECTATION,
         (_p("rule", "enum", *DRIVER_REGISTER_RULES, positional=True),),
         "Driver under test, over the in-process PCI or MMIO register model: no register "
         "access it made breaks this transport rule."),
    Verb("pci_capability", EXPECTATION,
         (_p("cfg_type", "int"), _p("count", "int", optional=True),
          _p("min_length", "int", optional=True)),
         "Over PCI: the device lists exactly count (default 1) virtio structure capabilities "
         "of this cfg_type, each giving a length of at least min_length bytes."),
)

# ---- group administration (conformance/verbs/admin.py) ------------------------
_ADMIN_STATUS = ("OK", "ENXIO", "EAGAIN", "ENOMEM", "EBUSY", "EINVAL", "ENOSPC")
_ADMIN_QUALIFIER = ("OK", "INVALID_COMMAND", "INVALID_OPCODE", "INVALID_FIELD", "INVALID_GROUP",
                    "INVALID_MEMBER", "NORESOURCE", "TRYAGAIN")
_VERBS += (
    Verb("admin_setup", ACTION, (),
         "VIRTIO_F_ADMIN_VQ negotiated: set up the first administration virtqueue where the "
         "transport reports it (SKIP on a transport that cannot say where it is)."),
    Verb("admin_command", ACTION,
         (_p("opcode", "int"), _p("group", "int", optional=True),
          _p("member", "int", optional=True), _p("data", "hex", optional=True),
          _p("result", "int", optional=True), _p("cut", "int", optional=True)),
         "One struct virtio_admin_cmd on the administration virtqueue, waited for: opcode, "
         "group_type (default 0, the self group), group_member_id (default 0) and "
         "command-specific data device-readable (only the first cut bytes, when given); the "
         "8-byte status header and result (default 8) bytes of room device-writable."),
    Verb("admin_use", ACTION, (_p("listed", "enum", "queried", "base", positional=True),),
         "VIRTIO_ADMIN_CMD_LIST_USE for the self group: queried, every opcode the last "
         "LIST_QUERY result set; base, the two list commands alone."),
    Verb("admin_status", EXPECTATION,
         (_p("status", "enum", *_ADMIN_STATUS, "not_OK", positional=True),
          _p("qualifier", "enum", *_ADMIN_QUALIFIER, positional=True, optional=True)),
         "The last administration command's status (not_OK: any other than OK) and, when "
         "given, its status_qualifier."),
    Verb("admin_list", EXPECTATION,
         (_p("what", "enum", "list_commands", "kept", "capability_commands", positional=True),),
         "list_commands: the last LIST_QUERY answered OK sets opcodes 0 and 1; kept: it sets "
         "every opcode the first one of the test set; capability_commands: it sets all three "
         "capability commands or none."),
    Verb("admin_header", EXPECTATION, (_p("what", "enum", "written", positional=True),),
         "Every administration command of the test got its whole 8-byte status header "
         "written, the reserved bytes zero."),
)

# ---- balloon, SCSI, GPU, input (conformance/verbs/balloon.py, scsi.py, gpu.py, input.py) --
_VERBS += (
    Verb("balloon_pages", ACTION,
         (_p("op", "enum", "inflate", "deflate"), _p("pages", "int")),
         "Balloon: inflate: give this many fresh 4 KiB guest pages, their page frame numbers "
         "in one buffer on inflateq; deflate: take back the last pages given, on deflateq; "
         "waits until the device used the buffer."),
    Verb("balloon_stats", ACTION,
         (_p("seed", "int"), _p("order", "enum", "ascending", "descending"),
          _p("unknown", "int")),
         "Balloon, VIRTIO_BALLOON_F_STATS_VQ negotiated: make one statistics buffer available "
         "on statsq and notify: MINFLT, MEMFREE, MEMTOT and AVAIL with seeded values, tags in "
         "this order, with unknown=1 an entry of an unassigned tag in the middle."),
    Verb("balloon_stats_interval", ACTION, (_p("seconds", "int"),),
         "Balloon: ask the device from outside (adapters with host controls; others SKIP) to "
         "want fresh statistics every this many seconds."),
    Verb("balloon_target", ACTION, (_p("pages", "int"),),
         "Balloon: ask the device from outside (adapters with host controls; others SKIP) to "
         "want this many pages in the balloon (a configuration change)."),
    Verb("balloon_poison", ACTION, (_p("value", "int"),),
         "Balloon: write this value into poison_val (before DRIVER_OK, as the driver must)."),
    Verb("balloon_report", ACTION, (_p("pages", "int"),),
         "Balloon, VIRTIO_BALLOON_F_PAGE_REPORTING negotiated: report this many free 4 KiB "
         "pages, page-aligned and filled with the last poison_val written (0 if none), as one "
         "device-writable buffer on reporting_vq; waits until the device used it."),
    Verb("balloon_reported", EXPECTATION, (_p("what", "enum", "poisoned", positional=True),),
         "Every page of every report the device used still holds the poison_val it was "
         "filled with."),
    Verb("balloon_stats", EXPECTATION,
         (_p("what", "enum", "recorded", "returned", positional=True),),
         "recorded: the device holds the values of the last statistics buffer (as the adapter "
         "reads them from the device's host side, within the step timeout); returned: the "
         "device used the statistics buffer made available before the last one."),
    Verb("scsi_command", ACTION,
         (_p("command", "enum", "inquiry", "read_capacity", "write", "read"),
          _p("target", "int", optional=True), _p("lba", "int", optional=True),
          _p("blocks", "int", optional=True), _p("seed", "int", optional=True)),
         "SCSI: one command to LUN 0 of target (default 0) on requestq1: INQUIRY (36 bytes), "
         "READ CAPACITY(10), or WRITE(10)/READ(10) of blocks 512-byte blocks (default 1) at "
         "lba (default 0), writes with seeded data; the CDB is padded to cdb_size; a unit "
         "attention answer is followed by the same command once more; waits for the response."),
    Verb("scsi_response", EXPECTATION,
         (_p("response", "enum", "OK", "OVERRUN", "ABORTED", "BAD_TARGET", "RESET", "BUSY",
             "TRANSPORT_FAILURE", "TARGET_FAILURE", "NEXUS_FAILURE", "FAILURE",
             positional=True),),
         "The response byte of the last SCSI command."),
    Verb("scsi_status", EXPECTATION,
         (_p("status", "enum", "GOOD", "CHECK_CONDITION", "CONDITION_MET", "BUSY",
             "RESERVATION_CONFLICT", "TASK_SET_FULL", "ACA_ACTIVE", "TASK_ABORTED",
             positional=True),),
         "The last SCSI command got response OK with this SAM status."),
    Verb("scsi_codes", EXPECTATION, (_p("what", "enum", "valid", positional=True),),
         "Every SCSI response byte since the reset is one the specification defines, and every "
         "status byte of a response OK a SAM status code."),
    Verb("scsi_data", EXPECTATION,
         (_p("what", "enum", "inquiry", "capacity", "matches", positional=True),),
         "The data of the last SCSI command: inquiry: peripheral qualifier 0, printable vendor "
         "and product; capacity: a last block above 0 and a block length of at least 512, a "
         "power of 2; matches: a read returned what the last write to the same blocks sent."),
    Verb("gpu_display_info", ACTION, (),
         "GPU: VIRTIO_GPU_CMD_GET_DISPLAY_INFO on controlq, waited for."),
    Verb("gpu_resource", ACTION,
         (_p("width", "int", optional=True), _p("height", "int", optional=True),
          _p("fence", "int", optional=True), _p("seed", "int", optional=True),
          _p("keep", "int", optional=True)),
         "GPU: a 2D resource's life on controlq, each command waited for (with fence=1 each "
         "carries VIRTIO_GPU_FLAG_FENCE and a fresh fence_id): RESOURCE_CREATE_2D "
         "(B8G8R8X8, width x height, default 64 x 64), RESOURCE_ATTACH_BACKING (one entry of "
         "seeded pixels), TRANSFER_TO_HOST_2D, SET_SCANOUT on scanout 0, RESOURCE_FLUSH, "
         "SET_SCANOUT with resource 0, RESOURCE_DETACH_BACKING, RESOURCE_UNREF; with keep=1 "
         "it stops after the flush, the resource left on scanout 0."),
    Verb("gpu_scanout", EXPECTATION, (_p("what", "enum", "shows", positional=True),),
         "The display of scanout 0, read from the host side (adapters with host controls; "
         "others SKIP), has the size and the pixels of the last resource flushed with keep=1."),
    Verb("gpu_responses", EXPECTATION, (_p("what", "enum", "ok", positional=True),),
         "Every GPU command since the reset got the OK response it calls for: "
         "OK_DISPLAY_INFO for GET_DISPLAY_INFO, OK_NODATA for the 2D resource commands."),
    Verb("gpu_fence", EXPECTATION, (_p("what", "enum", "echoed", positional=True),),
         "Every fenced GPU command's response has VIRTIO_GPU_FLAG_FENCE and its fence_id."),
    Verb("gpu_display", EXPECTATION, (_p("what", "enum", "consistent", positional=True),),
         "The last display information: each enabled scanout is below num_scanouts and has a "
         "non-empty rectangle."),
    Verb("input_config", ACTION, (_p("select", "int"), _p("subsel", "int")),
         "Input: write select and subsel into the configuration, then read size and the bytes "
         "it covers."),
    Verb("input_config", EXPECTATION,
         (_p("what", "enum", "empty", "string", "devids", "bitmap", positional=True),),
         "The last configuration query: empty: size 0; string: size bytes of printable text "
         "(a NUL terminator is not part of a string); devids: size 8; bitmap: a bitmap with a "
         "bit set."),
    Verb("input_buffers", ACTION, (_p("count", "int"),),
         "Input: make count empty 8-byte event buffers available on eventq and notify."),
    Verb("input_key", ACTION, (_p("key", "enum", "a", "b", "shift", "ret", "spc"),
                               _p("release", "int", optional=True)),
         "Input: press a key from outside, and release it unless release=0 (adapters with "
         "host controls; others SKIP)."),
    Verb("console_send", ACTION, (_p("len", "int"), _p("seed", "int", optional=True)),
         "Console: seeded bytes on transmitq0 (port 0), waited for; the host end of the port "
         "is connected and emptied first (adapters with host controls; others SKIP)."),
    Verb("console_buffers", ACTION,
         (_p("queue", "enum", "receiveq0", "control-receiveq"), _p("count", "int"),
          _p("len", "int")),
         "Console: count empty device-writable buffers of len bytes on receiveq0 or the "
         "control receiveq, notified."),
    Verb("console_host_write", ACTION, (_p("len", "int"), _p("seed", "int", optional=True)),
         "Console: seeded bytes typed at the host end of port 0 (adapters with host controls; "
         "others SKIP)."),
    Verb("console_control", ACTION,
         (_p("event", "enum", "DEVICE_READY", "DEVICE_ADD", "DEVICE_REMOVE", "PORT_READY",
             "CONSOLE_PORT", "RESIZE", "PORT_OPEN", "PORT_NAME"),
          _p("id", "int"), _p("value", "int")),
         "Console with VIRTIO_CONSOLE_F_MULTIPORT: one control message (port id, event, value) "
         "on the control transmitq, waited for."),
    Verb("console_emergency_write", ACTION, (_p("byte", "int"),),
         "Console: write one character into emerg_wr (a 32-bit configuration write)."),
    Verb("console_host", EXPECTATION, (_p("what", "enum", "received", positional=True),),
         "Within the step timeout, the host end of port 0 received, in order, every byte sent "
         "on transmitq0 and written into emerg_wr since the test began."),
    Verb("console_rx", EXPECTATION, (_p("what", "enum", "matches", positional=True),),
         "Within the step timeout, the receiveq0 buffers used hold, in order, every byte typed "
         "at the host end."),
    Verb("console_ports", EXPECTATION,
         (_p("what", "enum", "added_once_in_range", positional=True),),
         "Within the step timeout, a VIRTIO_CONSOLE_DEVICE_ADD came on the control receiveq; "
         "no port was added twice or at or past max_nr_ports."),
    Verb("input_event", EXPECTATION,
         (_p("type", "int"), _p("code", "int"), _p("value", "int")),
         "An event of this type, code and value came on eventq, followed there by an EV_SYN "
         "(waits up to the step timeout)."),
    Verb("input_updates", EXPECTATION, (_p("what", "enum", "whole", positional=True),),
         "After the step timeout, the events that came on eventq end with an EV_SYN: no update "
         "arrived cut short (each came whole or not at all)."),
)

# (kind, verb) -> Verb.  Preconditions and expectations have their own name
# spaces ("given offered X" and "expect offered X" mean different things).
VERBS: dict[tuple[str, str], Verb] = {(v.kind, v.name): v for v in _VERBS}


def lookup(kind: str, name: str) -> Verb | None:
    return VERBS.get((kind, name))


def verbs_of(kind: str) -> list[str]:
    return sorted(name for (k, name) in VERBS if k == kind)


# Verbs that only make sense for one device type: blk_* and rng_* by name,
# plus these expectations.
_DEVICE_OF = {"id_string": "blk", "entropy": "rng"}
DEVICE_PREFIXES = ("blk", "rng", "net", "console", "balloon", "scsi", "gpu", "input")


def required_device(verb: str) -> str | None:
    """The device type a step needs (a check using it says `given device TYPE`)."""
    if verb in _DEVICE_OF:
        return _DEVICE_OF[verb]
    for prefix in DEVICE_PREFIXES:
        if verb.startswith(prefix + "_"):
            return prefix
    return None
