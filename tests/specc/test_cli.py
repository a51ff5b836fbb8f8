"""specc check/dump/ids as a user meets them: exit codes, summary, bad paths."""
from __future__ import annotations

import builtins
import json
import re

from .conftest import SPEC

ALL = sorted(str(p) for p in SPEC.glob("*.vspec"))


def test_check_spec_prints_one_summary_line_and_exits_0(specc):
    code, out, err = specc("check", *ALL)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"\d+ modules, \d+ features?, \d+ normative statements \((MUST NOT \d+|MUST \d+|"
                        r"SHOULD NOT \d+|SHOULD \d+|MAY \d+)(, (MUST NOT|MUST|SHOULD NOT|SHOULD|MAY) \d+)*\), "
                        r"\d+ checks, \d+ untestable; 0 errors, 0 warnings", lines[0]), lines[0]


def test_summary_counts_match_the_model(specc):
    from specc.load import load
    mods = load(ALL).modules
    statements = [s for m in mods for s in m.all_statements()]
    _, out, _ = specc("check", *ALL)
    assert f"{len(mods)} modules" in out
    assert f"{len(statements)} normative statements" in out
    assert f"{sum(len(s.checks) for s in statements)} checks" in out
    assert f"{sum(s.untestable is not None for s in statements)} untestable" in out
    must_not = sum(s.keyword == "MUST NOT" for s in statements)
    assert f"MUST NOT {must_not}" in out


def test_warnings_exit_0_unless_strict(write, specc):
    p = write("w.vspec", 'module w {\n  kind baseline\n}\nconstant X = 3 { "no group" }\n')
    code, out, err = specc("check", p)
    assert code == 0 and ": warning: constant X has no 'group'" in err
    assert specc("check", "--strict", p)[0] == 2


def test_directory_missing_and_unreadable_files_are_one_line_errors(tmp_path, write, specc, monkeypatch):
    code, _, err = specc("check", str(tmp_path))
    assert code == 2 and f"{tmp_path}: error: is a directory" in err
    code, _, err = specc("check", str(tmp_path / "nope.vspec"))
    assert code == 2 and "nope.vspec: error: no such file" in err
    locked = write("locked.vspec", "module m { kind baseline }\n")
    real_open = builtins.open

    def deny(path, *a, **k):   # root can read any file, so simulate the refusal
        if str(path) == locked:
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)
    monkeypatch.setattr(builtins, "open", deny)
    code, _, err = specc("check", locked)
    assert code == 2 and "locked.vspec: error: cannot read file: permission denied" in err
    assert "Traceback" not in err


def test_dump_json_is_the_model(specc):
    code, out, err = specc("dump", "--json", *ALL)
    assert code == 0, err
    data = json.loads(out)
    assert data["format"] == "specc-model/1"
    sw = next(m for m in data["modules"] if m["name"] == "swiotlb")
    assert sw["features"][0]["bit"] == 44
    assert sw["structs"] == []          # the capability reuses the upstream layout
    assert sw["reused"][0]["name"] == "virtio_pci_cap64"
    assert "cfg_type" in [f["name"] for f in sw["reused"][0]["fills"]]
    blocks = [i for s in sw["sections"] for i in s["items"] if i["type"] == "NormativeBlock"]
    assert blocks[0]["label"].startswith(("drivernormative:", "devicenormative:"))
    st = blocks[0]["statements"][0]
    assert len(st["fingerprint"]) == 12 and st["text"]["type"] == "Prose"
    kinds = {p["type"] for p in st["condition"]["pieces"]}
    assert kinds == {"Ref", "Text"}


def test_dump_is_deterministic(specc):
    assert specc("dump", *ALL)[1] == specc("dump", *ALL)[1]


def test_dump_refuses_broken_input(write, specc):
    code, out, err = specc("dump", write("b.vspec", "module {"))
    assert code == 2 and out == "" and "error:" in err


def test_ids_lists_fingerprints(specc):
    code, out, _ = specc("ids", *ALL)
    assert code == 0
    row = next(l for l in out.splitlines() if l.startswith("swiotlb.dev.no-access-outside\t"))
    assert re.fullmatch(r"swiotlb\.dev\.no-access-outside\t[0-9a-f]{12}\tMUST NOT"
                        r"  \(aliases: swiotlb\.dev\.rings-outside\)", row)


def test_real_process_exit_codes_and_no_traceback(tmp_path):
    import subprocess
    import sys
    garbage = tmp_path / "g.vspec"
    garbage.write_bytes(bytes(range(256)) * 4)
    latin = tmp_path / "l.vspec"
    latin.write_bytes(b"module m { kind baseline title \"caf\xe9\" }\n")
    empty = tmp_path / "e.vspec"
    empty.write_bytes(b"")
    for args, want in (([*ALL], 0), ([str(garbage)], 2), ([str(latin)], 2), ([str(empty)], 2),
                       ([str(tmp_path)], 2), ([str(garbage), str(latin), str(empty)], 2)):
        p = subprocess.run([sys.executable, "-m", "specc.cli", "check", *args],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == want, (args, p.stderr)
        assert "Traceback" not in p.stderr
    # several bad files: one diagnostic each, all in one run
    assert p.stderr.count(": error: ") == 3
