"""Acceptance: non-ASCII and non-hex values in every signature header, token and user_hash → 401/403, never 5xx.

Each value goes on the wire as a hostile client can send it (raw header bytes, form fields, query strings,
JSON) to every connector webhook, the chat socket, the in-app API's user_hash and both kinds of bearer
credential. Each endpoint answers what it documents: 401 when the proof is missing, 403 when it is wrong
(bearer credentials: 401 either way, RFC 6750 §3.1 ``invalid_token``), and nothing reaches the bus."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
import websockets
from twilio.request_validator import RequestValidator

from services.connectors.bootstrap import ALL
from shared.bus_memory import MemoryBus
from shared.webhook_signing import sign, verify
from tests.support.http import http_client
from tests.support.runtime import serving
from tests.support.system import SECRETS, System, system
from tests.unit.connectors.test_normalize import INSTAGRAM, MESSENGER, TG_MESSAGE, WHATSAPP

IDENTITY_SECRET = "inapp-identity-secret-for-tests"
JWT_SECRET = "jwt-secret-for-signature-input-tests-0123456789"

# What a hostile client can put where a signature, token or user_hash belongs.
ODD = [
    pytest.param("ù", id="non-ascii"),
    pytest.param("日本", id="non-ascii-cjk"),
    pytest.param("sha256=ù", id="non-ascii-after-prefix"),
    pytest.param("sha256=zz", id="non-hex-after-prefix"),
    pytest.param("zz", id="non-hex"),
    pytest.param("sha256=" + "0" * 63, id="hex-of-wrong-length"),
    pytest.param("", id="empty"),
    pytest.param("f" * 10_240, id="10kB"),
]
# Headers, forms and query strings can also carry bytes that are not UTF-8 at all.
ON_THE_WIRE = [*ODD, pytest.param(b"sha256=\xff\xfe", id="not-utf8")]
# The WebSocket handshake parser (websockets) refuses request and header lines over 8 KiB before any handler
# runs, so on sockets the long value is as long as a line can be.
ON_A_SOCKET = [p if p.id != "10kB" else pytest.param("f" * 7_000, id="7kB") for p in ON_THE_WIRE]

TWILIO_FORM = {
    "MessageSid": "SM" + "0" * 32,
    "CallSid": "CA" + "0" * 32,
    "AccountSid": SECRETS["twilio_account_sid"],
    "From": "+14155550100",
    "To": "+15550001111",
    "Body": "hello",
    "CallStatus": "ringing",
}
TWILIO_PATHS = [
    "/webhooks/twilio/sms",
    *(f"/webhooks/twilio/voice{p}" for p in ("", "/wait", "/queue-result", "/status", "/dial-result")),
    *(f"/webhooks/twilio/voice{p}" for p in ("/recording", "/transcription")),
]
EMAIL_TS, EMAIL_TOKEN = "1700000000", "tok-odd"
EMAIL_MIME = b"From: pat@example.com\r\nTo: support@acme.test\r\nSubject: odd\r\nMessage-ID: <odd@x>\r\n\r\nhi\r\n"


def wire(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


@pytest.fixture(scope="module")
async def switchboard(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    """One desk with every connector, in-app identity verification and JWT bearer tokens on."""
    tmp: Path = tmp_path_factory.mktemp("signature-inputs")
    async with system("embedded", tmp, names=ALL, inapp_identity_secret=IDENTITY_SECRET, jwt_secret=JWT_SECRET) as s:
        yield s


@pytest.fixture(scope="module")
async def router_base(switchboard: System) -> AsyncIterator[str]:
    async with serving(switchboard.desk.router) as base:
        yield base


def events_on_bus(s: System) -> int:
    assert isinstance(s.desk.bus, MemoryBus)
    return len(s.desk.bus.records(s.desk.router.topics.events))


@asynccontextmanager
async def nothing_ingested(s: System) -> AsyncIterator[None]:
    before = events_on_bus(s)
    yield
    assert events_on_bus(s) == before, "a refused request must not reach the bus"


async def post(base: str, path: str, **kwargs: Any) -> httpx.Response:
    async with http_client(base_url=base) as http:
        return await http.post(path, **kwargs)


def assert_refused(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, f"{r.status_code}: {r.text[:300]}"


# -- connectors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [WHATSAPP, MESSENGER, INSTAGRAM], ids=["whatsapp", "messenger", "instagram"])
@pytest.mark.parametrize("value", ON_THE_WIRE)
async def test_meta_webhook_refuses_any_odd_x_hub_signature_256(
    switchboard: System, payload: dict[str, Any], value: str | bytes
) -> None:
    headers = [(b"Content-Type", b"application/json"), (b"X-Hub-Signature-256", wire(value))]
    async with nothing_ingested(switchboard):
        r = await post(switchboard.base, "/webhooks/meta", content=orjson.dumps(payload), headers=headers)
    assert_refused(r, 401 if value == "" else 403)  # an empty header is a missing one


@pytest.mark.parametrize("value", ON_THE_WIRE)
async def test_meta_handshake_refuses_any_odd_verify_token_with_403(switchboard: System, value: str | bytes) -> None:
    query = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.verify_token": wire(value), "hub.challenge": "1"})
    async with http_client(base_url=switchboard.base) as http:
        r = await http.get(f"/webhooks/meta?{query}")
    assert_refused(r, 403)


@pytest.mark.parametrize("path", TWILIO_PATHS)
@pytest.mark.parametrize("value", ON_THE_WIRE)
async def test_twilio_sms_and_voice_webhooks_refuse_any_odd_x_twilio_signature_with_403(
    switchboard: System, path: str, value: str | bytes
) -> None:
    async with nothing_ingested(switchboard):
        r = await post(switchboard.base, path, data=TWILIO_FORM, headers=[(b"X-Twilio-Signature", wire(value))])
    assert_refused(r, 403)  # present but not Twilio's (401 is for no header at all)


@pytest.mark.parametrize("value", ON_THE_WIRE)
async def test_telegram_webhook_refuses_any_odd_secret_token_with_403(switchboard: System, value: str | bytes) -> None:
    headers = [(b"Content-Type", b"application/json"), (b"X-Telegram-Bot-Api-Secret-Token", wire(value))]
    async with nothing_ingested(switchboard):
        r = await post(switchboard.base, "/webhooks/telegram", content=orjson.dumps(TG_MESSAGE), headers=headers)
    assert_refused(r, 403)  # present but not ours (401 is for no header at all)


@pytest.mark.parametrize("field", ["signature", "timestamp", "token"])
@pytest.mark.parametrize("value", ON_THE_WIRE)
async def test_email_inbound_parse_webhook_refuses_any_odd_signature_timestamp_or_token(
    switchboard: System, field: str, value: str | bytes
) -> None:
    sig = hmac.new(
        SECRETS["email_webhook_signing_key"].encode(), (EMAIL_TS + EMAIL_TOKEN).encode(), hashlib.sha256
    ).hexdigest()
    fields: dict[str, str | bytes] = {"timestamp": EMAIL_TS, "token": EMAIL_TOKEN, "signature": sig, field: value}
    async with nothing_ingested(switchboard):
        r = await post(
            switchboard.base,
            "/webhooks/email/inbound",
            data=fields,
            files={"body-mime": ("message.eml", EMAIL_MIME, "message/rfc822")},
        )
    assert_refused(r, 401 if value == "" else 403)  # an empty field is a missing one


@pytest.mark.parametrize("shape", ["{}", "v-someone.{}"], ids=["bare", "visitor-dot-mac"])
@pytest.mark.parametrize("value", ON_A_SOCKET)
async def test_chat_socket_refuses_any_odd_visitor_token_with_4401(
    switchboard: System, shape: str, value: str | bytes
) -> None:
    token = shape.encode().replace(b"{}", wire(value))
    url = switchboard.base.replace("http://", "ws://") + "/chat/ws?token=" + urllib.parse.quote(token)
    async with websockets.connect(url) as ws:
        if not token:  # no token is a new visitor (documented), never anyone's identity
            welcome = json.loads(await ws.recv())
            assert welcome["type"] == "welcome" and welcome["visitor_token"].startswith("v-")
            return
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


# -- the router's API ------------------------------------------------------------------------------------------


# The body schema refuses some before any comparison (422): user_hash is at most 128 characters of Unicode text.
USER_HASHES = [
    *(pytest.param(*p.values, 403, id=p.id) for p in ODD if p.id != "10kB"),
    pytest.param("f" * 10_240, 422, id="10kB"),
    pytest.param("\ud800", 422, id="lone-surrogate"),
]


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/callbacks"])
@pytest.mark.parametrize(("value", "status"), USER_HASHES)
async def test_in_app_api_refuses_any_odd_user_hash_with_403(
    switchboard: System, router_base: str, path: str, value: str, status: int
) -> None:
    customer = {"external_id": "u-odd", "phone": "+14155550199", "user_hash": value}
    body = {"customer": customer, "text": "hi"} if path == "/v1/messages" else {"customer": customer}
    headers = {"Authorization": f"Bearer {switchboard.desk.key}", "Content-Type": "application/json"}
    async with nothing_ingested(switchboard):
        r = await post(router_base, path, content=json.dumps(body), headers=headers)  # \ud800 as JSON escapes it
    assert_refused(r, status)


async def test_a_user_hash_for_an_external_id_with_a_lone_surrogate_is_refused_with_403(
    switchboard: System, router_base: str
) -> None:
    body = {"customer": {"external_id": "u-\ud800", "user_hash": "00" * 32}, "text": "hi"}
    headers = {"Authorization": f"Bearer {switchboard.desk.key}", "Content-Type": "application/json"}
    async with nothing_ingested(switchboard):
        r = await post(router_base, "/v1/messages", content=json.dumps(body), headers=headers)
    assert_refused(r, 403)


def jwt_with_signature(tenant: str, signature: bytes) -> bytes:
    """A well-formed HS256 token for an admin of ``tenant``, with ``signature`` in place of its own."""
    good = jwt.encode({"tenant": tenant, "role": "admin", "exp": int(time.time()) + 600}, JWT_SECRET)
    return good.rsplit(".", 1)[0].encode() + b"." + signature


@pytest.mark.parametrize("shape", ["api-key", "api-key-prefixed", "jwt-header", "jwt-signature", "access-token"])
@pytest.mark.parametrize("value", ON_THE_WIRE)
async def test_bearer_credentials_refuse_any_odd_value_with_401(
    switchboard: System, router_base: str, shape: str, value: str | bytes
) -> None:
    v = wire(value)
    credential = {
        "api-key": v,
        "api-key-prefixed": b"sb_" + v,
        "jwt-header": b"eyJ" + v + b".e30.c2ln",  # looks like a JWT, so it takes the JWT path
        "jwt-signature": jwt_with_signature(switchboard.tenant, v),
        "access-token": v,
    }[shape]
    body = {"customer": {"external_id": "u-odd"}, "text": "hi"}
    async with nothing_ingested(switchboard):
        if shape == "access-token":  # the OAuth 2.0 query form (RFC 6750 §2.3) the SSE feed needs
            query = urllib.parse.urlencode({"access_token": credential})
            r = await post(router_base, f"/v1/messages?{query}", json=body)
        else:
            header = (b"Bearer " + credential).rstrip()  # HTTP strips trailing whitespace from a field value
            r = await post(router_base, "/v1/messages", json=body, headers=[(b"Authorization", header)])
    assert_refused(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("value", ON_A_SOCKET)
async def test_agent_feed_socket_refuses_any_odd_bearer_with_4401(
    switchboard: System, router_base: str, value: str | bytes
) -> None:
    url = router_base.replace("http://", "ws://") + f"/v1/agents/{switchboard.desk.agent()}/feed/ws"
    header = (b"Bearer " + wire(value)).decode("latin-1")  # websockets sends header text as Latin-1: these bytes
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with websockets.connect(url, additional_headers=[("Authorization", header)]) as ws:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_the_genuine_proofs_these_refusals_are_measured_against_are_accepted(
    switchboard: System, router_base: str
) -> None:
    """The control: with the right signature, token or user_hash each endpoint above accepts, so the refusals
    are about the odd values and not about a connector or verification that is switched off."""
    s = switchboard
    raw = orjson.dumps(WHATSAPP)
    meta_sig = "sha256=" + hmac.new(SECRETS["meta_app_secret"].encode(), raw, hashlib.sha256).hexdigest()
    meta = await post(s.base, "/webhooks/meta", content=raw, headers={"X-Hub-Signature-256": meta_sig})
    assert meta.status_code == 200, meta.text
    tg = await post(
        s.base,
        "/webhooks/telegram",
        content=orjson.dumps(TG_MESSAGE),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRETS["telegram_secret_token"]},
    )
    assert tg.status_code == 200, tg.text
    url = f"{s.base}/webhooks/twilio/voice/status"
    twilio_sig = RequestValidator(SECRETS["twilio_auth_token"]).compute_signature(url, TWILIO_FORM)
    twilio = await post(
        s.base, "/webhooks/twilio/voice/status", data=TWILIO_FORM, headers={"X-Twilio-Signature": twilio_sig}
    )
    assert twilio.status_code == 200, twilio.text
    user_hash = hmac.new(IDENTITY_SECRET.encode(), b"u-genuine", hashlib.sha256).hexdigest()
    body = {"customer": {"external_id": "u-genuine", "user_hash": user_hash}, "text": "hi"}
    app = await post(router_base, "/v1/messages", json=body, headers={"Authorization": f"Bearer {s.desk.key}"})
    assert app.status_code == 202, app.text
    token = jwt.encode({"tenant": s.tenant, "role": "admin", "exp": int(time.time()) + 600}, JWT_SECRET)
    by_jwt = await post(router_base, "/v1/messages", json=body, headers={"Authorization": f"Bearer {token}"})
    assert by_jwt.status_code == 202, by_jwt.text


# -- the webhooks we send ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [*ODD, pytest.param("\ud800", id="lone-surrogate")])
def test_outgoing_webhook_signature_verify_is_false_for_any_odd_header(value: str) -> None:
    secret, body, now = "webhook-secret", b'{"type":"assignment"}', 1_800_000_000
    assert verify(secret, body, sign(secret, body, now), now=now)
    for header in (value, f"t={now},v1={value}", f"t={value},v1=00", f"t={now},v1=sha256={value}"):
        assert not verify(secret, body, header, now=now), header


def test_outgoing_webhook_timestamp_too_large_for_a_float_is_refused() -> None:
    assert not verify("webhook-secret", b"{}", "t=" + "9" * 4000 + ",v1=00", now=1_800_000_000)
