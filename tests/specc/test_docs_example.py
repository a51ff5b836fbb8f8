"""The examples in docs/dsl.md are real: the complete one checks clean, and
the diagnostic shown is what specc prints."""
from __future__ import annotations

import re

from .conftest import REPO


def _blocks():
    doc = (REPO / "docs" / "dsl.md").read_text(encoding="utf-8")
    return re.findall(r"```\n(.*?)```", doc, flags=re.S)


def test_complete_small_example_checks_clean(write, specc):
    example = next(b for b in _blocks() if b.startswith("module demo {"))
    path = write("demo.vspec", example)
    code, out, err = specc("check", "--no-registry", "--strict", path)
    assert (code, err) == (0, "")
    assert out.startswith("1 module, 1 feature, 2 normative statements (MUST 1, MAY 1), 1 check, 1 untestable")


def test_diagnostic_shown_in_docs_is_what_specc_prints(write, specc):
    shown = next(b for b in _blocks() if b.startswith("spec/x.vspec:"))
    src = ('module x {\n  kind baseline\n}\n\n\n\n\n\n\n\n'
           'feature VIRTIO_F_SWIOTLB {\n  bit 27\n  scope device-independent\n  "Bounce."\n}\n')
    path = write("x.vspec", src)
    _, _, err = specc("check", "--no-registry", path)
    assert err.replace(path, "spec/x.vspec") == shown


def _readme_blocks(lang: str = "") -> list[str]:
    """Fenced blocks of README.md whose info string is exactly ``lang``."""
    doc = (REPO / "README.md").read_text(encoding="utf-8")
    fences = re.findall(r"^```([\w-]*)\n(.*?)^```$", doc, flags=re.S | re.M)
    return [body for info, body in fences if info == lang]


def test_readme_example_checks_clean(write, specc):
    (example,) = _readme_blocks("vspec")
    path = write("demo.vspec", example)
    code, out, err = specc("check", "--no-registry", "--strict", path)
    assert (code, err) == (0, "")
    assert out.startswith("1 module, 1 feature, 2 normative statements (MUST 1, MAY 1), 1 check, 1 untestable")


def test_readme_bit_27_diagnostic_is_what_specc_prints(write, specc):
    (example,) = _readme_blocks("vspec")
    shown = next(b for b in _readme_blocks() if b.startswith("demo.vspec:9:7:"))
    path = write("demo.vspec", example.replace("bit 45", "bit 27"))
    code, _, err = specc("check", "--no-registry", path)
    assert code == 2
    assert err.replace(path, "demo.vspec").startswith(shown)


def test_dsl_examples_of_amend_reuse_and_reference_parse(write, specc):
    """The examples of the newer constructs are real syntax, checked as they are shown."""
    header = 'module x {\n  kind proposal\n  title "x"\n  base "virtio-v1.4-cs01"\n}\n'
    wanted = ("amend statement", "reuse struct", "reference RFC8439")
    blocks = [b for b in _blocks() if b.startswith(wanted)]
    assert sorted(b.split()[0] for b in blocks) == ["amend", "reference", "reuse"]
    for i, body in enumerate(blocks):
        path = write(f"x{i}.vspec", header + body)
        code, out, err = specc("check", "--no-registry", path)
        assert code == 0, (body, err)
