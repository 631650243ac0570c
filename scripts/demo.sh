#!/usr/bin/env bash
# The main job on a fresh Debian machine: set up, then validate, plan and deploy the examples'
# containers to the local Docker Engine, with state in the embedded SQLite default.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! docker info >/dev/null 2>&1 && [ -z "${DOCKER_HOST:-}" ]; then
  echo "No Docker Engine is reachable: scripts/setup-env.sh starts a local one (dockerd)."
fi
scripts/setup-env.sh
bd=.venv/bin/bojdeploy
export WEB_SESSION_KEY="${WEB_SESSION_KEY:-demo-session-key}"
export API_TOKEN="${API_TOKEN:-demo-api-token}"
echo
echo "== bojdeploy validate examples/"
$bd validate examples/
echo
echo "== bojdeploy apply --env development examples/"
$bd apply --env development examples/
echo
echo "== bojdeploy history"
$bd history
echo
echo "The web container answers on http://127.0.0.1:18082/ ; run this again: nothing changes."
