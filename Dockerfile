# syntax=docker/dockerfile:1
# One image for both processes: `python -m execplanner.operator` and
# `python -m execplanner.planner` (the chart sets the command). Build with `make image`.
#
# Base images are pinned to exact tags, not digests: this project's machine has no Docker
# engine and cannot reach the image registry to read or verify a digest. Pin them where
# you build: docker buildx imagetools inspect python:3.12.12-slim-bookworm
# (then PYTHON_IMAGE=python:3.12.12-slim-bookworm@sha256:<digest>, likewise GO_IMAGE).
ARG PYTHON_IMAGE=python:3.12.12-slim-bookworm
ARG GO_IMAGE=golang:1.26.8-bookworm

# helm, which the operator runs for helm-chart tasks: the version the tests use
# (cluster/versions.env; `make image` passes it), built from the Go module proxy as
# cluster/build.sh does, so go.sum and the Go checksum database verify the source.
FROM ${GO_IMAGE} AS helm
ARG HELM_VERSION=v3.21.4
RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" \
 && /out/helm version --short

# The wheels of execplanner and its dependencies; nothing of this stage reaches the image.
FROM ${PYTHON_IMAGE} AS wheels
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY src ./src
COPY operator ./operator
COPY planner ./planner
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Installed from the wheels stage through a bind mount (the wheels never land in a layer);
# pip goes afterwards, so the image keeps no installer or build tool.
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels execplanner \
 && python -m pip uninstall -y pip \
 && python -c "import execplanner.operator, execplanner.planner" \
 && groupadd --system --gid 10001 execplanner \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin execplanner
COPY --from=helm /out/helm /usr/local/bin/helm
USER 10001:10001
WORKDIR /tmp
ENV HOME=/tmp
CMD ["python", "-m", "execplanner.operator"]
