"""What handlers need from the world, as Protocols the adapters implement (``adapters/db``): a store that opens
units of work, each with one repository per aggregate. Handlers import these, never an adapter."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from services.router.handlers.ports.api_keys import ApiKeys
from services.router.handlers.ports.audit import Audit
from services.router.handlers.ports.calls import Calls
from services.router.handlers.ports.command_outcomes import CommandOutcomes
from services.router.handlers.ports.configuration import Configuration
from services.router.handlers.ports.connections import Connections
from services.router.handlers.ports.conversations import Conversations
from services.router.handlers.ports.customers import Customers
from services.router.handlers.ports.deadletters import DeadLetters
from services.router.handlers.ports.feeds import Feeds
from services.router.handlers.ports.follow_ups import FollowUps
from services.router.handlers.ports.outbox import Outbox
from services.router.handlers.ports.replies import Replies
from services.router.handlers.ports.routing import Routing
from services.router.handlers.ports.sla_timers import SlaTimers
from services.router.handlers.ports.surveys import SurveyRecords
from services.router.handlers.ports.webhook_deliveries import WebhookDeliveries

Clock = Callable[[], datetime]


class UnitOfWork(Protocol):
    """One transaction: every repository's work commits together, or none of it."""

    @property
    def customers(self) -> Customers: ...
    @property
    def conversations(self) -> Conversations: ...
    @property
    def routing(self) -> Routing: ...
    @property
    def feeds(self) -> Feeds: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def outcomes(self) -> CommandOutcomes: ...
    @property
    def deadletters(self) -> DeadLetters: ...
    @property
    def configuration(self) -> Configuration: ...
    @property
    def api_keys(self) -> ApiKeys: ...
    @property
    def audit(self) -> Audit: ...
    @property
    def replies(self) -> Replies: ...
    @property
    def surveys(self) -> SurveyRecords: ...
    @property
    def sla_timers(self) -> SlaTimers: ...
    @property
    def follow_ups(self) -> FollowUps: ...
    @property
    def calls(self) -> Calls: ...
    @property
    def connections(self) -> Connections: ...
    @property
    def webhook_deliveries(self) -> WebhookDeliveries: ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (never after a rollback)."""


class Store(Protocol):
    def unit(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work in a write transaction."""

    def reading(self, *, snapshot: bool = True) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work for reads only (no locks taken, nothing written). ``snapshot``: its reads see one state
        (a read-only transaction); without, each is a statement of its own and costs no round trip besides it."""
