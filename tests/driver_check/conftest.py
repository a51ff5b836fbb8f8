"""Vector files for the driver-check tests, compiled once per session from
the project's spec sources (tests may import specc; the runtime may not)."""
from __future__ import annotations

import glob
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def vectors_dir(tmp_path_factory) -> Path:
    from specc.emit.vectors import display_path, dumps, module_vectors
    from specc.load import load

    files = sorted(glob.glob(str(ROOT / "spec" / "*.vspec")))
    loaded = load(files)
    errors = [d for d in loaded.diagnostics if d.is_error]
    assert not errors, [str(d) for d in errors[:3]]
    out = tmp_path_factory.mktemp("vectors")
    for m, path in zip(loaded.modules, files):
        doc = module_vectors(m, Path(path).read_bytes(), display_path(path))
        (out / f"{m.name}.json").write_text(dumps(doc))
    return out
