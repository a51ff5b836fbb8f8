"""Choosing between the C core and the pure-Python twin."""
from __future__ import annotations

import importlib
import os
from typing import Any

from . import c_core
from .errors import RingError, RingErrorCode
from .py_packed import PackedDevice, PackedDriver
from .py_split import SplitDevice, SplitDriver
from .sources import glue_source_id, source_id

ENV_VAR = "DEVICE_REF_RING"


def c_available() -> bool:
    try:
        from . import _ring_c  # noqa: F401
    except ImportError:
        return False
    return True


def c_stale() -> bool:
    """True when the built C core, its call glue or the pair loops were
    compiled from other sources than the ones here."""
    if not c_available():
        return False
    from . import _ring_c
    if _ring_c.ffi.string(_ring_c.lib.ring_source_id()).decode() != source_id():
        return True
    for name in ("pair_loops", "blk_loops"):
        try:
            loops = importlib.import_module(f"{__package__}._{name}")
        except ImportError:
            continue        # not built: the Python loops run
        if getattr(loops, "SOURCE_ID", None) != glue_source_id(f"{name}.c"):
            return True
    try:
        from . import _ring_glue
    except ImportError:
        return False        # not built: the core is called through cffi
    return getattr(_ring_glue, "SOURCE_ID", None) != glue_source_id()


def pair_loops() -> Any:
    """The C per-request loops (pair_loops.c), or None: not built, or
    ``DEVICE_REF_RING=python``, which runs every loop in Python."""
    if default_backend() != "c":
        return None
    try:
        from . import _pair_loops
    except ImportError:
        return None
    return _pair_loops


def blk_loops() -> Any:
    """The block device's C loop (blk_loops.c), or None, as ``pair_loops``."""
    if default_backend() != "c":
        return None
    try:
        from . import _blk_loops
    except ImportError:
        return None
    return _blk_loops


def available_backends() -> list[str]:
    return ["c", "python"] if c_available() else ["python"]


def default_backend() -> str:
    """`DEVICE_REF_RING` (python|c) if set, else C when it is built, else Python."""
    want = os.environ.get(ENV_VAR, "").strip().lower()
    if want in ("python", "py"):
        return "python"
    if want == "c":
        if not c_available():
            raise RingError(RingErrorCode.BAD_CONFIG, f"{ENV_VAR}=c but the C ring core is not built")
        return "c"
    if want not in ("", "auto"):
        raise RingError(RingErrorCode.BAD_CONFIG, f"{ENV_VAR}={want!r}: expected python or c")
    return "c" if c_available() else "python"


def make_core(side: str, mem: Any, cfg: Any, start: int | None, backend: str | None) -> tuple[str, Any]:
    name = backend or default_backend()
    if name == "c":
        return name, c_core.make(side, mem, cfg, start)
    if name != "python":
        raise RingError(RingErrorCode.BAD_CONFIG, f"unknown ring backend {name!r}")
    if cfg.layout == "split":
        return name, SplitDriver(mem, cfg) if side == "driver" else SplitDevice(mem, cfg, start)
    return name, PackedDriver(mem, cfg) if side == "driver" else PackedDevice(mem, cfg, start)
