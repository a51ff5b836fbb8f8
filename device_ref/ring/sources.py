"""Hashes of the C sources, compiled into the built modules so that a stale
build can be told from a current one (without loading cffi's builder)."""
from __future__ import annotations

import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def source_id() -> str:
    """Hash of the C sources; compiled into the module so a stale build can be detected."""
    h = hashlib.sha256()
    for name in ("ring.c", "ring.h"):
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:16]


# what each extension's source includes beside the ring core's header
LOOP_HEADERS = {"pair_loops.c": ("guest_regions.h",), "blk_loops.c": ("guest_regions.h",)}


def glue_source_id(name: str = "ring_glue.c") -> str:
    """Hash of ring_glue.c (or a loop file with the headers it includes),
    as setup.py compiles it in."""
    h = hashlib.sha256()
    for part in (name, *LOOP_HEADERS.get(name, ())):
        h.update((HERE / part).read_bytes())
    return h.hexdigest()[:16]
