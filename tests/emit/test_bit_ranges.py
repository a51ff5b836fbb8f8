"""The feature bit allocation prose of content.tex, read and rewritten."""
import pytest

from specc.emit.bit_ranges import BitRanges, format_bit_ranges, parse_bit_ranges


def test_reads_the_three_v1_4_items() -> None:
    # content.tex of v1.4-cs01, "Feature bits are allocated as follows".
    dev = parse_bit_ranges("0 to 23, 41, 42 and 50 to 127")
    ext = parse_bit_ranges("24 to 40, and 43")
    fut = parse_bit_ranges("44 to 49, and 128 and above")
    assert dev.bits == frozenset(range(0, 24)) | {41, 42} | frozenset(range(50, 128))
    assert ext.bits == frozenset(range(24, 41)) | {43}
    assert fut.bits == frozenset(range(44, 50)) and fut.open_from == 128
    assert 200 in fut and 200 not in ext
    # Together they cover every bit below 128 exactly once.
    assert sorted(dev.bits | ext.bits | fut.bits) == list(range(128))
    assert not (dev.bits & ext.bits or dev.bits & fut.bits or ext.bits & fut.bits)


def test_moving_bit_44_from_future_to_extensions() -> None:
    ext = parse_bit_ranges("24 to 40, and 43").with_bit(44)
    fut = parse_bit_ranges("44 to 49, and 128 and above").without(44)
    assert format_bit_ranges(ext) == "24 to 40, 43 and 44"
    assert format_bit_ranges(fut) == "45 to 49, and 128 and above"


def test_short_runs_are_listed_not_ranged() -> None:
    assert format_bit_ranges(BitRanges(frozenset({41, 42}))) == "41 and 42"
    assert format_bit_ranges(BitRanges(frozenset({1, 2, 3}))) == "1 to 3"
    assert format_bit_ranges(BitRanges(frozenset(), 128)) == "128 and above"


def test_round_trip_of_upstream_items() -> None:
    for text in ["0 to 23, 41, 42 and 50 to 127", "44 to 49, and 128 and above"]:
        assert format_bit_ranges(parse_bit_ranges(text)) == text


@pytest.mark.parametrize("bad", ["", "foo", "10 to 5", "3 to"])
def test_unreadable_prose_is_an_error(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_bit_ranges(bad)


def test_removing_a_bit_that_is_not_there_is_an_error() -> None:
    with pytest.raises(ValueError, match="bit 45"):
        parse_bit_ranges("24 to 40, and 43").without(45)


def test_a_bit_taken_from_the_open_tail_keeps_the_bits_below_it() -> None:
    fut = parse_bit_ranges("44 to 49, and 128 and above")
    assert format_bit_ranges(fut.without(128)) == "44 to 49, and 129 and above"
    assert format_bit_ranges(fut.without(130)) == "44 to 49, 128, 129, and 131 and above"
    assert 128 not in fut.without(128) and 129 in fut.without(128)
