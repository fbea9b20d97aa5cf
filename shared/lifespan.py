"""The lifespan of a service's FastAPI app: its runtime (consumers, relays, connectors) starts before the server
takes requests and stops after it has finished them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from fastapi import FastAPI


class Runtime(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def lifespan(runtime: Runtime, *, manage: bool = True) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """``manage=False``: whoever built the app starts and stops the runtime itself (tests, embedded use)."""

    @asynccontextmanager
    async def running(_: FastAPI) -> AsyncIterator[None]:
        if manage:
            await runtime.start()
        try:
            yield
        finally:
            if manage:
                await runtime.stop()

    return running
