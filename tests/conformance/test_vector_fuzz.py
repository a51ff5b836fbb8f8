"""Fuzzing the runner with hostile vector files (hypothesis).

Whatever a vector file holds, the runner must: end (no hang), stay within
its stated memory bound (docs/conformance.md, "Limits on vector files"),
and either refuse the file as a vector error or run it, never failing
itself on a step (an EngineError) nor passing its own trouble off as a
device verdict (the reference device never hangs, so a "did not return"
WEDGED would be the runner's).
"""
from __future__ import annotations

import json
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.select_adapter import parse_adapter
from conformance.runner import RunOptions, run_suite
from conformance.vectors import VectorError, load_suite

pytestmark = pytest.mark.slow

PEAK_LIMIT = 64 << 20          # bytes the runner may allocate for one test
TIME_LIMIT = 30.0              # seconds for one test, hang guard included

CHECKS = {
    "feature_negotiation": "base.status.dev.set-needs-reset/descriptor-outside-memory",
    "virtio_rng": None,        # the first test that reads entropy
}

_tokens = st.sampled_from(["region.start", "region.end", "region.size", "outside", "9", "0x10",
                           "4096", "+", "-", "*", "**", "(", ")", " ", "a", "9" * 30, "()",
                           "__import__", "'", "\\", "1e9", "~", "/", "%"])
expressions = st.lists(_tokens, max_size=40).map("".join)
big_ints = st.integers(min_value=-(1 << 80), max_value=1 << 80)
scalars = st.one_of(big_ints, expressions, st.text(max_size=50), st.booleans(), st.none(),
                    st.floats(allow_nan=False))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                       st.dictionaries(st.text(max_size=5),
                                                                       inner, max_size=3)),
                      max_leaves=20)
# argument names that exist somewhere in the vocabulary, and some that do not
arg_names = st.sampled_from(["addr", "len", "flags", "count", "batch", "op", "value", "bits",
                             "features", "timeout_ms", "sector", "seed", "type", "chunk",
                             "style", "shape", "where", "ahead", "size", "nope"])


def _test_of(doc: dict, module: str) -> dict:
    check = CHECKS[module]
    tests = [t for g in doc["testGroups"] if g["target"] == "device" for t in g["tests"]]
    if check is None:
        return next(t for t in tests if any(s["verb"] == "rng_read" for s in t["steps"]))
    return next(t for t in tests if t["checkId"] == check)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(module=st.sampled_from(sorted(CHECKS)), data=st.data())
def test_no_vector_can_hang_the_runner_exhaust_it_or_blame_the_device(vectors_dir, tmp_path,
                                                                      module, data):
    doc = json.loads((vectors_dir / f"{module}.json").read_text())
    test = _test_of(doc, module)
    group = next(g for g in doc["testGroups"] if test in g["tests"])
    group["tests"] = [test]               # one test: a small file, a fast example
    doc["testGroups"] = [group]
    doc["numberOfTests"] = 1
    steps = test["steps"]
    for _ in range(data.draw(st.integers(1, 3))):
        step = steps[data.draw(st.integers(0, len(steps) - 1))]
        step["args"][data.draw(arg_names)] = data.draw(values)
    path = tmp_path / f"{module}.json"
    path.write_text(json.dumps(doc))
    tracemalloc.start()
    start = time.monotonic()
    try:
        try:
            suite = load_suite(path)
        except VectorError:
            return          # refused as a whole file: fine (schema, limits)
        try:
            run = run_suite(suite, parse_adapter("ref"),
                            RunOptions(layout="split", step_timeout=0.2, hang_guard=10.0,
                                       only=(test["checkId"],)))
        except VectorError:
            return          # a step the engine cannot run: a vector error, exit 2
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - start
    assert elapsed < TIME_LIMIT
    assert peak < PEAK_LIMIT, f"runner peaked at {peak >> 20} MiB"
    assert run.results
    for r in run.results:
        assert "made no progress for" not in r.reason, r.reason
        assert "unexpected error" not in r.reason, r.reason
