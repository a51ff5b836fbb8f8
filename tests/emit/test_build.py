"""specc build: everything for a spec directory, with or without a spec tree."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.emit.conftest import SWIOTLB
from tests.emit.linkcheck import broken_links


def build(cwd: Path, *args: str, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VIRTIO_SPEC_TREE"}
    if home is not None:     # no git identity there
        env = dict({k: v for k, v in env.items() if not k.startswith("GIT_")},
                   HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
    return subprocess.run([sys.executable, "-m", "specc.cli", "build", *args], cwd=cwd,
                          capture_output=True, text=True, env=env)


def spec_dir(tmp_path: Path) -> Path:
    d = tmp_path / "spec"
    d.mkdir()
    shutil.copy(SWIOTLB, d / "swiotlb.vspec")
    return d


def test_build_without_a_tree_writes_docs_vectors_rst_and_says_patches_were_skipped(tmp_path):
    spec_dir(tmp_path)
    proc = build(tmp_path, "spec", "-o", "out")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    doc = json.loads((out / "vectors" / "swiotlb.json").read_text())
    assert doc["numberOfTests"] > 0
    assert (out / "rst" / "swiotlb.rst").exists()
    assert (out / "docs" / "index.html").exists() and broken_links(out / "docs") == []
    assert not (out / "patches").exists()
    assert "patches: skipped" in proc.stdout and "--spec-tree" in proc.stdout


def test_build_with_a_tree_writes_the_series_per_proposal(tmp_path, mini_repo):
    spec_dir(tmp_path)
    proc = build(tmp_path, "spec", "-o", "out", "--spec-tree", str(mini_repo),
                 "--signoff", "Ada <ada@author.test>")
    assert proc.returncode == 0, proc.stderr
    patches = sorted((tmp_path / "out" / "patches" / "swiotlb").glob("*.patch"))
    assert len(patches) == 7 and patches[0].name == "0000-cover-letter.patch"
    # a second build over the same output replaces everything cleanly
    assert build(tmp_path, "spec", "-o", "out", "--spec-tree", str(mini_repo)).returncode == 0


def test_stale_vectors_of_removed_modules_are_removed(tmp_path):
    spec_dir(tmp_path)
    stale = tmp_path / "out" / "vectors" / "gone.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    assert build(tmp_path, "spec", "-o", "out", "--no-patches").returncode == 0
    assert not stale.exists()


def test_without_an_identity_the_series_is_skipped_with_the_reason(tmp_path, mini_repo):
    spec_dir(tmp_path)
    (tmp_path / "home").mkdir()
    proc = build(tmp_path, "spec", "-o", "out", "--spec-tree", str(mini_repo),
                 home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    assert "patches: swiotlb skipped (no identity for From and Signed-off-by" in proc.stdout
    assert not (tmp_path / "out" / "patches" / "swiotlb").exists()
    # a placeholder given explicitly is an error, not a skip
    proc = build(tmp_path, "spec", "-o", "out", "--spec-tree", str(mini_repo),
                 "--signoff", "Ada <ada@example.org>")
    assert proc.returncode == 2 and "placeholder address" in proc.stderr


def test_explicit_bad_tree_fails_with_one_line(tmp_path):
    spec_dir(tmp_path)
    proc = build(tmp_path, "spec", "-o", "out", "--spec-tree", str(tmp_path / "missing"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "no such directory" in proc.stderr


def test_broken_source_is_reported_like_a_compiler_and_nothing_is_written(tmp_path):
    d = spec_dir(tmp_path)
    (d / "swiotlb.vspec").write_text(SWIOTLB.read_text().replace("bit 44", "bit forty-four"))
    proc = build(tmp_path, "spec", "-o", "out")
    assert proc.returncode == 2
    assert "swiotlb.vspec:" in proc.stderr and "error" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_spec_dir(tmp_path):
    proc = build(tmp_path, "nope", "-o", "out")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
