# OwnLens ML: the API, the web console and the scheduled jobs in one image, run against a ClickHouse server
# (OWNLENS_DSN=http://user:pass@host:8123/db). deploy/compose.yaml runs it with the official ClickHouse image.
#
#   docker build -t ownlens-ml .
#   docker run -p 8000:8000 -e OWNLENS_DSN=http://ownlens:secret@clickhouse:8123/ownlens ownlens-ml
FROM python:3.11-slim

# XGBoost and LightGBM use OpenMP at run time
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 OWNLENS_HOME=/data OMP_NUM_THREADS=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[reports]"
COPY deploy ./deploy

# artifacts and reports live in /data (a volume shared by the API and the scheduler); never run as root
RUN useradd --create-home --uid 10001 ownlens && mkdir -p /data && chown ownlens /data
USER ownlens
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
CMD ["ownlens-ml", "--log-json", "serve", "--host", "0.0.0.0", "--port", "8000"]
