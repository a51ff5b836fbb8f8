"""cffi build script for the C ring core (API mode, out of line).

`setup.py` names `ffibuilder` in `cffi_modules`, so `pip install -e .`
compiles `device_ref.ring._ring_c`.  `make_builder` is also used by the
sanitizer test and the benchmark to build variants into a temp dir.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent


def _sources():
    """sources.py, loaded by path: setuptools runs this file outside the package."""
    spec = importlib.util.spec_from_file_location("_ring_sources", HERE / "sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


source_id = _sources().source_id
glue_source_id = _sources().glue_source_id
# -O2: -O3 saved about 3% of the instructions of a split round trip
# (callgrind), well inside the run-to-run noise of bench/ring.py, and
# -march=native would tie the module to the machine that built it
COMPILE_ARGS = ["-O2", "-std=gnu11", "-Wall"]


def cdef_text() -> str:
    """The declarations between the cdef markers of ring.h."""
    text = (HERE / "ring.h").read_text()
    return text.split("/* cdef-begin */", 1)[1].split("/* cdef-end */", 1)[0]


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
