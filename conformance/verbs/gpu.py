"""The GPU device: 2D commands on controlq and the responses they get."""
from __future__ import annotations

import random
import struct

from device_ref.transport import TransportError
from device_ref.virtio_constants import (GPU_CMD, GPU_CONFIG, GPU_FLAG_FENCE,
                                         GPU_FORMAT_B8G8R8X8_UNORM, GPU_HDR, GPU_MAX_SCANOUTS,
                                         GPU_RESP)

from conformance.engine.core import Engine, Reply
from conformance.engine.registry import INT, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped, Wedged

DISPLAY_ONE = 24            # struct virtio_gpu_display_one: rect, enabled, flags
DISPLAY_INFO = GPU_HDR + GPU_MAX_SCANOUTS * DISPLAY_ONE
RESP_NAMES = {v: k for k, v in GPU_RESP.items()}
# the response a command that succeeds calls for
OK_FOR = {"GET_DISPLAY_INFO": "OK_DISPLAY_INFO"}


def header(e: Engine, cmd: str, fence: bool) -> tuple[bytes, int]:
    fence_id = next(e.tokens) if fence else 0
    return struct.pack("<IIQIB3x", GPU_CMD[cmd], GPU_FLAG_FENCE if fence else 0, fence_id,
                       0, 0), fence_id


def command(e: Engine, cmd: str, body: bytes = b"", reply_len: int = GPU_HDR,
            fence: bool = False) -> Reply:
    e.need_type("gpu", "GPU command")
    head, fence_id = header(e, cmd, fence)
    reply = e.request(e.named_queue("controlq"), cmd, head + body, reply_len)
    rtype, flags, rfence = struct.unpack_from("<IIQ", reply.data)
    reply.extra.update(type=rtype, flags=flags, fence_id=rfence, fenced=fence,
                       sent_fence=fence_id)
    return reply


@action("gpu_display_info")
def gpu_display_info(e: Engine) -> None:
    command(e, "GET_DISPLAY_INFO", reply_len=DISPLAY_INFO)


@action("gpu_resource", width=INT.range(1, 1024).with_default(64),
        height=INT.range(1, 1024).with_default(64), fence=INT.range(0, 1).with_default(0),
        seed=INT.with_default(0), keep=INT.range(0, 1).with_default(0))
def gpu_resource(e: Engine, width: int, height: int, fence: int, seed: int, keep: int) -> None:
    """A 2D resource's life: create (B8G8R8X8), attach seeded backing pages,
    transfer them to the host, show it on scanout 0, flush, take it off the
    scanout, detach the backing and unreference it; each command waited for.
    With ``keep`` it stops after the flush, the resource left on show."""
    rid = 1 + len([r for r in e.replies if r.what == "RESOURCE_CREATE_2D"])
    size = width * height * 4
    backing = e.alloc(size, 4096)
    pixels = random.Random(seed).randbytes(size)
    e.t.memory.write(backing, pixels)
    rect = struct.pack("<IIII", 0, 0, width, height)
    f = bool(fence)
    command(e, "RESOURCE_CREATE_2D",
            struct.pack("<IIII", rid, GPU_FORMAT_B8G8R8X8_UNORM, width, height), fence=f)
    command(e, "RESOURCE_ATTACH_BACKING", struct.pack("<II", rid, 1) +
            struct.pack("<QII", backing, size, 0), fence=f)
    command(e, "TRANSFER_TO_HOST_2D", rect + struct.pack("<QII", 0, rid, 0), fence=f)
    command(e, "SET_SCANOUT", rect + struct.pack("<II", 0, rid), fence=f)
    flush = command(e, "RESOURCE_FLUSH", rect + struct.pack("<II", rid, 0), fence=f)
    flush.extra["shown"] = (width, height, pixels)
    if keep:
        return
    command(e, "SET_SCANOUT", bytes(16) + struct.pack("<II", 0, 0), fence=f)
    command(e, "RESOURCE_DETACH_BACKING", struct.pack("<II", rid, 0), fence=f)
    command(e, "RESOURCE_UNREF", struct.pack("<II", rid, 0), fence=f)


