# huaweicloud-drs-exporter container image.
# Build: docker build -t huaweicloud-drs-exporter .
# Run:   docker run --read-only -p 10370:10370 -v $PWD/drs-exporter.yml:/etc/drs-exporter/drs-exporter.yml:ro \
#          -e HUAWEICLOUD_SDK_AK -e HUAWEICLOUD_SDK_SK huaweicloud-drs-exporter

FROM python:3.12.8-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir /src

FROM python:3.12.8-slim-bookworm
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="huaweicloud-drs-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Huawei Cloud DRS per-object migration progress" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/huaweicloud-drs-exporter/huaweicloud-drs-exporter"
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A fixed non-root UID/GID (the "nonroot" convention): Kubernetes runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 10370
ENTRYPOINT ["drs-exporter"]
CMD ["--config.file=/etc/drs-exporter/drs-exporter.yml"]
