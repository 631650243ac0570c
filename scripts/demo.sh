#!/usr/bin/env bash
# The main job on a fresh Debian machine: set up, then validate, plan and deploy the examples
# to the local Docker Engine, with state in the embedded SQLite default.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-env.sh
bd=.venv/bin/bojdeploy
export WEB_SESSION_KEY="${WEB_SESSION_KEY:-demo-session-key}"
export API_TOKEN="${API_TOKEN:-demo-api-token}"
echo "== bojdeploy validate examples/"
$bd validate examples/
echo
echo "== bojdeploy plan --offline --env development examples/"
$bd plan --offline --env development examples/
