# kalshi-ingestor: every role under supervisord, each in its own process group and environment.
#
#   docker build -t kalshi-ingestor .
#
#   # One-off schema migration (admin URL); supervisord.conf also runs it once at each start:
#   docker run --rm -e DATABASE_URL=postgresql://admin:...@db/kalshi kalshi-ingestor ingestor migrate
#
#   # All roles, or a split deploy with KALSHI_RUN_MODE=rest,ws (see conf/*.env.example):
#   docker run -d --env-file kalshi.env kalshi-ingestor
#
#   # One role's freshness, as the HEALTHCHECK below does for every running role:
#   docker exec <container> ingestor health rest
#
# The install steps are the Makefile's `install` recipe; tests/supervisor/test_dockerfile.py
# checks that every RUN step here is a command the Makefile (or the tests) also run.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app

WORKDIR /app
COPY pyproject.toml README.md supervisord.conf ./
COPY ingestor ./ingestor
COPY roles ./roles
COPY sql ./sql
COPY conf ./conf

RUN python3 -m venv .venv && .venv/bin/pip install --quiet --upgrade pip && .venv/bin/pip install --quiet -e '.[test]'

ENV PATH=/app/.venv/bin:$PATH
USER app

# Unhealthy when a role is FATAL or one of its ingest_state keys is stale.
HEALTHCHECK --interval=60s --timeout=30s --start-period=180s --retries=3 \
    CMD ["ingestor", "health", "all"]

CMD ["supervisord", "-c", "/app/supervisord.conf", "-n"]
