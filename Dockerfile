# The application image of docker-compose.yml: every Procfile process runs from it.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VIRTUAL_ENV=/app/.venv PATH=/app/.venv/bin:$PATH
WORKDIR /app
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* && pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml requirements.lock README.md ./
RUN uv venv -q /app/.venv && uv pip sync -q requirements.lock
COPY actors actors
COPY api api
COPY domain domain
COPY ops ops
COPY scheduler scheduler
RUN uv pip install -q --no-deps -e .
USER nobody
CMD ["python", "-m", "api.serve", "--host", "0.0.0.0", "--port", "8000"]
