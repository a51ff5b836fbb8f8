"""The queue-encryption module as its own patch series and docs page, the
way the SWIOTLB module is handled: applied with git am to the mini fixture
tree and (VIRTIO_SPEC_TREE) to a real v1.4-cs01 checkout, built with
XeLaTeX when available, and rendered by specc docs with a benchmark SVG."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.emit.conftest import ROOT, mini_repo, specc, upstream_tree  # noqa: F401 (fixtures)
from tests.spec_trees import GIT_ENV, git

QENC = ROOT / "spec" / "queue_encryption.vspec"
SIGNOFF = "Ada Author <ada@author.test>"
AREAS = ["introduction", "content", "transport-pci", "transport-mmio", "transport-ccw", "conformance"]


def _apply(tree: Path, out: Path, tmp: Path, *extra: str) -> Path:
    proc = specc("patch", str(QENC), "--spec-tree", str(tree), "-o", str(out),
                 "--signoff", SIGNOFF, *extra)
    assert proc.returncode == 0, proc.stderr
    patches = sorted(out.glob("0*.patch"))
    subjects = [re.search(r"^Subject: \[PATCH (\d+)/(\d+)\] (.*)$", p.read_text(), re.M).group(3)
                for p in patches[1:]]
    assert [s.split(":")[0] for s in subjects] == AREAS
    clean = tmp / "clean"
    subprocess.run(["git", "clone", "-q", str(tree), str(clean)], check=True, env=GIT_ENV,
                   capture_output=True)
    subprocess.run(["git", "am", "-q", *map(str, patches[1:])], cwd=clean, env=GIT_ENV,
                   check=True, capture_output=True)
    return clean


def _check_applied(clean: Path) -> None:
    content = (clean / "content.tex").read_text()
    # bit 45 is moved out of the future-extensions item and listed in order
    assert "\\item[24 to 40, 43 and 45]" in content
    assert "\\item[44, 46 to 49, and 128 and above]" in content
    assert content.index("VIRTIO_F_SUSPEND(43)") < content.index("\\item[VIRTIO_F_QUEUE_ENCRYPTION(45)]")
    assert "\\label{sec:Basic Facilities of a Virtio Device / Queue Buffer Encryption / Threat Model}" in content
    pci = (clean / "transport-pci.tex").read_text()
    assert re.search(r"#define VIRTIO_PCI_CAP_QENC_CFG\s+11", pci)
    assert "\\item VIRTIO_F_QUEUE_ENCRYPTION" in (clean / "transport-mmio.tex").read_text()
    assert "\\item VIRTIO_F_QUEUE_ENCRYPTION" in (clean / "transport-ccw.tex").read_text()
    conf = (clean / "conformance.tex").read_text()
    assert "\\ref{devicenormative:Basic Facilities of a Virtio Device / Queue Buffer Encryption}" in conf
    assert "\\ref{drivernormative:Basic Facilities of a Virtio Device / Queue Buffer Encryption}" in conf


def test_series_applies_to_the_mini_tree(mini_repo, tmp_path):  # noqa: F811
    _check_applied(_apply(mini_repo, tmp_path / "out", tmp_path))


def test_series_applies_to_a_real_upstream_checkout(upstream_tree, tmp_path):  # noqa: F811
    git(upstream_tree, "status", "--porcelain")
    _check_applied(_apply(upstream_tree, tmp_path / "out", tmp_path))


@pytest.mark.xelatex
@pytest.mark.slow
def test_every_prefix_of_the_series_builds_on_upstream(qenc_built):
    proc = qenc_built.proc
    assert proc.returncode == 0, proc.stderr
    clean = [ln for ln in proc.stdout.splitlines() if "builds with 0 LaTeX warnings" in ln]
    assert len(clean) == len(AREAS)
    assert (qenc_built.out / "queue_encryption-v1.pdf").is_file()


def test_docs_site_has_the_module_and_the_benchmark_chart(tmp_path):
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "protection.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><title>t</title></svg>')
    proc = specc("docs", str(QENC), str(ROOT / "spec" / "swiotlb.vspec"), "-o",
                 str(tmp_path / "site"), "--assets", str(assets))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "site" / "queue_encryption.html").read_text()
    for anchor in ("qenc.dev.refuse-forged", "qenc.drv.fresh-key", "virtio-f-queue-encryption",
                   "structure-virtio-qenc-nonce", "section-basic-facilities-of-a-virtio-device-"
                   "queue-buffer-encryption-threat-model"):
        assert f'id="{anchor}"' in page, anchor
    index = (tmp_path / "site" / "index.html").read_text()
    assert "queue_encryption.html" in index and "benchmarks.html" in index
    assert "protection.svg" in (tmp_path / "site" / "benchmarks.html").read_text()
