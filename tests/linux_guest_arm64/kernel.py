"""Build (once) a small arm64 Linux kernel with the restricted DMA pool.

Debian's kernels do not enable CONFIG_DMA_RESTRICTED_POOL, so the arm64 guest
needs its own. The recipe is reproducible and kept small on purpose (the
machine's cores are shared):

1. Debian's ``linux-source-6.1`` tarball is unpacked once into the cache.
2. ``make tinyconfig`` for ``ARCH=arm64``, then the fragment
   ``arm64-restricted-pool.config`` (in this directory) merged on top and
   ``olddefconfig``; every line of the fragment must survive, else the build
   stops with the offending option named.
3. ``nice -n 19 make -j2 Image`` with ``aarch64-linux-gnu-`` and a fixed
   build identity (``KBUILD_BUILD_*``), so the same key gives a
   byte-identical Image on any machine.

The result lands in ``<cache>/arm64-kernel/Image-<key>``, where the key hashes
the fragment, the source tarball, the compiler and the recipe version; a
second call with the same key returns at once. The build directory is kept,
so a changed fragment rebuilds incrementally.

The cache is ``$VIRTIO_SPECC_CACHE`` when set (CI and several clones can share
one build), else ``.cache/`` in the checkout (ignored by git). Run by hand:

    python -m tests.linux_guest_arm64.kernel      # prints the Image path
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAGMENT = HERE / "arm64-restricted-pool.config"
SOURCE_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
SOURCE_DIR_NAME = "linux-source-6.1"
CROSS_COMPILE = "aarch64-linux-gnu-"
# Bump when the steps below change in a way the fragment does not show.
RECIPE_VERSION = "2"
# Fixed build identity, so that the same key gives a byte-identical Image
# wherever and whenever it is built (the kernel embeds these in its banner).
REPRODUCIBLE = {"KBUILD_BUILD_TIMESTAMP": "2023-01-01 00:00:00 UTC", "KBUILD_BUILD_VERSION": "1",
                "KBUILD_BUILD_USER": "virtio-specc", "KBUILD_BUILD_HOST": "arm64-kernel"}


class KernelBuildError(Exception):
    """The kernel cannot be built here (missing package, bad fragment, make failed)."""


@dataclass(frozen=True)
class KernelBuild:
    image: Path
    key: str
    seconds: float      # wall time of this call
    built: bool         # False when the cached Image was reused


def cache_root() -> Path:
    env = os.environ.get("VIRTIO_SPECC_CACHE")
    if env:
        return Path(env)
    return HERE.parent.parent / ".cache"


def fragment_options(text: str) -> dict[str, str]:
    """The options a config text sets: ``CONFIG_X=value``, and ``n`` for
    ``# CONFIG_X is not set``; other comments and blank lines are skipped."""
    opts = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("# CONFIG_") and line.endswith(" is not set"):
            opts[line[2:-len(" is not set")]] = "n"
            continue
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.startswith("CONFIG_"):
            raise KernelBuildError(f"{FRAGMENT.name}: not a CONFIG_X=value line: {raw!r}")
        opts[name] = value
    return opts


def missing_options(wanted: dict[str, str], config_text: str) -> list[str]:
    """Fragment options that the final .config does not carry as asked
    (an option absent from it counts as ``n``)."""
    have = fragment_options(config_text)
    return [f"{k}={v} (got {have.get(k, 'n')})"
            for k, v in wanted.items() if have.get(k, "n") != v]


def _compiler_id() -> str:
    gcc = shutil.which(CROSS_COMPILE + "gcc")
    if gcc is None:
        raise KernelBuildError(f"{CROSS_COMPILE}gcc not found (install gcc-aarch64-linux-gnu)")
    out = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0]


def build_key(fragment_text: str) -> str:
    if not SOURCE_TARBALL.is_file():
        raise KernelBuildError(f"{SOURCE_TARBALL} missing (install linux-source-6.1)")
    st = SOURCE_TARBALL.stat()
    h = hashlib.sha256()
    for part in (RECIPE_VERSION, fragment_text, f"{st.st_size}:{st.st_mtime_ns}",
                 _compiler_id()):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def _run(cmd: list[str], cwd: Path, log: Path) -> None:
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, **REPRODUCIBLE})
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise KernelBuildError(f"{' '.join(cmd[:4])}... failed (exit {proc.returncode}); "
                               f"log {log}:\n" + "\n".join(tail))


def _unpack_source(root: Path, log: Path) -> Path:
    src = root / SOURCE_DIR_NAME
    stamp = root / "source.stamp"
    st = SOURCE_TARBALL.stat()
    want = f"{st.st_size}:{st.st_mtime_ns}"
    if src.is_dir() and stamp.is_file() and stamp.read_text() == want:
        return src
    shutil.rmtree(src, ignore_errors=True)
    _run(["nice", "-n", "19", "tar", "-xJf", str(SOURCE_TARBALL), "-C", str(root)], root, log)
    stamp.write_text(want)
    return src


def build_kernel(jobs: int | None = None) -> KernelBuild:
    """Return the Image for the current fragment, building it if needed."""
    start = time.monotonic()
    for tool in ("make", "flex", "bison", "bc"):
        if shutil.which(tool) is None:
            raise KernelBuildError(f"{tool} not found (needed to build the kernel)")
    fragment_text = FRAGMENT.read_text()
    wanted = fragment_options(fragment_text)
    key = build_key(fragment_text)
    root = cache_root() / "arm64-kernel"
    root.mkdir(parents=True, exist_ok=True)
    image = root / f"Image-{key}"
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)      # one build at a time per cache
        if image.is_file():
            return KernelBuild(image, key, time.monotonic() - start, built=False)
        log = root / f"build-{key}.log"
        log.write_bytes(b"")
        src = _unpack_source(root, log)
        obj = root / "build"
        obj.mkdir(exist_ok=True)
        make = ["nice", "-n", "19", "make", "-C", str(src), f"O={obj}", "ARCH=arm64",
                f"CROSS_COMPILE={CROSS_COMPILE}"]
        _run(make + ["tinyconfig"], root, log)
        _run(["sh", str(src / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(obj),
              str(obj / ".config"), str(FRAGMENT)], src, log)
        _run(make + ["olddefconfig"], root, log)
        missing = missing_options(wanted, (obj / ".config").read_text())
        if missing:
            raise KernelBuildError("the kernel configuration dropped: " + ", ".join(missing))
        njobs = jobs or int(os.environ.get("VIRTIO_SPECC_KERNEL_JOBS", "2"))
        _run(make + [f"-j{njobs}", "Image"], root, log)
        tmp = image.with_suffix(".tmp")
        shutil.copyfile(obj / "arch/arm64/boot/Image", tmp)
        shutil.copyfile(obj / ".config", root / f"config-{key}")
        os.replace(tmp, image)
    return KernelBuild(image, key, time.monotonic() - start, built=True)


def main() -> int:
    try:
        result = build_kernel()
    except KernelBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    what = "built" if result.built else "cached"
    print(f"{result.image} ({what} in {result.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
