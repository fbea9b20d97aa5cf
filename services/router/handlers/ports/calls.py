"""Phone calls: which conversation a call is on, what voice work an agent is given, who to call back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from services.router.handlers.ports.records import CallConversation, VoiceRequest, WaitingCall


class Calls(Protocol):
    async def conversations_of_calls(self, calls: Iterable[tuple[str, str]]) -> dict[tuple[str, str], CallConversation]:
        """(tenant, call sid) → the conversation the call came in on, so its progress events join it."""
        ...

    async def with_voicemail(self, calls: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (tenant, call sid) whose caller left a voicemail: hanging up after it is not abandoning."""
        ...

    async def last_written_channels(self, keys: Sequence[tuple[str, str]]) -> dict[str, str]:
        """(tenant, conversation id) → by conversation id: the channel each customer last wrote on other than the
        phone: a finished call hands the conversation back to it."""
        ...

    async def waiting(self, tenant_id: str, conversation_ids: Iterable[str]) -> list[WaitingCall]:
        """Those of these conversations still open, with since when the caller waits."""
        ...

    async def mark_abandoned(self, tenant_id: str, conversation_ids: Sequence[str], note: str, now: datetime) -> None:
        """Resolve these conversations of the tenant as abandoned (kept apart for the KPIs: abandonment rate)."""
        ...

    async def latest_requests(self, keys: Iterable[tuple[str, str]]) -> list[VoiceRequest]:
        """Each (tenant, conversation id)'s latest voice request from the customer (a call, a callback request, a
        voicemail), not the call-log lines: it says what the agent is to do."""
        ...

    async def phone_identities(self, keys: Iterable[tuple[str, str]]) -> dict[str, str]:
        """(tenant, customer id) → by customer id: a phone number identity of theirs."""
        ...

    async def profile_phones(self, keys: Iterable[tuple[str, str]]) -> dict[str, str | None]:
        """(tenant, customer id) → by customer id: the phone on their profile: a number they gave (an unverified
        claim) is kept there, not as an identity."""
        ...

    async def voice_endpoints(self, keys: Iterable[tuple[str, str]]) -> dict[str, str | None]:
        """(tenant, agent id) → by agent id: the endpoint their calls are put through to, when they set one."""
        ...
