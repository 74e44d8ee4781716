"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from local assets, so they work offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN: offline, or behind a firewall, /docs
was blank (issue #26 item 4). The scripts and styles come from the ``fastapi-offline``
package, which ships them (Swagger UI 5, ReDoc 2) and is pinned in pyproject.toml; the pages
themselves are FastAPI's, pointed at those files under ``ASSETS_URL``.

Both pages are served with a Content-Security-Policy that allows only this origin (inline
scripts and styles included, which the pages' bootstrap code and ReDoc's styling need, and
``blob:`` workers, which ReDoc's search uses). The bundles still name outside URLs (ReDoc's side
menu shows Redocly's logo from their CDN); under the policy the browser never requests them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ]
)


Page = Callable[[str, str, str], HTMLResponse]
"""A page from its OpenAPI URL, its title and the URL of the assets folder."""


def _serve(app: FastAPI, url: str, name: str, page: Page) -> None:
    """Serve ``page`` at ``url`` under the local-only policy. Behind a proxy that strips a
    prefix (``root_path``), the page's links carry the prefix back."""

    @app.get(url, include_in_schema=False, name=name)
    async def serve(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        html = page(f"{root}{app.openapi_url}", f"{app.title} - {name}", f"{root}{ASSETS_URL}")
        html.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return html


def install_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve the assets and both pages; create ``app`` with ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    oauth2_redirect_url = f"{docs_url}/oauth2-redirect"

    def swagger_ui(openapi_url: str, title: str, assets: str) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            oauth2_redirect_url=oauth2_redirect_url,
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            # a token typed into "Authorize" survives a reload of the page
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
        )

    def redoc(openapi_url: str, title: str, assets: str) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )

    def swagger_ui_redirect(_openapi_url: str, _title: str, _assets: str) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()  # links to nothing of ours

    _serve(app, docs_url, "Swagger UI", swagger_ui)
    _serve(app, oauth2_redirect_url, "Swagger UI OAuth2 redirect", swagger_ui_redirect)
    _serve(app, redoc_url, "ReDoc", redoc)
