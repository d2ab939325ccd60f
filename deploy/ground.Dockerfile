# The ground service: the deep counter (CPU build of torch), gRPC, FastAPI, the dashboard.
# Two targets:
#   ground (the default, last stage): the shared library and the ground distribution only.
#   lab: the ground image plus the onboard distribution, the research tooling and the
#        targetfuse command, for the compose stack's experiment profile.
# Build from the repository root: docker build -f deploy/ground.Dockerfile [--target lab] .
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY shared ./shared
COPY ground ./ground
# The CPU wheel of torch first, from PyTorch's CPU index (the default index would bring
# several GB of CUDA packages); then the project, whose torch==2.13.0 is then satisfied.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --retries 1 --extra-index-url "$TORCH_INDEX" torch==2.13.0 \
    && /opt/venv/bin/pip install ./shared ./ground \
    && ! /opt/venv/bin/python -c "import lab" 2>/dev/null
# The model pairs the ground service serves: build arg MODELS, pair names or "all" (every
# shipped pair: the compose file's MODEL, default objects, picks one). Each pair's card
# names the files the ground reads (shared/model_export.py: runtime_files).
ARG MODELS=all
COPY models ./models
RUN /opt/venv/bin/python -m shared.model_export ground ./models /app/models $MODELS

FROM build AS lab-build
COPY onboard ./onboard
COPY lab ./lab
COPY pyproject.toml README.md ./
COPY targetfuse ./targetfuse
RUN /opt/venv/bin/pip install ./shared ./ground ./onboard ./lab .

FROM python:3.11-slim AS lab
RUN mkdir /data && chown 10001:10001 /data
COPY --from=lab-build /opt/venv /opt/venv
COPY models /app/models
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /data
ENTRYPOINT ["targetfuse"]

FROM python:3.11-slim AS ground
# A numeric non-root user: needs no useradd in the base image.
RUN mkdir /data && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app/models /app/models
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    TARGETFUSE_GROUND_MODELS_DIR=/app/models TARGETFUSE_GROUND_DB_PATH=/data/ground.db \
    TARGETFUSE_GROUND_GRPC_PORT=50051 TARGETFUSE_GROUND_HTTP_PORT=8081 \
    TARGETFUSE_GROUND_GRPC_HOST=0.0.0.0 TARGETFUSE_GROUND_HTTP_HOST=0.0.0.0
USER 10001:10001
WORKDIR /data
EXPOSE 50051 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=2)"]
ENTRYPOINT ["targetfuse-ground"]
