"""The series writer: one commit per area, a git-am-able mbox, the original untouched."""
from __future__ import annotations

import hashlib
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from specc.audit import audit
from specc.patch import Edit, FeatureItem, FeatureSlot, ListEnd
from specc.patch.series import NewFeature, SeriesError, write_series
from specc.upstream.tree import load_tree
from tests.spec_trees import GIT_ENV, git
from .repo import clean_clone
from .swiotlb_edits import NEW_BLOCKS, swiotlb_edits, swiotlb_options

AREA_ORDER = ["content", "transport-pci", "transport-mmio", "transport-ccw", "conformance"]


def snapshot(repo: Path) -> tuple[str, str, str]:
    """HEAD, status and a hash of every file (the .git directory included)."""
    h = hashlib.sha256()
    for p in sorted(repo.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(repo)).encode())
            h.update(p.read_bytes())
    status = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain"], cwd=repo,
                            capture_output=True, text=True).stdout
    return git(repo, "rev-parse", "HEAD"), status, h.hexdigest()


def git_am(base: Path, patches: list[Path]) -> None:
    # the cover letter carries no diff; the patches apply in order
    subprocess.run(["git", "am", "-q", *map(str, patches[1:])], cwd=base, env=GIT_ENV,
                   check=True, capture_output=True, text=True)


def subjects(patches: list[Path]) -> list[str]:
    out = []
    for p in patches:
        m = re.search(r"^Subject: (.*(?:\n .*)*)", p.read_text(), re.M)
        out.append(" ".join(m.group(1).split()))
    return out


def test_series_for_the_mini_tree(mini_repo, tmp_path):
    before = snapshot(mini_repo)
    series = write_series(mini_repo, swiotlb_edits(), tmp_path / "out", swiotlb_options())
    assert snapshot(mini_repo) == before, "the original checkout was modified"

    names = [p.name for p in series.patches]
    assert names[0] == "0000-cover-letter.patch" and len(names) == 1 + len(AREA_ORDER)
    subj = subjects(series.patches)
    assert subj[0] == "[PATCH 0/5] Add VIRTIO_F_SWIOTLB: I/O through a device-provided bounce buffer"
    assert [s.split("] ", 1)[1].split(":")[0] for s in subj[1:]] == AREA_ORDER
    assert subj[1] == "[PATCH 1/5] content: Add VIRTIO_F_SWIOTLB"
    for p in series.patches[1:]:
        text = p.read_text()
        assert "\nFixes: https://github.com/oasis-tcs/virtio-spec/issues/999\n" in text
        assert "\nSigned-off-by: Ada Author <ada@author.test>\n" in text
        assert text.startswith("From ") and "\nFrom: Ada Author <ada@author.test>\n" in text
    cover = series.patches[0].read_text()
    assert "*** " not in cover and "device-independent feature bit, 44" in cover

    base = clean_clone(mini_repo, tmp_path / "base")
    git_am(base, series.patches)
    for name, text in series.files.items():
        assert (base / name).read_text() == text
    assert git(base, "log", "--format=%s", f"{series.base}..HEAD").splitlines() == [
        s.split("] ", 1)[1] for s in reversed(subj[1:])]


def check_patched_tree(original: Path, patched: Path) -> None:
    """What the reader and the audit see after the series: the rules decide, not the writer."""
    old, new = load_tree(original), load_tree(patched)
    feat = [f for f in new.features if f.name == "VIRTIO_F_SWIOTLB"]
    assert [(f.bit, f.scope, f.legacy) for f in feat] == [(44, "device-independent", False)]
    alloc = {a.category: a for a in new.allocation}
    assert alloc["extensions"].covers(44) and not alloc["future"].covers(44)
    assert alloc["future"].covers(45) and alloc["future"].covers(128)
    # every new block exists and a clause lists it
    listed = {r.target for c in new.clauses for r in c.items}
    assert NEW_BLOCKS <= {b.label for b in new.blocks} and NEW_BLOCKS <= listed
    # the series adds no audit finding (compare by kind and name: lines move)
    assert Counter((f.code, f.name) for f in audit(new)) == \
        Counter((f.code, f.name) for f in audit(old))


def test_mini_tree_after_git_am_is_consistent(mini_repo, tmp_path):
    series = write_series(mini_repo, swiotlb_edits(), tmp_path / "out", swiotlb_options())
    base = clean_clone(mini_repo, tmp_path / "base")
    git_am(base, series.patches)
    check_patched_tree(mini_repo, base)


def test_series_for_a_copy_of_upstream(upstream_copy, tmp_path):
    before = snapshot(upstream_copy)
    series = write_series(upstream_copy, swiotlb_edits(), tmp_path / "out", swiotlb_options())
    assert snapshot(upstream_copy) == before
    base = clean_clone(upstream_copy, tmp_path / "base")
    git_am(base, series.patches)
    for name, text in series.files.items():
        assert (base / name).read_text() == text
    check_patched_tree(upstream_copy, base)


