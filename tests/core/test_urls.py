"""Addresses shown to admins: no credentials; plain http:// to another host is flagged."""

from __future__ import annotations

import pytest

from utils.core.urls import display_url, is_cleartext_remote


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://openrouter.ai/api", "https://openrouter.ai/api"),
        ("https://u:p@gw.example:8443/api?key=sk-x#frag", "https://gw.example:8443/api"),
        ("http://user@[::1]:8080/v1", "http://[::1]:8080/v1"),
        ("https://gw.example:port/api", "https://gw.example/api"),
    ],
)
def test_display_url_drops_userinfo_query_and_fragment(url, shown):
    assert display_url(url) == shown


@pytest.mark.parametrize(
    ("url", "cleartext"),
    [
        ("http://gateway.example/api", True),
        ("http://10.0.0.7:4000/api", True),
        ("HTTP://gateway.example/api", True),
        ("https://gateway.example/api", False),
        ("http://localhost:4000/api", False),
        ("http://127.0.0.5/api", False),
        ("http://[::1]/api", False),
        ("http://gw.localhost/api", False),
    ],
)
def test_cleartext_to_another_host(url, cleartext):
    assert is_cleartext_remote(url) is cleartext
