"""Customers answer satisfaction surveys: by the link in an email (a small HTML form), or by a client (the chat
widget's rating card) posting JSON. The token in the link is the only credential, as in every survey tool."""

from __future__ import annotations

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from services.router.domain.errors import InvalidCommand
from services.router.entrypoints.http.deps import RouterDep
from services.router.entrypoints.http.services import Services
from services.router.handlers.surveys import QUESTIONS, SCALES, InvalidScore

router = APIRouter(tags=["feedback"])
Token = Annotated[str, Field(min_length=16, max_length=64)]


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: Annotated[int, Field(ge=0, le=10)]
    comment: Annotated[str, Field(max_length=2_000)] | None = None


async def _answer(router_: Services, token: str, score: int, comment: str | None) -> dict[str, Any]:
    if comment is not None:  # the customer's words from a form post: cleaned of what PostgreSQL cannot store
        comment = comment.replace("\x00", "")
    try:
        return await router_.surveys.answer(token, score, comment)
    except InvalidScore as exc:
        raise InvalidCommand(str(exc)) from exc


@router.post("/v1/surveys/{token}")
async def answer_survey(token: str, body: AnswerIn, router_: RouterDep) -> dict[str, Any]:
    """Answer a survey (CSAT 1-5, NPS 0-10, CES 1-7). 404 unknown token, 409 answered already or off scale."""
    return await _answer(router_, token, body.score, body.comment)


@router.get("/survey/{token}", response_class=HTMLResponse, include_in_schema=False)
async def survey_page(token: str, router_: RouterDep) -> HTMLResponse:
    row = await router_.surveys.find(token)
    if row.answered_at is not None:
        return HTMLResponse(_page("<p>Thank you, we have your answer.</p>"))
    lo, hi = SCALES[row.kind]
    options = "".join(
        f'<label><input type="radio" name="score" value="{n}" required> {n}</label> ' for n in range(lo, hi + 1)
    )
    form = (
        f'<form method="post"><fieldset><legend>{escape(QUESTIONS[row.kind])}</legend>{options}</fieldset>'
        '<p><label for="comment">Anything to add?</label><br><textarea id="comment" name="comment" rows="4" '
        'maxlength="2000"></textarea></p><button type="submit">Send</button></form>'
    )
    return HTMLResponse(_page(form))


@router.post("/survey/{token}", response_class=HTMLResponse, include_in_schema=False)
async def survey_form(
    token: str, router_: RouterDep, score: Annotated[int, Form()], comment: Annotated[str | None, Form()] = None
) -> HTMLResponse:
    await _answer(router_, token, score, comment)
    return HTMLResponse(_page("<p>Thank you for your feedback.</p>"))


def _page(body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Your feedback</title>'
        "<style>body{font:16px system-ui;max-width:32rem;margin:2rem auto;padding:0 1rem}</style></head>"
        f"<body><h1>Your feedback</h1>{body}</body></html>"
    )
