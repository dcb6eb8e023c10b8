"""ML jobs' logic: one module per model family, no dramatiq/fastapi/redis here."""
