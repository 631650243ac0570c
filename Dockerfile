# The bojdeploy Gitea Action. Offline build (scripts/build-action-image.sh does it):
#   pip wheel --require-hashes -r requirements.lock -w build/wheels; pip wheel --no-deps . -w build/wheels
#   docker build --network none --build-arg BASE_IMAGE=local/python-base:bookworm -t bojdeploy-action .
# Without build/wheels (act_runner building `image: Dockerfile` from a clone of this repository)
# the same pinned, hash-checked set is installed from the package index, and git from Debian's.
# Either way the dependencies come only from requirements.lock; bojdeploy itself without any.
# The lock holds the relay extra's dependencies too, so the image also runs `relay` and `worker`.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# Lets the build script remove this stage's image afterwards (docker image prune --filter label=).
LABEL io.bojdeploy.stage=build
COPY . /src
RUN python3 -m venv /opt/bojdeploy \
 && if [ -d /src/build/wheels ]; then from="--no-index --find-links /src/build/wheels"; \
    else from=""; fi \
 && pip="/opt/bojdeploy/bin/pip install --quiet --no-cache-dir $from" \
 && $pip --require-hashes -r /src/requirements.lock \
 && if [ -d /src/build/wheels ]; then $pip --no-deps bojdeploy; else $pip --no-deps /src; fi \
 && /opt/bojdeploy/bin/pip uninstall --quiet --yes pip setuptools

FROM ${BASE_IMAGE}
RUN command -v git >/dev/null \
 || (apt-get update -q && apt-get install -y -q --no-install-recommends git \
     && rm -rf /var/lib/apt/lists/*)
COPY --from=build /opt/bojdeploy /opt/bojdeploy
COPY entrypoint.py /opt/bojdeploy/entrypoint.py
# Root, as act_runner starts every action container: the Docker socket it mounts belongs to a
# group whose id differs per host, and the workspace volume it checks out into is root's
# (docs/gitea-action.md, "Root or not"). By hand it runs as any user who may use the socket.
ENTRYPOINT ["/opt/bojdeploy/bin/python", "/opt/bojdeploy/entrypoint.py"]
# Last, so a new commit rebuilds no layer: scripts/build-action-image.sh passes them.
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title=bojdeploy \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.revision=${REVISION} \
      org.opencontainers.image.source=${SOURCE} \
      org.opencontainers.image.licenses=MIT
