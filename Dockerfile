# The Momentum image: the project installed into python:3.11-slim, run as a
# non-root user. docker-compose.yml runs the payment provider, topics-init, the
# Faust workers and the gateway from it, each with its own command.

# The base image by exact version (a moving `3.11-slim` tag would change the
# image under an unchanged Dockerfile). Dependencies come from requirements.lock
# (`make lock`), pinned; the embedded broker and PostgreSQL (the `embedded`
# extra) are not in the image.
#
# Build the project's wheel apart, so the runtime image holds no source tree
# that could shadow the installed packages.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml ./
COPY streams ./streams
COPY core ./core
COPY tables ./tables
COPY gateway ./gateway
COPY schemas ./schemas
COPY sinks ./sinks
COPY momentum ./momentum
COPY benchmarks ./benchmarks
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock /tmp/requirements.lock
RUN pip install --requirement /tmp/requirements.lock && rm /tmp/requirements.lock
COPY --from=build /wheels /wheels
# The lock holds the otel extra: tracing turns on with OTEL_EXPORTER_OTLP_ENDPOINT
# (core.tracing).
RUN pip install --no-deps /wheels/*.whl && rm -rf /wheels

# /data holds the workers' RocksDB tables, /connectors the connector configs
# topics-init renders; created here so a fresh named volume mounted on either
# belongs to the runtime user.
RUN useradd --system --uid 10001 --create-home --home-dir /home/momentum momentum \
    && mkdir -p /data /connectors \
    && chown momentum:momentum /data /connectors
USER momentum
WORKDIR /home/momentum
ENV MOMENTUM_DATA_DIR=/data/worker

# 6066 Faust worker web (/ready/, /metrics/, table views), 8000 gateway, 8090 provider.
EXPOSE 6066 8000 8090
CMD ["faust", "-A", "streams.app", "worker", "-l", "info", "--web-port", "6066"]
