"""/docs and /redoc name no outside address: their pages and scripts come from this server
(the browser tests in tests/browser also watch the requests a real browser makes)."""

from __future__ import annotations

import re
from typing import Any

import pytest

OUTSIDE = re.compile(rb"""(?:src|href)=["']?(https?:)?//""")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(api_client: Any, path: str) -> None:
    page = api_client.get(path)
    assert page.status_code == 200
    assert not OUTSIDE.search(page.content), page.text
    for asset in re.findall(r"""(?:src|href)=["']?(/[^"' >]+)""", page.text):
        assert api_client.get(asset).status_code == 200, asset


def test_redoc_bundle_has_no_cdn_logo(api_client: Any) -> None:
    bundle = api_client.get("/docs-assets/redoc.standalone.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert b"cdn.redoc.ly" not in bundle.content
