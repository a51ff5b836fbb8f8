"""The pytest plugin: one test per vector, requirement ids in node ids,
pytest's selection, -x and JUnit output."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest


def _pytest(cwd, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "conformance.pytest_plugin",
                           "-p", "no:cacheprovider", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_collects_one_test_per_vector_and_layout_with_requirement_ids(vectors_dir, suite, tmp_path):
    out = _pytest(tmp_path, "--virtio-device=ref", f"--vectors={vectors_dir}", "--collect-only",
                  "-q")
    assert out.returncode == 0, out.stdout + out.stderr
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    assert len(ids) == 2 * len(suite.tests())
    assert any("::swiotlb.dev.no-access-outside::outside-writable[split]" in i for i in ids)


def test_selection_by_requirement_junit_and_pass(vectors_dir, tmp_path):
    junit = tmp_path / "j.xml"
    out = _pytest(tmp_path, "--virtio-device=ref", f"--vectors={vectors_dir}", "-q",
                  "-k", "no-access-outside", f"--junitxml={junit}")
    assert out.returncode == 0, out.stdout + out.stderr
    # six checks (the two ring checks joined it from swiotlb.dev.rings-outside), two layouts
    assert "12 passed" in out.stdout
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == 12
    assert all("swiotlb.dev.no-access-outside" in c.get("classname") for c in cases)


def test_a_broken_device_fails_with_evidence_and_x_stops(vectors_dir, tmp_path):
    out = _pytest(tmp_path, "--virtio-device=mutant:writes-outside-region",
                  f"--vectors={vectors_dir}", "-x", "-q", "-k", "outside-writable")
    assert out.returncode == 1
    assert "FAIL (CRITICAL): requirement swiotlb.dev.no-access-outside (MUST NOT)" in out.stdout
    assert "observed:" in out.stdout and "1 failed" in out.stdout


def test_skips_carry_the_reason(vectors_dir, tmp_path):
    out = _pytest(tmp_path, "--virtio-device=ref:swiotlb=off", f"--vectors={vectors_dir}",
                  "-q", "-rs", "-k", "region-described")
    assert out.returncode == 0, out.stdout
    assert "does not offer VIRTIO_F_SWIOTLB" in out.stdout


def test_bad_options_are_usage_errors(vectors_dir, tmp_path):
    out = _pytest(tmp_path, "--virtio-device=nonsense", f"--vectors={vectors_dir}", "-q")
    assert out.returncode != 0 and "unknown device adapter" in (out.stdout + out.stderr)
    out = _pytest(tmp_path, "--virtio-device=ref", f"--vectors={tmp_path / 'none'}", "-q")
    assert out.returncode == 4 and "no such directory" in out.stderr


def test_parallel_run_with_xdist(vectors_dir, tmp_path):
    pytest.importorskip("xdist")
    out = _pytest(tmp_path, "--virtio-device=ref", f"--vectors={vectors_dir}", "-q", "-n", "2",
                  "-k", "swiotlb")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed" in out.stdout and "failed" not in out.stdout


def test_expect_fail_list_xfails_known_failures_and_fails_new_passes(vectors_dir, tmp_path):
    known = tmp_path / "known.txt"
    known.write_text("swiotlb.dev.no-access-outside\nswiotlb.dev.inside-works\n")
    out = _pytest(tmp_path, "--virtio-device=mutant:writes-outside-region",
                  f"--vectors={vectors_dir}", f"--virtio-expect-fail={known}", "-q",
                  "--virtio-layout=split", "-k", "outside-writable or blk-roundtrip")
    assert out.returncode == 1, out.stdout
    assert "1 xfailed" in out.stdout and "1 failed" in out.stdout
    assert "is listed as a known failure but is now PASS" in out.stdout
