"""specc patch: a series that git am applies in order; bad inputs refused cleanly."""
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.emit.conftest import SWIOTLB, specc
from tests.spec_trees import GIT_ENV, git

AREAS = ["content", "transport-pci", "transport-mmio", "transport-ccw", "conformance"]
SIGNOFF = "Ada Author <ada@author.test>"


def snapshot(repo: Path) -> str:
    """A hash of every file in the checkout, .git included, plus git status."""
    h = hashlib.sha256()
    for p in sorted(repo.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(repo)).encode())
            h.update(p.read_bytes())
    h.update(subprocess.run(["git", "--no-optional-locks", "status", "--porcelain"], cwd=repo,
                            capture_output=True, text=True).stdout.encode())
    return h.hexdigest()


def clean_clone(repo: Path, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(repo), str(dest)], check=True,
                   capture_output=True, env=GIT_ENV)
    git(dest, "checkout", "-q", "--detach", git(repo, "rev-parse", "HEAD").strip())
    return dest


def patch(tree: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return specc("patch", str(SWIOTLB), "--spec-tree", str(tree), "-o", str(out),
                 "--signoff", SIGNOFF, *extra)


def check_series_applies(tree: Path, out: Path, tmp: Path) -> list[Path]:
    before = snapshot(tree)
    proc = patch(tree, out)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(tree) == before, "the given tree was modified"
    patches = sorted(out.glob("*.patch"))
    assert patches[0].name == "0000-cover-letter.patch"
    subjects = [re.search(r"^Subject: \[PATCH (\d+)/(\d+)\] (.*)$", p.read_text(), re.M)
                for p in patches]
    assert [s.group(3).split(":")[0] for s in subjects[1:]] == AREAS
    for p in patches[1:]:
        text = p.read_text()
        assert text.startswith("From ") and f"Signed-off-by: {SIGNOFF}" in text
    base = clean_clone(tree, tmp / "clean")
    subprocess.run(["git", "am", "-q", *map(str, patches[1:])], cwd=base, env=GIT_ENV,
                   check=True, capture_output=True)
    log = git(base, "log", "--format=%s", f"-{len(AREAS)}").splitlines()
    assert [s.split(":")[0] for s in reversed(log)] == AREAS
    return patches


def test_series_applies_to_the_mini_tree(mini_repo: Path, tmp_path: Path) -> None:
    patches = check_series_applies(mini_repo, tmp_path / "out", tmp_path)
    base = tmp_path / "clean"
    content = (base / "content.tex").read_text()
    # bit 44 moved from the future range to the extensions range
    assert re.search(r"\\item\[24 to 40, 43 and 44\]", content)
    assert re.search(r"\\item\[45 to 49, and 128 and above\]", content)
    # the feature item sits after bit 43 and before the end of the list
    rfb = content[content.index("\\chapter{Reserved Feature Bits}"):]
    assert rfb.index("VIRTIO_F_SUSPEND(43)") < rfb.index("\\item[VIRTIO_F_SWIOTLB(44)]") \
        < rfb.index("\\end{description}")
    body = patches[1].read_text()
    # the commit body is the author's "why content" prose, not a change list
    assert "Subject: [PATCH 1/5] content: Add VIRTIO_F_SWIOTLB, I/O through" in body
    assert "A device emulated outside the guest's trust boundary" in body
    assert "This patch:" not in body
    ccw = (base / "transport-ccw.tex").read_text()
    assert "\\item VIRTIO_F_SWIOTLB" in ccw
    mmio = (base / "transport-mmio.tex").read_text()
    assert "\\item VIRTIO_F_SWIOTLB" not in mmio   # MMIO can offer it: not reserved there
    conf = (base / "conformance.tex").read_text()
    assert ("\\item \\ref{devicenormative:Virtio Transport Options / Virtio Over PCI Bus / "
            "PCI Device Layout / Software IOTLB bounce buffer capability}") in conf
    # the whole series is reproducible
    again = tmp_path / "again"
    assert patch(mini_repo, again).returncode == 0
    assert [p.read_bytes() for p in patches] == [p.read_bytes() for p in sorted(again.glob("*.patch"))]


def test_rerun_into_the_same_directory_replaces_the_series(mini_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert patch(mini_repo, out).returncode == 0
    proc = patch(mini_repo, out)
    assert proc.returncode == 0, proc.stderr
    (out / "notes.txt").write_text("mine")
    proc = patch(mini_repo, out)
    assert proc.returncode == 2 and "holds other files" in proc.stderr


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("specc: error: ")
    for n in needles:
        assert n in lines[0], lines[0]


def test_missing_tree(tmp_path: Path) -> None:
    _one_line_error(patch(tmp_path / "nope", tmp_path / "out"), "no such directory")


def test_not_a_spec_tree(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _one_line_error(patch(tmp_path / "empty", tmp_path / "out"))


def test_dirty_tree_is_refused_and_untouched(mini_repo: Path, tmp_path: Path) -> None:
    (mini_repo / "content.tex").write_text((mini_repo / "content.tex").read_text() + "\n% local edit\n")
    before = snapshot(mini_repo)
    _one_line_error(patch(mini_repo, tmp_path / "out"), "not clean")
    assert snapshot(mini_repo) == before
    assert not any((tmp_path / "out").glob("*.patch"))


@pytest.mark.parametrize("old, new, needle", [
    # the section the PCI capability goes in front of was renamed upstream
    ("PCI configuration access capability}", "PCI config access capability}", "anchor not found"),
    # the item the CCW entry follows is gone
    ("\\item VIRTIO_F_RING_RESET", "\\item VIRTIO_F_RING_RESET_GONE", "anchor not found"),
])
def test_anchor_drift_is_refused_and_untouched(mini_repo: Path, tmp_path: Path, old: str,
                                               new: str, needle: str) -> None:
    for f in mini_repo.glob("*.tex"):
        text = f.read_text()
        if old in text:
            f.write_text(text.replace(old, new))
    git(mini_repo, "-c", "commit.gpgsign=false", "commit", "-q", "-am", "drift")
    before = snapshot(mini_repo)
    _one_line_error(patch(mini_repo, tmp_path / "out"), needle)
    assert snapshot(mini_repo) == before


def test_bit_already_taken_upstream(mini_repo: Path, tmp_path: Path) -> None:
    content = mini_repo / "content.tex"
    text = content.read_text()
    i = text.index("\\item[VIRTIO_F_SUSPEND(43)]")
    content.write_text(text[:i] + "\\item[VIRTIO_F_OTHER(44)] Taken.\n" + text[i:])
    git(mini_repo, "-c", "commit.gpgsign=false", "commit", "-q", "-am", "take 44")
    _one_line_error(patch(mini_repo, tmp_path / "out"), "44")


def test_series_applies_to_a_real_upstream_checkout(upstream_tree: Path, tmp_path: Path) -> None:
    check_series_applies(upstream_tree, tmp_path / "out", tmp_path)


@pytest.mark.xelatex
@pytest.mark.slow
def test_patched_upstream_builds_with_xelatex(upstream_tree: Path, tmp_path: Path) -> None:
    if shutil.which("xelatex") is None:
        pytest.skip("xelatex is not installed (texlive-xetex)")
    out = tmp_path / "out"
    proc = patch(upstream_tree, out, "--build")
    assert proc.returncode == 0, proc.stderr
    assert list(out.glob("*.pdf")), "no PDF written"
