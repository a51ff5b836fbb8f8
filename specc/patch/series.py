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
from dataclasses import dataclass, field
from pathlib import Path

from specc.patch.anchors import AnchorError
from specc.patch.edit import AREAS, Edit, apply_edits, edits_by_area
from specc.upstream.source import normalise_space
from specc.upstream.tree import SpecTree, TreeError, load_tree
from specc.patch.build import BuildError, build_tree


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


@dataclass(frozen=True)
class SeriesOptions:
    author: str                    # "Name <email>"
    cover_subject: str
    cover_body: str
    commits: dict[str, CommitText] = field(default_factory=dict)   # area -> message
    signoff: str | None = None     # "Name <email>"; default: the author
    fixes: str | None = None       # e.g. https://github.com/oasis-tcs/virtio-spec/issues/NNN
    subject_prefix: str = "PATCH"
    date: str = "2026-04-09T12:00:00+00:00"   # fixed, so the series is reproducible
    feature: NewFeature | None = None


@dataclass
class Series:
    patches: list[Path]            # cover letter first
    files: dict[str, str]          # upstream file -> its text after the whole series
    base: str                      # commit the series applies to


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


def _split_ident(ident: str) -> tuple[str, str]:
    if "<" not in ident or not ident.rstrip().endswith(">"):
        raise SeriesError(f"'{ident}' is not an identity of the form 'Name <email>'")
    name, email = ident.rsplit("<", 1)
    return name.strip(), email.rstrip().rstrip(">").strip()


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


_NEW_LABEL = re.compile(r"\\label\{([^}#]*)\}|\\(driver|device)normative\s*\{[^}]*\}\s*\{[^}]*\}\s*\{([^}#]*)\}")


def check_new_labels(tree: SpecTree, edits: list[Edit]) -> None:
    """Inserted text must not define a label the tree already has (a series applied twice,
    or a section that already exists upstream)."""
    have = {lab.name: lab.pos for lab in tree.labels}
    for e in edits:
        if e.action == "replace":
            continue
        for m in _NEW_LABEL.finditer(e.text):
            name = m.group(1) if m.group(1) is not None else f"{m.group(2)}normative:{m.group(3)}"
            name = normalise_space(name)
            if name in have:
                raise SeriesError(f"{have[name]}: the tree already has label '{name}', "
                                  f"which the edit {e.describe()} adds")


def _message(area: str, text: CommitText, opts: SeriesOptions) -> str:
    trailers = []
    if opts.fixes:
        trailers.append(f"Fixes: {opts.fixes}")
    trailers.append(f"Signed-off-by: {opts.signoff or opts.author}")
    body = text.body.strip()
    parts = [f"{area}: {text.subject}"]
    if body:
        parts.append(body)
    parts.append("\n".join(trailers))
    return "\n\n".join(parts) + "\n"


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


def write_series(tree_path: str | os.PathLike, edits: list[Edit], out_dir: str | os.PathLike,
                 opts: SeriesOptions, build: bool = False) -> Series:
    """Apply `edits` commit by commit to a copy of the checkout; write the mbox series.

    With build=True the patched copy is also built with XeLaTeX (see
    specc.patch.build); the log lands in out_dir on failure, the PDF on success."""
    src = Path(tree_path)
    out = Path(out_dir)
    try:
        tree = load_tree(src)
    except TreeError as exc:
        raise SeriesError(str(exc)) from None
    base = check_checkout(src)
    if opts.feature is not None:
        check_feature(tree, opts.feature)
    check_new_labels(tree, edits)
    try:
        final = apply_edits(tree, edits)
    except AnchorError as exc:
        raise SeriesError(str(exc)) from None
    groups = edits_by_area(edits)
    if not groups:
        raise SeriesError("no edits: nothing to send")
    for area, _ in groups:
        if area not in opts.commits:
            raise SeriesError(f"no commit message for area '{area}'")
    author_name, author_email = _split_ident(opts.author)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SeriesError(f"{out}: output directory exists and is not empty")

    env = dict(os.environ, GIT_AUTHOR_NAME=author_name, GIT_AUTHOR_EMAIL=author_email,
               GIT_COMMITTER_NAME=author_name, GIT_COMMITTER_EMAIL=author_email,
               GIT_AUTHOR_DATE=opts.date, GIT_COMMITTER_DATE=opts.date,
               GIT_CONFIG_NOSYSTEM="1", HOME=tempfile.gettempdir())
    with tempfile.TemporaryDirectory(prefix="specc-series-") as tmp:
        work = Path(tmp) / "tree"
        shutil.copytree(src, work, symlinks=True)
        # Each commit holds the files as they are after all areas so far: the
        # anchors were resolved once, against the original text.
        done: list[Edit] = []
        for area, area_edits in groups:
            done += area_edits
            texts = apply_edits(tree, done)
            for name in sorted({e.file for e in area_edits}):
                (work / name).write_text(texts[name], encoding="utf-8")
            _git(work, "add", "--", *sorted({e.file for e in area_edits}), env=env)
            # the copy carries the original's hooks and config: no hook or signing runs here
            _git(work, "-c", "commit.gpgsign=false", "-c", f"core.hooksPath={os.devnull}",
                 "commit", "-q", "--no-verify", "-m",
                 _message(area, opts.commits[area], opts), env=env)
        out.mkdir(parents=True, exist_ok=True)
        proc = _git(work, "format-patch", "--cover-letter", "--no-signature",
                    f"--subject-prefix={opts.subject_prefix}", "-o", str(out.resolve()),
                    f"{base}..HEAD", env=env)
        patches = [Path(p) for p in proc.stdout.split()]
        _fill_cover(patches[0], opts)
        if build:
            try:
                result = build_tree(work)
            except BuildError as exc:
                if exc.log is not None and exc.log.exists():
                    shutil.copy(exc.log, out / "build.log")
                    raise SeriesError(f"{exc.message} (log: {out / 'build.log'})") from None
                raise SeriesError(exc.message) from None
            shutil.copy(result.pdf, out / result.pdf.name)
    return Series(patches=patches, files=final, base=base)


__all__ = ["AREAS", "CommitText", "NewFeature", "Series", "SeriesError", "SeriesOptions",
           "check_checkout", "check_feature", "check_new_labels", "write_series"]
