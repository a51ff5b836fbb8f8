"""``device-ref serve``: run a reference device as a vhost-user back-end."""
from __future__ import annotations

import argparse
import mmap
import os
import signal
import sys

from device_ref.cli_base import CliError
from device_ref.sizes import parse_region, parse_size
from device_ref.checking import serve_options
from device_ref.checking.device import (CheckingBlkDevice, CheckingConsoleDevice,
                                        CheckingNetDevice, CheckingRngDevice)
from device_ref.device.features import F_EVENT_IDX, F_INDIRECT_DESC, F_RING_PACKED
from device_ref.devices.blk import BlkDevice, BlkOptions, FileStorage, MemoryStorage
from device_ref.devices.console import ConsoleDevice
from device_ref.devices.net import NetDevice
from device_ref.devices.rng import RngDevice
from device_ref.qenc import enable_device
from device_ref.restricted_pool import behind_pool
from device_ref.transport import BounceRegion
from device_ref.vhost_user.backend import Server, SocketInUse

PAGE = mmap.PAGESIZE   # what the back-end can map: whole pages

HELP = ("Serve a reference device (blk, rng, net or console) as a vhost-user back-end on a "
        "Unix socket.")

# Where a --swiotlb device's bounce region sits in guest-physical space, and
# its size, unless given: the front-end must share exactly this range.
DEFAULT_BOUNCE = (0x1_0000_0000, 8 << 20)


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _bounce(text: str) -> tuple[int, int]:
    try:
        return parse_region(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", required=True, choices=("blk", "rng", "net", "console"),
                        help="device type (net: every frame sent comes back on receiveq1; "
                             "console: port 0 echoes)")
    parser.add_argument("--socket", required=True, metavar="PATH",
                        help="Unix socket to listen on (replaced if stale)")
    parser.add_argument("--disk", metavar="FILE", help="blk: disk image file (used as is)")
    parser.add_argument("--size", type=_size, metavar="BYTES",
                        help="blk: create/extend --disk to this size, or the size of an "
                             "in-memory disk when no --disk is given (default 64M)")
    parser.add_argument("--read-only", action="store_true", help="blk: offer VIRTIO_BLK_F_RO")
    parser.add_argument("--queue-size", type=int, default=256, metavar="N",
                        help="largest ring size the device accepts (default 256)")
    parser.add_argument("--no-packed", action="store_true", help="do not offer RING_PACKED")
    parser.add_argument("--no-indirect", action="store_true", help="do not offer INDIRECT_DESC")
    parser.add_argument("--no-event-idx", action="store_true", help="do not offer EVENT_IDX")
    parser.add_argument("--swiotlb", action="store_true",
                        help="offer VIRTIO_F_SWIOTLB (bit 44) with a bounce region")
    parser.add_argument("--bounce", type=_bounce, default=DEFAULT_BOUNCE, metavar="BASE:SIZE",
                        help="guest-physical bounce region for --swiotlb "
                             "(default 0x100000000:8M)")
    parser.add_argument("--pool", type=_bounce, metavar="BASE:SIZE",
                        help="serve behind a restricted DMA pool at this guest-physical range: "
                             "map only the pool of the memory the front-end shares, offer "
                             "ACCESS_PLATFORM and SWIOTLB with the pool as bounce region "
                             "(docs/restricted-dma-pool.md)")
    parser.add_argument("--require-swiotlb", action="store_true",
                        help="refuse a driver that does not accept VIRTIO_F_SWIOTLB")
    parser.add_argument("--seed", type=int, help="rng: deterministic entropy from this seed")
    parser.add_argument("--queue-encryption", action="store_true",
                        help="offer VIRTIO_F_QUEUE_ENCRYPTION (experimental bit 45; keys arrive "
                             "as config writes at offset 0xc0, see docs/queue-encryption.md)")
    parser.add_argument("--poll-us", type=int, default=0, metavar="US",
                        help="after serving a kick, look for new buffers this many "
                             "microseconds before sleeping until the next kick: fewer wake-ups "
                             "for a driver that keeps its queue full, at the cost of CPU "
                             "(default 0, 0..10000)")
    parser.add_argument("--completion-batch", type=int, default=0, metavar="N",
                        help="serve at most N requests at a time and interrupt after each "
                             "group, so a driver that refills its queue as requests complete "
                             "overlaps with the device (default 0: all a kick finds, one "
                             "interrupt; 0..1024)")
    parser.add_argument("--quiet", action="store_true", help="log errors only")
    parser.add_argument("--trace", action="store_true",
                        help="log every vhost-user message received and reply sent")
    serve_options.add_arguments(parser)


