"""What `specc` pays for at start-up: the modules of the command that runs,
and a grammar built once and then loaded from the user's cache."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from specc import parse

from .conftest import SPEC

ALL = sorted(str(p) for p in SPEC.glob("*.vspec"))


def test_check_imports_no_other_command(tmp_path):
    # the patch builder and the HTML emitters are what `specc check` used to load for nothing
    code = ("import sys; from specc.cli import main; rc = main(['check', '-q', *sys.argv[1:]]);"
            "print(sorted(m for m in sys.modules if m.startswith('specc.commands.')));"
            "print('docutils' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code, *ALL], capture_output=True, text=True,
                       env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)}, timeout=120)
    assert p.returncode == 0, p.stderr
    mods, docutils = p.stdout.splitlines()
    assert mods == "['specc.commands.check']"
    assert docutils == "False"


def test_help_still_lists_every_command(specc):
    code, out, _ = specc("--help")
    assert code == 0
    for name in ("check", "dump", "patch", "vectors", "audit"):
        assert f"    {name}" in out


def test_grammar_is_cached_per_grammar_text(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    one = parse.grammar_cache("start: \"a\"\n")
    two = parse.grammar_cache("start: \"b\"\n")
    assert isinstance(one, str) and isinstance(two, str) and one != two
    assert Path(one).parent == tmp_path / "specc"


def test_second_run_loads_the_cached_parser_and_parses_alike(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    code = ("import sys; from specc.parse import parser, parse_source;"
            "m, d = parse_source(open(sys.argv[1]).read(), sys.argv[1]);"
            "print(m.name, len(d), type(parser()).__name__)")
    first = subprocess.run([sys.executable, "-c", code, ALL[0]], capture_output=True, text=True,
                           env={**os.environ, **env}, timeout=120)
    cached = list((tmp_path / "specc").iterdir())
    assert first.returncode == 0 and len(cached) == 1, first.stderr
    stamp = cached[0].stat().st_mtime_ns
    second = subprocess.run([sys.executable, "-c", code, ALL[0]], capture_output=True,
                            text=True, env={**os.environ, **env}, timeout=120)
    assert second.returncode == 0 and second.stdout == first.stdout
    assert cached[0].stat().st_mtime_ns == stamp      # read, not rebuilt


def test_unwritable_cache_dir_still_checks(tmp_path, monkeypatch):
    # a cache "directory" under a plain file can be neither made nor written, even by root
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert parse.grammar_cache("start: \"a\"\n") is False
    p = subprocess.run([sys.executable, "-m", "specc.cli", "check", *ALL], capture_output=True,
                       text=True, env={**os.environ, "XDG_CACHE_HOME": str(blocker)}, timeout=120)
    assert p.returncode == 0 and p.stderr == "", p.stderr


def test_a_damaged_cache_file_is_rebuilt(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "specc.cli", "check", "-q", *ALL]
    assert subprocess.run(cmd, capture_output=True, env=env, timeout=120).returncode == 0
    (cached,) = (tmp_path / "specc").iterdir()
    good = cached.read_bytes()
    cached.write_bytes(good[:len(good) // 2])       # a write cut short
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0 and p.stderr == ""
    assert len(cached.read_bytes()) > len(good) // 2      # written whole again
    stamp = cached.stat().st_mtime_ns
    assert subprocess.run(cmd, capture_output=True, env=env, timeout=120).returncode == 0
    assert cached.stat().st_mtime_ns == stamp               # and now read, not rebuilt
