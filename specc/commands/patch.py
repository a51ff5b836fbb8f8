"""specc patch: turn a proposal into a git-am-able patch series for a virtio-spec checkout."""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from specc.cli_base import CliError
from specc.commands.inputs import load_modules
from specc.emit.latex import LatexError
from specc.emit.vectors import display_path
from specc.model import Module
from specc.patch.anchors import AnchorError
from specc.diagnostics import render_all
from specc.patch.identity import IdentityError, parse_identity
from specc.patch.latex_edits import PlacementError, module_edits
from specc.patch.series import MAILING_LIST, Series, SeriesError, write_series
from specc.patch.series_text import SeriesTextError, series_options
from specc.tree_checks import check_against_tree
from specc.upstream.tree import SpecTree, TreeError, load_tree

HELP = "write the LaTeX patch series of a proposal for a virtio-spec checkout (git format-patch)"

# What a previous run leaves in an output directory, and so may be replaced.
OUR_OUTPUTS = ("*.patch", "build.log", "*.pdf")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", metavar="MODULE", help="the proposal (.vspec)")
    parser.add_argument("--spec-tree", required=True, metavar="PATH",
                        help="clean git checkout of the virtio spec (e.g. tag v1.4-cs01); only read")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="directory for the cover letter and patches")
    parser.add_argument("--signoff", metavar="'NAME <MAIL>'",
                        help="author and Signed-off-by identity (default: git config "
                             "user.name/user.email; a placeholder is refused)")
    parser.add_argument("--fixes", metavar="URL",
                        help="Fixes: link (an oasis-tcs/virtio-spec issue); default: the module's")
    parser.add_argument("--version", dest="series_version", type=int, default=1, metavar="N",
                        help="version of the series: N > 1 gives [PATCH vN m/n] subjects")
    parser.add_argument("--in-reply-to", metavar="MESSAGE-ID",
                        help="thread the series as a reply to this message (e.g. the previous "
                             "version's cover letter)")
    parser.add_argument("--to", action="append", metavar="ADDR",
                        help=f"To: address, repeatable (default: {MAILING_LIST})")
    parser.add_argument("--cc", action="append", default=[], metavar="ADDR",
                        help="Cc: address, repeatable (default: none)")
    parser.add_argument("--build", action="store_true",
                        help="also build every prefix of the series with XeLaTeX and fail on any "
                             "LaTeX warning; the PDF is named after the series")


@dataclass(frozen=True)
class SendOptions:
    """How the series goes out (the command line's part of it)."""
    signoff: str | None = None
    fixes: str | None = None
    version: int = 1
    in_reply_to: str | None = None
    to: tuple[str, ...] = (MAILING_LIST,)
    cc: tuple[str, ...] = ()
    build: bool = False


@dataclass
class PatchResult:
    module: Module
    series: Series
    identity: str


def git_identity() -> str | None:
    """``Name <mail>`` from git config, if both are set."""
    def get(key: str) -> str:
        try:
            proc = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True)
        except FileNotFoundError:
            return ""
        return proc.stdout.strip()
    name, mail = get("user.name"), get("user.email")
    return f"{name} <{mail}>" if name and mail else None


def series_identity(signoff: str | None) -> str:
    """The identity the series is sent under; never missing, never a placeholder."""
    try:
        if signoff:
            return str(parse_identity(signoff, "--signoff"))
        ident = git_identity()
        if ident is None:
            raise IdentityError("no identity for From and Signed-off-by: git config "
                                "user.name/user.email are not set; give --signoff "
                                "'Full Name <address>'")
        return str(parse_identity(ident, "git config user.name/user.email (give --signoff "
                                         "to override)"))
    except IdentityError as exc:
        raise CliError(str(exc)) from None


def pdf_name(m: Module, version: int) -> str:
    return f"{m.name}-v{version}.pdf"


def clear_previous(out: Path) -> None:
    """Empty an output directory holding only what an earlier run wrote."""
    if not out.exists():
        return
    if not out.is_dir():
        raise CliError(f"{out}: exists and is not a directory")
    ours = {p for pattern in OUR_OUTPUTS for p in out.glob(pattern)}
    others = [p for p in out.iterdir() if p not in ours]
    if others:
        raise CliError(f"{out}: output directory holds other files (e.g. {others[0].name}); "
                       "give an empty or new directory")
    for p in ours:
        p.unlink()


def _refuse_tree_errors(m: Module, tree: SpecTree, tree_path: Path) -> None:
    """The checks against the tree run before every series: print them, stop on an error."""
    diags = check_against_tree([m], tree)
    if not diags:
        return
    try:
        sources = {m.file: Path(m.file).read_text(encoding="utf-8")}
    except OSError:
        sources = {}
    print(render_all(diags, sources), file=sys.stderr, flush=True)
    errors = sum(1 for d in diags if d.is_error)
    if errors:
        raise CliError(f"{errors} error{'s' if errors != 1 else ''} against the tree at "
                       f"{tree_path}; no series written")


def make_series(m: Module, tree_path: Path, out: Path, send: SendOptions,
                progress: Callable[[str], None] | None = None) -> PatchResult:
    """Edits from the module, then the series; every failure is a CliError."""
    if not tree_path.is_dir():
        raise CliError(f"{tree_path}: no such directory (give --spec-tree a virtio-spec checkout)")
    ident = series_identity(send.signoff)
    try:
        tree = load_tree(tree_path)
    except TreeError as exc:
        raise CliError(str(exc)) from None
    _refuse_tree_errors(m, tree, tree_path)
    try:
        edits = module_edits(m, tree)
    except (PlacementError, AnchorError, LatexError) as exc:
        raise CliError(str(exc)) from None
    source = display_path(m.file)
    revision = "sha256:" + hashlib.sha256(Path(m.file).read_bytes()).hexdigest()[:16]
    try:
        opts = series_options(m, edits, ident, ident, send.fixes, source, revision, send.version)
    except SeriesTextError as exc:
        raise CliError(str(exc)) from None
    opts = replace(opts, version=send.version, in_reply_to=send.in_reply_to, to=send.to,
                   cc=send.cc, pdf_name=pdf_name(m, send.version))
    clear_previous(out)
    try:
        series = write_series(tree_path, edits, out, opts, build=send.build, progress=progress)
    except (SeriesError, AnchorError) as exc:
        raise CliError(str(exc)) from None
    return PatchResult(m, series, ident)


def _progress(msg: str) -> None:
    print(msg, flush=True)


def run(args: argparse.Namespace) -> int:
    modules = load_modules([args.module])
    if len(modules) != 1:
        raise CliError(f"{args.module}: give exactly one module")
    send = SendOptions(signoff=args.signoff, fixes=args.fixes, version=args.series_version,
                       in_reply_to=args.in_reply_to, to=tuple(args.to or (MAILING_LIST,)),
                       cc=tuple(args.cc), build=args.build)
    if send.version < 1:
        raise CliError(f"--version {send.version}: a series is version 1 or later")
    result = make_series(modules[0], Path(args.spec_tree), Path(args.output), send,
                         progress=_progress if args.build else None)
    names = [p.name for p in result.series.patches]
    print(f"wrote {len(names)} files to {args.output}: {', '.join(names)}")
    print(f"from and signed off by {result.identity}; to {', '.join(send.to)}"
          + (f"; cc {', '.join(send.cc)}" if send.cc else ""))
    if result.series.pdf is not None:
        print(f"PDF of the whole series: {result.series.pdf}")
    print("apply to a clean checkout, cover letter aside: git am "
          + " ".join(str(p) for p in result.series.patches[1:]))
    return 0
