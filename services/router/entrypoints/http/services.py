"""What the HTTP layer needs of the running router, as a Protocol: the composition root (``bootstrap.py``)
provides it, and routes depend on this, never on the root itself (it sits above them)."""

from __future__ import annotations

from typing import Protocol

from services.router.adapters.db.api_keys import KeyVerifier
from services.router.adapters.db.unit_of_work import SqlStore
from services.router.adapters.feeds import FeedHub
from services.router.adapters.jwt_tokens import JwtVerifier
from services.router.domain.rate_limits import RateLimiter
from services.router.handlers.access import AccessKeys
from services.router.handlers.audit import AuditLog
from services.router.handlers.command_log import RoutingCommandLog
from services.router.handlers.configuration import Configuration
from services.router.handlers.customer_commands import CustomerCommands
from services.router.handlers.deadletters import DeadLetters
from services.router.handlers.ingress import Ingress
from services.router.handlers.ports import Clock
from services.router.handlers.presence import PresenceWatch
from services.router.handlers.replies import ReplyCommands
from services.router.handlers.surveys import Surveys
from shared.settings import Settings


class Services(Protocol):
    # what routes read (views open plain read connections on the store)
    settings: Settings
    repo: SqlStore
    clock: Clock
    ready: bool

    # who may call (credentials, rate limits) and what they may see live
    keys: KeyVerifier
    tokens: JwtVerifier
    limiter: RateLimiter
    hub: FeedHub
    presence: PresenceWatch

    # the handlers every write goes through
    ingress: Ingress
    commands: RoutingCommandLog
    replies: ReplyCommands
    customers: CustomerCommands
    surveys: Surveys
    configuration: Configuration
    access: AccessKeys
    audit: AuditLog
    deadletters: DeadLetters

    async def start(self, *, consume_events: bool = True) -> None: ...

    async def stop(self) -> None: ...
