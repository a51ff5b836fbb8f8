"""specc patch: a series that git am applies in order; bad inputs refused cleanly."""
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.emit.conftest import SWIOTLB, specc
from tests.spec_trees import GIT_ENV, git

AREAS = ["introduction", "content", "transport-pci", "transport-mmio", "transport-ccw", "conformance"]
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
    body = patches[2].read_text()
    # the commit body is the author's "why content" prose, not a change list
    assert "Subject: [PATCH 2/6] content: Add VIRTIO_F_SWIOTLB, I/O through" in body
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
    proc = patch(mini_repo, tmp_path / "out")
    # reported by the checks against the tree, at the placement line of the module
    assert proc.returncode == 2, proc.stderr
    assert re.search(r"swiotlb\.vspec:\d+:\d+: error: transport-\w+\.tex: " + needle, proc.stderr)
    assert proc.stderr.strip().splitlines()[-1].startswith("specc: error: 1 error against the tree")
    assert snapshot(mini_repo) == before


def test_bit_already_taken_upstream(mini_repo: Path, tmp_path: Path) -> None:
    content = mini_repo / "content.tex"
    text = content.read_text()
    i = text.index("\\item[VIRTIO_F_SUSPEND(43)]")
    content.write_text(text[:i] + "\\item[VIRTIO_F_OTHER(44)] Taken.\n" + text[i:])
    git(mini_repo, "-c", "commit.gpgsign=false", "commit", "-q", "-am", "take 44")
    proc = patch(mini_repo, tmp_path / "out")
    # The check against the tree speaks first: at the module's line, naming the upstream one.
    assert proc.returncode == 2, proc.stderr
    line = text[:i].count("\n") + 1
    assert re.search(r"swiotlb\.vspec:\d+:\d+: error: bit 44 of VIRTIO_F_SWIOTLB is already "
                     rf"VIRTIO_F_OTHER, defined upstream at content\.tex:{line}\n", proc.stderr)
    assert proc.stderr.strip().splitlines()[-1].startswith("specc: error: 1 error against the tree")
    assert not (tmp_path / "out").exists()


def test_series_applies_to_a_real_upstream_checkout(upstream_tree: Path, tmp_path: Path) -> None:
    check_series_applies(upstream_tree, tmp_path / "out", tmp_path)


# -- every prefix builds, on the real tree (one shared build per session) -----------------

@pytest.mark.xelatex
@pytest.mark.slow
def test_every_prefix_of_the_swiotlb_series_builds(swiotlb_built, tmp_path: Path) -> None:
    proc, out = swiotlb_built.proc, swiotlb_built.out
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # each XeLaTeX pass of each prefix is reported, and each prefix ends clean
    for k, area in enumerate(AREAS, 1):
        mine = [ln for ln in lines if ln.startswith(f"patch {k}/{len(AREAS)} ({area}): ")]
        passes = [ln for ln in mine if re.search(r"xelatex pass \d \(at most 3\): [\d.]+ s", ln)]
        assert len(passes) >= 2, mine
        assert passes[-1].endswith("no LaTeX warning"), mine
        assert any("builds with 0 LaTeX warnings" in ln for ln in mine), mine
    # the PDF is named after the series and the command says where it is
    pdf = out / "swiotlb-v2.pdf"
    assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"
    assert f"PDF of the whole series: {pdf}" in proc.stdout
    assert not (out / "virtio-v1.4-cs01.pdf").exists()
    # the patches that were built are the ones written, and they apply in order
    patches = sorted(out.glob("v2-*.patch"))
    assert [re.search(r"^Subject: \[PATCH v2 (\d)/6\]", p.read_text(), re.M).group(1)
            for p in patches] == ["0", "1", "2", "3", "4", "5", "6"]
    base = clean_clone(swiotlb_built.tree, tmp_path / "clean")
    subprocess.run(["git", "am", "-q", *map(str, patches[1:])], cwd=base, env=GIT_ENV,
                   check=True, capture_output=True)


def test_patch_one_refers_only_to_labels_the_tree_or_patch_one_has(upstream_tree: Path,
                                                                    tmp_path: Path) -> None:
    """Checked on the patch text itself, independently of the writer's own check."""
    out = tmp_path / "out"
    assert patch(upstream_tree, out).returncode == 0
    patches = sorted(out.glob("*.patch"))
    base = clean_clone(upstream_tree, tmp_path / "clean")
    subprocess.run(["git", "am", "-q", str(patches[1]), str(patches[2])], cwd=base, env=GIT_ENV,
                   check=True, capture_output=True)
    tex = "\n".join(p.read_text(errors="replace") for p in base.rglob("*.tex"))
    defined = set(re.findall(r"\\label\{([^}]*)\}", tex))
    defined |= {f"{r}normative:{p}" for r, p in
                re.findall(r"\\(driver|device)normative\{[^}]*\}\{[^}]*\}\{([^}]*)\}", tex)}
    added = "\n".join(ln[1:] for ln in patches[2].read_text().splitlines()
                      if ln.startswith("+") and not ln.startswith("+++"))
    refs = set(re.findall(r"\\(?:name)?ref\{([^}]*)\}", added))
    assert refs and refs <= defined, refs - defined
    # the paragraph that points at the PCI and MMIO sections comes with patch 4 (MMIO)
    third = patches[4].read_text()
    assert "content.tex" in third and "comes with this patch" in third


