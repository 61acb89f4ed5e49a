"""What ``scan --jaeger`` shows as its source (table header, JSON ``sources``, problems): never a password."""

from __future__ import annotations

from tenantwatch.tools.scan.jaeger import JaegerSource


def test_a_jaeger_url_with_credentials_is_shown_without_the_password() -> None:
    source = JaegerSource(url="http://reader:JaegerPw@127.0.0.1:16686/", service="okr-api", start=0.0, end=1.0)
    assert source.name == "jaeger http://reader:***@127.0.0.1:16686 service okr-api"
