# lmthing worker image: `lmthing worker` polling a Temporal task queue.
#
#   docker build -t lmthing:dev .
#   docker run --rm -e TEMPORAL_ADDRESS=host.docker.internal:7233 lmthing:dev
#
# Point it at your own app: either build FROM this image and COPY your module into /app
# (the working directory, which `--app` searches first), or mount it and override CMD:
#   docker run ... -v "$PWD/myapp.py:/app/myapp.py:ro" lmthing:dev worker --app myapp.py
# See docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The package first (its own layer, rebuilt only when the library changes).
COPY pyproject.toml README.md ./
COPY lmthing ./lmthing
# The checkout itself with its PostgreSQL extra (the memory store's driver); the versions
# are pyproject.toml's, which hadolint cannot see.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[postgres]" \
    && rm -rf ./lmthing ./build ./*.egg-info

# The example app the default CMD runs (not part of the installed package).
COPY examples ./examples

RUN groupadd --system --gid 10001 lmthing \
    && useradd --system --uid 10001 --gid lmthing --home-dir /home/lmthing --create-home lmthing
USER 10001:10001

# Metrics / health port served by the worker (see docs/deploy.md, "Metrics contract").
EXPOSE 9464

# No HEALTHCHECK: the worker exits when it loses Temporal, and the restart policy
# (Compose `restart:`, Kubernetes probes) owns liveness; see docs/deploy.md.
ENTRYPOINT ["lmthing"]
CMD ["worker", "--app", "examples.research_agent"]
