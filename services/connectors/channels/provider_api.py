"""What the connectors that deliver through a provider's HTTP API share: one httpx client per process and
one reading of the provider's answer (network errors, 429 and 5xx are worth retrying; other 4xx are not)."""

from __future__ import annotations

from typing import Any

import httpx

from services.connectors.runtime import ConnectorRuntime, PermanentFailure, TransientFailure
from shared.settings import Settings


class ProviderApiConnector:
    broadcast_outbound = False
    provider = "provider"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime: ConnectorRuntime | None = None
        self.http: httpx.AsyncClient | None = None

    def base_url(self) -> str:
        raise NotImplementedError

    async def start(self, runtime: ConnectorRuntime) -> None:
        self.runtime = runtime
        self.http = httpx.AsyncClient(base_url=self.base_url(), timeout=10)

    async def stop(self) -> None:
        if self.http:
            await self.http.aclose()

    async def send(self, path: str, **request: Any) -> httpx.Response:
        """POST to the provider; a 2xx/3xx response, or the failure classified for the outbound loop."""
        assert self.http is not None
        try:
            response = await self.http.post(path, **request)
        except httpx.HTTPError as exc:
            raise TransientFailure(repr(exc)) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientFailure(f"{self.provider} {response.status_code}")
        if response.status_code >= 400:
            raise PermanentFailure(f"{self.provider} {response.status_code}: {response.text[:300]}")
        return response
