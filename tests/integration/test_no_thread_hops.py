"""Every endpoint and every dependency of the router's and the connectors' HTTP APIs is a coroutine. FastAPI runs
a plain function on a worker thread, a thread hop on every request that calls it (on the ingest path it was
the largest single cost after the framework's own)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from services.connectors.bootstrap import build_runtime
from services.connectors.bootstrap import create_app as connectors_app
from services.router.bootstrap import build_router
from services.router.entrypoints.http.app import create_app as router_app
from shared.bus_memory import MemoryBus
from tests.support.runtime import settings_for
from tests.support.system import SECRETS


def runs_on_the_loop(call: Callable[..., Any]) -> bool:
    """A coroutine function, or an object whose ``__call__`` is one (FastAPI's security schemes)."""
    if inspect.iscoroutinefunction(call):
        return True
    return not inspect.isfunction(call) and inspect.iscoroutinefunction(type(call).__call__)


def calls(app: FastAPI) -> Iterator[tuple[str, Callable[..., Any]]]:
    """(route, callable) of each endpoint and dependency, nested ones and those of included routers too."""
    routes: list[Any] = list(app.routes)
    while routes:
        route = routes.pop()
        if hasattr(route, "original_router"):  # an included APIRouter, kept whole since FastAPI 0.16x
            routes.extend(route.original_router.routes)
            continue
        if not isinstance(route, APIRoute):
            continue
        stack = [route.dependant]
        while stack:
            dependant = stack.pop()
            if dependant.call is not None:
                yield f"{sorted(route.methods)[0]} {route.path}", dependant.call
            stack.extend(dependant.dependencies)


def threaded(app: FastAPI) -> list[str]:
    return sorted(
        {f"{where}: {getattr(call, '__qualname__', call)}" for where, call in calls(app) if not runs_on_the_loop(call)}
    )


def test_no_route_of_the_router_runs_a_plain_function(tmp_path: Path) -> None:
    app = router_app(build_router(settings_for("embedded", tmp_path), bus=MemoryBus()), manage_lifecycle=False)
    assert len(list(calls(app))) > 100
    assert threaded(app) == []


def test_no_route_of_the_connectors_runs_a_plain_function(tmp_path: Path) -> None:
    settings = settings_for("embedded", tmp_path, **SECRETS)
    app = connectors_app(build_runtime(settings, bus=MemoryBus()), manage_lifecycle=False)  # every connector
    assert len(list(calls(app))) > 10
    assert threaded(app) == []


def test_a_plain_dependency_is_found() -> None:
    def plain() -> None: ...

    async def coroutine() -> None: ...

    class Scheme:
        async def __call__(self) -> None: ...

    assert not runs_on_the_loop(plain)
    assert runs_on_the_loop(coroutine) and runs_on_the_loop(Scheme())
