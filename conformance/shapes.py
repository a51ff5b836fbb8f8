"""Request shapes for ``submit_shape``: one ordinary request laid out in a
particular (often forbidden) way; see docs/check-actions.md.

``segs`` are the request's buffers, one per part: (addr, len, writable,
bytes). Shapes the layout cannot express SKIP.
"""
from __future__ import annotations

from conformance.outcomes import Skipped
from device_ref.ring.hostile import DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, Desc

FOUR_G = 1 << 32
# Shapes that lay out a device-writable descriptor of their own.
NEEDS_WRITABLE = {"longer_than_queue", "indirect_and_next", "write_before_read"}
VALID = {"plain", "not_available", "direct_then_indirect", "indirect_write_flag",
         "indirect_extra_flags"}


def _plain(segs) -> list[Desc]:
    return [Desc(a, n, (DESC_F_WRITE if w else 0) | (DESC_F_NEXT if i + 1 < len(segs) else 0),
                 -1 if i + 1 < len(segs) else 0) for i, (a, n, w, _d) in enumerate(segs)]


def _table_entries(segs, packed: bool, extra: bool = False) -> list[Desc]:
    out = []
    for i, (a, n, w, _d) in enumerate(segs):
        flags = DESC_F_WRITE if w else 0
        if packed:
            out.append(Desc(a, n, flags | (DESC_F_NEXT if extra else 0), 7 if extra else 0))
        else:
            last = i + 1 == len(segs)
            out.append(Desc(a, n, flags | (0 if last else DESC_F_NEXT), 0 if last else i + 1))
    return out


def submit(h, q, shape: str, segs, pending) -> None:
    packed = q.packed
    needs_indirect = "indirect" in shape or shape == "longer_than_queue"
    if needs_indirect and not h.negotiated >> 28 & 1:
        raise Skipped(f"shape {shape} needs VIRTIO_F_INDIRECT_DESC negotiated")
    split_only = {"loop", "indirect_and_next", "direct_then_indirect"}
    if packed and shape in split_only:
        raise Skipped(f"shape {shape} cannot be expressed on the packed layout")
    if not packed and shape == "indirect_extra_flags":
        raise Skipped("shape indirect_extra_flags is a packed-layout shape")
    if shape in NEEDS_WRITABLE and not any(w for _a, _n, w, _d in segs):
        # a device-writable descriptor in a request of readable parts only
        # (a net frame to send) would be a second fault besides the shape's
        raise Skipped(f"shape {shape} needs a request with a device-writable part")
    publish = True
    if shape == "plain":
        descs = _plain(segs)
    elif shape == "not_available":
        descs = _plain(segs)
        publish = False
    elif shape == "loop":
        descs = _plain(segs)
        last = descs[-1]
        descs[-1] = Desc(last.addr, last.len, last.flags | DESC_F_NEXT, -1)  # back to the head
    elif shape == "longer_than_queue":
        hdr, data, status = segs[0], segs[1] if len(segs) > 2 else None, segs[-1]
        pieces = q.size - 1
        entries = [hdr]
        if data is not None:
            a, n, w, _d = data
            step = max(1, n // pieces)
            offs = [min(k * step, n - 1) for k in range(pieces)]
            for k, off in enumerate(offs):
                ln = (offs[k + 1] - off) if k + 1 < pieces else n - off
                entries.append((a + off, max(ln, 1), w, b""))
        while len(entries) < q.size:
            entries.append((status[0], 1, True, b""))
        entries.append(status)
        table = h.alloc(16 * len(entries))
        q.write_table(table, _table_entries(entries, packed))
        descs = [Desc(table, 16 * len(entries), DESC_F_INDIRECT)]
    elif shape == "over_4g":
        hdr, status = segs[0], segs[-1]
        data = segs[1] if len(segs) > 2 else segs[0]
        big = FOUR_G // 2 + 4096
        chain = [hdr, (data[0], big, data[2], b""), (data[0], big, data[2], b""), status]
        descs = _plain(chain)
    elif shape == "write_before_read":
        writable = [s for s in segs if s[2]]
        readable = [s for s in segs if not s[2]]
        descs = _plain(writable[-1:] + readable + writable[:-1])
    elif shape == "nested_indirect":
        inner = h.alloc(16 * len(segs))
        q.write_table(inner, _table_entries(segs, packed))
        outer = h.alloc(16)
        q.write_table(outer, [Desc(inner, 16 * len(segs), DESC_F_INDIRECT, 0)])
        descs = [Desc(outer, 16, DESC_F_INDIRECT)]
    elif shape == "indirect_and_next":
        table = h.alloc(16 * (len(segs) - 1))
        q.write_table(table, _table_entries(segs[:-1], packed))
        status = segs[-1]
        descs = [Desc(table, 16 * (len(segs) - 1), DESC_F_INDIRECT | DESC_F_NEXT, -1),
                 Desc(status[0], status[1], DESC_F_WRITE, 0)]
    elif shape == "direct_then_indirect":
        rest = segs[1:]
        table = h.alloc(16 * len(rest))
        q.write_table(table, _table_entries(rest, packed))
        hdr = segs[0]
        descs = [Desc(hdr[0], hdr[1], DESC_F_NEXT, -1),
                 Desc(table, 16 * len(rest), DESC_F_INDIRECT, 0)]
    elif shape == "indirect_write_flag":
        table = h.alloc(16 * len(segs))
        q.write_table(table, _table_entries(segs, packed))
        descs = [Desc(table, 16 * len(segs), DESC_F_INDIRECT | DESC_F_WRITE)]
    elif shape == "indirect_extra_flags":
        table = h.alloc(16 * len(segs))
        q.write_table(table, _table_entries(segs, packed, extra=True))
        descs = [Desc(table, 16 * len(segs), DESC_F_INDIRECT)]
    else:
        raise Skipped(f"unknown request shape {shape}")
    token = next(h.tokens)
    writable = sum(n for _a, n, w, _d in segs if w)
    if publish:
        h.making_available()
    q.add_chain(descs, token, writable, publish=publish)
    if not publish:
        return
    pending.writable = [(a, n) for a, n, w, _d in segs if w]
    pending.readable = [(a, n, d) for a, n, w, d in segs if not w]
    if shape in VALID:
        h.readable_log += pending.readable
    else:
        h.offending.append((token, q.index))   # a forbidden layout: evidence says if used
    h.pending[token] = pending
    if pending.kind == "blk":
        h.last_blk = pending
