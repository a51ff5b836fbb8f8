"""bench/compile.py's synthetic spec is renamed copies of spec/; they must
check clean, or the benchmark times an error path (a new proposal once broke
it by declaring a block the renaming did not know about)."""
from __future__ import annotations

import importlib.util
import sys

from specc.pipeline import check_files

from .conftest import REPO


def _bench():
    spec = importlib.util.spec_from_file_location("bench_compile", REPO / "bench" / "compile.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module     # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_three_renamed_copies_of_spec_check_clean(tmp_path):
    bench = _bench()
    sources = sorted(str(p) for p in (REPO / "spec").glob("*.vspec"))
    declared = bench.declared_by_proposals(sources)
    assert "VIRTIO_F_SWIOTLB" in declared.features
    paths = []
    for k in range(3):
        for i, src in enumerate(sources):
            p = tmp_path / f"copy_{k}_{i}.vspec"
            p.write_text(bench.synthetic_copy(open(src, encoding="utf-8").read(), k, declared),
                         encoding="utf-8")
            paths.append(str(p))
    result = check_files(paths, use_registry=False)
    assert [d for d in result.diagnostics if d.is_error] == [], result.render()
    assert len(result.modules) == 3 * len(sources)
