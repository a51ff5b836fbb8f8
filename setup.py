"""Build hook for the C ring core (cffi API mode) and its call glue; everything else is in pyproject.toml."""
import hashlib
from pathlib import Path

from setuptools import Extension, setup

GLUE = "device_ref/ring/ring_glue.c"
PAIRS = "device_ref/ring/pair_loops.c"
BLK = "device_ref/ring/blk_loops.c"
REGIONS = "device_ref/ring/guest_regions.h"   # included by both loop files


def source_id(*paths: str) -> str:
    """Compiled in, so device_ref.ring.backend.c_stale() can spot a module
    built from older source (device_ref/ring/_build.py's glue_source_id)."""
    h = hashlib.sha256()
    for path in paths:
        h.update((Path(__file__).resolve().parent / path).read_bytes())
    return h.hexdigest()[:16]


setup(
    cffi_modules=["device_ref/ring/_build.py:ffibuilder"],
    # direct batch calls into the core without cffi's per-call cost (see ring_glue.c)
    # and the per-request loops of fixed-shape requests (see pair_loops.c)
    ext_modules=[Extension("device_ref.ring._ring_glue", [GLUE],
                           define_macros=[("GLUE_SOURCE_ID", f'"{source_id(GLUE)}"')],
                           extra_compile_args=["-O2", "-Wall"]),
                 Extension("device_ref.ring._pair_loops", [PAIRS],
                           include_dirs=["device_ref/ring"],
                           define_macros=[("PAIRS_SOURCE_ID", f'"{source_id(PAIRS, REGIONS)}"')],
                           extra_compile_args=["-O2", "-Wall"]),
                 # the block device's loop over header, data, status chains (see blk_loops.c)
                 Extension("device_ref.ring._blk_loops", [BLK],
                           include_dirs=["device_ref/ring"],
                           define_macros=[("BLK_SOURCE_ID", f'"{source_id(BLK, REGIONS)}"')],
                           extra_compile_args=["-O2", "-Wall"])],
)
