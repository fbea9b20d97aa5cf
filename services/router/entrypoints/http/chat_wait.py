"""The chat widget asks where its visitor stands while no agent has answered yet: place in the queue, expected
wait, and when the queue opens if it is closed. The visitor token the chat connector issued is the only
credential (as a survey's token is), so the answer is about that visitor's own conversation and nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from services.router.adapters.views.chat_wait import visitor_wait
from services.router.entrypoints.http.deps import RouterDep
from shared import chat_tokens

router = APIRouter(tags=["widget"])


class ChatWait(BaseModel):
    state: Literal["none", "waiting", "with_agent"] = Field(
        description="none: no open conversation; waiting: for an agent; with_agent: an agent has it."
    )
    position: int | None = Field(None, description="Place in the queue's serving order, 1 next.")
    waiting: int | None = Field(None, description="How many wait in the queue, the visitor included.")
    expected_wait_s: int | None = Field(
        None, description="Expected wait: place x average handle time / agents online; none when it cannot be told."
    )
    queue_open: bool | None = None
    opens_at: datetime | None = Field(None, description="When a closed queue opens (UTC).")


@router.get("/v1/chat/wait", response_model=ChatWait, response_model_exclude_none=True)
async def chat_wait(
    router_: RouterDep,
    token: Annotated[str, Query(min_length=3, max_length=600, description="The visitor token of the chat widget.")],
) -> ChatWait:
    """Where a web-chat visitor stands (the widget polls it while waiting). Chat traffic belongs to the tenant
    SWITCHBOARD_CONNECTOR_TENANT, as at the chat connector. 401 for a token the chat secret did not sign; 404
    when web chat is not set up (no SWITCHBOARD_CHAT_TOKEN_SECRET)."""
    secret = router_.settings.chat_token_secret
    if secret is None:
        raise HTTPException(404, "Web chat is not set up here (SWITCHBOARD_CHAT_TOKEN_SECRET is not set).")
    visitor = chat_tokens.visitor_of(secret.get_secret_value().encode(), token)
    if visitor is None:
        raise HTTPException(401, "Not a visitor token of this desk.")
    async with router_.repo.reader() as conn:
        wait = await visitor_wait(conn, router_.settings.connector_tenant, visitor, router_.clock())
    return ChatWait(**wait)
