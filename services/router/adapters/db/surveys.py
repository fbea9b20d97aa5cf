"""Satisfaction surveys (the ``SurveyRecords`` port): sent on resolve, answered by a link's token or by a
number the customer sends back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import bindparam, select, tuple_

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows
from services.router.adapters.db.repository import SqlRepository
from services.router.adapters.db.statements import rows_in, update_by_id
from services.router.handlers.ports.records import (
    NewSurvey,
    SentSurvey,
    SurveyAnswer,
    SurveyedConversation,
    fields_of,
)


class SqlSurveys(SqlRepository):
    """Surveys of one transaction."""

    async def surveyed_conversations(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], SurveyedConversation]:
        c = t.conversations.c
        query = select(c.tenant_id, c.id, c.customer_id, c.channel, c.agent_id)
        rows = await rows_in(self.conn, query, tuple_(c.tenant_id, c.id), keys)
        return {(r.tenant_id, r.id): SurveyedConversation(r.customer_id, r.channel, r.agent_id) for r in rows}

    async def add_surveys(self, surveys: Sequence[NewSurvey]) -> None:
        await insert_rows(self.conn, t.surveys, [fields_of(survey) for survey in surveys])

    async def survey_by_token(self, token: str) -> SentSurvey | None:
        s = t.surveys.c
        row = (
            await self.conn.execute(
                select(s.id, s.tenant_id, s.conversation_id, s.customer_id, s.kind, s.answered_at).where(
                    s.token == token
                )
            )
        ).first()
        return SentSurvey(*row) if row else None

    async def latest_open_surveys(self, keys: Iterable[tuple[str, str]], sent_since: datetime) -> dict[str, SentSurvey]:
        s = t.surveys.c
        open_ = (
            select(s.id, s.tenant_id, s.conversation_id, s.customer_id, s.kind, s.answered_at)
            .where(s.answered_at.is_(None), s.sent_at >= sent_since)
            .order_by(s.sent_at)
        )
        rows = await rows_in(self.conn, open_, tuple_(s.tenant_id, s.customer_id), keys)
        return {r.customer_id: SentSurvey(*r) for r in rows}  # in sending order: the latest wins

    async def record_answers(self, answers: Sequence[SurveyAnswer], now: datetime) -> None:
        await update_by_id(
            self.conn,
            t.surveys,
            [
                dict(b_tenant_id=a.tenant_id, b_id=a.survey_id, b_score=a.score, b_comment=a.comment, b_at=now)
                for a in answers
            ],
            score=bindparam("b_score"),
            comment=bindparam("b_comment"),
            answered_at=bindparam("b_at"),
        )
