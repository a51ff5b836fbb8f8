"""Build hook for the C ring core (cffi API mode) and its call glue; everything else is in pyproject.toml."""
import hashlib
from pathlib import Path

from setuptools import Extension, setup

GLUE = "device_ref/ring/ring_glue.c"
# compiled in, so device_ref.ring.backend.c_stale() can spot a glue built from older source
GLUE_ID = hashlib.sha256((Path(__file__).resolve().parent / GLUE).read_bytes()).hexdigest()[:16]

setup(
    cffi_modules=["device_ref/ring/_build.py:ffibuilder"],
    # direct batch calls into the core without cffi's per-call cost (see ring_glue.c)
    ext_modules=[Extension("device_ref.ring._ring_glue", [GLUE],
                           define_macros=[("GLUE_SOURCE_ID", f'"{GLUE_ID}"')],
                           extra_compile_args=["-O2", "-Wall"])],
)
