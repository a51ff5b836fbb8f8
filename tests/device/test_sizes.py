"""Sizes and regions as the commands read them (device_ref/sizes.py)."""
from __future__ import annotations

import pytest

from device_ref.sizes import parse_region, parse_size


@pytest.mark.parametrize("text, size", [
    ("4096", 4096), ("0x1000", 4096), ("8M", 8 * 1024 * 1024), ("8m", 8 * 1024 * 1024),
    ("1K", 1024), (" 2G ", 2 * 1024 ** 3), ("0x10K", 16 * 1024),
])
def test_sizes_are_numbers_with_binary_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "8Q", "8MB", "eight"])
def test_a_bad_size_names_the_text(text):
    with pytest.raises(ValueError, match=f"not a size: {text!r}"):
        parse_size(text)


def test_region_is_base_colon_size():
    assert parse_region("0x100000000:8M") == (1 << 32, 8 << 20)
    with pytest.raises(ValueError, match="expected BASE:SIZE"):
        parse_region("8M")
    with pytest.raises(ValueError, match="not a size: 'x'"):
        parse_region("0x1000:x")
