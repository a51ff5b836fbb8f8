"""specc patch: turn a proposal into a git-am-able patch series for a virtio-spec checkout."""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from specc.cli_base import CliError
from specc.emit.escape import is_web_link
from specc.emit.inputs import checked_modules
from specc.emit.latex import LatexError
from specc.patch.latex_edits import PlacementError, module_edits
from specc.patch.series_text import series_options
from specc.emit.vectors import display_path
from specc.model import Module
from specc.patch.anchors import AnchorError
from specc.patch.series import Series, SeriesError, write_series
from specc.upstream.tree import TreeError, load_tree

HELP = "write the LaTeX patch series of a proposal for a virtio-spec checkout (git format-patch)"

PLACEHOLDER_IDENT = "Your Name <you@example.org>"
# What a previous run leaves in an output directory, and so may be replaced.
OUR_OUTPUTS = ("*.patch", "build.log", "*.pdf")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", metavar="MODULE", help="the proposal (.vspec)")
    parser.add_argument("--spec-tree", required=True, metavar="PATH",
                        help="clean git checkout of the virtio spec (e.g. tag v1.4-cs01); only read")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="directory for the cover letter and patches")
    parser.add_argument("--signoff", metavar="'NAME <MAIL>'",
                        help="author and Signed-off-by identity (default: git config user.name/email)")
    parser.add_argument("--fixes", metavar="URL",
                        help="Fixes: link (an oasis-tcs/virtio-spec issue); default: the module's")
    parser.add_argument("--build", action="store_true",
                        help="also build the patched tree with XeLaTeX and fail on any LaTeX warning")


@dataclass
class PatchResult:
    module: Module
    series: Series
    identity_guessed: bool


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


def make_series(m: Module, tree_path: Path, out: Path, signoff: str | None, fixes: str | None,
                build: bool) -> PatchResult:
    """Edits from the module, then the series; every failure is a CliError."""
    if not tree_path.is_dir():
        raise CliError(f"{tree_path}: no such directory (give --spec-tree a virtio-spec checkout)")
    try:
        tree = load_tree(tree_path)
        edits = module_edits(m, tree)
    except (TreeError, PlacementError, AnchorError, LatexError) as exc:
        raise CliError(str(exc)) from None
    if fixes is not None and not is_web_link(fixes):
        raise CliError(f"--fixes {fixes[:80]!r} is not a web link (https://...)")
    if signoff is not None and not signoff.isprintable():
        raise CliError("--signoff holds a control character")
    ident = signoff or git_identity()
    guessed = ident is None
    source = display_path(m.file)
    revision = "sha256:" + hashlib.sha256(Path(m.file).read_bytes()).hexdigest()[:16]
    opts = series_options(m, edits, ident or PLACEHOLDER_IDENT, signoff, fixes, source, revision)
    clear_previous(out)
    try:
        series = write_series(tree_path, edits, out, opts, build=build)
    except (SeriesError, AnchorError) as exc:
        raise CliError(str(exc)) from None
    return PatchResult(m, series, guessed)


def run(args: argparse.Namespace) -> int:
    modules, _ = checked_modules([args.module])
    if len(modules) != 1:
        raise CliError(f"{args.module}: give exactly one module")
    result = make_series(modules[0], Path(args.spec_tree), Path(args.output), args.signoff,
                         args.fixes, args.build)
    names = [p.name for p in result.series.patches]
    print(f"wrote {len(names)} files to {args.output}: {', '.join(names)}")
    print("apply to a clean checkout, cover letter aside: git am "
          + " ".join(str(p) for p in result.series.patches[1:]))
    if result.identity_guessed:
        print(f"note: no --signoff and no git identity; the series is signed off by "
              f"'{PLACEHOLDER_IDENT}': regenerate with --signoff before sending", file=sys.stderr)
    return 0
