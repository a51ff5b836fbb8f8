"""`specc audit`: check an upstream spec tree; optionally measure our coverage of it."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from specc.audit import audit, summarise
from specc.audit.coverage import coverage_for
from specc.audit.fix import FIXABLE, plan_fixes
from specc.cli_base import CliError
from specc.commands.patch import clear_previous, series_identity
from specc.patch.anchors import AnchorError
from specc.patch.series import MAILING_LIST, SeriesError, SeriesOptions, write_commits
from specc.upstream.tree import SpecTree, TreeError, load_tree

HELP = "audit an upstream virtio spec tree (conformance lists, labels, feature bits, keywords)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec-tree", required=True, metavar="PATH",
                        help="a virtio-spec checkout (the directory holding virtio.tex)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (file:line:col: severity: message) or json")
    parser.add_argument("--coverage", action="store_true",
                        help="also report which upstream normative blocks our modules restate and test")
    parser.add_argument("--spec", metavar="DIR", default="spec",
                        help="directory of .vspec modules for --coverage (default: spec)")
    parser.add_argument("--vectors", metavar="DIR",
                        help="directory of conformance vector files for --coverage")
    fix = parser.add_argument_group("fixes (--fix)")
    fix.add_argument("--fix", action="store_true",
                     help="write a patch series (git format-patch) fixing what can be fixed "
                          f"mechanically ({', '.join(FIXABLE)}); the tree is only read")
    fix.add_argument("-o", "--output", metavar="DIR", help="directory for the --fix series")
    fix.add_argument("--signoff", metavar="'NAME <MAIL>'",
                     help="author and Signed-off-by of the --fix series (default: git config; "
                          "a placeholder is refused)")
    fix.add_argument("--build", action="store_true",
                     help="with --fix: build the fixed tree with XeLaTeX, fail on any LaTeX warning")


def _progress(msg: str) -> None:
    print(msg, flush=True)


def write_fixes(args: argparse.Namespace, tree: SpecTree, findings: list) -> int:
    """The --fix series: one commit per fixed group of findings."""
    ident = series_identity(args.signoff)
    commits = plan_fixes(tree, findings)
    if not commits:
        print(f"nothing to fix mechanically ({', '.join(FIXABLE)}): no series written")
        return 0
    fixed = sum(1 for f in findings if f.code in FIXABLE)
    opts = SeriesOptions(
        author=ident, signoff=ident,
        cover_subject="Fix label letter case and conformance gaps found by an audit",
        cover_body=(
            f"An audit of the tree (specc audit) reports {fixed} finding(s) with one "
            "obviously right fix: normative block labels that differ from their section's "
            "label only in letter case, and normative blocks that no conformance clause "
            "lists. Each patch fixes one section's blocks and says what was wrong, where, "
            "and which check found it. Renames come first, so the conformance items use "
            "the corrected labels. The series changes no printed requirement text."),
        commits={}, to=(MAILING_LIST,), pdf_name="audit-fixes.pdf")
    out = Path(args.output)
    clear_previous(out)
    try:
        series = write_commits(args.spec_tree, commits, out, opts, build=args.build,
                               progress=_progress if args.build else None, every_prefix=False)
    except (SeriesError, AnchorError) as exc:
        raise CliError(str(exc)) from None
    names = [p.name for p in series.patches]
    print(f"wrote {len(names)} files to {out}: {len(commits)} fix(es) for {fixed} finding(s)")
    if series.pdf is not None:
        print(f"PDF of the fixed tree: {series.pdf}")
    print("apply to a clean checkout, cover letter aside: git am "
          + " ".join(str(p) for p in series.patches[1:]))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.fix and not args.output:
        raise CliError("--fix needs -o DIR for the series")
    if not args.fix and (args.output or args.signoff or args.build):
        raise CliError("-o, --signoff and --build go with --fix")
    try:
        tree = load_tree(args.spec_tree)
    except TreeError as exc:
        raise CliError(str(exc)) from None
    findings = audit(tree)
    if args.fix:
        return write_fixes(args, tree, findings)
    cov = None
    if args.coverage:
        cov = coverage_for(tree, args.spec, args.vectors)
    if args.format == "json":
        doc = {
            "schema": "specc-audit/1",
            "tree": str(tree.root),
            "files": len(tree.files),
            "counts": {"normative_blocks": len(tree.blocks), "conformance_clauses": len(tree.clauses),
                       "features": len(tree.features), "keywords": len(tree.keywords)},
            "summary": summarise(findings),
            "findings": [f.as_json() for f in findings],
        }
        if cov is not None:
            doc["coverage"] = cov.as_json()
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for f in findings:
            print(f.format())
        if cov is not None:
            print(cov.format_text())
        n_err = sum(1 for f in findings if f.severity == "error")
        print(f"{len(findings)} finding(s): {n_err} error(s), {len(findings) - n_err} warning(s) "
              f"in {len(tree.files)} files", file=sys.stderr)
    return 1 if findings else 0
