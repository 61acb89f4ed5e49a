"""A multi-tenant OKR service (FastAPI + SQLAlchemy) with correct endpoints next to deliberately buggy ones.

Run it: ``uvicorn examples.okr_app.main:app`` (``DATABASE_URL`` picks PostgreSQL or SQLite). See docs/okr-app.md.
"""
