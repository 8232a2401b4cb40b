# The service's images, one Dockerfile, three targets:
#   serve (the default)  the server: onnxruntime on CPU, no TensorFlow, a non-root user
#   train                TensorFlow: trains or exports a model into /models (compose's job)
#   gpu                  the server with onnxruntime-gpu on an NVIDIA CUDA runtime base
#   ray                  python -m service.evaluate with Ray (KubeRay's pods), no TensorFlow
# BuildKit (Docker's default builder) builds only the stages the chosen target needs.
# There is no "# syntax=" line: Docker's built-in frontend has everything used here, and a
# frontend image would have to be pulled from a registry at build time.

ARG PYTHON_IMAGE=python:3.11-slim
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# ---- The server's dependencies, in a virtual environment the final images copy. They are
# installed from pyproject.toml alone (the packages stubbed), so a source change rebuilds
# nothing but the last layer.
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml /tmp/stub/
# (The stub is built elsewhere: setuptools would reuse its build/ folder for the real sources.)
RUN --mount=type=cache,target=/root/.cache/pip \
    cd /tmp/stub && mkdir service training \
    && touch README.md service/__init__.py training/__init__.py \
    && pip install . && pip uninstall --yes cifar10-inference-service && rm -rf /tmp/stub

# ---- The server (default target).
FROM deps AS serve-build
COPY pyproject.toml README.md ./
COPY service service
COPY training/__init__.py training/
RUN pip install --no-cache-dir --no-deps . && pip uninstall --yes setuptools \
    && rm -rf /opt/venv/lib/python3*/site-packages/pip /opt/venv/bin/pip*

FROM ${PYTHON_IMAGE} AS serve-base
RUN groupadd --system --gid 10001 service \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home service \
    && mkdir /models && chown service:service /models
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    SERVICE_HOST=0.0.0.0 SERVICE_MODEL_REPOSITORY=/models
WORKDIR /models
EXPOSE 8000 50051
# Ready on both transports; it reads the same SERVICE_* settings as the server, so its ports.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "service.probe"]
CMD ["python", "-m", "service"]

# ---- The training job: TensorFlow on top of the server's dependencies.
FROM deps AS train
COPY pyproject.toml /tmp/stub/
RUN --mount=type=cache,target=/root/.cache/pip \
    cd /tmp/stub && mkdir service training \
    && touch README.md service/__init__.py training/__init__.py \
    && pip install ".[train]" && pip uninstall --yes cifar10-inference-service && rm -rf /tmp/stub
COPY pyproject.toml README.md ./
COPY service service
COPY training training
RUN pip install --no-cache-dir --no-deps . \
    && groupadd --system --gid 10001 train \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/train train \
    && mkdir -p /models /runs /work /home/train/.keras/datasets \
    && chown train:train /models /runs /work /home/train/.keras /home/train/.keras/datasets
USER train
# The synthetic stand-in is written under ./data/ here; real CIFAR-10 is found in the Keras
# cache folder, where compose mounts ./data (read-only).
WORKDIR /work
ENV PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
CMD ["python", "-m", "training", "quickstart-model", "--repository", "/models", "--out", "/runs/quickstart"]

# ---- Evaluation at scale (docs/evaluation.md): the evaluation command and Ray Data, for
# KubeRay's head and worker pods (deploy/kuberay/). KubeRay's probes call wget.
FROM deps AS ray
RUN apt-get update && apt-get install --yes --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml /tmp/stub/
RUN --mount=type=cache,target=/root/.cache/pip \
    cd /tmp/stub && mkdir service training \
    && touch README.md service/__init__.py training/__init__.py \
    && pip install ".[ray]" && pip uninstall --yes cifar10-inference-service && rm -rf /tmp/stub
COPY pyproject.toml README.md ./
COPY service service
COPY training training
RUN pip install --no-cache-dir --no-deps . \
    && groupadd --system --gid 10001 ray \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/ray ray \
    && mkdir -p /results && chown ray:ray /results
USER ray
WORKDIR /home/ray
ENV PYTHONUNBUFFERED=1 ORT_DISABLE_TELEMETRY=1
CMD ["python", "-m", "service.evaluate", "--help"]

# ---- The GPU server: onnxruntime-gpu (CUDA 12, cuDNN 9) on NVIDIA's CUDA runtime image.
# Not built by the tests (no GPU and no registry there); build it with --target gpu.
FROM ${CUDA_IMAGE} AS gpu
RUN apt-get update && apt-get install --yes --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && groupadd --system --gid 10001 service \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home service \
    && mkdir /models && chown service:service /models
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service service
COPY training/__init__.py training/
# onnxruntime and onnxruntime-gpu install the same package: keep only the GPU build.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install ".[gpu]" && pip uninstall --yes onnxruntime onnxruntime-gpu \
    && pip install "onnxruntime-gpu>=1.18" && rm -rf /src
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    SERVICE_HOST=0.0.0.0 SERVICE_MODEL_REPOSITORY=/models SERVICE_DEVICE=cuda
USER service
WORKDIR /models
EXPOSE 8000 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "service.probe"]
CMD ["python", "-m", "service"]

# ---- The default target comes last.
FROM serve-base AS serve
COPY --from=serve-build /opt/venv /opt/venv
USER service
