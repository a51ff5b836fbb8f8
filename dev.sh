#!/usr/bin/env bash
# One entry point for a fresh machine: set up, then run the main job or the tests.
#   ./dev.sh main   build the SWIOTLB patch, docs and vectors, then run the
#                   conformance suite against the built-in reference device
#   ./dev.sh test   run every test (slow suites included)
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"

# Debian packages the tests drive as independent judges: third-party
# vhost-user devices, QEMU with a Linux guest, XeLaTeX for the patched spec.
DEBS_TEST=(qemu-system-common qemu-system-x86 qemu-system-gui dpdk-dev
           linux-image-cloud-amd64 linux-image-6.12-cloud-amd64 busybox-static cpio
           texlive-xetex texlive-fonts-recommended texlive-plain-generic texlive-latex-extra
           fonts-liberation
           # the arm64 guest behind a restricted DMA pool: kernel source and what builds it
           linux-source-6.1 gcc-aarch64-linux-gnu libc6-dev-arm64-cross make gcc libc6-dev
           flex bison bc xz-utils qemu-system-arm
           # the docs site checked in a headless browser (tests/docs_site)
           chromium chromium-driver)

log() { printf '[dev.sh] %s\n' "$*" >&2; }

install_debs() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        log "missing Debian packages (need root and apt-get to install): ${missing[*]}"
        return 1
    fi
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_python() {
    if [ ! -x "$PY" ]; then
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            install_debs python3-venv
            python3 -m venv "$VENV"
        fi
    fi
    if ! command -v cc >/dev/null; then install_debs gcc libc6-dev; fi
    if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
        log "Python 3.11 or newer is required"; exit 1
    fi
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q -e '.[test]'
}

# The upstream spec tree (tag v1.4-cs01) the patch series targets and the
# real-tree tests check against: $VIRTIO_SPEC_TREE, ../virtio-spec, or a copy
# cloned once into .cache/ during setup (skipped quietly with no network).
UPSTREAM_URL=https://github.com/oasis-tcs/virtio-spec.git
UPSTREAM_TAG=v1.4-cs01

find_spec_tree() {
    local t
    # the user's cache dir last: one checkout there serves every clone on the machine
    for t in "${VIRTIO_SPEC_TREE:-}" ../virtio-spec .cache/virtio-spec \
             "${XDG_CACHE_HOME:-$HOME/.cache}/virtio-spec"; do
        if [ -n "$t" ] && [ -f "$t/virtio.tex" ]; then
            VIRTIO_SPEC_TREE=$(cd "$t" && pwd); export VIRTIO_SPEC_TREE; return 0
        fi
    done
    if timeout 120 git clone -q --depth 1 --branch "$UPSTREAM_TAG" "$UPSTREAM_URL" \
            .cache/virtio-spec.tmp 2>/dev/null; then
        mv .cache/virtio-spec.tmp .cache/virtio-spec
        VIRTIO_SPEC_TREE=$(pwd)/.cache/virtio-spec; export VIRTIO_SPEC_TREE; return 0
    fi
    rm -rf .cache/virtio-spec.tmp
    log "no upstream virtio-spec checkout found (set VIRTIO_SPEC_TREE); real-tree steps are skipped"
    return 0
}

cmd=${1:-}
case "$cmd" in
    main)
        setup_python
        find_spec_tree
        shift
        "$VENV/bin/specc" build spec -o out "$@"
        mkdir -p out/reports
        "$VENV/bin/conformance" run --device ref --vectors out/vectors --json out/reports/ref.json
        # the published docs: modules, guides, coverage (against the tree when there is
        # one), every report in out/reports (each statement's verdict per device), charts
        tree_opt=()
        [ -n "${VIRTIO_SPEC_TREE:-}" ] && tree_opt=(--spec-tree "$VIRTIO_SPEC_TREE")
        "$VENV/bin/specc" docs spec -o out/docs --report out/reports --assets docs/protection \
            --guides docs "${tree_opt[@]}"
        ;;
    test)
        install_debs "${DEBS_TEST[@]}"
        setup_python
        find_spec_tree
        shift
        # conformance reports of the third-party devices are kept here
        export CONFORMANCE_REPORT_DIR=${CONFORMANCE_REPORT_DIR:-$PWD/out/reports}
        # the arm64 test kernel is built once per machine, not once per clone
        export VIRTIO_SPECC_CACHE=${VIRTIO_SPECC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtio-specc}
        "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: ./dev.sh main|test [extra args]" >&2
        exit 2
        ;;
esac
