# animegan-bot: web UI + API on :8080, plus Telegram/Discord when their tokens are set.
#   docker build -t animebot .
#   docker run -e ANIMEBOT_TELEGRAM_TOKEN=... -p 8080:8080 -v animebot-weights:/weights -v animebot-data:/data animebot
# Weights are pulled into the /weights volume on first start; build with --build-arg BAKE_WEIGHTS=1 to bake them in.
# The /data volume keeps the source photos behind re-style buttons, so the buttons outlive a redeploy.
# The same image runs a worker host of the distributed mode: `animebot worker --pull` (see compose.yaml).

# Dependencies alone, in their own stage: editing the code rebuilds neither torch nor the big venv layer.
FROM python:3.11-slim-bookworm AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU-only torch first (the default PyPI wheels carry CUDA: gigabytes this image does not need). A build that
# can't reach that index may pass another one: --build-arg TORCH_INDEX_URL=https://pypi.org/simple
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install torch==2.14.1 torchvision==0.29.1 --index-url "$TORCH_INDEX_URL"
COPY pyproject.toml /src/
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /src/requirements.txt \
    && pip install -r /src/requirements.txt

FROM deps AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY animegan ./animegan
COPY bot ./bot
COPY adapters ./adapters
COPY weights ./weights
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm AS runtime
ARG BAKE_WEIGHTS=0
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 animebot \
    && mkdir /weights /data && chown animebot /weights /data
COPY --from=deps /opt/venv /opt/venv
COPY --from=build /wheels /wheels
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps /wheels/*.whl && rm -rf /wheels
COPY examples /app/examples
ENV PATH=/opt/venv/bin:$PATH \
    ANIMEBOT_HOST=0.0.0.0 \
    ANIMEBOT_PORT=8080 \
    ANIMEBOT_WEIGHTS_DIR=/weights \
    ANIMEBOT_DATA_DIR=/data \
    ANIMEBOT_EXAMPLES_DIR=/app/examples \
    PYTHONUNBUFFERED=1
USER animebot
WORKDIR /app
RUN if [ "$BAKE_WEIGHTS" = "1" ]; then animebot weights pull -q; fi
VOLUME ["/weights", "/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request; port = os.environ.get('ANIMEBOT_PORT', '8080'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status != 200)"]
# tini forwards SIGTERM to animebot, which drains the pool before it exits, and reaps worker processes.
ENTRYPOINT ["tini", "--"]
CMD ["animebot", "serve", "--pull"]
