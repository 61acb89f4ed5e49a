"""The redaction primitives: caps with a marker, masked statements, scrubbed database errors, redacted queries."""

from __future__ import annotations

import pytest

from tenantwatch.redaction import (
    cap,
    cap_attributes,
    hide_url_secrets,
    mask_statement,
    redact_query,
    redact_url,
    safe_url,
    scrub_db_error,
)


def test_cap_cuts_and_says_how_much() -> None:
    assert cap("abc", 3) == "abc"
    assert cap("abcdef", 3) == "abc…[cut 3 chars]"
    assert cap_attributes({"a": "x", "b": 1}, 5) is None
    assert cap_attributes({"a": "x" * 9, "b": ("y" * 9, "z")}, 5) == {
        "a": "xxxxx…[cut 4 chars]",
        "b": ("yyyyy…[cut 4 chars]", "z"),
    }


@pytest.mark.parametrize(
    ("statement", "masked"),
    [
        ("SET PASSWORD FOR 'bob'@'localhost' = 'hunter2'", "SET PASSWORD FOR ?@? = ?"),
        ("ALTER USER bob WITH PASSWORD $$hunter2$$", "ALTER USER bob WITH PASSWORD ?"),
        ("SELECT * FROM t1 WHERE a = E'x\\'y' AND b = 42 -- token=abc", "SELECT * FROM t1 WHERE a = ? AND b = ?  "),
        ('SELECT :name, %(p)s, $1, ? FROM "Users 2"', 'SELECT :name, %(p)s, $1, ? FROM "Users 2"'),
        ("SELECT 'unterminated hunter2", "SELECT ?"),
        ("SELECT $t$unterminated hunter2", "SELECT ?"),
    ],
)
def test_mask_statement(statement: str, masked: str) -> None:
    assert mask_statement(statement) == masked


@pytest.mark.parametrize(
    ("message", "kept", "gone"),
    [
        (
            'new row for relation "accounts" violates check constraint "c"\n'
            "DETAIL:  Failing row contains (1, alice@corp.example, hunter2).",
            'violates check constraint "c"',
            "hunter2",
        ),
        (
            'duplicate key value violates unique constraint "u"\nDETAIL:  Key (email)=(alice@corp.example) exists.',
            'unique constraint "u"',
            "alice@corp.example",
        ),
        ('invalid input syntax for type uuid: "hunter2"', "invalid input syntax for type uuid", "hunter2"),
        ('syntax error at or near "hunter2"\nLINE 1: SELECT hunter2\n               ^', "syntax error", "hunter2"),
        ('near "hunter2": syntax error', "syntax error", "hunter2"),
        ("Duplicate entry 'hunter2' for key 'users.email'", "Duplicate entry", "hunter2"),
        (
            "(psycopg.errors.UniqueViolation) dup\n[SQL: SELECT 'hunter2'\nFROM t]\n[parameters: {'p': 'hunter2'}]",
            "[SQL: SELECT ?\nFROM t]",
            "hunter2",
        ),
    ],
)
def test_scrub_db_error(message: str, kept: str, gone: str) -> None:
    scrubbed = scrub_db_error(message)
    assert kept in scrubbed
    assert gone not in scrubbed


def test_redact_query_by_key() -> None:
    assert redact_query("a=1&Access_Token=x&b=&pass%77ord=y") == "a=1&Access_Token=REDACTED&b=&pass%77ord=REDACTED"
    assert redact_query("q=token") == "q=token"
    assert redact_url("https://u:p@h/x?k=1&sig=2#f", ("sig",)) == "https://REDACTED:REDACTED@h/x?k=1&sig=REDACTED#f"


def test_the_bounds_come_from_the_environment_and_a_bad_value_falls_back() -> None:
    from tenantwatch.config import load_settings

    settings = load_settings(
        environ={
            "TENANTWATCH_TABLE_LABEL_CAP": "7",
            "TENANTWATCH_MAX_STRING_LENGTH": "128",
            "TENANTWATCH_REDACT_QUERY_KEYS": "apikey, ticket",
        }
    )
    assert (settings.table_label_cap, settings.max_string_length) == (7, 128)
    assert settings.http.redact_query_keys == ("apikey", "ticket")
    assert load_settings(environ={"TENANTWATCH_MAX_STRING_LENGTH": "10"}).max_string_length == 4096
    assert load_settings(environ={}, max_string_length=256).max_string_length == 256


def test_statements_past_the_scan_caps_are_still_masked() -> None:
    """Over the analyzer's literal cap the scanner gives up; the masking falls back, never to the raw text."""
    numbers = "SELECT a FROM t WHERE account IN (" + ",".join(str(4_000_000 + i) for i in range(700)) + ")"
    assert "4000001" not in mask_statement(numbers)
    quoted = "SELECT a FROM t WHERE k IN (" + ",".join(f"'sk_live_{i}'" for i in range(700)) + ")"
    assert "sk_live" not in mask_statement(quoted)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://admin@127.0.0.1:37017/okr?password=S3cretAdm1n",
            "postgresql+psycopg://admin@127.0.0.1:37017/okr?password=***",
        ),
        ("postgresql+psycopg://admin:S3cret@db/okr", "postgresql+psycopg://admin:***@db/okr"),
        (
            "postgresql://a:p%40ss/w@db/okr?sslmode=require&PassWord=x&application_name=y",
            "postgresql://a:***@db/okr?sslmode=require&PassWord=***&application_name=y",
        ),
        ("http://u:HttpPw@collector:4318/v1/metrics", "http://u:***@collector:4318/v1/metrics"),
        ("http://collector:4318", "http://collector:4318"),
        ("sqlite:///app.db", "sqlite:///app.db"),
        ("host=db user=app password=S3cret dbname=okr", "host=db user=app password=*** dbname=okr"),
    ],
)
def test_safe_url_hides_every_password_form(url: str, shown: str) -> None:
    assert safe_url(url) == shown


def test_hide_url_secrets_masks_urls_in_text_and_the_quoted_secret() -> None:
    url = "postgresql+psycopg://admin@db/nodb?password=S3cretAdm1n"
    message = f"cannot read the catalog of {url}: password S3cretAdm1n rejected."
    assert hide_url_secrets(message, url) == (
        "cannot read the catalog of postgresql+psycopg://admin@db/nodb?password=***: password *** rejected."
    )
    assert hide_url_secrets("exporting to http://u:HttpPw@h:4318/v1/metrics failed") == (
        "exporting to http://u:***@h:4318/v1/metrics failed"
    )
