"""Measure how much of our prose repeats the upstream virtio spec word for word.

House rule: facts may come from the spec, sentences may not.  This module
turns both sides into streams of lower-case words and compares them:

* ``run``   - the longest stretch of consecutive words a text shares with
  upstream (exact when the tree is at hand; from the digest it is estimated
  by chaining overlapping 8-word windows, which needs 7 shared words between
  neighbours and so is a tight lower-bound in practice);
* ``share`` - the fraction of the text's 8-word windows (8-grams) that occur
  anywhere upstream.

A text is a *near-copy* when ``run >= RUN_LIMIT`` or ``share > SHARE_LIMIT``
(see ``is_near_copy`` for why those values).

Without the tree the comparison uses a digest: the sorted, truncated SHA-1
of every upstream 8-gram, gzip-compressed.  Hashes only, so the digest holds
no upstream text.  Regenerate it with

    .venv/bin/python tests/specc/own_words.py digest /work/virtio-spec

and print the current measurements with

    .venv/bin/python tests/specc/own_words.py report [--tree /work/virtio-spec]
"""
from __future__ import annotations

import argparse
import difflib
import gzip
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DIGEST = HERE / "upstream_8grams.gz"

N = 8                 # window length of the share measure and the digest
HASH_HEX = 10         # digest keeps 40 bits of each SHA-1: ~2e5 entries, ~2e-7 false hits
RUN_LIMIT = 12
SHARE_LIMIT = 0.5
SEED = 4              # exact runs are grown from shared 4-word seeds

# A word is a run of letters, digits and underscores; None marks a break
# (a reference, a label, a file boundary) that no shared run may cross.
Words = list  # of Optional[str]: a word, or None for a break
_WORD = re.compile(r"[a-z0-9_]+|\x00")
BREAK = "\x00"


def words_of(plain: str) -> Words:
    """Lower-cased words of plain text; BREAK characters become None."""
    return [None if w == BREAK else w for w in _WORD.findall(plain.lower())]


# ---- LaTeX to words ----------------------------------------------------------

# Commands whose brace argument is a name, not prose: drop it and break runs.
# Headings count as names too: quoting a section title to point at it (as
# docs/audit.md does) states a fact, not a sentence.
_NAME_ARG = re.compile(r"\\(?:label|ref|nameref|pageref|autoref|url|input|include|"
                       r"begin|end|cite|hypertarget|lstinputlisting|chapter|section|"
                       r"subsection|subsubsection|paragraph|subparagraph)\*?"
                       r"(?:\[[^\]]*\])?\{[^{}]*\}")
# \drivernormative{\paragraph}{Title}{label path} and \conformance{\section}{Title}
_NORMATIVE = re.compile(r"\\(?:driver|device)normative\s*\{\\[a-z]+\}\s*\{[^{}]*\}\s*\{[^{}]*\}|"
                        r"\\conformance\s*\{\\[a-z]+\}\s*\{[^{}]*\}")
_HYPER = re.compile(r"\\hyperref\[[^\]]*\]")
_HREF = re.compile(r"\\href\{[^{}]*\}")
_ESCAPED = re.compile(r"\\([_%&#$])")
_COMMAND = re.compile(r"\\[A-Za-z@]+\*?|\\\\")


def latex_words(tex: str) -> Words:
    """Words of LaTeX source: comments and verbatim bodies must already be
    blanked (specc.upstream.source.mask does that); markup is dropped, the
    text inside formatting commands such as \\field{...} is kept."""
    tex = _NORMATIVE.sub(" " + BREAK + " ", tex)
    tex = _NAME_ARG.sub(" " + BREAK + " ", tex)
    tex = _HYPER.sub(" " + BREAK + " ", tex)
    tex = _HREF.sub(" " + BREAK + " ", tex)
    tex = _ESCAPED.sub(r"\1", tex)
    tex = _COMMAND.sub(" ", tex)
    return words_of(tex)


