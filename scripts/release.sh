#!/usr/bin/env bash
# Release bojdeploy VERSION: run the tests, build the action image offline, push it as
# REGISTRY/bojdeploy:VERSION, and write the files of the release into DIR (default dist/):
#   action.yml                    this repository's action.yml with
#                                 runs.image: docker://REGISTRY/bojdeploy:VERSION@sha256:<digest>,
#                                 so runners pull that very image instead of building one
#   bojdeploy-VERSION-py3-none-any.whl   the wheel installed in the image
#   bojdeploy-VERSION.tar.gz      the sdist
#   SHA256SUMS                    of the three
# Usage: scripts/release.sh [--skip-tests] [--out DIR] VERSION [REGISTRY]
#   VERSION must equal __version__ in bojdeploy/__init__.py, the one place the version is set.
#   REGISTRY (default 127.0.0.1:5000) is a registry host and path the docker CLI is logged in to,
#   e.g. gitea.example.com/tools for Gitea's container registry (docs/gitea-action.md).
#   --skip-tests skips scripts/test.sh (the whole suite, which itself runs this script).
# Environment: SOURCE (the image's source label, default the git remote `origin`), and
#   build-action-image.sh's BASE_IMAGE and PYTHON.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() {
    sed -n 's/^# Usage: /usage: /p' "$0" >&2
    exit 2
}

# Debian's CLI, the same version as its dockerd (a newer CLI may come first on PATH).
docker() {
    if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else command docker "$@"; fi
}

tests=yes
out=dist
while [ $# -gt 0 ]; do
    case $1 in
    --skip-tests) tests=no; shift ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "error: unknown option $1" >&2; usage ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] && [ $# -le 2 ] || usage
VERSION=$1
REGISTRY=${2:-127.0.0.1:5000}
REGISTRY=${REGISTRY%/}
PYTHON=${PYTHON:-.venv/bin/python}
case $PYTHON in /*) ;; *) PYTHON=$PWD/$PYTHON ;; esac

current=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' bojdeploy/__init__.py)
if [ "$VERSION" != "$current" ]; then
    echo "error: VERSION $VERSION is not bojdeploy/__init__.py's __version__ ($current);" \
        "set __version__ there first and commit it" >&2
    exit 2
fi
image="$REGISTRY/bojdeploy:$VERSION"

if [ "$tests" = yes ]; then
    echo "tests: scripts/test.sh (--skip-tests to leave them out)"
    CI=true scripts/test.sh
fi

scripts/build-action-image.sh "$image"
revision=$(docker image inspect --format '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$image")
case $revision in *-dirty) echo "warning: built from uncommitted changes (revision $revision)" >&2 ;; esac
echo "push: $image"
pushed=$(docker push "$image")
digest=$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' <<<"$pushed" | tail -n 1)
[ -n "$digest" ] || { echo "error: docker push printed no digest:" >&2; echo "$pushed" >&2; exit 1; }

mkdir -p "$out"
rm -f "$out/action.yml" "$out/bojdeploy-$VERSION"-*.whl "$out/bojdeploy-$VERSION.tar.gz" "$out/SHA256SUMS"
grep -q '^  image: Dockerfile$' action.yml || { echo "error: action.yml has no 'image: Dockerfile'" >&2; exit 1; }
sed "s#^  image: Dockerfile\$#  image: docker://$image@$digest#" action.yml >"$out/action.yml"

# The wheel the image was built from; the sdist from the same tree, made in a copy of it.
cp "build/wheels/bojdeploy-$VERSION-py3-none-any.whl" "$out/"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
cp -r pyproject.toml MANIFEST.in README.md LICENSE CHANGELOG.md requirements.lock bojdeploy "$tree/"
find "$tree" -name __pycache__ -prune -exec rm -rf {} +
out_abs=$(cd "$out" && pwd)
(cd "$tree" && "$PYTHON" -c \
    "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])" \
    "$out_abs") >/dev/null 2>&1 || { echo "error: the sdist could not be built" >&2; exit 1; }
(cd "$out" && sha256sum action.yml "bojdeploy-$VERSION-py3-none-any.whl" \
    "bojdeploy-$VERSION.tar.gz" >SHA256SUMS)

echo "released: docker://$image@$digest"
echo "files: $out/action.yml, the wheel, the sdist and SHA256SUMS"
echo "next: commit $out/action.yml as action.yml on a release commit and tag it v$VERSION" \
    "(docs/gitea-action.md, 'Publish a release')"
