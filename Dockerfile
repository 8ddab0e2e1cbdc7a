# kwsops pipeline in a container (CPU). Mount a workspace at /workspace:
#   docker build -t kwsops .
#   docker run --rm -v "$PWD/my-workspace:/workspace" kwsops --quiet
#   docker run --rm -v "$PWD/ws:/workspace" -e DVC_HOST -e DVC_USER -e DVC_PASSWORD kwsops
FROM python:3.11-slim

# git: every training is a git revision; DVC needs it too
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/kwsops
# CPU-only torch first (the default wheel carries CUDA); pyproject pins the same release
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
    "torch==2.11.0" "torchaudio==2.11.0"
COPY pyproject.toml README.md ./
COPY kwsops ./kwsops
COPY tasks ./tasks
RUN pip install --no-cache-dir . \
    && git config --system user.name kwsops \
    && git config --system user.email kwsops@container \
    && git config --system --add safe.directory '*'
COPY docker/entrypoint.sh /usr/local/bin/kwsops-entrypoint

ENV KWSOPS_WORKSPACE=/workspace \
    PYTHONUNBUFFERED=1
VOLUME ["/workspace"]
WORKDIR /workspace
ENTRYPOINT ["kwsops-entrypoint"]