def upstream_words(tree: str | Path) -> Words:
    """Every word of every .tex file the build reads from virtio.tex, with a
    break between files."""
    from specc.upstream.source import mask
    from specc.upstream.tree import load_tree
    spec = load_tree(tree)
    out: Words = []
    for name in spec.files:
        out += latex_words(mask(spec.sources[name].text))
        out.append(None)
    return out


# ---- n-grams and the digest ----------------------------------------------------

def ngrams(words: Sequence[Optional[str]], n: int = N) -> Iterator[tuple[int, str]]:
    """(start index, 'w1 w2 ... wn') for every window without a break."""
    for i in range(len(words) - n + 1):
        window = words[i:i + n]
        if None not in window:
            yield i, " ".join(window)     # type: ignore[arg-type]


def gram_hash(gram: str) -> str:
    return hashlib.sha1(gram.encode()).hexdigest()[:HASH_HEX]


def digest_lines(words: Sequence[Optional[str]]) -> list[str]:
    return sorted({gram_hash(g) for _, g in ngrams(words)})


def write_digest(words: Sequence[Optional[str]], path: Path = DIGEST) -> int:
    lines = digest_lines(words)
    # mtime=0: the same tree always gives the same bytes, so a diff means a change
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    return len(lines)


def read_digest(path: Path = DIGEST) -> frozenset[str]:
    return frozenset(gzip.decompress(path.read_bytes()).decode().split())


# ---- measuring -----------------------------------------------------------------

@dataclass(frozen=True)
class Overlap:
    words: int          # words in the text
    grams: int          # its 8-grams (windows without a break)
    hits: int           # of those, how many occur upstream
    run: int            # longest run of consecutive words shared with upstream

    @property
    def share(self) -> float:
        return self.hits / self.grams if self.grams else 0.0


def is_near_copy(o: Overlap) -> bool:
    """Twelve words in a row is longer than any stock phrase we use ("the
    driver MUST NOT set the ... field") yet shorter than nearly any whole
    spec sentence; more than half of the 8-word windows shared means the
    text follows upstream's wording even where it swaps a word here and
    there."""
    return o.run >= RUN_LIMIT or o.share > SHARE_LIMIT


class DigestIndex:
    """Upstream known only through hashes of its 8-grams."""

    def __init__(self, hashes: frozenset[str]):
        self.hashes = hashes

    def measure(self, words: Sequence[Optional[str]]) -> Overlap:
        grams = list(ngrams(words))
        hit_at = {i for i, g in grams if gram_hash(g) in self.hashes}
        # consecutive hitting windows overlap in N-1 words: chain them
        best = 0
        for i in hit_at:
            if i - 1 in hit_at:
                continue
            k = 1
            while i + k in hit_at:
                k += 1
            best = max(best, k + N - 1)
        return Overlap(len([w for w in words if w]), len(grams), len(hit_at), best)


class TreeIndex:
    """Upstream as a word stream: exact longest runs."""

    def __init__(self, words: Sequence[Optional[str]]):
        self.words = list(words)
        self.seeds: dict[tuple, list[int]] = {}
        for i in range(len(self.words) - SEED + 1):
            key = tuple(self.words[i:i + SEED])
            if None not in key:
                self.seeds.setdefault(key, []).append(i)
        self.grams = {g for _, g in ngrams(self.words)}

    def measure(self, words: Sequence[Optional[str]]) -> Overlap:
        grams = list(ngrams(words))
        hits = sum(1 for _, g in grams if g in self.grams)
        up = self.words
        best = 0
        for i in range(len(words) - SEED + 1):
            key = tuple(words[i:i + SEED])
            for p in self.seeds.get(key, ()):
                k = SEED
                while (i + k < len(words) and p + k < len(up) and words[i + k] is not None
                       and words[i + k] == up[p + k]):
                    k += 1
                best = max(best, k)
        return Overlap(len([w for w in words if w]), len(grams), hits, best)


# ---- our texts -------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    where: str          # file:line and what the text is
    text: str           # readable form, for reports
    words: tuple


