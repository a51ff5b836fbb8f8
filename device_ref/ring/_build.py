"""cffi build script for the C ring core (API mode, out of line).

`setup.py` names `ffibuilder` in `cffi_modules`, so `pip install -e .`
compiles `device_ref.ring._ring_c`.  `make_builder` is also used by the
sanitizer test and the benchmark to build variants into a temp dir.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
# -O2: -O3 saved about 3% of the instructions of a split round trip
# (callgrind), well inside the run-to-run noise of bench/ring.py, and
# -march=native would tie the module to the machine that built it
COMPILE_ARGS = ["-O2", "-std=gnu11", "-Wall"]


def cdef_text() -> str:
    """The declarations between the cdef markers of ring.h."""
    text = (HERE / "ring.h").read_text()
    return text.split("/* cdef-begin */", 1)[1].split("/* cdef-end */", 1)[0]


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


def make_builder(module: str = "device_ref.ring._ring_c", extra_compile_args: list[str] | None = None,
                 extra_link_args: list[str] | None = None, relative: bool = False) -> FFI:
    """A builder for the core; `relative` paths are what setuptools insists on."""
    here = os.path.relpath(HERE) if relative else str(HERE)
    ffi = FFI()
    ffi.cdef(cdef_text())
    ffi.set_source(module, '#include "ring.h"',
                   sources=[os.path.join(here, "ring.c")],
                   include_dirs=[here],
                   define_macros=[("RING_SOURCE_ID", f'"{source_id()}"')],
                   extra_compile_args=COMPILE_ARGS + (extra_compile_args or []),
                   extra_link_args=extra_link_args or [])
    return ffi


ffibuilder = make_builder(relative=True)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
