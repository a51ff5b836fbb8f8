"""The input side of the emitters: find .vspec files, load and check them,
make output directories. Problems are `InputError`s (one line each); the
commands turn them into exit codes and print the diagnostics."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from specc.model import Module
from specc.pipeline import check_files


class InputError(Exception):
    """Sources or an output directory the emitters cannot use (one line)."""

    def __init__(self, message: str, diagnostics: str = "") -> None:
        super().__init__(message)
        self.diagnostics = diagnostics    # rendered diagnostics that explain it, if any


@dataclass(frozen=True)
class CheckedModules:
    modules: list[Module]
    sources: dict[str, str]
    diagnostics: str                      # rendered warnings ("" when none)


def vspec_files(paths: list[str]) -> list[str]:
    """Expand directories to their *.vspec files (sorted); keep files as given."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(str(f) for f in path.glob("*.vspec"))
            if not found:
                raise InputError(f"{p}: no .vspec files in this directory")
            out += found
        elif path.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or directory")
    return out


def checked_modules(paths: list[str]) -> CheckedModules:
    """Load and check modules; refuse (InputError) to emit from broken sources."""
    files = vspec_files(paths)
    result = check_files(files)
    if result.fatal:
        raise InputError(result.fatal)
    text = result.render()
    errors = sum(1 for d in result.diagnostics if d.is_error)
    if errors:
        raise InputError(f"{errors} error{'s' if errors != 1 else ''} in the sources; "
                         "nothing written", text)
    return CheckedModules(result.modules, result.sources, text)


def output_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"{path}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot create output directory: {exc.strerror}") from None
    return out
