# The ground service: the deep counter (CPU build of torch), gRPC, FastAPI, the dashboard.
# Build from the repository root: docker build -f deploy/ground.Dockerfile .
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY onboard ./onboard
COPY ground ./ground
# The CPU wheel of torch (the default index would bring several GB of CUDA packages).
RUN python -m venv /opt/venv && /opt/venv/bin/pip install \
    --extra-index-url https://download.pytorch.org/whl/cpu ".[ground]"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 targetfuse && mkdir /data && chown targetfuse /data
COPY --from=build /opt/venv /opt/venv
COPY models/aircraft/deep.json models/aircraft/deep.pt models/aircraft/error_model.json \
     models/aircraft/tiling.json /app/models/aircraft/
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    TARGETFUSE_GROUND_MODELS_DIR=/app/models TARGETFUSE_GROUND_DB_PATH=/data/ground.db \
    TARGETFUSE_GROUND_GRPC_PORT=50051 TARGETFUSE_GROUND_HTTP_PORT=8081
USER targetfuse
WORKDIR /data
EXPOSE 50051 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=2)"]
ENTRYPOINT ["targetfuse", "ground"]
