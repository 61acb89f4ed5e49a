"""The attack-pattern scanner on a labelled corpus, and its bounds on hostile input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantwatch.security.patterns import scan, scan_value
from tenantwatch.security.values import RequestValues

CORPUS = yaml.safe_load((Path(__file__).with_name("attack_corpus.yaml")).read_text())


def kinds(case: dict[str, Any], headers: tuple[tuple[str, str], ...] = ()) -> set[str]:
    found = scan(case.get("path", "/search"), case.get("query", ""), headers)
    return {item.split(":", 1)[0] for item in found}


@pytest.mark.parametrize("case", CORPUS["positives"], ids=lambda c: c.get("query", c.get("path")))
def test_attack_is_reported(case: dict[str, Any]) -> None:
    assert kinds(case) == set(case["kinds"])


@pytest.mark.parametrize("case", CORPUS["negatives"], ids=lambda c: c.get("query", c.get("path")))
def test_ordinary_request_is_silent(case: dict[str, Any]) -> None:
    assert kinds(case) == set()


def test_locations_name_the_parameter_or_header() -> None:
    found = scan(
        "/x", "id=1%27%20OR%20%271%27%3D%271", (("referer", "<script>x</script>"), ("authorization", "Bearer ' OR 1=1"))
    )
    assert found == ("sqli:query.id", "xss:header.referer")  # authorization is never scanned


def test_hostile_input_is_cut_before_scanning() -> None:
    huge = "a" * 1_000_000 + "<script>"
    assert scan_value(huge, max_bytes=512) == []  # the payload past the cap is never looked at
    many = "&".join(f"p{i}=1'%20OR%20'1'='1" for i in range(10_000))
    found = scan("/", many, (), max_values=64)
    assert 0 < len(found) <= 64


def test_request_values_are_bounded_and_skip_noise() -> None:
    values = RequestValues.from_request(
        "q=widget&limit=20&x=ab&" + "&".join(f"k{i}=value{i}" for i in range(200)), {}, min_length=4, max_values=10
    )
    assert len(values) == 10
    assert values.find_in("SELECT 1 FROM t WHERE name = 'widget' LIMIT 20") == ("query.q",)
    assert values.find_in("SELECT widget FROM widgets") == ()  # not inside a string literal
