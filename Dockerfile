# The sync server image: Gunicorn managing Uvicorn workers; the server is stateless.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY noctis_contract noctis_contract
COPY sync_server sync_server
COPY model_export model_export
COPY drift_service drift_service
COPY migrations migrations
COPY deploy/gunicorn.conf.py deploy/gunicorn.conf.py
RUN pip install --no-cache-dir '.[prod]'
ENV NOCTIS_ENVIRONMENT=production NOCTIS_DATA_DIR=/var/lib/noctis NOCTIS_REGISTRY_DIR=/app/model_export/registry \
    PROMETHEUS_MULTIPROC_DIR=/tmp/noctis-metrics
EXPOSE 8000
# Migrate once (alembic takes a lock), then gunicorn: it creates and wipes the metrics
# directory and restarts workers that die; the workers start even without the database.
CMD ["sh", "-c", "python -m sync_server migrate && exec gunicorn -c deploy/gunicorn.conf.py"]
