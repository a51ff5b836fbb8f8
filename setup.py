"""Build hook for the C ring core (cffi API mode) and its call glue; everything else is in pyproject.toml."""
import hashlib
from pathlib import Path

from setuptools import Extension, setup

GLUE = "device_ref/ring/ring_glue.c"
PAIRS = "device_ref/ring/pair_loops.c"


def source_id(path: str) -> str:
    """Compiled in, so device_ref.ring.backend.c_stale() can spot a module
    built from older source."""
    return hashlib.sha256((Path(__file__).resolve().parent / path).read_bytes()).hexdigest()[:16]


setup(
    cffi_modules=["device_ref/ring/_build.py:ffibuilder"],
    # direct batch calls into the core without cffi's per-call cost (see ring_glue.c)
    # and the per-request loops of fixed-shape requests (see pair_loops.c)
    ext_modules=[Extension("device_ref.ring._ring_glue", [GLUE],
                           define_macros=[("GLUE_SOURCE_ID", f'"{source_id(GLUE)}"')],
                           extra_compile_args=["-O2", "-Wall"]),
                 Extension("device_ref.ring._pair_loops", [PAIRS],
                           include_dirs=["device_ref/ring"],
                           define_macros=[("PAIRS_SOURCE_ID", f'"{source_id(PAIRS)}"')],
                           extra_compile_args=["-O2", "-Wall"])],
)
