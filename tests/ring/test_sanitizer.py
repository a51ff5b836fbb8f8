"""The C core built with -fsanitize=address,undefined and run over the ring
tests (layouts, hostile rings, hostile devices, random and corrupted
operation sequences): any sanitizer report fails the run."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAN_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]


def _libasan() -> str:
    out = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True, check=True)
    path = out.stdout.strip()
    if not os.path.isabs(path) or not os.path.exists(path):
        pytest.fail(f"libasan not found (gcc says {path!r}); install gcc's sanitizer runtime")
    return path


@pytest.mark.slow
def test_c_core_under_asan_and_ubsan(tmp_path):
    from device_ref.ring._build import make_builder
    ffi = make_builder(extra_compile_args=SAN_FLAGS, extra_link_args=SAN_FLAGS[:1])
    so = ffi.compile(tmpdir=str(tmp_path), verbose=False)
    pkg_dir = Path(so).parent
    assert pkg_dir.name == "ring"

    runner = tmp_path / "run_sanitized.py"
    runner.write_text(textwrap.dedent(f"""
        import sys
        import device_ref.ring as ring
        ring.__path__.insert(0, {str(pkg_dir)!r})     # the sanitized _ring_c wins
        import device_ref.ring._ring_c as core
        assert core.__file__.startswith({str(pkg_dir)!r}), core.__file__
        import pytest
        code = pytest.main([{str(REPO / 'tests' / 'ring')!r}, "-q", "-p", "no:cacheprovider",
                            "-k", "not sanitizer", "-x"])
        from tests.ring.twin import random_run
        for seed in range(10000, 10300):
            random_run(seed, 80, backends=("c",))
        print("SANITIZED-RUN-DONE")
        sys.exit(int(code))
    """))
    env = dict(os.environ)
    env.update(
        LD_PRELOAD=_libasan(),
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
        DEVICE_REF_RING="c",
        PYTHONPATH=str(REPO),
    )
    proc = subprocess.run([sys.executable, str(runner)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    report = proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "AddressSanitizer" not in proc.stderr, report
    assert "runtime error" not in proc.stderr, report
    assert proc.returncode == 0, report
    assert "SANITIZED-RUN-DONE" in proc.stdout, report
    assert " passed" in proc.stdout, report
    print(proc.stdout[-400:])


@pytest.mark.slow
def test_sanitizer_harness_detects_an_overflow(tmp_path):
    """The same LD_PRELOAD/ASAN_OPTIONS set-up does report a real bug (no vacuous pass)."""
    src = tmp_path / "bad.c"
    src.write_text("#include <stdlib.h>\nint poke(int i){ char *p = malloc(8); int v = p[i]; free(p); return v; }\n")
    lib = tmp_path / "libbad.so"
    subprocess.run(["gcc", "-shared", "-fPIC", *SAN_FLAGS, str(src), "-o", str(lib)], check=True)
    code = f"import ctypes; ctypes.CDLL({str(lib)!r}).poke(8)"
    env = dict(os.environ, LD_PRELOAD=_libasan(), ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "AddressSanitizer: heap-buffer-overflow" in proc.stderr
