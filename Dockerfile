# syntax=docker/dockerfile:1
# Two stages: TensorFlow builds the default model; the served image holds onnxruntime only.

FROM python:3.11-slim AS model
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service service
COPY training training
RUN pip install --no-cache-dir ".[train]"
# Real CIFAR-10 in ./data/ of the build context is used when present; else the synthetic stand-in.
RUN --mount=type=bind,target=/context \
    if [ -d /context/data ]; then cp -r /context/data ./data; fi; \
    python -m training quickstart-model --repository /models --out /tmp/quickstart

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service service
COPY training/__init__.py training/__init__.py
RUN pip install --no-cache-dir . && useradd --system --uid 10001 service
COPY --from=model /models /models
USER service
ENV SERVICE_HOST=0.0.0.0 SERVICE_MODEL_REPOSITORY=/models
EXPOSE 8000 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2)"]
CMD ["python", "-m", "service"]
