"""Build hook for the C ring core (cffi API mode) and its call glue; everything else is in pyproject.toml."""
from setuptools import Extension, setup

setup(
    cffi_modules=["device_ref/ring/_build.py:ffibuilder"],
    # direct batch calls into the core without cffi's per-call cost (see ring_glue.c)
    ext_modules=[Extension("device_ref.ring._ring_glue", ["device_ref/ring/ring_glue.c"],
                           extra_compile_args=["-O2", "-Wall"])],
)
