"""``service_url``: where an exporter's secrets may go — https, or plain http to a loopback sandbox."""

from __future__ import annotations

import pytest

from daemon.plugins import SettingsError, service_url


@pytest.mark.parametrize(("url", "expected"), [
    ("https://start.exactonline.be/", "https://start.exactonline.be"),
    ("http://127.0.0.1:8791", "http://127.0.0.1:8791"),
    ("http://localhost:8791/ws/", "http://localhost:8791/ws"),
    ("http://[::1]:8791", "http://[::1]:8791"),
])
def test_accepted(url: str, expected: str) -> None:
    assert service_url(url, exporter="yuki", carrying="the access key only travels") == expected


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://example.be", "yuki: url must be an http(s) URL, got 'ftp://example.be'"),
    ("https://", "yuki: url must be an http(s) URL, got 'https://'"),
    ("http://example.be", "yuki: the access key only travels over https (http only to a loopback sandbox)"),
    ("http://10.0.0.1:80", "yuki: the access key only travels over https (http only to a loopback sandbox)"),
])
def test_refused_with_the_exporters_name(url: str, message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        service_url(url, exporter="yuki", carrying="the access key only travels")
    assert str(refused.value) == message
