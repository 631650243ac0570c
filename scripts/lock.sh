#!/usr/bin/env bash
# Regenerate requirements.lock: every runtime dependency of pyproject.toml, with those of the
# relay extra (the image runs the relay and its workers too), at an exact version,
# with the sha256 of each of its files on the package index. The action image installs only from
# it (pip --require-hashes), and so can anyone: pip install --require-hashes -r requirements.lock.
# Run it after changing `dependencies` or the relay extra in pyproject.toml, or to take newer
# releases; commit the result. Uses pip-tools from a throwaway virtualenv in build/piptools.
# Usage: scripts/lock.sh [pip-compile options, e.g. --upgrade-package requests]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools=build/piptools
if [ ! -x "$tools/bin/pip-compile" ]; then
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet pip-tools
fi
# The header names this command, so it reads the same wherever it is run.
CUSTOM_COMPILE_COMMAND=scripts/lock.sh "$tools/bin/pip-compile" --quiet --generate-hashes \
    --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
    --extra relay --output-file requirements.lock "$@" pyproject.toml
echo "requirements.lock: $(grep -c '^[a-z0-9]' requirements.lock) packages pinned"
