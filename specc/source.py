"""Reading source files: every way a path can fail becomes one diagnostic."""
from __future__ import annotations

import os

from specc import limits
from specc.diagnostics import Diagnostic, error
from specc.model import SourcePos

MAX_BYTES = limits.MAX_SOURCE_BYTES


def read_source(path: str) -> tuple[str | None, list[Diagnostic]]:
    """Return the decoded text of path, or None and a diagnostic saying why not."""
    if os.path.isdir(path):
        return None, [error("is a directory, not a .vspec file", file=path,
                            hint=f"pass the files, e.g. {path.rstrip('/')}/*.vspec")]
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None, [error("no such file", file=path)]
    except PermissionError:
        return None, [error("cannot read file: permission denied", file=path)]
    except OSError as exc:
        return None, [error(f"cannot read file: {exc.strerror or exc}", file=path)]
    if len(data) > MAX_BYTES:
        return None, [error(f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB", file=path)]
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        col = nul - (data.rfind(b"\n", 0, nul) + 1) + 1
        return None, [error("binary file (contains a NUL byte), not a .vspec source",
                            SourcePos(path, line, col))]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [error(f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                            SourcePos(path, line, col),
                            hint="vspec sources are UTF-8 text")]
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, []