def make_factory(args: argparse.Namespace):
    """A function returning a fresh device per connection (or a CliError)."""
    offer = ~0
    for flag, bit_no in ((args.no_packed, F_RING_PACKED), (args.no_indirect, F_INDIRECT_DESC),
                         (args.no_event_idx, F_EVENT_IDX)):
        if flag:
            offer &= ~(1 << bit_no)
    if args.pool is not None and args.swiotlb:
        raise CliError("--pool and --swiotlb exclude each other (--pool offers SWIOTLB itself)")
    if args.pool is not None and (args.pool[1] <= 0 or args.pool[0] % PAGE or args.pool[1] % PAGE
                                  or sum(args.pool) > 1 << 64):
        raise CliError(f"--pool: base and size must be whole {PAGE}-byte pages, size non-zero "
                       f"(only whole pages can be mapped)")
    if args.require_swiotlb and not (args.swiotlb or args.pool):
        raise CliError("--require-swiotlb needs --swiotlb or --pool")
    bounce = (BounceRegion(*args.pool) if args.pool is not None
              else BounceRegion(*args.bounce) if args.swiotlb else None)
    place = behind_pool if args.pool is not None else (lambda device: device)
    if not 1 <= args.queue_size <= 32768:
        raise CliError(f"--queue-size {args.queue_size} is not in 1..32768")

    if args.type != "blk" and (args.disk or args.size or args.read_only):
        raise CliError("--disk, --size and --read-only apply to --type blk only")
    if args.type != "rng" and args.seed is not None:
        raise CliError("--seed applies to --type rng only")
    if args.type in ("net", "console"):
        checking = getattr(args, "check_driver", False)
        loop_cls = {("net", False): NetDevice, ("net", True): CheckingNetDevice,
                    ("console", False): ConsoleDevice,
                    ("console", True): CheckingConsoleDevice}[args.type, checking]

        def loop():
            return place(loop_cls(bounce=bounce, require_swiotlb=args.require_swiotlb,
                                  queue_size=args.queue_size, offer=offer))
        return loop

    if args.type == "rng":
        rng_cls = CheckingRngDevice if getattr(args, "check_driver", False) else RngDevice

        def rng():
            return place(rng_cls(seed=args.seed, bounce=bounce,
                                 require_swiotlb=args.require_swiotlb,
                                 queue_size=args.queue_size, offer=offer))
        return rng

    blk_cls = CheckingBlkDevice if getattr(args, "check_driver", False) else BlkDevice
    opts = BlkOptions(read_only=args.read_only, queue_size=args.queue_size)
    if args.disk:
        try:
            storage = FileStorage(args.disk, args.size)
        except OSError as exc:
            raise CliError(f"{args.disk}: {exc.strerror}") from None
    else:
        storage = MemoryStorage(args.size or 64 << 20)
    if storage.size < 512 or storage.size % 512:
        raise CliError(f"disk size {storage.size} is not a positive multiple of 512")

    def blk():
        # One storage for all connections: what one front-end wrote, the
        # next one reads.
        return place(blk_cls(storage, opts, bounce=bounce,
                             require_swiotlb=args.require_swiotlb, offer=offer))
    return blk


def _tuned(factory, poll_s: float, completion_batch: int):
    """``factory`` whose devices look for new buffers ``poll_s`` after a
    kick and complete requests in groups of ``completion_batch``."""
    def make():
        dev = factory()
        dev.poll_s = poll_s
        dev.completion_batch = completion_batch
        return dev
    return make


def run(args: argparse.Namespace) -> int:

    factory = make_factory(args)
    if getattr(args, "queue_encryption", False) and args.type in ("net", "console"):
        raise CliError("--queue-encryption applies to --type blk and rng: what a net or console "
                       "device puts on its receive queue answers no request to seal")
    if getattr(args, "queue_encryption", False):
        plain_factory = factory

        def factory():
            return enable_device(plain_factory(), prestart=True).device
    try:
        factory()  # fail now, not at the first connection, if it cannot be built
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    if not 0 <= args.poll_us <= 10000:
        raise CliError(f"--poll-us {args.poll_us} is not in 0..10000")
    if not 0 <= args.completion_batch <= 1024:
        raise CliError(f"--completion-batch {args.completion_batch} is not in 0..1024")
    factory = _tuned(factory, args.poll_us / 1e6, args.completion_batch)
    factory = serve_options.wrap(args, factory)
    parent = os.path.dirname(os.path.abspath(args.socket))
    if not os.path.isdir(parent):
        raise CliError(f"{args.socket}: directory {parent} does not exist")
    if os.path.exists(args.socket) and not _is_socket(args.socket):
        raise CliError(f"{args.socket}: exists and is not a socket")
    try:
        server = Server(args.socket, factory, name=f"device-ref serve ({args.type})",
                        log=_logger(args.quiet), trace=args.trace)
    except SocketInUse as exc:
        raise CliError(f"{exc}; stop it first or pick another --socket") from None
    except OSError as exc:
        raise CliError(f"{args.socket}: cannot listen: {exc.strerror or exc}") from None

    def stop(signum, frame):  # noqa: ARG001
        server.stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not args.quiet:
        print(f"device-ref serve: {args.type} device listening on {args.socket}",
              file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
        serve_options.finish(factory)
    return 0


def _is_socket(path: str) -> bool:
    import stat
    return stat.S_ISSOCK(os.stat(path).st_mode)


def _logger(quiet: bool):
    def log(line: str) -> None:
        if quiet and ": error: " not in line and "needs reset" not in line:
            return
        print(line, file=sys.stderr, flush=True)
    return log
