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

    async def with_voicemail(self, call_sids: Iterable[str]) -> set[str]:
        """The calls whose caller left a voicemail: hanging up after it is not abandoning."""
        ...

    async def last_written_channels(self, conversation_ids: Sequence[str]) -> dict[str, str]:
        """The channel each customer last wrote on other than the phone: a finished call hands the
        conversation back to it."""
        ...

    async def waiting(self, tenant_id: str, conversation_ids: Iterable[str]) -> list[WaitingCall]:
        """Those of these conversations still open, with since when the caller waits."""
        ...

    async def mark_abandoned(self, conversation_ids: Sequence[str], note: str, now: datetime) -> None:
        """Resolve these conversations as abandoned (kept apart for the KPIs: abandonment rate)."""
        ...

    async def latest_requests(self, conversation_ids: Iterable[str]) -> list[VoiceRequest]:
        """Each conversation's latest voice request from the customer (a call, a callback request, a
        voicemail), not the call-log lines: it says what the agent is to do."""
        ...

    async def phone_identities(self, customer_ids: Iterable[str]) -> dict[str, str]:
        """Customer id → a phone number identity of theirs."""
        ...

    async def profile_phones(self, customer_ids: Iterable[str]) -> dict[str, str | None]:
        """Customer id → the phone on their profile: a number they gave (an unverified claim) is kept there,
        not as an identity."""
        ...

    async def voice_endpoints(self, agent_ids: Iterable[str]) -> dict[str, str | None]:
        """Agent id → the endpoint their calls are put through to, when they set one."""
        ...
