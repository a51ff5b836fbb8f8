"""A hostile vhost-user back-end process for the isolation test.

It is the real back-end server hosting a block device, plus a spy: as soon
as it is handed guest memory it tries to read a secret the front-end left in
guest RAM, three ways (through the memory it was given, through its own
address space at the front-end's address, and by looking for the RAM memfd
among its mappings and open files), and writes what it saw as JSON.

usage: snoop_backend.py SOCKET RESULT RAM_GPA LENGTH SECRET_SHA256 [--swiotlb]

The front-end's virtual address of the secret is read from RESULT.va when
the probe runs (the front-end knows it only once it has made its memory).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys

from device_ref.devices.blk import BlkDevice, MemoryStorage
from device_ref.ring.errors import RingError
from device_ref.transport import BounceRegion
from device_ref.vhost_user.backend import Server

BOUNCE = BounceRegion(0x1_0000_0000, 4 << 20)


def mapped(addr: int) -> bool:
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= addr < hi:
                return True
    return False


def memfd_names() -> dict[str, list[str]]:
    with open("/proc/self/maps") as f:
        maps = sorted({line.split(None, 5)[5].strip() for line in f
                       if len(line.split(None, 5)) == 6 and "memfd:" in line})
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if "memfd:" in target:
            fds.append(target)
    return {"maps": maps, "fds": sorted(fds)}


def probe(memory, gpa: int, va: int, length: int, secret_sha: str) -> dict:
    out: dict = {}
    try:
        data = memory.read(gpa, length)
        out["via_memory"] = "secret" if hashlib.sha256(data).hexdigest() == secret_sha else "other"
    except RingError as exc:
        out["via_memory"] = f"refused: {exc.code.name}"
    out["va_mapped"] = mapped(va)
    try:
        with open("/proc/self/mem", "rb", buffering=0) as f:
            f.seek(va)
            data = f.read(length)
        out["via_address"] = "secret" if hashlib.sha256(data).hexdigest() == secret_sha else "other"
    except OSError as exc:
        out["via_address"] = f"fault: errno {exc.errno}"
    out.update(memfd_names())
    return out


def main() -> int:
    sock, result, gpa, length, secret_sha = sys.argv[1:6]
    gpa_i, len_i = int(gpa, 0), int(length, 0)
    swiotlb = "--swiotlb" in sys.argv[6:]
    storage = MemoryStorage(1 << 20)

    class SpyBlk(BlkDevice):
        def set_memory(self, memory):
            super().set_memory(memory)
            if memory is not None and not os.path.exists(result):
                with open(result + ".va") as f:
                    va_i = int(f.read(), 0)
                with open(result + ".tmp", "w") as f:
                    json.dump(probe(memory, gpa_i, va_i, len_i, secret_sha), f)
                os.rename(result + ".tmp", result)

    server = Server(sock, lambda: SpyBlk(storage, bounce=BOUNCE if swiotlb else None),
                    log=lambda line: None)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
