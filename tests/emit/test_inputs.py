"""specc.emit.inputs is core code: it raises InputError and prints nothing;
the commands (specc.commands.inputs) print diagnostics and exit 2."""
from __future__ import annotations

from pathlib import Path

import pytest

from specc.cli_base import CliError
from specc.commands.inputs import load_modules
from specc.emit.inputs import InputError, checked_modules, output_dir

from tests.emit.conftest import SWIOTLB


def test_good_sources_load_silently(capsys) -> None:
    checked = checked_modules([str(SWIOTLB)])
    assert [m.name for m in checked.modules] == ["swiotlb"] and checked.diagnostics == ""
    assert capsys.readouterr() == ("", "")


def test_broken_sources_raise_with_the_diagnostics_and_print_nothing(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.vspec"
    bad.write_text(SWIOTLB.read_text().replace("bit 44", "bit forty-four"))
    with pytest.raises(InputError) as exc:
        checked_modules([str(bad)])
    assert str(exc.value) == "1 error in the sources; nothing written"
    assert "bad.vspec:" in exc.value.diagnostics and "error" in exc.value.diagnostics
    assert capsys.readouterr() == ("", "")
    # the command side prints them and turns the error into a CliError (exit 2)
    with pytest.raises(CliError, match="1 error in the sources"):
        load_modules([str(bad)])
    assert "bad.vspec:" in capsys.readouterr().err


@pytest.mark.parametrize("make, needle", [
    (lambda p: p, "no .vspec files in this directory"),
    (lambda p: p / "missing.vspec", "no such file or directory"),
])
def test_missing_inputs(tmp_path: Path, make, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        checked_modules([str(make(tmp_path))])


def test_output_dir_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(InputError, match="exists and is not a directory"):
        output_dir(str(f))
    assert output_dir(str(tmp_path / "new" / "dir")).is_dir()
