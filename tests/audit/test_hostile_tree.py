"""Hostile spec trees (issue 19, item 16): the audit never reads outside the
tree, and reads any file in time linear in its size."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from specc.audit import audit
from specc.upstream import source
from specc.upstream.tree import load_tree

SECRET = "TOPSECRET \\section{Leak}\\label{sec:Leak} The device MUST leak.\n"


def _tree(clean_tree: Path, tmp_path: Path, inputs: str) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(clean_tree, root)
    main = root / "main.tex"
    main.write_text(main.read_text().replace("\\input{content.tex}",
                                             "\\input{content.tex}\n" + inputs), encoding="utf-8")
    return root


@pytest.mark.parametrize("how", ["parent", "absolute", "symlink", "include"])
def test_an_input_outside_the_tree_is_a_finding_and_never_read(clean_tree, tmp_path, how):
    (tmp_path / "secret.tex").write_text(SECRET, encoding="utf-8")
    line = {"parent": "\\input{../secret}", "absolute": f"\\input{{{tmp_path / 'secret'}}}",
            "symlink": "\\input{inside}", "include": "\\include{../secret.tex}"}[how]
    root = _tree(clean_tree, tmp_path, line)
    if how == "symlink":
        (root / "inside.tex").symlink_to(tmp_path / "secret.tex")
    tree = load_tree(root)
    assert not any("TOPSECRET" in s.text for s in tree.sources.values())
    assert "Leak" not in [s.title for s in tree.sections]
    findings = audit(tree)
    outside = [f for f in findings if f.code == "input-outside-tree"]
    assert len(outside) == 1 and outside[0].severity == "error"
    assert outside[0].pos.file == "main.tex" and outside[0].pos.line == 7
    proc = subprocess.run([sys.executable, "-m", "specc.cli", "audit", "--spec-tree", str(root)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "TOPSECRET" not in proc.stdout + proc.stderr
    assert "names a file outside the tree; not read" in proc.stdout


def test_an_input_inside_the_tree_through_a_subdirectory_is_read(clean_tree, tmp_path):
    root = _tree(clean_tree, tmp_path, "\\input{sub/../extra}")
    (root / "sub").mkdir()
    (root / "extra.tex").write_text("\\section{Extra}\\label{sec:Extra}\n", encoding="utf-8")
    tree = load_tree(root)
    assert "Extra" in [s.title for s in tree.sections]
    assert not tree.outside_inputs


class Counting:
    """Counts characters the brace reader scans (pairs are built once per file)."""

    def __init__(self, monkeypatch):
        self.scanned = 0
        real = source._brace_pairs.__wrapped__

        def counted(masked):
            self.scanned += len(masked)
            return real(masked)
        monkeypatch.setattr(source, "_brace_pairs", source.lru_cache(maxsize=8)(counted))


@pytest.mark.parametrize("pattern", ["\\ref{a ", "\\item[ ", "\\section{a}\\label{x} "])
def test_a_single_line_full_of_open_groups_is_read_once(clean_tree, tmp_path, monkeypatch,
                                                         pattern):
    # item 16: each unclosed group was scanned to the end of the file
    root = _tree(clean_tree, tmp_path, "")
    content = root / "content.tex"
    line = (pattern * (200_000 // len(pattern)))
    content.write_text(content.read_text() + "\n" + line + "\n", encoding="utf-8")
    counter = Counting(monkeypatch)
    load_tree(root)
    total = sum(p.stat().st_size for p in root.glob("*.tex"))
    assert counter.scanned <= total


def test_an_optional_argument_is_looked_for_within_a_bounded_span():
    far = "[" + "x" * (source.MAX_OPTIONAL + 10) + "]"
    assert source.read_optional(far, 0) is None
    near = "[" + "x" * (source.MAX_OPTIONAL - 10) + "]"
    assert source.read_optional(near, 0) == (1, len(near) - 1)


def _chain(root: Path, depth: int) -> None:
    for i in range(depth):
        (root / f"n{i}.tex").write_text(f"\\input{{n{i + 1}}}\n", encoding="utf-8")
    (root / f"n{depth}.tex").write_text("\\section{Deep}\\label{sec:Deep}\n", encoding="utf-8")


def test_inputs_nested_past_the_limit_are_a_one_line_error(clean_tree, tmp_path):
    from specc import limits
    from specc.upstream.tree import TreeError
    root = _tree(clean_tree, tmp_path, "\\input{n0}")
    _chain(root, limits.MAX_INPUT_DEPTH + 5)
    with pytest.raises(TreeError, match="nests inputs deeper than"):
        load_tree(root)


def test_a_file_input_over_and_over_stops_at_the_tree_limit(clean_tree, tmp_path, monkeypatch):
    from specc import limits
    from specc.upstream.tree import TreeError
    monkeypatch.setattr(limits, "MAX_TREE_BYTES", 1 << 20)
    root = _tree(clean_tree, tmp_path, "\\input{fan}")
    (root / "fan.tex").write_text("\\input{leaf}\n" * 200, encoding="utf-8")
    (root / "leaf.tex").write_text("x" * 10_000 + "\n", encoding="utf-8")   # 2 MB in all
    with pytest.raises(TreeError, match="past 1 MiB of text"):
        load_tree(root)
    proc = subprocess.run([sys.executable, "-m", "specc.cli", "audit", "--spec-tree",
                           str(_tree_over_file_limit(clean_tree, tmp_path))],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "at most 16 MiB" in proc.stderr


def _tree_over_file_limit(clean_tree: Path, tmp_path: Path) -> Path:
    root = tmp_path / "big"
    shutil.copytree(clean_tree, root)
    with open(root / "content.tex", "ab") as f:
        f.truncate((16 << 20) + 1)                    # sparse: no 16 MB written
    return root
