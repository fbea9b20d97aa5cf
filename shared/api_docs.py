"""The API reference pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), with their scripts, styles and icon
served by the service itself from the ``fastapi-offline`` wheel instead of a CDN: they work on a machine that
reaches nothing but the service (an air-gapped desk, a laptop offline). Install on an app created with
``docs_url=None, redoc_url=None``."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(str(files("fastapi_offline") / "static"))
ASSETS_URL = "/docs-assets"
# persistAuthorization: the key given to Authorize survives a reload. validatorUrl None: Swagger UI would
# otherwise show a badge fetched from validator.swagger.io for any host but localhost.
SWAGGER_UI = {"persistAuthorization": True, "validatorUrl": None, "displayRequestDuration": True}


# Each page's asset parameters (fastapi.openapi.docs) and the files of the wheel they point at.
SWAGGER_UI_ASSETS = {
    "swagger_js_url": "swagger-ui-bundle.js",
    "swagger_css_url": "swagger-ui.css",
    "swagger_favicon_url": "favicon.png",
}
REDOC_ASSETS = {"redoc_js_url": "redoc.standalone.js", "redoc_favicon_url": "favicon.png"}


def install(app: FastAPI) -> None:
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    def page(
        request: Request, render: Callable[..., HTMLResponse], assets: dict[str, str], **options: Any
    ) -> HTMLResponse:
        """``render``'s page with the spec's and the assets' URLs under the root path (a proxy's prefix)."""
        root = request.scope.get("root_path", "")
        urls = {parameter: f"{root}{ASSETS_URL}/{name}" for parameter, name in assets.items()}
        return render(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API reference", **urls, **options)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return page(request, get_swagger_ui_html, SWAGGER_UI_ASSETS, swagger_ui_parameters=SWAGGER_UI)

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return page(request, get_redoc_html, REDOC_ASSETS, with_google_fonts=False)
