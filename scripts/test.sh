#!/usr/bin/env bash
# The one test command: bring up the test environment, then run pytest (arguments pass through).
# Under CI=true (inherited from the environment) tests whose systems are missing fail, not skip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-env.sh
exec .venv/bin/python -m pytest -q "$@"