def prose_words(prose) -> Words:
    """Words of a specc Prose: features and fields stay as their names (as
    upstream spells them), section and requirement references break runs."""
    from specc.model import Text
    out: Words = []
    for piece in prose.pieces:
        if isinstance(piece, Text):
            out += words_of(piece.text.replace(BREAK, " "))
        elif piece.kind == "feature":
            out += words_of(piece.target)
        elif piece.kind == "field":
            out += words_of(piece.target.rsplit(".", 1)[-1])
        else:
            out.append(None)
    return out


def _sample(prose, what: str) -> Sample:
    return Sample(f"{_rel(prose.pos.file)}:{prose.pos.line} {what}", prose.plain(),
                  tuple(prose_words(prose)))


def _plain(text: str, where: str) -> Sample:
    return Sample(where, text, tuple(words_of(text.replace(BREAK, " "))))


def module_samples(module) -> Iterator[Sample]:
    """Every prose text of one module: module, feature, constant, struct and
    field prose, section paragraphs and notes, statement conditions, texts
    and untestable reasons, and check comments."""
    from specc.model import Note, Paragraph
    if module.title:
        yield _plain(module.title, f"{_rel(module.file)}:1 module title")
    for p in module.prose:
        yield _sample(p, "module prose")
    for f in module.features:
        for p in f.prose:
            yield _sample(p, f"feature {f.name}")
    for c in module.constants:
        for p in c.prose:
            yield _sample(p, f"constant {c.name}")
    for s in module.structs:
        for p in s.prose:
            yield _sample(p, f"struct {s.name}")
        for fld in s.fields:
            if fld.prose is not None:
                yield _sample(fld.prose, f"field {s.name}.{fld.name}")
    for sec in module.all_sections():
        for item in sec.items:
            if isinstance(item, Paragraph):
                yield _sample(item.prose, f"paragraph of '{sec.title}'")
            elif isinstance(item, Note):
                yield _sample(item.prose, f"note in '{sec.title}'")
    for st in module.all_statements():
        if st.condition is not None:
            yield _sample(st.condition, f"condition of {st.id}")
        yield _sample(st.text, f"text of {st.id}")
        if st.condition is not None:
            # as the emitters print it: "If <condition>, <text>"
            yield Sample(f"{_rel(st.text.pos.file)}:{st.text.pos.line} statement {st.id} as printed",
                         f"If {st.condition.plain()}, {st.text.plain()}",
                         tuple(["if"] + prose_words(st.condition) + prose_words(st.text)))
        if st.untestable is not None:
            yield _sample(st.untestable, f"untestable reason of {st.id}")
        for chk in st.checks:
            if chk.comment:
                where = chk.pos.line if chk.pos else 0
                yield _plain(chk.comment, f"{_rel(module.file)}:{where} comment of check {chk.id}")


def vspec_samples(paths: Iterable[str | Path]) -> list[Sample]:
    from specc.load import load_modules
    modules, diags = load_modules([str(p) for p in paths])
    errors = [d for d in diags if getattr(d, "severity", "error") == "error"]
    if errors:
        raise ValueError(f"cannot load vspec sources: {errors[0]}")
    return [s for m in modules for s in module_samples(m)]


def _rel(path: str | Path) -> str:
    p = Path(path).resolve()
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(path)


_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_URL = re.compile(r"\]\([^)]*\)")


def markdown_samples(path: str | Path) -> list[Sample]:
    """Paragraphs (and list items, table rows) of a Markdown file, code
    fences left out: code is ours by construction and not prose."""
    out: list[Sample] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    para: list[str] = []
    start = 0
    fenced = False

    def flush() -> None:
        if para:
            text = _MD_URL.sub("] ", " ".join(para))
            out.append(Sample(f"{_rel(path)}:{start}", text.strip(), tuple(words_of(text))))
            para.clear()
    for no, line in enumerate(lines, 1):
        if _FENCE.match(line):
            flush()
            fenced = not fenced
            continue
        if fenced:
            continue
        if not line.strip() or line.lstrip().startswith(("- ", "* ", "|", "#")) or \
                re.match(r"\s*\d+\.\s", line):
            flush()
        if line.strip():
            if not para:
                start = no
            para.append(line.strip())
    flush()
    return out


