"""ReDoc at /redoc without the internet. fastapi-offline serves Swagger UI's and ReDoc's assets
from its package (no CDN), but ReDoc's bundle still draws its sidebar logo from Redocly's CDN:
we serve that bundle with the logo address replaced by an empty image, so the page asks for
nothing outside the machine (tests/browser checks it for /docs, /redoc, /dashboard, /console)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, Response

ASSETS = Path(fastapi_offline.__file__).parent / "static"
REDOC_JS = "/docs-assets/redoc.standalone.js"  # not under fastapi-offline's mount
CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = b"data:image/gif;base64,R0lGODlhAQABAAAAACw="


@cache
def redoc_bundle() -> bytes:
    return (ASSETS / "redoc.standalone.js").read_bytes().replace(CDN_LOGO, EMPTY_IMAGE)


def install(app: FastAPI, *, path: str = "/redoc") -> None:
    """Add /redoc to an app built with `FastAPIOffline(redoc_url=None)`."""
    title = f"{app.title} - ReDoc"

    @app.get(REDOC_JS, include_in_schema=False)
    async def redoc_js() -> Response:
        return Response(
            redoc_bundle(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get(path, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            redoc_js_url=REDOC_JS,
            redoc_favicon_url="/static-offline-docs/favicon.png",
            with_google_fonts=False,
        )
