"""``switchboard tenant create`` and ``switchboard desk apply`` (docs/desk-as-code.md).

    switchboard tenant create --id acme --name "Acme"        # prints the first admin API key, once
    switchboard desk apply -f desk.yaml --tenant acme --dry-run
    switchboard desk apply -f desk.yaml --tenant acme

Both work on the store at SWITCHBOARD_DATABASE_URL. Exit status: 0 done (or nothing to do), 1 the store failed
or refused a change, 2 bad input (the file, the arguments, a tenant that exists or does not)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from services.desk_as_code.desk_file import DeskFileError, read_desk
from services.desk_as_code.plan import Change, plan, render
from services.desk_as_code.store import DeskStore, TenantExists
from services.router.domain.errors import DomainError
from shared.command_line import documented_subcommand
from shared.settings import Settings

TENANT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # as a conversation event's tenant (shared/events.py)
DONE, FAILED, BAD_INPUT = 0, 1, 2


def add_parser(subparsers: Any) -> None:
    """Registers ``tenant create`` and ``desk apply`` on ``switchboard``'s subcommands; ``run`` runs the one
    parsed."""
    tenant = subparsers.add_parser("tenant", help="create a tenant with its first admin API key")
    tenant_commands = tenant.add_subparsers(dest="tenant_command", required=True)
    create = documented_subcommand(
        tenant_commands, "create", "a new tenant; prints its first admin API key once", __doc__
    )
    create.add_argument("--id", required=True, help="the tenant's id (letters, digits, _ . -; at most 64)")
    create.add_argument("--name", help="the tenant's display name (default: the id)")
    create.set_defaults(run=_create_tenant)

    desk = subparsers.add_parser("desk", help="apply a desk file: routing profiles, queues and agents as code")
    desk_commands = desk.add_subparsers(dest="desk_command", required=True)
    apply = documented_subcommand(
        desk_commands, "apply", "create or update what a desk file declares (docs/desk-as-code.md)", __doc__
    )
    apply.add_argument("-f", "--file", type=Path, required=True, help="the desk file (YAML)")
    apply.add_argument("--tenant", help="the tenant to apply it to (default: the file's `tenant`)")
    apply.add_argument("--dry-run", action="store_true", help="print what would change and write nothing")
    apply.set_defaults(run=_apply_desk)


def _create_tenant(args: argparse.Namespace, settings: Settings) -> int:
    tenant_id = args.id
    if not TENANT_ID.fullmatch(tenant_id):
        return _fail(f"--id: a tenant id is 1-64 letters, digits, '_', '.' or '-', not {args.id!r}", BAD_INPUT)
    name = args.name or tenant_id
    if not 1 <= len(name) <= 256:
        return _fail("--name: 1-256 characters", BAD_INPUT)

    async def create() -> str:
        async with DeskStore.opened(settings) as store:
            return await store.create_tenant(tenant_id, name)

    try:
        key = asyncio.run(create())
    except TenantExists:
        return _fail(f"tenant {tenant_id!r} exists already; its admins create more keys (POST /v1/api-keys)", BAD_INPUT)
    except (DBAPIError, OSError) as exc:
        return _store_failed(exc)
    print(key)
    print(
        f"tenant {tenant_id!r} created. Above: its first admin API key, shown this once (only its hash is kept).",
        file=sys.stderr,
    )
    return DONE


def _apply_desk(args: argparse.Namespace, settings: Settings) -> int:
    try:
        desk = read_desk(args.file.read_text(encoding="utf-8"))
    except OSError as exc:
        return _fail(f"{args.file}: {exc.strerror or exc}", BAD_INPUT)
    except DeskFileError as exc:
        return _fail(f"{args.file}: nothing applied:\n{_indented(exc)}", BAD_INPUT)
    tenant = args.tenant or desk.tenant
    if tenant is None:
        return _fail("give --tenant, or `tenant:` in the file", BAD_INPUT)

    async def apply() -> int:
        async with DeskStore.opened(settings) as store:
            if not await store.tenant_exists(tenant):
                return _fail(
                    f"no tenant {tenant!r}: create it first (switchboard tenant create --id {tenant})", BAD_INPUT
                )
            current = await store.current(tenant)
            try:
                todo = plan(desk, current, tenant)
            except DeskFileError as exc:
                return _fail(f"{args.file}: nothing applied:\n{_indented(exc)}", BAD_INPUT)
            if args.dry_run or not todo.writes:
                print(render(todo, dry_run=True))
                return DONE
            applied: list[Change] = []
            try:
                await store.apply(todo, current, applied.append)
            except DomainError as exc:
                done = "".join(f"\n  {c.action} {c.kind} {c.name!r}" for c in applied) or " none"
                return _fail(f"{exc} (refused by the store). Applied before it:{done}", FAILED)
            print(render(todo, dry_run=False))
            return DONE

    try:
        return asyncio.run(apply())
    except (DBAPIError, OSError) as exc:
        return _store_failed(exc)


def _fail(message: str, status: int) -> int:
    print(f"switchboard: {message}", file=sys.stderr)
    return status


def _store_failed(exc: Exception) -> int:
    """Unreachable or not migrated: said in one line, without a traceback."""
    return _fail(f"cannot use the store: {type(exc).__name__}: {exc}".splitlines()[0], FAILED)


def _indented(exc: DeskFileError) -> str:
    return "\n".join(f"  {line}" for line in str(exc).splitlines())


def run(args: argparse.Namespace, settings: Settings) -> int:
    result: int = args.run(args, settings)
    return result
