"""canonical(): every form of one tenant id is one text; different tenants stay different."""

from __future__ import annotations

import uuid

import pytest

from tenantwatch.core.tenant_values import canonical, same_tenant

ACME = uuid.UUID("2f1c6a8e-5b7d-4c1e-9a3f-0d2b4c6e8a10")


@pytest.mark.parametrize(
    "form",
    [
        ACME,
        str(ACME),
        str(ACME).upper(),
        ACME.hex,
        ACME.hex.upper(),
        "{" + str(ACME) + "}",
        ACME.urn,
        f"  {ACME}  ",
        ACME.bytes,
        bytearray(ACME.bytes),
    ],
    ids=repr,
)
def test_every_uuid_form_is_the_dashed_lower_case_text(form: object) -> None:
    assert canonical(form) == str(ACME)


@pytest.mark.parametrize(("value", "expected"), [(7, "7"), ("7", "7"), (" 007 ", "7"), ("+7", "7"), (b"42", "42")])
def test_ints_and_their_text(value: object, expected: str) -> None:
    assert canonical(value) == expected


def test_other_values_are_not_merged() -> None:
    assert not same_tenant("Acme", "acme")  # a slug keeps its case
    assert not same_tenant(ACME, uuid.uuid4())
    assert not same_tenant("7", "8")
    assert canonical("x" * 300) == "x" * 300
    assert canonical(None) == ""
    assert canonical(b"\xff\xfe") == "fffe"
