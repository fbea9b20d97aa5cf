"""Satisfaction surveys (the ``SurveyRecords`` port): sent on resolve, answered by a link's token or by a
number the customer sends back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.handlers.ports.records import (
    NewSurvey,
    SentSurvey,
    SurveyAnswer,
    SurveyedConversation,
    fields_of,
)


class SqlSurveys:
    """Surveys of one transaction."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    async def surveyed_conversation(self, tenant_id: str, conversation_id: str) -> SurveyedConversation | None:
        """Who a survey on the conversation goes to and which agent it rates. None if the tenant has no such
        conversation."""
        c = t.conversations.c
        row = (
            await self.conn.execute(
                select(c.customer_id, c.channel, c.agent_id).where(c.tenant_id == tenant_id, c.id == conversation_id)
            )
        ).first()
        return SurveyedConversation(row.customer_id, row.channel, row.agent_id) if row else None

    async def add_survey(self, survey: NewSurvey) -> None:
        await self.conn.execute(insert(t.surveys).values(**fields_of(survey)))

    async def survey_by_token(self, token: str) -> SentSurvey | None:
        """The survey an answer link opens: the token is the only credential, so it is looked up alone."""
        s = t.surveys.c
        row = (
            await self.conn.execute(
                select(s.id, s.tenant_id, s.conversation_id, s.customer_id, s.kind, s.answered_at).where(
                    s.token == token
                )
            )
        ).first()
        return SentSurvey(*row) if row else None

    async def latest_open_surveys(self, customer_ids: Iterable[str], sent_since: datetime) -> dict[str, SentSurvey]:
        """customer id → their latest unanswered survey sent since ``sent_since``: a bare number the customer
        sends answers that one, and an older survey has expired for that purpose."""
        ids = list(set(customer_ids))
        if not ids:
            return {}
        s = t.surveys.c
        rows = await self.conn.execute(
            select(s.id, s.tenant_id, s.conversation_id, s.customer_id, s.kind, s.answered_at)
            .where(s.customer_id.in_(ids), s.answered_at.is_(None), s.sent_at >= sent_since)
            .order_by(s.sent_at)
        )
        return {r.customer_id: SentSurvey(*r) for r in rows}  # in sending order: the latest wins

    async def record_answers(self, answers: Sequence[SurveyAnswer], now: datetime) -> None:
        """Store the scores and comments, answered now (one statement for the batch)."""
        if not answers:
            return
        s = t.surveys.c
        await self.conn.execute(
            update(t.surveys)
            .where(s.id == bindparam("b_id"))
            .values(score=bindparam("b_score"), comment=bindparam("b_comment"), answered_at=bindparam("b_at")),
            [dict(b_id=a.survey_id, b_score=a.score, b_comment=a.comment, b_at=now) for a in answers],
        )
