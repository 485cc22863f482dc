# syntax=docker/dockerfile:1
# Atrium container image.
#
#   docker build -t atrium .            (or: make image; podman works the same way)
#   docker run -p 8000:8000 -v atrium-data:/data atrium               # embedded default
#   docker run ... atrium migrate       # schema upgrade, once per release
#   docker run ... atrium worker        # email/outbox worker
#
# BASE_IMAGE must provide python3 (3.11+) with the venv module; the default is the
# official slim image. deploy/test/build_base.sh makes an equivalent one with debootstrap
# for machines that reach no container registry.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build: a wheel of Atrium and a virtual environment of the locked runtime packages ---
FROM ${BASE_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/atrium \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Behind a TLS-intercepting proxy, pass its CA bundle as a build secret:
#   --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt
# (used by pip and uv for this build only; it does not end up in the image).
RUN --mount=type=secret,id=ca_bundle,required=false \
    if [ -s /run/secrets/ca_bundle ]; then \
      export PIP_CERT=/run/secrets/ca_bundle SSL_CERT_FILE=/run/secrets/ca_bundle; \
    fi \
 && python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=secret,id=ca_bundle,required=false \
    --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca_bundle ]; then export SSL_CERT_FILE=/run/secrets/ca_bundle; fi \
 && /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python python3
COPY src ./src
RUN --mount=type=secret,id=ca_bundle,required=false \
    --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca_bundle ]; then export SSL_CERT_FILE=/run/secrets/ca_bundle; fi \
 && /opt/uv/bin/uv build --wheel --out-dir /dist \
 && /opt/uv/bin/uv pip install --python /opt/atrium/bin/python --no-deps /dist/*.whl \
 && /opt/atrium/bin/atrium --version

# --- runtime: the interpreter, the environment, nothing else ---
FROM ${BASE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="Atrium" \
      org.opencontainers.image.description="Self-hostable user and identity backend" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/atrium-identity/atrium" \
      org.opencontainers.image.documentation="https://github.com/atrium-identity/atrium/blob/main/docs/deployment.md"

RUN groupadd --system --gid 10001 atrium \
 && useradd --system --uid 10001 --gid atrium --home-dir /data --no-create-home \
            --shell /usr/sbin/nologin atrium \
 && mkdir -p /data && chown atrium:atrium /data && chmod 0750 /data

COPY --from=build /opt/atrium /opt/atrium
COPY deploy/docker/entrypoint.sh /usr/local/bin/atrium-entrypoint

ENV PATH=/opt/atrium/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ATRIUM_DATA_DIR=/data \
    ATRIUM_LOG_FORMAT=json \
    HEALTHCHECK_URL=http://127.0.0.1:8000/health/live

# The embedded default keeps SQLite, the signing key, mail files and uploads here.
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4)"]

ENTRYPOINT ["/usr/local/bin/atrium-entrypoint"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
