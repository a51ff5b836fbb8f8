"""Hostile .vspec sources and JSON side files (issue 19, items 11-15): a
one-line diagnostic or error and exit 2, never a traceback, in linear time
and bounded memory."""
from __future__ import annotations

import pytest

from specc import limits

HEADER = 'module m {\n  kind baseline\n  base "virtio-v1.4-cs01"\n}\n'
PARENT = "Basic Facilities of a Virtio Device"


def nested_sections(n: int, inner: str = '"Text."\n') -> str:
    opening = "".join(f'section "S{i}"' + (f' in "{PARENT}"' if i == 0 else "") + " {\n"
                      for i in range(n))
    return HEADER + opening + inner + "}\n" * n


def feature(name: str = "VIRTIO_F_X", bit: str = "44") -> str:
    return HEADER + f'feature {name} {{\n  bit {bit}\n  scope device-independent\n  "x"\n}}\n'


def assert_clean_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err


# -- item 11: tracebacks ------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["check", "rst", "docs"])
def test_seven_nested_sections_are_a_diagnostic(specc, write, tmp_path, command):
    path = write("nest.vspec", nested_sections(7))
    args = [command, path] if command == "check" else [command, "-o", str(tmp_path / "o"), path]
    code, out, err = specc(*args)
    assert_clean_error(code, err, "nest.vspec:", "sections nest 7 deep")


def test_a_requirements_block_below_the_sixth_level_is_a_diagnostic(specc, write):
    block = ('driver requirements {\n req m.x MUST {\n """The driver MUST x."""\n'
             ' untestable "no"\n }\n}\n')
    code, out, err = specc("check", "--no-registry", write("deep.vspec", nested_sections(5, block)))
    assert_clean_error(code, err, "needs a heading 7 levels deep")
    code, out, err = specc("check", "--no-registry", write("ok.vspec", nested_sections(4, block)))
    assert code == 0, err


@pytest.mark.parametrize("digits", ["9" * 5000, str(2**64), "0x" + "F" * 40])
def test_a_number_beyond_64_bits_is_a_diagnostic(specc, write, digits):
    code, out, err = specc("check", "--no-registry", write("num.vspec", feature(bit=digits)))
    assert_clean_error(code, err, "num.vspec:6:", "is larger than 2^64 - 1")
    assert len(err) < 2000           # the 5000 digits are not echoed back


def test_a_huge_section_title_or_feature_name_is_a_diagnostic(specc, write):
    title = "T" * 100_000
    code, out, err = specc("check", "--no-registry", write(
        "t.vspec", HEADER + f'section "{title}" in "{PARENT}" {{\n "x"\n}}\n'))
    assert_clean_error(code, err, f"string of 100002 characters; at most {limits.MAX_STRING}")
    assert len(err) < 2000
    name = "VIRTIO_F_" + "X" * (1 << 20)
    code, out, err = specc("check", "--no-registry", write("n.vspec", feature(name=name)))
    assert_clean_error(code, err, f"at most {limits.MAX_NAME}")
    assert len(err) < 2000


def test_limits_are_inclusive(specc, write):
    name = "VIRTIO_F_" + "X" * (limits.MAX_NAME - len("VIRTIO_F_"))
    code, out, err = specc("check", "--no-registry", write("n.vspec", feature(name=name)))
    assert "characters; at most" not in err


DEEP_JSON = "[" * 200_000 + "]" * 200_000


@pytest.mark.parametrize("where", ["ids.json", "--registry", "--report"])
def test_deeply_nested_json_is_a_one_line_error(specc, write, tmp_path, where):
    src = write("m.vspec", nested_sections(1))
    deep = tmp_path / ("ids.json" if where == "ids.json" else "deep.json")
    deep.write_text(DEEP_JSON, encoding="utf-8")
    if where == "--report":
        code, out, err = specc("docs", "-o", str(tmp_path / "o"), "--report", str(deep), src)
    else:
        code, out, err = specc("check", *(["--registry", str(deep)] if where == "--registry"
                                          else []), src)
    assert_clean_error(code, err, "nests too deeply")
    assert len(err.strip().splitlines()) == 1


# -- item 13: memory ------------------------------------------------------------------------------

