"""The patch builder: anchors, edits, the series writer and the XeLaTeX build
check (model-independent), plus the two modules that read a proposal module:
latex_edits (placements -> Edits, LaTeX from specc.emit) and series_text
(commit messages and cover letter)."""
from specc.patch.anchors import (ANCHOR_TYPES, AllocationItem, AnchorError, FeatureItem,
                                 FeatureSlot, ItemText, Labelled, Line, LineAfter, ListEnd, NormativeEnd, SectionBodyEnd,
                                 SectionEnd, SectionStart, Span, Text, resolve_anchor)
from specc.patch.edit import AREAS, Edit, apply_edits, edits_by_area

__all__ = ["ANCHOR_TYPES", "AREAS", "AllocationItem", "AnchorError", "Edit", "FeatureItem",
           "FeatureSlot", "ItemText", "Labelled", "Line", "LineAfter", "ListEnd", "NormativeEnd", "SectionBodyEnd", "SectionEnd",
           "SectionStart", "Span", "Text", "apply_edits", "edits_by_area", "resolve_anchor"]
