"""Satisfaction surveys (CSAT, NPS, CES): sent on resolve, answered by a link's token or by a number the
customer sends back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from services.router.handlers.ports.records import NewSurvey, SentSurvey, SurveyAnswer, SurveyedConversation


class SurveyRecords(Protocol):
    async def surveyed_conversations(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], SurveyedConversation]:
        """Who a survey on each (tenant, conversation) goes to and which agent it rates, for any number of
        tenants at once; a conversation its tenant does not have is left out."""
        ...

    async def add_surveys(self, surveys: Sequence[NewSurvey]) -> None:
        """In one write."""
        ...

    async def survey_by_token(self, token: str) -> SentSurvey | None:
        """The survey an answer link opens: the token is the only credential, so it is looked up alone."""
        ...

    async def latest_open_surveys(self, keys: Iterable[tuple[str, str]], sent_since: datetime) -> dict[str, SentSurvey]:
        """(tenant, customer id) → by customer id: their latest unanswered survey sent since ``sent_since``: a
        bare number the customer sends answers that one, and an older survey has expired for that purpose."""
        ...

    async def record_answers(self, answers: Sequence[SurveyAnswer], now: datetime) -> None:
        """Store the scores and comments, answered now (one statement for the batch)."""
        ...
