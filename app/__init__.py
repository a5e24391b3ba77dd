"""Health Collaboration Hub sharing service (FastAPI), one package per domain."""
