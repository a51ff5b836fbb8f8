"""Shared helpers for the specc tests."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "spec"
MALFORMED = Path(__file__).resolve().parent / "malformed"


def run_specc(argv, capsys) -> tuple[int, str, str]:
    from specc.cli import main
    try:
        code = main(list(argv))
    except SystemExit as exc:          # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def specc(capsys):
    def _run(*argv):
        return run_specc(argv, capsys)
    return _run


@pytest.fixture
def write(tmp_path):
    """Write a module to tmp_path/NAME and return its path as a string."""
    def _write(name: str, text: str) -> str:
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        return str(p)
    return _write


def update_golden() -> bool:
    return os.environ.get("UPDATE_GOLDEN") == "1"
