"""Build hook for the C ring core (cffi API mode); everything else is in pyproject.toml."""
from setuptools import setup

setup(cffi_modules=["device_ref/ring/_build.py:ffibuilder"])
