# One image for the compose stack: `gensight serve` (processor extra), the bundled fake LLM
# provider and the instrumented example apps (demo extra = processor + openai + rich).
#   docker build -t gensight:dev .
#   docker run --rm -p 4317:4317 -p 4318:4318 gensight:dev          # gensight serve
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/gensight

# The package with the processor + demo extras; examples last (they change most often).
COPY pyproject.toml setup.py README.md ./
COPY core ./core
COPY instrumentation ./instrumentation
COPY processor ./processor
# gcc only for the build: it compiles the normaliser's C span scanner (processor/_spanscan.c),
# which roughly doubles processor throughput; without it the build falls back to pure Python.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install '.[processor,demo]' \
    && python -c "import gensight.processor.normalise._spanscan" \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

COPY examples ./examples

RUN useradd --system --uid 10001 --home-dir /var/lib/gensight --create-home gensight
USER gensight

# OTLP gRPC, OTLP/HTTP, optional Prometheus scrape endpoint, fake provider.
EXPOSE 4317 4318 9464 8000
CMD ["gensight", "serve", "--grpc-endpoint", "0.0.0.0:4317", "--http-endpoint", "0.0.0.0:4318", "--state-dir", "/var/lib/gensight"]
