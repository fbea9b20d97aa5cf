"""The `switchboard` command: `dev`, `router`, `connector <name>`, `migrate`, `settings`, `simulate`, `history`,
`tenant create`, `desk apply`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import logging
import signal
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from pydantic import SecretStr

from services import dev_desk
from services.connectors import bootstrap as connector_bootstrap
from services.desk_as_code import cli as desk_cli
from services.router.adapters.db import history
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import DEMO_TENANT
from services.router.bootstrap import build_router
from services.router.entrypoints.http.app import create_app
from services.router.simulation import cli as simulation_cli
from shared.logging import configure_logging
from shared.memory import collect_less_often, freeze_startup_objects
from shared.settings import Settings
from shared.settings_doc import settings_markdown
from shared.store import Database
from shared.version import VERSION

log = logging.getLogger(__name__)

T = TypeVar("T")


def _banner(settings: Settings, key: str | None, kept_in: Path | None) -> str:
    """What `switchboard dev` prints once it serves. ``kept_in``: the file the key is kept in, None when it
    came from SWITCHBOARD_BOOTSTRAP_API_KEY (then the banner does not repeat it)."""
    base = f"http://{settings.http_host}:{settings.http_port}"
    shown = key if kept_in is not None else "<SWITCHBOARD_BOOTSTRAP_API_KEY>"
    kept = f"   (kept in {kept_in}; `switchboard dev --reset` starts afresh)" if kept_in is not None else ""
    bus = f"kafka {settings.kafka_bootstrap}" if settings.kafka_bootstrap else "in-process"
    store = settings.database_url.split("@")[-1]  # never print a password
    body = '{"customer": {"external_id": "u-42", "name": "Sam"}, "text": "Hello!"}'
    return f"""
Switchboard {VERSION} demo desk (tenant '{DEMO_TENANT}') on {base}   bus: {bus}   store: {store}
  console:    {base}/console   (sign in with the key, pick Ada)
  demo page:  {base}/demo      (a shop page with the chat widget)
  API docs:   {base}/docs      (Authorize with the key; also {base}/redoc)
  export KEY={shown}{kept}
  watch Ada's feed:  curl -N -H "Authorization: Bearer $KEY" {base}/v1/agents/agent-ada/feed
  post a message:    curl -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
                       -d '{body}' {base}/v1/messages
"""


def _dev_settings(reset: bool) -> tuple[Settings, Path | None]:
    """The demo desk's settings, its admin key from SWITCHBOARD_BOOTSTRAP_API_KEY or else kept in the desk's key
    file (returned, for the banner); ``reset`` first removes the desk's files."""
    settings = Settings(seed_demo=True)
    desk = dev_desk.dev_desk(settings)
    if reset:
        for path in dev_desk.reset(desk, settings):
            print(f"removed {path}", flush=True)
    key_file = None
    if settings.bootstrap_api_key is None:
        key = dev_desk.bootstrap_key(desk)
        settings, key_file = settings.model_copy(update={"bootstrap_api_key": SecretStr(key)}), desk.key_file
    if settings.chat_token_secret is None:
        # the widget's visitor tokens outlive a restart, and the router can check them (its place in the queue):
        # a secret derived from the desk's key, the same for the chat connector and the router of this process
        assert settings.bootstrap_api_key is not None
        key = settings.bootstrap_api_key.get_secret_value()
        derived = hmac.new(key.encode(), b"switchboard chat token secret", hashlib.sha256).hexdigest()
        settings = settings.model_copy(update={"chat_token_secret": SecretStr(derived)})
    return settings, key_file


