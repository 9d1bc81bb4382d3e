# One image for every devicelab role; the command picks the role:
#   devicelab serve        the API and web UI (gunicorn, DEVICELAB_PORT, default 8000)
#   gunicorn ... 'entrypoints.auth_wsgi:create_auth_app()'   the auth service on its own
#   devicelab worker       outbox relay, run reaper, offline detection
#   devicelab runner       the reference Test Runner
#   devicelab telemetry    MQTT telemetry listener and device discovery
#   devicelab db upgrade   migrations (core and auth histories), run once per release
# deploy/compose.yaml and deploy/k8s/ show each of them.
#
# No `# syntax=` line: BuildKit would fetch that frontend from a registry first (offline, it
# fails at once), and nothing here needs more than the builder's own Dockerfile syntax. The base images are build arguments so that a machine
# without registry access can build on images of its own (the container test does:
# tests/container/); releases build on the official images named here.
ARG NODE_IMAGE=node:20-bookworm-slim
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- the web UI: npm ci + vite build into frontend/dist ------------------------------------
FROM ${NODE_IMAGE} AS ui
WORKDIR /src/frontend
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# -- the Python runtime -----------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app

# Dependencies first, in a layer of their own that a code change does not invalidate. The
# install is editable on purpose: the app finds the web UI next to its code (frontend/dist),
# as it does in a checkout. Every version comes from constraints.txt (the build backend's
# too, through PIP_CONSTRAINT), so builds a month apart ship the same packages; `make
# constraints` updates it on purpose. Wheels only: the image has no compiler.
COPY pyproject.toml README.md constraints.txt ./
RUN mkdir -p domain application adapters entrypoints \
    && touch domain/__init__.py application/__init__.py adapters/__init__.py entrypoints/__init__.py \
    && PIP_CONSTRAINT=/app/constraints.txt pip install --only-binary=:all: -e . \
    && rm -rf domain application adapters entrypoints

COPY domain/ domain/
COPY application/ application/
COPY adapters/ adapters/
COPY entrypoints/ entrypoints/
COPY --from=ui /src/frontend/dist/ frontend/dist/

# An unprivileged user that owns nothing but its data directory.
RUN groupadd --system --gid 10001 devicelab \
    && useradd --system --uid 10001 --gid devicelab --home-dir /var/lib/devicelab \
        --shell /usr/sbin/nologin devicelab \
    && mkdir -p /var/lib/devicelab \
    && chown devicelab:devicelab /var/lib/devicelab \
    && python -m compileall -q domain application adapters entrypoints
USER 10001:10001

ENV DEVICELAB_HOST=0.0.0.0 \
    DEVICELAB_PORT=8000 \
    DEVICELAB_DATA_DIR=/var/lib/devicelab
EXPOSE 8000

# Liveness of the API role. Roles without an HTTP port (worker, runner, telemetry, migrations)
# and the auth service (/auth/health on its own port) set their own check or disable it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('DEVICELAB_PORT', '8000'), timeout=4)"]

CMD ["devicelab", "serve"]