def _is_edit(line: str, removed: list[str]) -> bool:
    """An added line that rewrites a line the same hunk removes (say the
    allocation list item whose bit range shrinks) keeps upstream's wording
    by necessity: that is editing the spec, not copying from it."""
    return any(difflib.SequenceMatcher(None, line, r).ratio() >= 0.6 for r in removed)


def patch_samples(patch_dir: str | Path) -> list[Sample]:
    """The added lines of a generated patch series, each run of consecutive
    added lines as one text; lines that edit a removed line are left out."""
    from specc.upstream.source import mask
    out: list[Sample] = []
    for path in sorted(Path(patch_dir).glob("*.patch")):
        lines = path.read_text(encoding="utf-8").splitlines()
        hunks: list[list[tuple[int, str]]] = []
        for no, line in enumerate(lines, 1):
            if line.startswith("@@"):
                hunks.append([])
            elif hunks and line[:1] in ("+", "-", " ") and not line.startswith(("+++", "---")):
                hunks[-1].append((no, line))
        for hunk in hunks:
            removed = [ln[1:] for _, ln in hunk if ln.startswith("-")]
            run: list[tuple[int, str]] = []
            for no, line in hunk + [(0, " ")]:
                if line.startswith("+") and not _is_edit(line[1:], removed):
                    run.append((no, line[1:]))
                    continue
                if run:
                    tex = "\n".join(t for _, t in run)
                    out.append(Sample(f"{path.name}:{run[0][0]}", " ".join(tex.split()),
                                      tuple(latex_words(mask(tex)))))
                    run = []
    return out


# ---- command line ------------------------------------------------------------------

def _report(samples: list[Sample], index, label: str, top: int) -> int:
    measured = [(index.measure(s.words), s) for s in samples]
    flagged = [(o, s) for o, s in measured if is_near_copy(o)]
    print(f"## {label}: {len(samples)} texts, {len(flagged)} near-copies")
    worst = sorted(measured, key=lambda x: (x[0].run, x[0].share), reverse=True)[:top]
    for o, s in worst:
        mark = "NEAR-COPY" if is_near_copy(o) else "ok"
        print(f"  run {o.run:3d}  share {o.share:4.0%}  {mark:9s} {s.where}")
        if is_near_copy(o):
            print(f"      {s.text[:160]}")
    return len(flagged)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("digest", help="write the 8-gram digest of an upstream tree")
    d.add_argument("tree")
    d.add_argument("-o", "--output", default=str(DIGEST))
    r = sub.add_parser("report", help="measure spec/*.vspec, docs/*.md and a patch series")
    r.add_argument("--tree", help="measure exactly against this upstream tree (else the digest)")
    r.add_argument("--patch-dir", help="also measure the added lines of these *.patch files")
    r.add_argument("--top", type=int, default=10)
    r.add_argument("vspec", nargs="*", help="default: spec/*.vspec")
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except Exception as exc:     # a bad path or an unreadable tree: one line, not a traceback
        print(f"own_words: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "digest":
        if not Path(args.tree, "virtio.tex").is_file():
            raise ValueError(f"{args.tree} is not a virtio-spec tree (no virtio.tex)")
        n = write_digest(upstream_words(args.tree), Path(args.output))
        print(f"wrote {n} hashes to {args.output}")
        return 0
    index = TreeIndex(upstream_words(args.tree)) if args.tree else DigestIndex(read_digest())
    vspecs = args.vspec or sorted(str(p) for p in (REPO / "spec").glob("*.vspec"))
    bad = _report(vspec_samples(vspecs), index, "vspec prose", args.top)
    docs = [s for p in sorted((REPO / "docs").glob("*.md")) for s in markdown_samples(p)]
    bad += _report(docs, index, "docs/*.md", args.top)
    if args.patch_dir:
        bad += _report(patch_samples(args.patch_dir), index, "patch added lines", args.top)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
