"""specc build: vectors, RST, HTML docs and (given a spec tree) patch series for a spec directory."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from specc.cli_base import CliError
from specc.emit.html import build_docs
from specc.commands.inputs import load_modules, output_dir
from specc.site_options import SITE_ERRORS, add_site_arguments, site_inputs
from specc.emit.vectors import VectorError
from specc.emit.writers import EmitError, write_rst, write_vectors
from specc.commands.patch import SendOptions, make_series, series_identity
from specc.upstream.tree import SpecTree, TreeError, is_spec_tree, load_tree

HELP = "build everything for a spec directory: vectors, RST, HTML docs, patch series"

# Where a virtio-spec checkout is looked for when --spec-tree is not given.
TREE_ENV = "VIRTIO_SPEC_TREE"
TREE_GUESSES = ("virtio-spec", "../virtio-spec")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec_dir", metavar="SPEC_DIR", help="directory of .vspec modules (e.g. spec)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output directory")
    parser.add_argument("--spec-tree", metavar="PATH",
                        help=f"virtio-spec checkout for the patch series (default: ${TREE_ENV}, "
                             "then ./virtio-spec or ../virtio-spec if present)")
    parser.add_argument("--no-patches", action="store_true", help="do not write patch series")
    parser.add_argument("--signoff", metavar="'NAME <MAIL>'", help="identity for the patch series")
    add_site_arguments(parser)


def find_tree(explicit: str | None) -> tuple[Path | None, str]:
    """The tree to patch and how it was found ("" when none)."""
    if explicit:
        return Path(explicit), "--spec-tree"
    env = os.environ.get(TREE_ENV)
    if env:
        return Path(env), f"${TREE_ENV}"
    for guess in TREE_GUESSES:
        p = Path(guess)
        if is_spec_tree(p):
            return p, f"found at {guess}"
    return None, ""


def _read_tree(tree: Path | None, how: str) -> SpecTree | None:
    if tree is None:
        return None
    try:
        return load_tree(tree)
    except TreeError as exc:
        if how == "--spec-tree":
            raise CliError(str(exc)) from None
        return None     # a guessed tree must not break the build of everything else


def _clear(directory: Path, pattern: str) -> None:
    # Outputs of a module that no longer exists must not linger (the runner
    # would still run stale vectors).
    for p in directory.glob(pattern):
        p.unlink()


def run(args: argparse.Namespace) -> int:
    spec_dir = Path(args.spec_dir)
    if not spec_dir.is_dir():
        raise CliError(f"{args.spec_dir}: not a directory of .vspec modules")
    modules = load_modules([args.spec_dir])
    reports, assets, guides = site_inputs(args)
    out = output_dir(args.output)
    summary: list[str] = []
    tree, how = find_tree(args.spec_tree)
    # The docs show amendments against the tree when there is one to read.
    upstream = _read_tree(tree, how)
    try:
        vec_dir = output_dir(str(out / "vectors"))
        _clear(vec_dir, "*.json")
        vectors = write_vectors(modules, vec_dir)
        tests = sum(1 for m in modules for _ in m.all_checks())
        summary.append(f"vectors: {len(vectors)} file(s), {tests} tests in {vec_dir}")
        rst_dir = output_dir(str(out / "rst"))
        _clear(rst_dir, "*.rst")
        rst = write_rst(modules, rst_dir, upstream)
        summary.append(f"rst:     {len(rst)} page(s) in {rst_dir}")
        docs_dir = output_dir(str(out / "docs"))
        _clear(docs_dir, "*.html")
        docs = build_docs(modules, docs_dir, reports, assets, upstream, guides)
        summary.append(f"docs:    {sum(1 for p in docs if p.suffix == '.html')} HTML page(s), "
                       f"open {docs_dir / 'index.html'}")
    except (VectorError, EmitError) + SITE_ERRORS as exc:
        raise CliError(str(exc)) from None

    proposals = [m for m in modules if m.kind == "proposal"
                 and (m.has_placement or m.amendments or m.references)]
    if args.no_patches:
        summary.append("patches: skipped (--no-patches)")
    elif tree is None:
        summary.append(f"patches: skipped, no virtio-spec checkout found; give --spec-tree PATH "
                       f"(or set ${TREE_ENV}) to a clean checkout of tag v1.4-cs01, e.g. "
                       "git clone https://github.com/oasis-tcs/virtio-spec && "
                       "git -C virtio-spec checkout v1.4-cs01")
    else:
        if how == "--spec-tree" and not tree.is_dir():
            raise CliError(f"{tree}: no such directory (give --spec-tree a virtio-spec checkout)")
        try:
            series_identity(args.signoff)
            ident_problem = ""
        except CliError as exc:
            if args.signoff:
                raise
            ident_problem = str(exc)
        for m in proposals:
            target = out / "patches" / m.name
            if ident_problem:
                summary.append(f"patches: {m.name} skipped ({ident_problem})")
                continue
            try:
                result = make_series(m, tree, target, SendOptions(signoff=args.signoff))
            except CliError as exc:
                if how == "--spec-tree":
                    raise
                # A tree we only guessed at must not break the build of everything else.
                summary.append(f"patches: {m.name} skipped ({exc}); tree {how}")
                continue
            summary.append(f"patches: {m.name}: {len(result.series.patches)} file(s) in {target} "
                           f"(tree {tree}, {how})")
    print("\n".join(summary))
    return 0

