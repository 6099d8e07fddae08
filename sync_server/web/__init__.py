"""The web app: server-rendered pages for nights and devices, served by the sync server
under /app (templates, no separate frontend build, no JavaScript but the live view)."""
