# The onboard service: onnxruntime, OpenCV, FastAPI, grpcio. No torch, no ground/, no tooling:
# only the shared library and the onboard distribution are copied and installed.
# Build from the repository root: docker build -f deploy/onboard.Dockerfile .
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY shared ./shared
COPY onboard ./onboard
RUN python -m venv /opt/venv && /opt/venv/bin/pip install ./shared ./onboard \
    && ! /opt/venv/bin/python -c "import torch" 2>/dev/null \
    && ! /opt/venv/bin/python -c "import ground" 2>/dev/null \
    && ! /opt/venv/bin/python -c "import lab" 2>/dev/null
# The model pairs this image serves: build arg MODELS, pair names or "all" (every shipped
# pair, so that the compose file's MODEL, default objects, picks any without a rebuild).
# Each pair's card names the files the onboard service reads (weights, fp32 ONNX,
# confidence model) and the pair's tiling and error model come with them; no deep model,
# no training checkpoint (shared/model_export.py: runtime_files).
ARG MODELS=all
COPY models ./models
RUN /opt/venv/bin/python -m shared.model_export onboard ./models /app/models $MODELS

FROM python:3.11-slim
# A numeric non-root user: needs no useradd in the base image.
RUN mkdir /data && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app/models /app/models
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    TARGETFUSE_ONBOARD_MODELS_DIR=/app/models TARGETFUSE_ONBOARD_DATA_DIR=/data \
    TARGETFUSE_ONBOARD_HTTP_PORT=8080 TARGETFUSE_ONBOARD_HTTP_HOST=0.0.0.0
USER 10001:10001
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["targetfuse-onboard"]
