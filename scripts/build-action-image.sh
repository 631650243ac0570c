#!/usr/bin/env bash
# Build the Gitea Action image with no network access inside the build, as air-gapped users must:
#   1. a Python base image debootstrapped from Debian's packages (built once, reused while present),
#   2. the project and its dependencies as wheels, built on the host (build/wheels),
#   3. `docker build --network none` from a small staged context holding the Dockerfile and wheels.
# Usage: scripts/build-action-image.sh [IMAGE]     (default IMAGE: bojdeploy-action:latest)
# Environment: BASE_IMAGE (default local/python-base:bookworm), PYTHON (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGE=${1:-bojdeploy-action:latest}
BASE_IMAGE=${BASE_IMAGE:-local/python-base:bookworm}
PYTHON=${PYTHON:-.venv/bin/python}
LOCK=/run/lock/bojdeploy-python-base.lock

# Debian's CLI, the same version as its dockerd (a newer CLI may come first on PATH).
docker() {
    if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else command docker "$@"; fi
}

# The first Debian mirror apt is configured with (deb822 or one-line sources).
debian_mirror() {
    local uri
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

build_base() {
    local root
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        echo "base: $BASE_IMAGE present"
        return
    fi
    mkdir -p "${LOCK%/*}"
    exec 8>"$LOCK"
    flock -w 900 8
    if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then # another build may have made it
        root=$(mktemp -d)
        echo "base: debootstrapping Debian bookworm with python3 and git (about a minute)"
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,git \
            bookworm "$root" "$(debian_mirror)" >"$root.log" 2>&1 ||
            { tail -n 20 "$root.log" >&2; exit 1; }
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
            "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
            "$root"/usr/share/locale/*
        tar -C "$root" -c . | docker import - "$BASE_IMAGE" >/dev/null
        rm -rf "$root" "$root.log"
        echo "base: imported $BASE_IMAGE"
    fi
    exec 8>&-
}

build_wheels() {
    local log
    log=$(mktemp)
    rm -rf build/lib build/bdist.* # setuptools would package stale files left there
    "$PYTHON" -m pip wheel --quiet '.[relay]' -w build/wheels >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    rm -f "$log"
    echo "wheels: $(ls build/wheels | wc -l) in build/wheels"
}

# A build context with only what the Dockerfile copies (no .venv, no .git).
stage_context() {
    local context=$1
    cp -r Dockerfile entrypoint.py pyproject.toml README.md bojdeploy "$context/"
    mkdir -p "$context/build"
    cp -r build/wheels "$context/build/wheels"
    find "$context" -name __pycache__ -prune -exec rm -rf {} +
}

build_base
build_wheels
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
stage_context "$context"
docker build --quiet --network none --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" "$context" >/dev/null
echo "image: $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}'))"
