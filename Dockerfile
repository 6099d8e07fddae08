# The sync server image: Gunicorn managing Uvicorn workers; the server is stateless.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY noctis_contract noctis_contract
COPY sync_server sync_server
COPY model_export model_export
COPY drift_service drift_service
COPY migrations migrations
RUN pip install --no-cache-dir '.[prod]'
ENV NOCTIS_ENVIRONMENT=production NOCTIS_DATA_DIR=/var/lib/noctis NOCTIS_REGISTRY_DIR=/app/model_export/registry
EXPOSE 8000
# Migrate once, then start the workers (each loads the active model in its lifespan).
CMD ["sh", "-c", "python -m sync_server migrate && exec gunicorn 'sync_server.app:create_app()' -k uvicorn.workers.UvicornWorker -w ${WORKERS:-4} -b 0.0.0.0:8000"]
