"""Build hook for the C ring core (cffi API mode); everything else is in pyproject.toml."""
from setuptools import setup

setup()
