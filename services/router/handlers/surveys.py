"""Customer feedback: on resolve, a CSAT (or NPS, CES) question goes out on the customer's channel — a rating
card in web chat, a link in email, a "reply with a number" text on SMS and social — and the answer is stored
on the conversation. Answers arrive by the link (``POST /v1/surveys/{token}``, the token is the credential)
or as a bare number the customer sends back on a messaging channel (in-app included), which answers the survey
instead of reopening the conversation. A survey that cannot go out (consent withdrawn for the channel, no
connector for it, no address there) is skipped, and the timeline says why."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.router.domain.consent import ConsentWithdrawn, Purpose
from services.router.domain.errors import DomainError, InvalidCommand, NotFound
from services.router.handlers.ports import Clock, Store, UnitOfWork
from services.router.handlers.ports.records import NewSurvey, SentSurvey, SurveyAnswer, SurveyedConversation
from services.router.handlers.replies import ReplyCommands, Send
from shared.events import Channel
from shared.ids import new_id
from shared.outbound import SurveyCard
from shared.topics import OUTBOUND_CHANNELS

SCALES: dict[str, tuple[int, int]] = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
QUESTIONS: dict[str, str] = {
    "csat": "How would you rate the help you received, from 1 (poor) to 5 (excellent)?",
    "nps": "How likely are you to recommend us to a friend or colleague, from 0 (not at all) to 10 (extremely)?",
    "ces": "How easy was it to get your issue handled, from 1 (very difficult) to 7 (very easy)?",
}
# A number alone (optionally with a few words after it: "5 thanks!") answers an open survey.
_ANSWER = re.compile(r"^\s*(\d{1,2})\s*(?:[/.,!:-]\s*)?(.{0,500})$", re.DOTALL)
ANSWER_WINDOW = timedelta(days=7)
# where a customer answers by sending a number back
TEXT_CHANNELS = frozenset(
    c.value
    for c in (
        Channel.SMS,
        Channel.WHATSAPP,
        Channel.MESSENGER,
        Channel.INSTAGRAM,
        Channel.TELEGRAM,
        Channel.CHAT,
        Channel.IN_APP,
    )
)


@dataclass(frozen=True, slots=True)
class Answer:
    survey_id: str
    conversation_id: str
    score: int
    comment: str | None


class Surveys:
    def __init__(self, store: Store, clock: Clock, replies: ReplyCommands, public_url: str | None) -> None:
        self.store = store
        self.clock = clock
        self.replies = replies
        self.public_url = (public_url or "").rstrip("/")

    async def send_many(self, u: UnitOfWork, wanted: Sequence[tuple[str, str, str]], now: datetime) -> None:
        """Ask each (tenant, conversation, kind) question on the channel the customer last used, all in one write
        per table whatever the number of tenants. One that cannot go there is not asked, and the timeline records
        why."""
        conversations = await u.surveys.surveyed_conversations([(tenant_id, cid) for tenant_id, cid, _ in wanted])
        skipped: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}  # tenant → its timeline notes
        planned: list[tuple[str, str, str, str, SurveyedConversation]] = []  # tenant, conversation, kind, token, facts
        sends: list[tuple[str, Send]] = []
        for tenant_id, conversation_id, kind in wanted:
            conv = conversations.get((tenant_id, conversation_id))
            if conv is None:
                continue
            if conv.channel not in OUTBOUND_CHANNELS:
                why = {"kind": kind, "channel": conv.channel, "reason": "no_connector"}
                skipped.setdefault(tenant_id, []).append((conversation_id, "survey_skipped", why))
                continue
            token = secrets.token_urlsafe(24)
            channel = Channel(conv.channel)
            card, text = self._question(kind, token, channel)
            planned.append((tenant_id, conversation_id, kind, token, conv))
            sends.append((tenant_id, Send(conversation_id, text, channel, "survey", card, Purpose.SURVEY)))
        surveys: list[NewSurvey] = []
        outcomes = await self.replies.send_many(u, sends, now)
        for (tenant_id, conversation_id, kind, token, conv), outcome in zip(planned, outcomes, strict=True):
            if isinstance(outcome, ConsentWithdrawn):
                refused = {**outcome.refusal.timeline_data(), "kind": kind}
                skipped.setdefault(tenant_id, []).append((conversation_id, "survey_skipped", refused))
            elif isinstance(outcome, InvalidCommand):  # no address on that channel: no survey rather than no resolve
                unreachable = {"kind": kind, "channel": conv.channel, "reason": "unreachable"}
                skipped.setdefault(tenant_id, []).append((conversation_id, "survey_skipped", unreachable))
            elif isinstance(outcome, DomainError):
                raise outcome
            else:
                surveys.append(
                    NewSurvey(
                        id=new_id(),
                        tenant_id=tenant_id,
                        conversation_id=conversation_id,
                        customer_id=conv.customer_id,
                        agent_id=conv.agent_id,
                        kind=kind,
                        channel=conv.channel,
                        token=token,
                        sent_at=now,
                    )
                )
        if surveys:
            await u.surveys.add_surveys(surveys)
        if skipped:
            await u.conversations.add_conversation_notes(skipped, now)

    def _question(self, kind: str, token: str, channel: Channel) -> tuple[SurveyCard, str]:
        """The card and the text a survey of ``kind`` goes out as on ``channel``."""
        lo, hi = SCALES[kind]
        url = f"{self.public_url}/survey/{token}" if self.public_url else None
        question = QUESTIONS[kind]
        if channel is Channel.EMAIL:
            text = f"{question}\n\nAnswer here: {url or '/survey/' + token}"
        elif channel is Channel.CHAT:
            text = question
        else:
            text = f"{question} Reply with a number from {lo} to {hi}."
        return SurveyCard(token=token, kind=kind, question=question, min=lo, max=hi, answer_url=url), text

    async def find(self, token: str) -> SentSurvey:
        """The survey a link's token names (404 if none), for its answer page."""
        async with self.store.reading() as r:
            row = await r.surveys.survey_by_token(token)
        if row is None:
            raise NotFound("no such survey")
        return row

    async def answer(self, token: str, score: int, comment: str | None) -> dict[str, Any]:
        """The customer's answer: 404 unknown token, ``InvalidScore`` off the scale, 409 answered already."""
        async with self.store.unit() as u:
            row = await u.surveys.survey_by_token(token)
            if row is None:
                raise NotFound("no such survey")
            lo, hi = SCALES[row.kind]
            if not lo <= score <= hi:
                raise InvalidScore(f"{row.kind} scores go from {lo} to {hi}")
            if row.answered_at is not None:
                raise InvalidCommand("this survey was already answered")
            await u.surveys.record_answers([SurveyAnswer(row.tenant_id, row.id, score, comment or None)], self.clock())
        return {"survey_id": row.id, "kind": row.kind, "score": score, "conversation_id": row.conversation_id}

    async def match_replies(
        self, u: UnitOfWork, items: Sequence[tuple[str, str, str, str]], now: datetime
    ) -> dict[int, Answer]:
        """``items``: (tenant, channel, customer id, text) of inbound messages. Those that are a score for the
        customer's latest open survey (sent within a week) answer it: index → the answer."""
        candidates: dict[int, tuple[str, str, int, str | None]] = {}
        for n, (tenant_id, channel, customer_id, text) in enumerate(items):
            if channel not in TEXT_CHANNELS:
                continue
            match = _ANSWER.match(text)
            if match:
                candidates[n] = (tenant_id, customer_id, int(match.group(1)), match.group(2).strip() or None)
        if not candidates:
            return {}
        customers = {(tenant_id, c) for tenant_id, c, _, _ in candidates.values()}
        open_survey = await u.surveys.latest_open_surveys(customers, now - ANSWER_WINDOW)
        out: dict[int, Answer] = {}
        answers: list[SurveyAnswer] = []
        for n, (_, customer_id, score, comment) in candidates.items():
            survey = open_survey.get(customer_id)
            if survey is None or any(a.survey_id == survey.id for a in out.values()):
                continue
            lo, hi = SCALES[survey.kind]
            if lo <= score <= hi:
                out[n] = Answer(survey.id, survey.conversation_id, score, comment)
                answers.append(SurveyAnswer(survey.tenant_id, survey.id, score, comment))
        await u.surveys.record_answers(answers, now)
        return out


class InvalidScore(ValueError):
    pass
