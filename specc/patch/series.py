"""Write a `git format-patch` series from a list of edits, on a copy of a checkout.

The original checkout is only read (git runs there with --no-optional-locks,
so not even the index is refreshed). The copy gets one commit per area in
the fixed order of `AREAS`; `git format-patch --cover-letter` then writes a
cover letter and one patch per commit, which `git am` applies in order to a
clean checkout of the same base.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from specc.patch import prefixes
from specc.patch.anchors import AnchorError
from specc.patch.build import BuildError, BuildResult, Pass, build_tree
from specc.patch.identity import Identity, IdentityError, parse_identity
from specc.patch.prefixes import HeldBack
from specc.patch.edit import AREAS, Edit, apply_edits, edits_by_area
from specc.upstream.tree import SpecTree, TreeError, load_tree


class SeriesError(Exception):
    """One-line error: the original tree is untouched and no series was written."""


@dataclass(frozen=True)
class NewFeature:
    """The feature the series adds: the writer refuses a tree that has it or its bit."""
    name: str
    bit: int
    scope: str = "device-independent"


@dataclass(frozen=True)
class CommitText:
    subject: str                   # without the "<area>: " prefix
    body: str = ""


# Labels the packages virtio.tex loads define without a \\label in the tree.
PACKAGE_LABELS = ("LastPage",)
MAILING_LIST = "virtio-comment@lists.linux.dev"   # upstream README: where changes are sent


@dataclass(frozen=True)
class SeriesOptions:
    author: str                    # "Name <email>" (checked: no placeholder)
    cover_subject: str
    cover_body: str
    commits: dict[str, CommitText] = field(default_factory=dict)   # area -> message
    signoff: str | None = None     # "Name <email>"; default: the author
    fixes: str | None = None       # e.g. https://github.com/oasis-tcs/virtio-spec/issues/NNN
    subject_prefix: str = "PATCH"
    date: str = "2026-04-09T12:00:00+00:00"   # fixed, so the series is reproducible
    feature: NewFeature | None = None
    version: int = 1               # >1: "[PATCH vN m/n]" subjects, files vN-*.patch
    in_reply_to: str | None = None  # Message-ID the series answers (a resend)
    to: tuple[str, ...] = (MAILING_LIST,)
    cc: tuple[str, ...] = ()
    pdf_name: str | None = None    # name of the built PDF in the output directory


@dataclass(frozen=True)
class PlannedCommit:
    """One commit of a series: `<prefix>: <subject>`, its body and its edits."""
    prefix: str
    text: CommitText
    edits: tuple[Edit, ...]


@dataclass
class Series:
    patches: list[Path]            # cover letter first
    files: dict[str, str]          # upstream file -> its text after the whole series
    base: str                      # commit the series applies to
    pdf: Path | None = None        # with build=True: the PDF of the whole series
    held_back: list[HeldBack] = field(default_factory=list)


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["git", "--no-optional-locks", *args], cwd=cwd, env=env,
                              capture_output=True, text=True)
    except FileNotFoundError:
        raise SeriesError("git is not installed") from None
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise SeriesError(f"git {args[0]} failed in {cwd}: {msg[-1] if msg else proc.returncode}")
    return proc


def _identity(ident: str, source: str) -> Identity:
    try:
        return parse_identity(ident, source)
    except IdentityError as exc:
        raise SeriesError(str(exc)) from None


def check_checkout(path: Path) -> str:
    """The HEAD commit of a clean git checkout whose top level is `path`."""
    proc = _git(path, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0 or Path(proc.stdout.strip()).resolve() != path.resolve():
        raise SeriesError(f"{path}: not the top of a git checkout")
    dirty = _git(path, "status", "--porcelain").stdout.splitlines()
    if dirty:
        raise SeriesError(f"{path}: the checkout is not clean ({len(dirty)} changed or untracked "
                          f"path(s), e.g. {dirty[0][3:]}); commit or stash first")
    return _git(path, "rev-parse", "HEAD").stdout.strip()


def check_feature(tree: SpecTree, feature: NewFeature) -> None:
    for f in tree.features:
        if f.name == feature.name:
            raise SeriesError(f"{f.pos}: the tree already contains {feature.name} (bit {f.bit})")
    for f in tree.features:
        if f.bit == feature.bit and f.scope == feature.scope:
            raise SeriesError(f"{f.pos}: bit {feature.bit} is already taken by {f.name} "
                              f"in this tree ({feature.scope})")


def check_new_labels(tree: SpecTree, edits: list[Edit]) -> None:
    """Inserted text must not define a label the tree already has (a series applied twice,
    or a section that already exists upstream)."""
    have = {lab.name: lab.pos for lab in tree.labels}
    for e in edits:
        if e.action == "replace":
            continue
        for name in prefixes.labels_defined(e.text):
            if name in have:
                raise SeriesError(f"{have[name]}: the tree already has label '{name}', "
                                  f"which the edit {e.describe()} adds")


def _message(prefix: str, text: CommitText, opts: SeriesOptions, notes: list[str]) -> str:
    trailers = []
    if opts.fixes:
        trailers.append(f"Fixes: {opts.fixes}")
    trailers.append(f"Signed-off-by: {opts.signoff or opts.author}")
    parts = [f"{prefix}: {text.subject}"]
    body = "\n\n".join(x for x in [text.body.strip(), *notes] if x)
    if body:
        parts.append(body)
    parts.append("\n".join(trailers))
    return "\n\n".join(parts) + "\n"


def _held_back_note(h: HeldBack, names: list[str]) -> str:
    return textwrap.fill(
        f"The paragraph of {h.file} that refers to '{h.label}' comes with this patch "
        f"rather than with patch {h.origin + 1} ({names[h.origin]}), so that every patch "
        "of the series builds on its own.", 72)


def _fill_cover(path: Path, opts: SeriesOptions) -> None:
    text = path.read_text(encoding="utf-8")
    if "*** SUBJECT HERE ***" not in text or "*** BLURB HERE ***" not in text:
        raise SeriesError(f"{path}: git format-patch wrote an unexpected cover letter")
    body = opts.cover_body.strip()
    if opts.fixes:
        body += f"\n\nFixes: {opts.fixes}"
    text = text.replace("*** SUBJECT HERE ***", opts.cover_subject, 1)
    text = text.replace("*** BLURB HERE ***", body, 1)
    path.write_text(text, encoding="utf-8")


def _format_patch_args(opts: SeriesOptions, out: Path, base: str) -> list[str]:
    args = ["format-patch", "--cover-letter", "--no-signature",
            f"--subject-prefix={opts.subject_prefix}", "-o", str(out.resolve())]
    if opts.version < 1:
        raise SeriesError(f"version {opts.version}: a series is version 1 or later")
    if opts.version > 1:
        args.append(f"--reroll-count={opts.version}")
    if opts.in_reply_to:
        msgid = opts.in_reply_to.strip()
        if not re.fullmatch(r"<?[^<>\s@]+@[^<>\s@]+>?", msgid):
            raise SeriesError(f"'{opts.in_reply_to}' is not a Message-ID (local@domain)")
        args += ["--thread=shallow", f"--in-reply-to={msgid}"]
    args += [f"--to={a}" for a in opts.to] + [f"--cc={a}" for a in opts.cc]
    return [*args, f"{base}..HEAD"]


def _build_prefix(work: Path, k: int, names: list[str], out: Path,
                  progress: Callable[[str], None]) -> BuildResult:
    label = f"patch {k + 1}/{len(names)} ({names[k]})"

    def on_pass(p: Pass) -> None:
        w = "no LaTeX warning" if not p.warnings else f"{p.warnings} LaTeX warning(s)"
        progress(f"{label}: xelatex pass {p.n} (at most {p.of}): {p.seconds:.1f} s, {w}")
    try:
        result = build_tree(work, progress=on_pass)
    except BuildError as exc:
        if exc.log is not None and exc.log.exists():
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy(exc.log, out / "build.log")
            raise SeriesError(f"{label}: {exc.message} (log: {out / 'build.log'})") from None
        raise SeriesError(f"{label}: {exc.message}") from None
    pages = f", {result.pages} pages" if result.pages else ""
    progress(f"{label}: builds with 0 LaTeX warnings ({result.runs} passes, "
             f"{result.seconds:.0f} s{pages})")
    return result


def write_series(tree_path: str | os.PathLike, edits: list[Edit], out_dir: str | os.PathLike,
                 opts: SeriesOptions, build: bool = False,
                 progress: Callable[[str], None] | None = None) -> Series:
    """One commit per area (in the order of `AREAS`), then `write_commits`."""
    groups = edits_by_area(edits)
    if not groups:
        raise SeriesError("no edits: nothing to send")
    for area, _ in groups:
        if area not in opts.commits:
            raise SeriesError(f"no commit message for area '{area}'")
    commits = [PlannedCommit(area, opts.commits[area], tuple(es)) for area, es in groups]
    return write_commits(tree_path, commits, out_dir, opts, build, progress)


def write_commits(tree_path: str | os.PathLike, commits: list[PlannedCommit],
                  out_dir: str | os.PathLike, opts: SeriesOptions, build: bool = False,
                  progress: Callable[[str], None] | None = None,
                  every_prefix: bool = True) -> Series:
    """Apply the commits' edits, commit by commit, to a copy of the checkout;
    write the mbox series.

    Before anything is written, paragraphs that refer to a label a later
    commit adds are held back to that commit (specc.patch.prefixes) and every
    prefix is checked to define the labels it refers to. With build=True
    every prefix of the series (only the whole series when every_prefix is
    False) is built with XeLaTeX (specc.patch.build),
    reporting each pass to `progress`; the log lands in out_dir on failure,
    the PDF of the whole series on success."""
    src = Path(tree_path)
    out = Path(out_dir)
    say = progress or (lambda _msg: None)
    try:
        tree = load_tree(src)
    except TreeError as exc:
        raise SeriesError(str(exc)) from None
    base = check_checkout(src)
    if opts.feature is not None:
        check_feature(tree, opts.feature)
    all_edits = [e for c in commits for e in c.edits]
    if not all_edits:
        raise SeriesError("no edits: nothing to send")
    check_new_labels(tree, all_edits)
    try:
        final = apply_edits(tree, all_edits)
    except AnchorError as exc:
        raise SeriesError(str(exc)) from None
    author = _identity(opts.author, "author")
    _identity(opts.signoff or opts.author, "Signed-off-by")
    names = [c.prefix for c in commits]
    upstream = {lab.name for lab in tree.labels} | set(PACKAGE_LABELS)
    try:
        placed, held = prefixes.arrange([list(c.edits) for c in commits], upstream, names)
        prefixes.check(placed, upstream, names)
    except prefixes.ArrangeError as exc:
        raise SeriesError(str(exc)) from None
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SeriesError(f"{out}: output directory exists and is not empty")

    env = dict(os.environ, GIT_AUTHOR_NAME=author.name, GIT_AUTHOR_EMAIL=author.email,
               GIT_COMMITTER_NAME=author.name, GIT_COMMITTER_EMAIL=author.email,
               GIT_AUTHOR_DATE=opts.date, GIT_COMMITTER_DATE=opts.date,
               GIT_CONFIG_NOSYSTEM="1", HOME=tempfile.gettempdir())
    pdf = None
    with tempfile.TemporaryDirectory(prefix="specc-series-") as tmp:
        work = Path(tmp) / "tree"
        shutil.copytree(src, work, symlinks=True)
        # Each commit holds the files as they are after commits 0..k: the
        # anchors were resolved once, against the original text.
        result = None
        for k, c in enumerate(commits):
            mine = [p.edit for p in placed if p.commit == k]
            if not mine:
                raise SeriesError(f"commit '{c.prefix}: {c.text.subject}' has no edits left")
            texts = apply_edits(tree, prefixes.prefix(placed, k))
            files = sorted({e.file for e in mine})
            for name in files:
                (work / name).write_text(texts[name], encoding="utf-8")
            _git(work, "add", "--", *files, env=env)
            notes = [_held_back_note(h, names) for h in held if h.commit == k]
            # the copy carries the original's hooks and config: no hook or signing runs here
            _git(work, "-c", "commit.gpgsign=false", "-c", f"core.hooksPath={os.devnull}",
                 "commit", "-q", "--no-verify", "-m", _message(c.prefix, c.text, opts, notes),
                 env=env)
            if build and (every_prefix or k == len(commits) - 1):
                result = _build_prefix(work, k, names, out, say)
        out.mkdir(parents=True, exist_ok=True)
        proc = _git(work, *_format_patch_args(opts, out, base), env=env)
        patches = [Path(p) for p in proc.stdout.split()]
        _fill_cover(patches[0], opts)
        if result is not None:
            pdf = out / (opts.pdf_name or result.pdf.name)
            shutil.copy(result.pdf, pdf)
            say(f"wrote {pdf} (the whole series)")
    return Series(patches=patches, files=final, base=base, pdf=pdf, held_back=held)


__all__ = ["AREAS", "MAILING_LIST", "CommitText", "NewFeature", "PlannedCommit", "Series",
           "SeriesError", "SeriesOptions", "check_checkout", "check_feature", "check_new_labels",
           "write_commits", "write_series"]