PEAK_RSS = """
import resource, sys
from specc.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code, file=sys.stdout)
"""


def peak_rss_kib(*argv: str) -> tuple[int, int]:
    """Peak resident size of `specc ARGV` run in a process of its own, and its exit code."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS, *argv], capture_output=True,
                          text=True, timeout=300)
    rss, code = proc.stdout.split()[-2:]
    return int(rss), int(code)


def _prose_module(chars: int) -> str:
    words = " ".join(f"w{i % 997}" for i in range(chars // 4))[:chars]
    return HEADER + f'section "S" in "{PARENT}" {{\n"""{words}"""\n}}\n'


def test_a_ten_megabyte_paragraph_is_refused_in_bounded_memory(write):
    path = write("big.vspec", _prose_module(10_000_000))
    base, _ = peak_rss_kib("check", "--no-registry", write("small.vspec", _prose_module(1000)))
    rss, code = peak_rss_kib("check", "--no-registry", path)
    assert code == 2
    # the source itself is 10 MB; the old lexer held a backtracking entry per character
    assert rss - base < 200 * 1024, f"peak grew by {(rss - base) // 1024} MiB"


def test_a_paragraph_at_the_limit_is_checked_in_bounded_memory(write):
    base, _ = peak_rss_kib("check", "--no-registry", write("small.vspec", _prose_module(1000)))
    rss, code = peak_rss_kib("check", "--no-registry",
                             write("limit.vspec", _prose_module(limits.MAX_PROSE - 10)))
    assert code == 0
    # 256 KiB of prose: the old lexer's backtracking alone took about 30 MiB here
    assert rss - base < 12 * 1024, f"peak grew by {(rss - base) // 1024} MiB"


# -- item 12: linear in the number of features and references -----------------------------------

class CountingList(list):
    """A list that counts the elements handed out (indexing, slicing, iterating)."""

    reads = 0

    def __getitem__(self, key):
        got = super().__getitem__(key)
        CountingList.reads += len(got) if isinstance(key, slice) else 1
        return got

    def __iter__(self):
        for x in super().__iter__():
            CountingList.reads += 1
            yield x


def _join_reads(n: int) -> int:
    from specc.emit.rst import _join
    CountingList.reads = 0
    _join(CountingList([("t", "see "), ("m", "``X``")] * n))
    return CountingList.reads


def test_joining_rst_pieces_reads_each_piece_a_bounded_number_of_times():
    # item 12: _join sliced the rest of the list for every piece of markup
    small, large = _join_reads(1000), _join_reads(4000)
    assert large <= 4 * small + 10, (small, large)
    assert large <= 3 * 8000


def test_many_diagnostics_index_their_source_once(write, capsys):
    # item 12: rendering each diagnostic split the whole source again
    from specc.diagnostics import _line_starts
    from .conftest import run_specc
    body = "".join(f"feature VIRTIO_NET_F_X{i} {{\n bit 0\n scope net\n \"x\"\n}}\n"
                   for i in range(2000))
    path = write("many.vspec", HEADER + body)
    _line_starts.cache_clear()
    code, out, err = run_specc(["check", "--no-registry", path], capsys)
    assert code == 2 and err.count("error:") >= 2000
    assert _line_starts.cache_info().misses == 1


def test_a_title_that_cannot_be_an_upstream_label_is_a_diagnostic(specc, write):
    # found by tests/specc/test_fuzz_hostile.py: check passed, the LaTeX writer refused
    code, out, err = specc("check", "--no-registry", write(
        "l.vspec", HEADER + f'section "a {{b}} 100%" in "{PARENT}" {{\n "x"\n}}\n'))
    assert_clean_error(code, err, "cannot appear in its upstream label")


def test_a_paragraph_longer_than_docutils_default_line_limit_builds(specc, write, tmp_path):
    # one RST line per paragraph: 1,000 references are about 40,000 characters
    refs = " ".join("@feature(VIRTIO_F_VERSION_1) `x`" for _ in range(1000))
    path = write("long.vspec", HEADER + f'section "S" in "{PARENT}" {{\n"""{refs}"""\n}}\n')
    code, out, err = specc("docs", "-o", str(tmp_path / "site"), path)
    assert code == 0, err
