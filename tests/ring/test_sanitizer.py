"""The C code built with -fsanitize=address,undefined: the ring core run
over the ring tests (layouts, hostile rings, hostile devices, random and
corrupted operation sequences), the call glue and pair loops run over
the stream and pair-loop tests (every protection mode, tampered replies,
ciphers that keep what they are lent), and the call glue and the block
device's loop over its byte-for-byte and end-to-end tests. Any sanitizer
report fails the run."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
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


def _sanitized_core(tmp_path) -> Path:
    """The cffi ring core built with the sanitizers; the package directory it is in."""
    from device_ref.ring._build import make_builder
    ffi = make_builder(extra_compile_args=SAN_FLAGS, extra_link_args=SAN_FLAGS[:1])
    so = ffi.compile(tmpdir=str(tmp_path), verbose=False)
    pkg_dir = Path(so).parent
    assert pkg_dir.name == "ring"
    return pkg_dir


def _sanitized_extension(pkg_dir: Path, name: str, source: str, id_macro: str) -> None:
    """A CPython extension of device_ref/ring built with the sanitizers,
    with the source id the installed build carries (so c_stale() agrees)."""
    from device_ref.ring._build import glue_source_id
    src = REPO / "device_ref" / "ring" / source
    out = pkg_dir / (name + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", *SAN_FLAGS, "-Wall",
                    f"-I{sysconfig.get_paths()['include']}", f"-I{src.parent}",
                    f'-D{id_macro}="{glue_source_id(source)}"', str(src), "-o", str(out)],
                   check=True, capture_output=True, text=True)


def _run_sanitized(tmp_path, pkg_dir: Path, modules: list[str], body: str) -> str:
    """Run ``body`` in a Python with the sanitizer runtime preloaded and
    ``pkg_dir`` first on device_ref.ring's path; asserts a clean run."""
    runner = tmp_path / "run_sanitized.py"
    checks = "".join(f"""
        import device_ref.ring.{m} as mod
        assert mod.__file__.startswith({str(pkg_dir)!r}), mod.__file__
        """ for m in modules)
    runner.write_text(textwrap.dedent(f"""
        import importlib.util
        import sys
        # the sanitized modules win: their directory goes first on the package's
        # path before its __init__ runs (it loads the C modules at import)
        spec = importlib.util.find_spec("device_ref.ring")
        spec.submodule_search_locations.insert(0, {str(pkg_dir)!r})
        ring = importlib.util.module_from_spec(spec)
        sys.modules["device_ref.ring"] = ring
        spec.loader.exec_module(ring)
        """) + textwrap.dedent(checks) + textwrap.dedent(body) + textwrap.dedent("""
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
    return proc.stdout


@pytest.mark.slow
def test_c_core_under_asan_and_ubsan(tmp_path):
    pkg_dir = _sanitized_core(tmp_path)
    out = _run_sanitized(tmp_path, pkg_dir, ["_ring_c"], f"""
        import pytest
        code = pytest.main([{str(REPO / 'tests' / 'ring')!r}, "-q", "-p", "no:cacheprovider",
                            "-k", "not sanitizer", "-x"])
        from tests.ring.twin import random_run
        for seed in range(10000, 10300):
            random_run(seed, 80, backends=("c",))
        """)
    print(out[-400:])


@pytest.mark.slow
@pytest.mark.parametrize("loops,source,macro,tests", [
    ("pair_loops", "pair_loops.c", "PAIRS_SOURCE_ID", ("test_pair_loops.py", "test_stream.py")),
    ("blk_loops", "blk_loops.c", "BLK_SOURCE_ID", ("test_blk_loops.py", "test_end_to_end.py")),
])
def test_loops_and_call_glue_under_asan_and_ubsan(tmp_path, loops, source, macro, tests):
    pkg_dir = _sanitized_core(tmp_path)
    _sanitized_extension(pkg_dir, f"_{loops}", source, macro)
    _sanitized_extension(pkg_dir, "_ring_glue", "ring_glue.c", "GLUE_SOURCE_ID")
    paths = [str(REPO / "tests" / "device" / t) for t in tests]
    out = _run_sanitized(tmp_path, pkg_dir, ["_ring_c", f"_{loops}", "_ring_glue"], f"""
        from device_ref.ring.backend import c_stale, {loops}
        assert {loops}() is not None and not c_stale()
        import pytest
        code = pytest.main([*{paths!r}, "-q", "-p", "no:cacheprovider", "-x"])
        """)
    print(out[-400:])


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
