"""The step vocabulary: the data table, its validation and its documentation."""
from __future__ import annotations

import re

from .conftest import REPO
from specc import actions
from specc.check_steps import parse_check
from specc.model import SourcePos


def parse(body: str):
    diags = []
    c = parse_check("c", "s.id", "{\n" + body + "\n}", SourcePos("f", 10, 5), diags)
    return c, diags


def test_every_verb_is_documented_under_its_kind():
    doc = (REPO / "docs" / "check-actions.md").read_text(encoding="utf-8")
    sections = re.split(r"^##+ ", doc, flags=re.M)
    by_kind = {"precondition": "Preconditions", "action": "Actions", "expectation": "Expectations"}
    for (kind, name) in actions.VERBS:
        sec = next(s for s in sections if s.startswith(by_kind[kind]))
        assert f"| `{name}` |" in sec, f"{kind} {name} missing from docs/check-actions.md"
    verb_sections = "".join(s for s in sections if s.startswith(tuple(by_kind.values())))
    documented = re.findall(r"^\| `([a-z_]+)` \|", verb_sections, flags=re.M)
    assert len(documented) == len(actions.VERBS), "a verb row without a table entry, or twice"


def test_brief_vocabulary_is_present():
    for kind, names in {
        "precondition": ["device", "layout", "offered", "transport"],
        "action": ["reset", "negotiate", "accept_raw", "set_status", "setup_queues", "driver_ok",
                   "blk_write", "blk_read", "blk_flush", "blk_get_id", "blk_request", "rng_read",
                   "submit_descriptor", "place_rings", "kick", "wait_used"],
        "expectation": ["status", "features_ok", "used_len", "blk_status", "data", "no_used",
                        "memory_outside_region", "notified", "not_notified", "config", "id_string"],
    }.items():
        for n in names:
            assert actions.lookup(kind, n) is not None, (kind, n)


def test_valid_body_splits_preconditions_actions_expectations():
    c, diags = parse("  result acceptable\n  given device blk\n  negotiate VIRTIO_F_VERSION_1\n"
                     "  expect used_len == 0x10\n  # comment\n  kick   # trailing\n"
                     "  expect config capacity >= 8")
    assert diags == []
    assert c.result == "acceptable"
    assert [s.verb for s in c.preconditions] == ["device"]
    assert [(s.kind, s.verb) for s in c.steps] == [("action", "negotiate"), ("expectation", "used_len"),
                                                   ("action", "kick"), ("expectation", "config")]
    assert c.steps[1].positional() == ("==", "0x10")
    assert c.steps[0].pos == SourcePos("f", 13, 3)


def test_validation_errors_point_at_the_argument():
    _, diags = parse("  result valid\n  place_rings where=nowhere\n  expect no_used")
    assert len(diags) == 1
    assert diags[0].pos == SourcePos("f", 12, 21) and "'nowhere' is not one of" in diags[0].message


def test_address_expressions():
    ok = ["region.start", "region.end-256", "(region.start+region.size)*2", "outside", "-1+0x10"]
    bad = ["region.middle", "1+", "(1", "1)", "2 3".replace(" ", "$"), "+3"]
    for e in ok:
        assert parse(f"  result invalid\n  submit_descriptor addr={e} len=1\n  expect no_used")[1] == [], e
    for e in bad:
        assert parse(f"  result invalid\n  submit_descriptor addr={e} len=1\n  expect no_used")[1], e


def test_repeat_and_optional_arguments():
    assert parse("  result valid\n  negotiate\n  expect features_ok either")[1] == []
    _, diags = parse("  result valid\n  set_status\n  expect no_used")
    assert "'set_status' is missing an argument" in diags[0].message
    _, diags = parse("  result valid\n  kick now\n  expect no_used")
    assert "unexpected argument 'now'" in diags[0].message
