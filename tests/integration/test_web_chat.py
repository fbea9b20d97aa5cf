"""Web chat over a real WebSocket client: send, disconnect, reconnect, and get the agent's reply exactly once."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import websockets

from services.router.adapters.views import queries
from shared.events import Channel
from tests.support.runtime import conversation_of, wait_for
from tests.support.system import system


async def recv(ws: Any, wait_s: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), wait_s))


async def nothing_more(ws: Any, seconds: float = 0.7) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), seconds)


@pytest.mark.parametrize("shape", ["embedded", "production"])
async def test_chat_message_reply_while_away_and_resume_delivers_each_reply_exactly_once(
    shape: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    servers = request.getfixturevalue("servers") if shape == "production" else None
    async with system(shape, tmp_path, servers, names=("chat",)) as s:
        url = s.base.replace("http://", "ws://") + "/chat/ws"
        async with websockets.connect(url) as ws:
            welcome = await recv(ws)
            token = welcome["visitor_token"]
            visitor = token.rpartition(".")[0]
            first_id = str(uuid.uuid4())
            await ws.send(
                json.dumps(
                    {
                        "type": "message",
                        "id": first_id,
                        "text": "Hi, I need help",
                        "name": "Robin",
                        "email": "robin@example.com",
                    }
                )
            )
            assert await recv(ws) == {"type": "ack", "id": first_id}
            conv = await wait_for(
                lambda: conversation_of(s.desk, s.connectors.event_id(Channel.CHAT, f"{visitor}:{first_id}"))
            )
            acknowledgement = await recv(ws)  # docs/acknowledgements.md
            assert acknowledgement["type"] == "reply" and acknowledgement["text"].startswith("Thank you")
            live = await s.desk.router.replies.reply(s.tenant, conv["id"], "Hello Robin!", None, "agent")
            got = await recv(ws)
            assert (got["type"], got["id"], got["text"]) == ("reply", live["message_id"], "Hello Robin!")
            # a resend of the same client message id after a flaky network is not a second message
            await ws.send(json.dumps({"type": "message", "id": first_id, "text": "Hi, I need help"}))
            assert await recv(ws) == {"type": "ack", "id": first_id}

        # away: the agent answers meanwhile
        away = await s.desk.router.replies.reply(s.tenant, conv["id"], "Are you still there?", None, "agent")
        await asyncio.sleep(0.5)
        async with websockets.connect(f"{url}?token={token}&last_seen={live['message_id']}") as ws:
            assert (await recv(ws))["visitor_token"] == token
            got = await recv(ws)
            assert (got["id"], got["text"]) == (away["message_id"], "Are you still there?")
            await nothing_more(ws)
        async with websockets.connect(f"{url}?token={token}&last_seen={away['message_id']}") as ws:
            await recv(ws)
            await nothing_more(ws)

        stored = await conversation_of(s.desk, s.connectors.event_id(Channel.CHAT, f"{visitor}:{first_id}"))
        assert stored is not None
        assert [m["text"] for m in stored["messages"] if m["direction"] == "inbound"] == ["Hi, I need help"]
        statuses = await wait_for(lambda: _statuses(s, conv["id"], {"delivered"}))
        assert statuses == ["delivered", "delivered", "delivered"]  # the acknowledgement and two replies


async def _statuses(s: Any, conversation_id: str, want: set[str]) -> list[str] | None:
    async with s.desk.router.repo.reader() as conn:
        found = await queries.conversation(conn, s.tenant, conversation_id)
    out = [m["status"] for m in found["messages"] if m["direction"] == "outbound"]
    return out if out and set(out) <= want else None


async def test_a_forged_visitor_token_is_refused(tmp_path: Path) -> None:
    async with system("embedded", tmp_path, names=("chat",)) as s:
        url = s.base.replace("http://", "ws://") + "/chat/ws?token=v-someone-else.0000"
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