async def _serve(settings: Settings, *, demo: bool, key_file: Path | None = None) -> None:
    router = build_router(settings)
    app = create_app(router, manage_lifecycle=False)
    # In dev every connector runs in the same process, on the same bus, behind the same HTTP server.
    connectors = connector_bootstrap.build_runtime(settings, bus=router.bus) if demo else None
    if connectors is not None:
        connector_bootstrap.mount(app, connectors)
    await router.start()
    if connectors is not None:
        await connectors.start()
    if demo:
        print(_banner(settings, router.admin_key, key_file), flush=True)
    try:
        await _http(app, settings)
    finally:
        if connectors is not None:
            await connectors.stop()
        await router.stop()  # then the router drains: last batch committed, connections closed


async def _serve_connectors(settings: Settings, names: list[str]) -> None:
    runtime = connector_bootstrap.build_runtime(settings, names)
    app = connector_bootstrap.create_app(runtime, manage_lifecycle=False)
    await runtime.start()
    try:
        await _http(app, settings)
    finally:
        await runtime.stop()  # the reply in hand is delivered and committed before exit


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Runs ``main`` on uvloop when it is installed (uvicorn[standard] brings it on Linux): the event loop's own
    cost is paid by every message and request, and uvloop's is a fraction of asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop wheels
        return asyncio.run(_with_task_dump(main))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_with_task_dump(main))


async def _with_task_dump(main: Coroutine[Any, Any, T]) -> T:
    """``kill -USR1 <pid>`` logs where every task of the process waits (``process.tasks``): what an operator
    needs to see a stage that makes no progress and says nothing."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _log_tasks)
    return await main


def _log_tasks() -> None:
    for task in asyncio.all_tasks():
        where: list[str] = []
        awaited: Any = task.get_coro()
        while awaited is not None and len(where) < 40:  # the chain of awaits, outermost first
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
            if frame is not None:
                where.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
        log.warning("process.tasks", extra={"task": task.get_name(), "stack": where})


async def _http(app: Any, settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT; returns after in-flight requests finished."""
    server = _Server(
        uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_config=None, lifespan="off")
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_exit)
    freeze_startup_objects()  # started: what exists now lives as long as the process
    collect_less_often()
    await server.serve()


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its own shutdown, which would kill us before the router drained;
    we own the signals instead and exit 0 once everything is closed."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self) -> None:
        self.should_exit = True


async def _migrate(settings: Settings) -> None:
    db = Database.from_settings(settings)
    try:
        await upgrade(db)
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    parser.add_argument("--version", action="version", version=f"switchboard {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="everything in one process with the demo desk (embedded store and bus by default)")
    dev.add_argument(
        "--reset",
        action="store_true",
        help="start the demo desk afresh: remove its embedded database, its admin key and its attachments first",
    )
    sub.add_parser("router", help="the router service (HTTP API + consumers)")
    sub.add_parser("migrate", help="apply database migrations and exit")
    sub.add_parser("settings", help="print the settings reference (Markdown)")
    conn = sub.add_parser("connector", help="one or more channel connectors (webhooks, SMTP, IMAP, chat, outbound)")
    conn.add_argument(
        "names",
        nargs="+",
        choices=connector_bootstrap.ALL,
        metavar="name",
        help=f"one of: {', '.join(connector_bootstrap.ALL)}",
    )
    simulation_cli.add_parser(sub)
    history.add_parser(sub)
    desk_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "simulate":  # offline: needs no settings, no store, no bus
        return simulation_cli.run(args)
    if args.command == "history":  # reads the store only
        return history.run(args, Settings())
    if args.command in ("tenant", "desk"):  # the store only: create a tenant, apply a desk file
        return desk_cli.run(args, Settings())
    if args.command == "settings":
        print(settings_markdown(), end="")
        return 0

    key_file: Path | None = None
    if args.command == "dev":
        try:
            settings, key_file = _dev_settings(args.reset)
        except dev_desk.NotEmbedded as exc:
            parser.error(str(exc))
    else:
        settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    if args.command == "migrate":
        run_async(_migrate(settings))
        return 0
    if args.command == "connector":
        run_async(_serve_connectors(settings, args.names))
        return 0
    try:
        run_async(_serve(settings, demo=args.command == "dev", key_file=key_file))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
