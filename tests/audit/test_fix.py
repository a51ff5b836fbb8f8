"""specc audit --fix: a series that fixes label case typos and unlisted
normative blocks, applies with git am, and leaves a tree the audit no longer
faults for them. The mini tree gets the faults planted; the real v1.4-cs01
tree has them already (one shared build per session)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.spec_trees import GIT_ENV, MINI, git, make_repo, upstream_checkout

ROOT = Path(__file__).resolve().parents[2]
SIGNOFF = "Ada Author <ada@author.test>"
FIXED = ("label-case-typo", "block-unlisted")
PCI_CAPS = "Virtio Transport Options / Virtio Over PCI Bus / Virtio Structure PCI Capabilities"


def specc(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "specc.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, env=env)


def audit_codes(tree: Path) -> dict[str, int]:
    proc = specc("audit", "--spec-tree", str(tree), "--format", "json")
    return json.loads(proc.stdout)["summary"]


def apply(tree: Path, out: Path, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(tree), str(dest)], check=True, env=GIT_ENV,
                   capture_output=True)
    patches = sorted(out.glob("*.patch"))[1:]
    subprocess.run(["git", "am", "-q", *map(str, patches)], cwd=dest, env=GIT_ENV, check=True,
                   capture_output=True)
    return dest


@pytest.fixture
def faulty_mini(tmp_path: Path) -> Path:
    """The mini tree with a label case typo and a block no clause lists."""
    repo = make_repo(MINI, tmp_path / "mini")
    content = repo / "content.tex"
    typo = "{Feature Bits}{Basic Facilities of a Virtio Device / Feature Bits}"
    text = content.read_text()
    i = text.index("\\devicenormative" + "{\\subsection}" + typo)
    content.write_text(text[:i] + text[i:].replace(typo, typo[:-5] + "bits}", 1))
    conf = repo / "conformance.tex"
    conf.write_text(conf.read_text().replace(f"\\item \\ref{{drivernormative:{PCI_CAPS}}}\n", ""))
    git(repo, "-c", "commit.gpgsign=false", "commit", "-q", "-am", "plant faults")
    return repo


def test_fix_series_for_planted_faults(faulty_mini: Path, tmp_path: Path) -> None:
    before = audit_codes(faulty_mini)
    # the typo also leaves the clause item dangling and the block unlisted
    assert before.get("label-case-typo") == 1 and before.get("block-unlisted") == 2
    assert before.get("conformance-item-dangling") == 1
    out = tmp_path / "fix"
    proc = specc("audit", "--spec-tree", str(faulty_mini), "--fix", "-o", str(out),
                 "--signoff", SIGNOFF)
    assert proc.returncode == 0, proc.stderr
    patches = sorted(out.glob("*.patch"))
    assert len(patches) == 3
    rename, listing = patches[1].read_text(), patches[2].read_text()
    assert "Subject: [PATCH 1/2] content: fix the letter case of the Feature Bits" in rename
    assert "differ from the section's own" in rename or "differs from the section's own" in rename
    assert "Found by specc audit (label-case-typo) at content.tex:" in rename
    assert "Subject: [PATCH 2/2] conformance: list the Virtio Structure PCI Capabilities" in listing
    assert "Found by specc audit (block-unlisted) at transport-pci.tex:" in listing
    assert f"+\\item \\ref{{drivernormative:{PCI_CAPS}}}" in listing
    fixed = apply(faulty_mini, out, tmp_path / "fixed")
    after = audit_codes(fixed)
    assert not any(after.get(c) for c in (*FIXED, "conformance-item-dangling")), after
    # what cannot be fixed mechanically is still reported
    assert after.get("independent-bit-in-device-range") == before.get("independent-bit-in-device-range") == 1
    # a second --fix has nothing left to do
    proc = specc("audit", "--spec-tree", str(fixed), "--fix", "-o", str(tmp_path / "again"),
                 "--signoff", SIGNOFF)
    assert proc.returncode == 0 and "nothing to fix" in proc.stdout


def test_a_clause_item_in_the_wrong_case_takes_the_blocks_spelling(tmp_path: Path) -> None:
    repo = make_repo(MINI, tmp_path / "mini")
    conf = repo / "conformance.tex"
    right = f"drivernormative:{PCI_CAPS}"
    conf.write_text(conf.read_text().replace(right, right.replace("Capabilities", "capabilities")))
    git(repo, "-c", "commit.gpgsign=false", "commit", "-q", "-am", "plant a case typo")
    before = audit_codes(repo)
    assert before.get("conformance-item-dangling") == 1 and before.get("block-unlisted") == 1
    out = tmp_path / "fix"
    proc = specc("audit", "--spec-tree", str(repo), "--fix", "-o", str(out), "--signoff", SIGNOFF)
    assert proc.returncode == 0, proc.stderr
    patches = sorted(out.glob("*.patch"))
    assert len(patches) == 2          # one fix; no second item for the same block
    text = patches[1].read_text()
    assert "conformance: fix the letter case of the Virtio Structure PCI Capabilities item" \
        in " ".join(text.split())
    assert f"+\\item \\ref{{{right}}}" in text
    after = audit_codes(apply(repo, out, tmp_path / "fixed"))
    assert not after.get("conformance-item-dangling") and not after.get("block-unlisted")


def test_fix_needs_an_output_directory_and_an_identity(faulty_mini: Path, tmp_path: Path) -> None:
    proc = specc("audit", "--spec-tree", str(faulty_mini), "--fix")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "specc: error: --fix needs -o DIR for the series"]
    home = tmp_path / "home"
    home.mkdir()
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
               HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
    proc = specc("audit", "--spec-tree", str(faulty_mini), "--fix", "-o", str(tmp_path / "o"),
                 env=env)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "--signoff" in proc.stderr and not (tmp_path / "o").exists()


# -- the real tree: one shared run with --build ----------------------------------------

def _fix_upstream(tmp_path_factory, *extra: str):
    tree = upstream_checkout()
    out = tmp_path_factory.mktemp("auditfix") / "out"
    return tree, out, specc("audit", "--spec-tree", str(tree), "--fix", "-o", str(out),
                            "--signoff", SIGNOFF, *extra)


@pytest.fixture(scope="session")
def upstream_fixed(tmp_path_factory):
    return _fix_upstream(tmp_path_factory)


@pytest.fixture(scope="session")
def upstream_fixed_built(tmp_path_factory):
    """--fix --build on the real tree, once per session (XeLaTeX on the fixed tree)."""
    if shutil.which("xelatex") is None:
        pytest.skip("xelatex is not installed (texlive-xetex)")
    return _fix_upstream(tmp_path_factory, "--build")


def test_fix_series_for_v1_4_applies_and_a_second_audit_drops_the_fixed(upstream_fixed,
                                                                          tmp_path: Path) -> None:
    tree, out, proc = upstream_fixed
    assert proc.returncode == 0, proc.stderr
    before = audit_codes(tree)
    assert before["label-case-typo"] == 6 and before["block-unlisted"] == 16
    patches = sorted(out.glob("*.patch"))
    for p in patches[1:]:
        text = " ".join(p.read_text().split())
        assert re.search(r"Found by specc audit \((label-case-typo|block-unlisted)\) at ", text)
        assert f"Signed-off-by: {SIGNOFF}" in text
    after = audit_codes(apply(tree, out, tmp_path / "fixed"))
    assert not any(after.get(c) for c in FIXED), after
    assert after["independent-bit-in-device-range"] == 1     # ADMIN_VQ on bit 41: not mechanical
    # nothing else changed in what the audit sees
    assert {k: v for k, v in after.items() if k not in FIXED} == \
        {k: v for k, v in before.items() if k not in FIXED}


@pytest.mark.xelatex
@pytest.mark.slow
def test_fixed_v1_4_builds_clean(upstream_fixed_built) -> None:
    _, out, proc = upstream_fixed_built
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^patch 13/13 \(.*\): builds with 0 LaTeX warnings", proc.stdout, re.M)
    assert (out / "audit-fixes.pdf").is_file()
    assert f"PDF of the fixed tree: {out / 'audit-fixes.pdf'}" in proc.stdout
