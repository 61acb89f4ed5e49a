"""What this instrumentation instruments (checked by ``BaseInstrumentor`` and by ``opentelemetry-instrument``)."""

_instruments = ("sqlalchemy >= 2.0, < 2.1",)
