# The bojdeploy Gitea Action. Offline build (scripts/build-action-image.sh does it):
#   pip wheel '.[relay]' -w build/wheels
#   docker build --network none --build-arg BASE_IMAGE=local/python-base:bookworm -t bojdeploy-action .
# Without build/wheels (act_runner building `image: Dockerfile` from a clone of this repository)
# the package and git are installed from the package registries instead.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
COPY . /src
RUN python3 -m venv /opt/bojdeploy \
 && if [ -d /src/build/wheels ]; then \
        /opt/bojdeploy/bin/pip install --quiet --no-cache-dir --no-index \
            --find-links /src/build/wheels "bojdeploy[relay]"; \
    else \
        /opt/bojdeploy/bin/pip install --quiet --no-cache-dir "/src[relay]"; \
    fi \
 && /opt/bojdeploy/bin/pip uninstall --quiet --yes pip setuptools

FROM ${BASE_IMAGE}
RUN command -v git >/dev/null \
 || (apt-get update -q && apt-get install -y -q --no-install-recommends git \
     && rm -rf /var/lib/apt/lists/*)
COPY --from=build /opt/bojdeploy /opt/bojdeploy
COPY entrypoint.py /opt/bojdeploy/entrypoint.py
ENTRYPOINT ["/opt/bojdeploy/bin/python", "/opt/bojdeploy/entrypoint.py"]
