"""The LaTeX, RST and vectors of spec/swiotlb.vspec, pinned as reviewed text."""
from specc.emit.latex import module_latex
from specc.emit.rst import module_rst
from specc.emit.vectors import display_path, dumps, module_vectors

from tests.emit.conftest import SWIOTLB
from tests.emit.golden import check_golden


def test_swiotlb_latex(swiotlb) -> None:
    check_golden("swiotlb.tex", module_latex(swiotlb))


def test_swiotlb_rst(swiotlb) -> None:
    check_golden("swiotlb.rst", module_rst(swiotlb))


def test_swiotlb_vectors(swiotlb) -> None:
    doc = module_vectors(swiotlb, SWIOTLB.read_bytes(), display_path(str(SWIOTLB)))
    check_golden("swiotlb.json", dumps(doc))
