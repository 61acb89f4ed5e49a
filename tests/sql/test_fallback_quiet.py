"""The fallback parser never writes statement text to a log, and its errors never quote it."""

from __future__ import annotations

import logging

import pytest

from tenantwatch.sql._fallback import FallbackError, parse

STATEMENTS = (
    "SET PASSWORD FOR 'bob'@'localhost' = 'hunter2'",
    "SELEC 'hunter2' FRM users",
    "SELECT 'hunter2",
    "GRANT ALL ON db.* TO 'bob'@'%' IDENTIFIED BY 'hunter2'",
)


@pytest.mark.parametrize("statement", STATEMENTS)
def test_no_log_record_and_no_error_message_carries_the_statement(
    statement: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FallbackError) as raised:
        parse(statement)
    assert "hunter2" not in str(raised.value)
    assert all("hunter2" not in record.getMessage() for record in caplog.records)


def test_sqlglot_still_logs_for_the_application(caplog: pytest.LogCaptureFixture) -> None:
    import sqlglot

    parse("SELECT 1")  # installs the filter
    caplog.set_level(logging.WARNING, logger="sqlglot")
    sqlglot.parse("SET PASSWORD FOR 'bob'@'localhost' = 'x'", read="mysql")
    assert any("unsupported syntax" in record.getMessage() for record in caplog.records)
