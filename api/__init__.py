"""FastAPI app: enqueue/status API, queues and dead letters, health, metrics, dashboard."""
