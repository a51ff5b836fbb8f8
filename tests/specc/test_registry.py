"""The id registry makes every normative change visible: text edits, renames,
removals all fail `specc check` until `specc ids --update` records them."""
from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given, settings, strategies as st

from .conftest import SPEC

MOD = ('module m {{\n  kind baseline\n}}\n'
       'device requirements "Basic Facilities of a Virtio Device / Feature Bits" {{\n'
       '  req {rid} {{\n    "{text}"\n{alias}    untestable "u"\n  }}\n}}\n')


def module(rid="m.a", text="The device MUST do it.", alias=""):
    alias_line = f"    alias {alias}\n" if alias else ""
    return MOD.format(rid=rid, text=text, alias=alias_line)


@pytest.fixture
def spec_dir(tmp_path):
    d = tmp_path / "spec"
    d.mkdir()
    return d


def test_shipped_registry_matches_shipped_spec(specc):
    code, out, err = specc("check", *sorted(str(p) for p in SPEC.glob("*.vspec")))
    assert code == 0, err
    data = json.loads((SPEC / "ids.json").read_text(encoding="utf-8"))
    ids = {e["id"] for e in data["statements"]}
    assert "swiotlb.dev.no-access-outside" in ids and "base.fb.dev.renegotiate" in ids


def test_text_change_fails_until_registry_updated(spec_dir, specc):
    f = spec_dir / "m.vspec"
    f.write_text(module(), encoding="utf-8")
    assert specc("ids", "--update", str(f))[0] == 0
    assert specc("check", str(f))[0] == 0
    f.write_text(module(text="The device MUST do it twice."), encoding="utf-8")
    code, out, err = specc("check", str(f))
    assert code == 2
    assert "normative text of m.a changed" in err and "specc ids --update" in err
    code, out, _ = specc("ids", "--update", str(f))
    assert code == 0 and "changed m.a" in out
    assert specc("check", str(f))[0] == 0


def test_layout_only_edit_keeps_the_fingerprint(spec_dir, specc):
    f = spec_dir / "m.vspec"
    f.write_text(module(), encoding="utf-8")
    specc("ids", "--update", str(f))
    f.write_text(module().replace('"The device MUST do it."', '"""The device\n      MUST do it."""'),
                 encoding="utf-8")
    assert specc("check", str(f))[0] == 0


def test_rename_with_alias_is_reported_then_recorded(spec_dir, specc):
    f = spec_dir / "m.vspec"
    f.write_text(module(), encoding="utf-8")
    specc("ids", "--update", str(f))
    f.write_text(module(rid="m.b", alias="m.a"), encoding="utf-8")
    code, _, err = specc("check", str(f))
    assert code == 2 and "statement m.a was renamed to m.b" in err
    code, out, _ = specc("ids", "--update", str(f))
    assert "renamed m.a -> m.b" in out
    assert specc("check", str(f))[0] == 0
    entry = json.loads((spec_dir / "ids.json").read_text())["statements"][0]
    assert entry["id"] == "m.b" and entry["aliases"] == ["m.a"]


def test_new_and_removed_statements_are_reported(spec_dir, specc):
    f = spec_dir / "m.vspec"
    f.write_text(module(), encoding="utf-8")
    specc("ids", "--update", str(f))
    f.write_text(module(rid="m.c"), encoding="utf-8")
    code, _, err = specc("check", str(f))
    assert "statement m.c is not in the id registry" in err
    assert "statement m.a of module m was removed" in err


def test_corrupt_registry_is_a_one_line_error(spec_dir, specc):
    f = spec_dir / "m.vspec"
    f.write_text(module(), encoding="utf-8")
    (spec_dir / "ids.json").write_text("{not json", encoding="utf-8")
    code, out, err = specc("check", str(f))
    assert code == 2 and err.startswith("specc: error: ") and err.count("\n") == 1


def test_registry_of_other_modules_is_left_alone(tmp_path, specc):
    d = tmp_path / "spec"
    shutil.copytree(SPEC, d)
    before = json.loads((d / "ids.json").read_text())
    (d / "extra.vspec").write_text(module(), encoding="utf-8")
    specc("ids", "--update", str(d / "extra.vspec"))
    after = json.loads((d / "ids.json").read_text())
    assert len(after["statements"]) == len(before["statements"]) + 1



JSON = st.recursive(st.none() | st.integers() | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.sampled_from(["id", "fingerprint", "aliases", "module", "x"]),
                                      kids, max_size=5),
                    max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(statements=JSON)
def test_any_registry_content_gives_a_verdict_not_a_traceback(tmp_path_factory, statements):
    from specc import registry as reg
    from specc.load import load
    d = tmp_path_factory.mktemp("r")
    (d / "m.vspec").write_text(module(), encoding="utf-8")
    (d / "ids.json").write_text(json.dumps({"format": reg.FORMAT, "statements": statements}),
                                encoding="utf-8")
    try:
        entries = reg.read(str(d / "ids.json"))
    except reg.RegistryError as exc:
        assert str(exc).count("\n") == 0
        return
    reg.check(load([str(d / "m.vspec")]).modules, entries, str(d / "ids.json"))
