"""The malformed-input corpus: each tests/specc/malformed/*.vspec must give
exactly the diagnostics in its .expected file (and never a traceback).

Regenerate after an intended change, then review the diff:
    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/specc/test_malformed.py
"""
from __future__ import annotations

import pytest

from .conftest import MALFORMED, run_specc, update_golden

CASES = sorted(p.name for p in MALFORMED.glob("*.vspec"))


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", CASES)
def test_malformed_input_gives_expected_diagnostics(name, capsys, monkeypatch):
    monkeypatch.chdir(MALFORMED)
    code, out, err = run_specc(["check", "--no-registry", name], capsys)
    got = f"exit {code}\n--- stderr\n{err}--- stdout\n{out}"
    golden = MALFORMED / (name[:-len(".vspec")] + ".expected")
    if update_golden():
        golden.write_text(got, encoding="utf-8")
    assert golden.exists(), f"no golden file for {name}; run with UPDATE_GOLDEN=1 and review it"
    assert got == golden.read_text(encoding="utf-8")
    # every malformed input is an error, reported compiler-style, never a traceback
    assert code == 2
    assert "Traceback" not in err
    assert f"{name}:" in err and ": error: " in err
