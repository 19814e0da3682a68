# Spinefoot: multi-stage build. The builder compiles durable-rules (C, sdist only) and the
# project into wheels and installs them into a virtual environment; the runtime is a slim image
# with that environment and no compiler.

FROM python:3.11-slim AS builder
# gcc for durable-rules; Python's headers too, where the base image's Python lacks them
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && { python -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
      || apt-get install -y --no-install-recommends python3-dev; } \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY knowledge ./knowledge
COPY fhir_samples ./fhir_samples
RUN pip wheel --no-cache-dir --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/spinefoot \
 && pip --python /opt/spinefoot/bin/python install --no-cache-dir --no-index --find-links /wheels spinefoot

FROM python:3.11-slim
LABEL org.opencontainers.image.title="Spinefoot" \
      org.opencontainers.image.description="FHIR R4 decision support: could this foot pain come from the back?"
ENV PATH=/opt/spinefoot/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SPINEFOOT_DATA_DIR=/var/lib/spinefoot
RUN groupadd --system --gid 10001 spinefoot \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin spinefoot \
 && install -d -o 10001 -g 10001 /var/lib/spinefoot
# metrics shared by the workers and the CDS Hooks replay cache; a named volume keeps the cache
VOLUME /var/lib/spinefoot
COPY --from=builder /opt/spinefoot /opt/spinefoot
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["spinefoot", "healthcheck"]
# the knowledge base is loaded and checked before the port opens; a bad one exits with code 2
ENTRYPOINT ["spinefoot"]
CMD ["serve"]
