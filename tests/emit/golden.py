"""Golden files: compare, or rewrite when UPDATE_GOLDEN=1.

Regenerate all of them with:
    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/emit
and review the change with git diff tests/emit/golden.
"""
from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/emit"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (f"{name} differs from the golden file; if the change is intended, "
                              "run UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/emit "
                              "and review git diff tests/emit/golden")
