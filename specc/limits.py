"""What specc reads: the one home of the limits docs/dsl.md and docs/audit.md state.

Each limit sits well above anything the upstream specification needs (its
longest section title is about 75 characters, its longest feature name 34,
its deepest heading a \\paragraph) and well below what makes a tool slow or
an output format break: past it, `specc check` reports an error at the
offending token instead of running out of time, memory or argument space.
"""
from __future__ import annotations

MAX_SOURCE_BYTES = 16 * 1024 * 1024   # one .vspec file
MAX_NAME = 128                        # a feature, structure, field, statement or check name
MAX_STRING = 1024                     # a "string": titles, section paths, one-line prose
MAX_PROSE = 256 * 1024                # one """prose block""", in characters
MAX_NUMBER = (1 << 64) - 1            # any number literal (the widest field is le64)
MAX_NUMBER_CHARS = 20                 # digits of MAX_NUMBER; hex needs 18 with its 0x
MAX_SECTION_DEPTH = 6                 # parts of a title path: \chapter down to \subparagraph
MAX_FEATURE_BIT = 1023                # upstream allocates 0 to 127 and reserves 128 and above
MAX_ITEMS = 100_000                   # top-level items (features, sections, ...) in one file
# A citation's quoted fragment only locates an upstream statement: a few
# words, well under the 12-word run the own-words test calls a copy.
MAX_CITE_WORDS = 8

# Upstream spec trees (specc audit, specc patch): the largest upstream file,
# content.tex, is under 200 KB, the tree about 2 MB, inputs nest 3 deep.
MAX_TEX_BYTES = 16 * 1024 * 1024      # one .tex file
MAX_TREE_BYTES = 64 * 1024 * 1024     # all text read, an \\input read twice counting twice
MAX_INPUT_DEPTH = 32                  # \\input inside \\input ...
