"""Examples: the multi-tenant OKR service (okr_app) and its traffic generator (traffic.py)."""