def answered(e: Engine) -> list[Reply]:
    got = [r for r in e.replies if "type" in r.extra]
    if not got:
        raise Failed("no GPU command was answered", "responses")
    return got


@expectation("gpu_responses", what=TEXT.one_of("ok"))
def expect_gpu_responses(e: Engine, what: str) -> None:
    """Every command got the OK response it calls for (OK_DISPLAY_INFO for
    GET_DISPLAY_INFO, OK_NODATA for the others)."""
    for r in answered(e):
        want = OK_FOR.get(r.what, "OK_NODATA")
        got = r.extra["type"]
        if got != GPU_RESP[want]:
            raise Failed(f"{r.what}: response {RESP_NAMES.get(got, hex(got))}", want)


@expectation("gpu_fence", what=TEXT.one_of("echoed"))
def expect_gpu_fence(e: Engine, what: str) -> None:
    """Every fenced command's response has VIRTIO_GPU_FLAG_FENCE and the
    request's fence_id."""
    fenced = [r for r in answered(e) if r.extra["fenced"]]
    if not fenced:
        raise Skipped("no fenced command was sent")
    for r in fenced:
        x = r.extra
        if not x["flags"] & GPU_FLAG_FENCE or x["fence_id"] != x["sent_fence"]:
            raise Failed(f"{r.what}: response flags {x['flags']:#x}, fence_id {x['fence_id']}",
                         f"VIRTIO_GPU_FLAG_FENCE and fence_id {x['sent_fence']}")


@expectation("gpu_display", what=TEXT.one_of("consistent"))
def expect_gpu_display(e: Engine, what: str) -> None:
    """The last display information: every enabled scanout has a non-empty
    rectangle, and none at or past num_scanouts is enabled."""
    info = [r for r in answered(e) if r.what == "GET_DISPLAY_INFO"]
    if not info:
        raise Skipped("no display information was asked for")
    off, size = GPU_CONFIG["num_scanouts"]
    try:
        scanouts = int.from_bytes(e.config(off, size), "little")
    except TransportError as exc:
        raise Wedged(f"reading num_scanouts failed: {exc}") from None
    data = info[-1].data
    for i in range(GPU_MAX_SCANOUTS):
        _x, _y, w, h, enabled, _flags = struct.unpack_from("<6I", data, GPU_HDR + i * DISPLAY_ONE)
        if enabled and (i >= scanouts or not w or not h):
            raise Failed(f"scanout {i} enabled with {w}x{h} (num_scanouts {scanouts})",
                         "enabled scanouts below num_scanouts, each with a non-empty rectangle")


@expectation("gpu_scanout", what=TEXT.one_of("shows"))
def expect_gpu_scanout(e: Engine, what: str) -> None:
    """The display of scanout 0 (as the adapter reads it from the host side)
    shows the last resource flushed with ``keep``: its size and its pixels."""
    flushed = [r for r in answered(e) if "shown" in r.extra]
    if not flushed:
        raise Skipped("no resource was flushed to a scanout")
    width, height, pixels = flushed[-1].extra["shown"]
    w, h, rgb = e.via_host("reading the display", lambda host: host.screen())
    # B8G8R8X8: bytes blue, green, red, unused; the host shows red, green, blue
    want = bytes(c for i in range(0, len(pixels), 4)
                 for c in (pixels[i + 2], pixels[i + 1], pixels[i]))
    if (w, h) != (width, height):
        raise Failed(f"the display is {w}x{h}", f"the {width}x{height} resource on show")
    if rgb != want:
        at = next(i for i in range(min(len(rgb), len(want))) if rgb[i] != want[i]) // 3
        raise Failed(f"pixel {at % width},{at // width} differs from the resource",
                     "the pixels transferred and flushed")