def test_series_is_reproducible(mini_repo, tmp_path):
    a = write_series(mini_repo, swiotlb_edits(), tmp_path / "a", swiotlb_options())
    b = write_series(mini_repo, swiotlb_edits(), tmp_path / "b", swiotlb_options())
    assert [p.read_bytes() for p in a.patches] == [p.read_bytes() for p in b.patches]


def expect_error(repo: Path, out: Path, needle: str, edits=None, **opts) -> str:
    before = snapshot(repo) if (repo / ".git").exists() else None
    with pytest.raises(SeriesError) as exc:
        write_series(repo, edits if edits is not None else swiotlb_edits(), out, swiotlb_options(**opts))
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg
    if before is not None:
        assert snapshot(repo) == before
    assert not out.exists() or not any(out.iterdir())
    return msg


def test_not_a_spec_tree(tmp_path):
    (tmp_path / "x").mkdir()
    expect_error(tmp_path / "x", tmp_path / "out", "not a virtio spec tree")


def test_not_a_git_checkout(tmp_path):
    from tests.spec_trees import MINI
    import shutil
    shutil.copytree(MINI, tmp_path / "plain")
    expect_error(tmp_path / "plain", tmp_path / "out", "not the top of a git checkout")


def test_dirty_tree(mini_repo, tmp_path):
    with open(mini_repo / "content.tex", "a") as f:
        f.write("% local change\n")
    expect_error(mini_repo, tmp_path / "out", "not clean")


def test_untracked_file_makes_the_tree_dirty(mini_repo, tmp_path):
    (mini_repo / "notes.txt").write_text("x")
    expect_error(mini_repo, tmp_path / "out", "notes.txt")


def test_anchor_not_found_names_file_and_anchor(mini_repo, tmp_path):
    edits = swiotlb_edits() + [Edit("content.tex", FeatureItem(45), "x", "content")]
    msg = expect_error(mini_repo, tmp_path / "out", "content.tex: anchor not found", edits=edits)
    assert "the \\item for bit 45 in the Reserved Feature Bits description list" in msg


def test_tree_already_contains_the_feature(mini_repo, tmp_path):
    series = write_series(mini_repo, swiotlb_edits(), tmp_path / "out", swiotlb_options())
    git_am(mini_repo, series.patches)     # the tree now has the feature
    msg = expect_error(mini_repo, tmp_path / "out2", "already contains VIRTIO_F_SWIOTLB")
    assert msg.startswith("content.tex:")


def test_bit_already_taken(mini_repo, tmp_path):
    edits = [Edit("content.tex", FeatureSlot(43), "  \\item[VIRTIO_F_OTHER(43)] x\n", "content")]
    msg = expect_error(mini_repo, tmp_path / "out", "bit 43 is already taken by VIRTIO_F_SUSPEND",
                       edits=edits, feature=NewFeature("VIRTIO_F_OTHER", 43))
    assert re.match(r"^content\.tex:\d+:\d+: ", msg)


def test_legacy_bit_27_is_taken(mini_repo, tmp_path):
    # the RFC numbered VIRTIO_F_SWIOTLB 27, which is the legacy VIRTIO_F_ANY_LAYOUT
    expect_error(mini_repo, tmp_path / "out", "bit 27 is already taken by VIRTIO_F_ANY_LAYOUT",
                 edits=[Edit("content.tex", FeatureSlot(27), "x\n", "content")],
                 feature=NewFeature("VIRTIO_F_SWIOTLB", 27))


def test_existing_label_in_new_text_is_refused(mini_repo, tmp_path):
    edits = [Edit("content.tex", FeatureSlot(44),
                  "\\section{Again}\\label{sec:Reserved Feature Bits}\n", "content"),
             Edit("transport-mmio.tex", ListEnd(title="Features reserved for future use"),
                  "\\drivernormative{\\subsection}{X}{Reserved\n  Feature Bits}\n", "transport-mmio")]
    msg = expect_error(mini_repo, tmp_path / "out", "already has label 'sec:Reserved Feature Bits'",
                       edits=edits, feature=None)
    assert msg.startswith("content.tex:")
    msg = expect_error(mini_repo, tmp_path / "out", "already has label 'drivernormative:Reserved Feature Bits'",
                       edits=edits[1:], feature=None)


def test_non_empty_output_directory(mini_repo, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.patch").write_text("x")
    with pytest.raises(SeriesError, match="not empty"):
        write_series(mini_repo, swiotlb_edits(), out, swiotlb_options())


def test_missing_commit_message_for_an_area(mini_repo, tmp_path):
    opts = swiotlb_options()
    commits = dict(opts.commits)
    del commits["transport-ccw"]
    expect_error(mini_repo, tmp_path / "out", "no commit message for area 'transport-ccw'",
                 commits=commits)


def test_hooks_of_the_checkout_do_not_run(mini_repo, tmp_path):
    hook = mini_repo / ".git" / "hooks" / "commit-msg"
    hook.write_text("#!/bin/sh\necho hooked >> \"$1\"\nexit 1\n")
    hook.chmod(0o755)
    series = write_series(mini_repo, swiotlb_edits(), tmp_path / "out", swiotlb_options())
    assert all("hooked" not in p.read_text() for p in series.patches)
