"""specc check --spec-tree: a proposal must not define again what the tree has.

Each finding points at the module's line and names the upstream file and
line; the same checks run before every `specc patch`.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.emit.conftest import ROOT, specc
from tests.spec_trees import MINI, upstream_checkout

HEADER = 'module m {\n  kind proposal\n  title "t"\n  base "virtio-v1.4-cs01"\n}\n'

CAP64 = '''struct virtio_pci_cap64 size 24 {
  u8 cap_vndr "Vendor."
  u8 cap_next "Next."
  u8 cap_len "Length."
  u8 cfg_type "Type."
  u8 bar "BAR."
  u8 id "Id."
  reserved u8 padding[2] "Pad."
  le32 offset "Offset."
  le32 length "Length."
  le32 offset_hi "High offset."
  le32 length_hi "High length."
}

section "Demo capability" in "Virtio Transport Options / Virtio Over PCI Bus / PCI Device Layout" {
  "Text."
  show virtio_pci_cap64
}

placement {
  section "Virtio Transport Options / Virtio Over PCI Bus / PCI Device Layout / Demo capability"
      -> "transport-pci.tex" before label "sec:Virtio Transport Options / Virtio Over PCI Bus / PCI Device Layout / PCI configuration access capability"
}
'''

CFG9 = '''constant VIRTIO_PCI_CAP_DEMO_CFG = 9 {
  group pci-cfg-type
  "A demo capability."
}

placement {
  constant VIRTIO_PCI_CAP_DEMO_CFG -> "transport-pci.tex" after text "#define VIRTIO_PCI_CAP_VENDOR_CFG 9"
}
'''


def _line_of(tree: Path, file: str, pattern: str) -> int:
    text = (tree / file).read_text()
    m = re.search(pattern, text, re.M)
    assert m, pattern
    return text.count("\n", 0, m.start()) + 1


def _check(tmp_path: Path, tree: Path, body: str):
    path = tmp_path / "m.vspec"
    path.write_text(HEADER + body)
    return specc("check", "--no-registry", "--spec-tree", str(tree), str(path))


@pytest.fixture(params=["mini", "v1.4-cs01"])
def tree(request) -> Path:
    return MINI if request.param == "mini" else upstream_checkout()


def test_redefining_virtio_pci_cap64_names_the_upstream_line(tmp_path, tree) -> None:
    proc = _check(tmp_path, tree, CAP64)
    assert proc.returncode == 2
    up = _line_of(tree, "transport-pci.tex", r"^struct virtio_pci_cap64 \{")
    assert (f"m.vspec:6:8: error: structure virtio_pci_cap64 is already defined upstream at "
            f"transport-pci.tex:{up}\n    struct virtio_pci_cap64 size 24 {{\n"
            "           ^~~~~~~~~~~~~~~~\n  hint: use it as it is: reuse struct virtio_pci_cap64"
            ) in proc.stderr


def test_taking_cfg_type_9_names_the_upstream_define(tmp_path, tree) -> None:
    proc = _check(tmp_path, tree, CFG9)
    assert proc.returncode == 2
    up = _line_of(tree, "transport-pci.tex", r"^#define VIRTIO_PCI_CAP_VENDOR_CFG\s+9")
    assert (f"m.vspec:6:10: error: VIRTIO_PCI_CAP_DEMO_CFG = 9 collides with "
            f"VIRTIO_PCI_CAP_VENDOR_CFG, defined upstream at transport-pci.tex:{up}") in proc.stderr
    assert "hint: the next free value is 10" in proc.stderr
    # the built-in table says the same without the line: only the tree's finding is shown
    assert proc.stderr.count("error:") == 1


def test_reuse_instead_of_redefining_is_accepted(tmp_path, tree) -> None:
    body = CAP64.split("section")[0].replace("struct virtio_pci_cap64 size 24 {", "X")
    reuse = ('reuse struct virtio_pci_cap64 {\n  field cfg_type "The demo type."\n'
             '  field offset_hi "High offset bits."\n}\n\n')
    body = reuse + "section" + CAP64.split("section", 1)[1]
    proc = _check(tmp_path, tree, body)
    assert proc.returncode == 0, proc.stderr


def test_reuse_of_a_field_the_structure_lacks(tmp_path) -> None:
    body = ('reuse struct virtio_pci_cap64 {\n  field cfg_typo "x"\n}\n\n'
            "section" + CAP64.split("section", 1)[1])
    proc = _check(tmp_path, MINI, body)
    assert proc.returncode == 2
    assert re.search(r"m\.vspec:7:9: error: virtio_pci_cap64 \(defined at transport-pci\.tex:\d+\) "
                     r"has no field cfg_typo", proc.stderr)
    assert "cap_vndr" in proc.stderr and "offset_hi" in proc.stderr


def test_an_existing_section_title_label_feature_and_reference(tmp_path) -> None:
    body = '''feature VIRTIO_F_VERSION_1 {
  bit 44
  scope device-independent
  "Again."
}

section "Device groups" in "Basic Facilities of a Virtio Device" {
  "Again."
}

section "Device Groups" in "Basic Facilities of a Virtio Device" {
  "Other."
}

placement {
}
'''
    proc = _check(tmp_path, MINI, body)
    assert proc.returncode == 2
    assert re.search(r"m\.vspec:6:9: error: feature VIRTIO_F_VERSION_1 is already defined upstream "
                     r"at content\.tex:\d+", proc.stderr)
    assert re.search(r"m\.vspec:12:9: error: label 'sec:Basic Facilities of a Virtio Device / "
                     r"Device groups' is already defined upstream at admin\.tex:1", proc.stderr)
    # a title that differs only in letter case is the same section to a reader
    assert re.search(r"m\.vspec:16:9: error: section 'Basic Facilities of a Virtio Device / Device "
                     r"Groups' already exists upstream as '.*Device groups' at admin\.tex:1",
                     proc.stderr)


def test_spec_modules_pass_the_tree_checks(tree) -> None:
    proc = specc("check", "--spec-tree", str(tree), *map(str, sorted((ROOT / "spec").glob("*.vspec"))))
    if tree == MINI:
        pytest.skip("the mini tree lacks most of what the baselines restate")
    assert proc.returncode == 0, proc.stderr


def test_patch_runs_the_tree_checks_first(tmp_path, mini_repo) -> None:
    path = tmp_path / "m.vspec"
    path.write_text(HEADER + CAP64)
    proc = specc("patch", str(path), "--spec-tree", str(mini_repo), "-o", str(tmp_path / "out"),
                 "--signoff", "Ann Author <ann@virtio.dev>")
    assert proc.returncode == 2
    assert "error: structure virtio_pci_cap64 is already defined upstream" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == \
        f"specc: error: 1 error against the tree at {mini_repo}; no series written"
    assert not (tmp_path / "out").exists()


def test_a_declaration_no_emitter_renders_is_a_warning(tmp_path) -> None:
    body = CAP64.replace("  show virtio_pci_cap64\n", "")
    path = tmp_path / "m.vspec"
    path.write_text(HEADER + body)
    proc = specc("check", "--no-registry", str(path))
    assert proc.returncode == 0
    assert ("m.vspec:6:8: warning: structure virtio_pci_cap64 is declared but no section shows "
            "it, so the patch does not render it") in proc.stderr


def test_a_placement_anchor_matches_with_whitespace_normalised(tmp_path, tree) -> None:
    body = CFG9.replace("= 9", "= 10")
    proc = _check(tmp_path, tree, body)        # upstream aligns the 9 with eight spaces
    assert proc.returncode == 0, proc.stderr


def test_a_placement_anchor_not_in_the_tree_is_a_diagnostic_with_the_closest_lines(tmp_path) -> None:
    body = CFG9.replace("= 9", "= 10").replace("VIRTIO_PCI_CAP_VENDOR_CFG 9", "VIRTIO_PCI_CAP_VENDR_CFG 9")
    proc = _check(tmp_path, MINI, body)
    assert proc.returncode == 2
    up = _line_of(MINI, "transport-pci.tex", r"^#define VIRTIO_PCI_CAP_VENDOR_CFG\s+9")
    assert ("m.vspec:12:3: error: transport-pci.tex: anchor not found: text "
            "'#define VIRTIO_PCI_CAP_VENDR_CFG 9'") in proc.stderr
    assert f"  hint: closest lines:\n    transport-pci.tex:{up}: #define VIRTIO_PCI_CAP_VENDOR_CFG" \
        in proc.stderr
