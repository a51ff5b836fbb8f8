"""Reading a real OASIS virtio spec source tree (shared by `specc audit` and the patch builder)."""
from specc.upstream.source import Position, SourceText
from specc.upstream.tree import SpecTree, TreeError, load_tree

__all__ = ["Position", "SourceText", "SpecTree", "TreeError", "load_tree"]
