"""The reference agent console (``/console``) and the chat widget's demo page (``/demo``), static files
served by the router so that `make run` shows the whole loop in a browser."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).resolve().parents[2] / "web"


def install(app: FastAPI) -> None:
    app.mount("/web", StaticFiles(directory=WEB), name="web")

    @app.get("/console", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(WEB / "console.html")

    @app.get("/demo", include_in_schema=False)
    async def demo() -> FileResponse:
        return FileResponse(WEB / "demo.html")
