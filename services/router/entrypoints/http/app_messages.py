"""The desk's answers for an app that has no backend to receive them (``docs/in-app.md``): the app asks with
its user's ``external_id`` and ``user_hash`` (the same signature ``POST /v1/messages`` trusts) and a cursor, and
gets what was sent to that user since, oldest first. Keeping the cursor makes the feed resumable: an app that
was closed for a week picks up where it stopped, and nothing is listed twice."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from services.router.adapters.views.app_messages import app_messages
from services.router.entrypoints.http.deps import RouterDep
from shared import app_identity

router = APIRouter(tags=["in-app"])


class AppMessage(BaseModel):
    id: str
    conversation_id: str
    text: str
    automated: bool = Field(description="Sent by the desk on its own (acknowledgement, survey, follow-up).")
    status: str | None = Field(None, description="queued, sent, delivered or failed (at the app's backend).")
    created_at: datetime


class AppMessages(BaseModel):
    items: list[AppMessage]
    cursor: int = Field(description="Pass as `after` next time; the same when nothing new came.")


@router.get("/v1/in-app/messages", response_model=AppMessages)
async def in_app_messages(
    router_: RouterDep,
    tenant: Annotated[str, Query(min_length=1, max_length=64)],
    external_id: Annotated[str, Query(min_length=1, max_length=512)],
    user_hash: Annotated[str, Query(pattern="^[0-9a-fA-F]{64}$")],
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AppMessages:
    """The replies to one in-app user after the cursor `after` (0: from the start), oldest first. No API key:
    `user_hash` (hex HMAC-SHA256 of `external_id` keyed with SWITCHBOARD_INAPP_IDENTITY_SECRET, made by the app's
    backend) is the credential. 403 for a hash that does not match; 404 when in-app identity verification is not
    set up (no secret). A message is listed about 2 seconds after it was written."""
    secret = router_.settings.inapp_identity_secret
    if secret is None:
        raise HTTPException(404, "In-app identity verification is not set up (SWITCHBOARD_INAPP_IDENTITY_SECRET).")
    if not app_identity.signed(secret.get_secret_value(), external_id, user_hash):
        raise HTTPException(403, "user_hash does not match external_id.")
    async with router_.repo.reader() as conn:
        rows = await app_messages(conn, tenant, external_id, after, limit, router_.clock())
    items = [
        AppMessage(
            id=r["id"],
            conversation_id=r["conversation_id"],
            text=r["text"],
            automated=r["author"] == "system",
            status=r["status"],
            created_at=r["created_at"],
        )
        for r in rows
    ]
    return AppMessages(items=items, cursor=rows[-1]["seq"] if rows else after)