# -- identity, version, threading, addresses -------------------------------------------

def _no_identity_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    home = tmp_path / "home"
    home.mkdir()
    return dict(env, HOME=str(home), GIT_CONFIG_NOSYSTEM="1")


def test_no_git_identity_and_no_signoff_is_one_line_exit_2(mini_repo: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "specc.cli", "patch", str(SWIOTLB),
                           "--spec-tree", str(mini_repo), "-o", str(tmp_path / "out")],
                          cwd=SWIOTLB.parents[1], capture_output=True, text=True,
                          env=_no_identity_env(tmp_path))
    _one_line_error(proc, "no identity", "--signoff")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("ident, needle", [
    ("Ada Author <ada@example.org>", "placeholder address"),
    ("Ada Author <ada@mail.example.com>", "placeholder address"),
    ("Ada Author <ada@host.invalid>", "placeholder address"),
    ("<ada@author.test>", "has no name"),
    ("Your Name <you@author.test>", "placeholder"),
    ("Ada Author", "not of the form"),
])
def test_placeholder_signoff_is_refused(mini_repo: Path, tmp_path: Path, ident: str,
                                        needle: str) -> None:
    proc = specc("patch", str(SWIOTLB), "--spec-tree", str(mini_repo), "-o",
                 str(tmp_path / "out"), "--signoff", ident)
    _one_line_error(proc, needle)


def test_signoff_is_from_and_signed_off_by_without_git_identity(mini_repo: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "specc.cli", "patch", str(SWIOTLB),
                           "--spec-tree", str(mini_repo), "-o", str(out), "--signoff", SIGNOFF],
                          cwd=SWIOTLB.parents[1], capture_output=True, text=True,
                          env=_no_identity_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for p in sorted(out.glob("*.patch")):
        text = p.read_text()
        assert f"\nFrom: {SIGNOFF}\n" in text
        if not p.name.startswith("0000"):
            assert f"\nSigned-off-by: {SIGNOFF}\n" in text


def test_version_threading_and_addresses(mini_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = patch(mini_repo, out, "--version", "2", "--in-reply-to", "<rfc.0@author.test>",
                 "--cc", "Bea Reviewer <bea@reviewer.test>")
    assert proc.returncode == 0, proc.stderr
    patches = sorted(out.glob("*.patch"))
    assert [p.name[:7] for p in patches] == [f"v2-000{i}" for i in range(7)]
    cover = patches[0].read_text()
    assert "Subject: [PATCH v2 0/6] VIRTIO_F_SWIOTLB" in cover
    assert "In-Reply-To: <rfc.0@author.test>" in cover
    assert "To: virtio-comment@lists.linux.dev" in cover
    assert "Cc: Bea Reviewer <bea@reviewer.test>" in cover
    # the changelog and the references come from the module's series block
    assert "Changes in v2:\n- Since the RFC: bit 44 instead of 27" in cover
    assert "[rfc] https://lore.kernel.org/virtio-comment/" in cover
    # the patches answer the cover letter
    cover_id = re.search(r"^Message-Id: (<[^>]+>)", cover, re.M | re.I).group(1)
    for p in patches[1:]:
        assert re.search(r"^In-Reply-To: " + re.escape(cover_id), p.read_text(), re.M | re.I)
    # each commit body is the author's "why"
    assert "Channel I/O has no way to describe" in patches[5].read_text()


def test_other_list_replaces_the_default(mini_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert patch(mini_repo, out, "--to", "virtio-dev@lists.linux.dev").returncode == 0
    cover = sorted(out.glob("*.patch"))[0].read_text()
    assert "To: virtio-dev@lists.linux.dev" in cover and "virtio-comment@" not in cover


def test_version_without_changelog_is_refused(mini_repo: Path, tmp_path: Path) -> None:
    _one_line_error(patch(mini_repo, tmp_path / "out", "--version", "3"), "changelog v3")


def _module_variant(tmp_path: Path, old: str, new: str) -> Path:
    text = SWIOTLB.read_text()
    assert old in text
    p = tmp_path / "swiotlb.vspec"
    p.write_text(text.replace(old, new))
    return p


def test_missing_why_for_an_area_is_refused(mini_repo: Path, tmp_path: Path) -> None:
    start = SWIOTLB.read_text().index("  why transport-ccw")
    block = SWIOTLB.read_text()[start:]
    block = block[:block.index('"""', block.index('"""') + 3) + 3]
    mod = _module_variant(tmp_path, block, "")
    proc = specc("patch", str(mod), "--spec-tree", str(mini_repo), "-o", str(tmp_path / "out"),
                 "--signoff", SIGNOFF)
    _one_line_error(proc, "why the transport-ccw patch is needed")


def test_why_for_an_area_the_series_lacks_is_refused(mini_repo: Path, tmp_path: Path) -> None:
    mod = _module_variant(tmp_path, "  why transport-ccw", "  why admin \"x\"\n  why transport-ccw")
    proc = specc("patch", str(mod), "--spec-tree", str(mini_repo), "-o", str(tmp_path / "out"),
                 "--signoff", SIGNOFF)
    _one_line_error(proc, "area 'admin'")
