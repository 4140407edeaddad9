"""Which proxy a request goes through: curl's rules for the environment, a configured
proxy winning over it, ``no_proxy`` applying to both."""

from __future__ import annotations

import pytest

from syncd.http.egress import Egress, NoProxy

PROXY = "http://proxy.internal:3128"


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypassed"),
    [
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "notexample.com", 443, False),
        (".example.com", "api.example.com", 443, True),
        (".example.com", "example.com", 443, True),  # curl >= 7.86: the dot is dropped
        ("*.example.com", "api.example.com", 443, True),
        ("EXAMPLE.com", "Api.Example.COM", 443, True),
        ("example.com:8443", "example.com", 443, False),
        ("example.com:8443", "example.com", 8443, True),
        ("localhost, 127.0.0.1", "127.0.0.1", 80, True),
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("10.0.0.0/8", "10.example.com", 443, False),
        ("::1", "[::1]", 443, True),
        ("[::1]:8080", "::1", 8080, True),
        ("fd00::/8", "fd12::1", 443, True),
        ("*", "anything.at.all", 443, True),
        ("a.com,*", "b.com", 443, True),
        ("", "example.com", 443, False),
        ("  ,  ", "example.com", 443, False),
    ],
)
def test_no_proxy_matches_as_curl_does(no_proxy: str, host: str, port: int, bypassed: bool) -> None:
    assert NoProxy.parse(no_proxy).bypasses(host, port) is bypassed


def test_the_scheme_picks_the_variable_and_all_proxy_is_the_fallback() -> None:
    env = {"https_proxy": "https-proxy:3128", "ALL_PROXY": "http://all:1080"}
    egress = Egress(environ=env)
    assert egress.proxy_for("https", "api.partner.example") == "http://https-proxy:3128"
    assert egress.proxy_for("http", "api.partner.example") == "http://all:1080"


def test_lower_case_wins_and_upper_case_http_proxy_alone_is_ignored() -> None:
    both = Egress(environ={"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"})
    assert both.proxy_for("https", "h") == "http://lower:1"
    assert Egress(environ={"HTTPS_PROXY": "http://upper:2"}).proxy_for("https", "h") == "http://upper:2"
    # CGI hosts set HTTP_PROXY from a request's "Proxy:" header (httpoxy): curl ignores it.
    assert Egress(environ={"HTTP_PROXY": "http://evil:1"}).proxy_for("http", "h") is None
    assert Egress(environ={"http_proxy": "http://good:1"}).proxy_for("http", "h") == "http://good:1"


def test_a_configured_proxy_wins_but_no_proxy_still_applies() -> None:
    env = {"https_proxy": "http://env:1", "no_proxy": "internal.example"}
    egress = Egress(proxy=PROXY, environ=env)
    assert egress.proxy_for("https", "api.partner.example") == PROXY
    assert egress.proxy_for("https", "sandbox.internal.example") is None


def test_trust_env_off_ignores_the_environment() -> None:
    env = {"https_proxy": "http://env:1", "no_proxy": "*"}
    assert Egress(trust_env=False, environ=env).proxy_for("https", "h") is None
    assert Egress(proxy=PROXY, trust_env=False, environ=env).proxy_for("https", "h") == PROXY


def test_no_proxy_at_all_means_direct() -> None:
    assert Egress().proxy_for("https", "api.partner.example") is None
