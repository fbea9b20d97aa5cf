"""Text PostgreSQL cannot hold is refused at the door, naming the field. PostgreSQL text and jsonb have no
U+0000 ('invalid byte sequence for encoding "UTF8": 0x00'), and a lone UTF-16 surrogate (U+D800-U+DFFF, what
JSON's "\\ud800" parses to in Python) has no UTF-8 encoding at all: either would otherwise reach a query and
answer 500 (SQLite stores both, so only the production shape shows it).

Staff input (replies, notes, names, tags, queue configuration, searches, ids in paths) is refused with 422
rather than silently changed: an identifier or a setting quietly altered is worse than an error the caller's
tool can fix. Customers' content posted to ``/v1/messages`` and ``/v1/callbacks`` is cleaned by those routes
instead, so their bodies pass unchecked (their path and query are checked); so do the connectors' webhooks,
which are not ``/v1/`` routes. Non-JSON bodies (form posts) are left to their routes."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from shared import problems
from shared.http_middleware import HttpMiddleware

BAD = re.compile("[\x00\ud800-\udfff]")
# the same characters as UTF-8 bytes (CESU-8 for surrogates), as a percent-decoded path or query carries them
BAD_BYTES = re.compile(rb"\x00|\xed[\xa0-\xbf][\x80-\xbf]")
# JSON can only carry them as \u escapes, as raw surrogate bytes, or in UTF-16/32 (NUL bytes); any other body
# is not parsed a second time
MAYBE_BAD_JSON = re.compile(rb"\x00|\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]")
CLEANED = {"/v1/messages", "/v1/callbacks"}
MAX_REPORTED = 20

Loc = tuple[str | int, ...]


class TextGuard(HttpMiddleware):
    """ASGI middleware; sits inside ``problems.BodyLimit``, which bounds the body it buffers."""

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        found = _in_path(scope) or _in_query(scope.get("query_string", b""))
        if not found and _body_checked(scope):
            body = await problems.read_body(receive)
            if body is None:
                return  # client went away
            found = _in_json(body)
            receive = problems.replay(body, receive)
        if found:
            await _refuse(found)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _in_path(scope: Any) -> list[tuple[Loc, str]]:
    raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
    char = _bad_in_bytes(unquote_to_bytes(raw)) or _bad_in_text(scope["path"])
    return [(("path",), char)] if char else []


def _in_query(query: bytes) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    for pair in query.split(b"&"):
        name, _, value = (unquote_to_bytes(part.replace(b"+", b" ")) for part in pair.partition(b"="))
        char = _bad_in_bytes(name) or _bad_in_bytes(value)
        if char:
            found.append((("query", _shown(name.decode("utf-8", "backslashreplace"))), char))
    return found[:MAX_REPORTED]


def _body_checked(scope: Any) -> bool:
    path = scope["path"]
    if not path.startswith("/v1/") or path in CLEANED or scope["method"] in ("GET", "HEAD", "OPTIONS"):
        return False
    # FastAPI reads the body as JSON when there is no content type, or an application/json or +json one
    ctype = dict(scope.get("headers") or ()).get(b"content-type", b"").decode("latin-1")
    media = ctype.split(";")[0].strip().lower()
    return not media or media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _in_json(body: bytes) -> list[tuple[Loc, str]]:
    if not MAYBE_BAD_JSON.search(body):
        return []
    try:
        document = json.loads(body)  # as Starlette's Request.json() does: UTF-8/16/32, surrogates passed
    except (ValueError, RecursionError):
        return []  # not JSON: the route refuses it
    found: list[tuple[Loc, str]] = []
    stack: list[tuple[Loc, Any]] = [(("body",), document)]
    while stack and len(found) < MAX_REPORTED:  # iterative: a deep document must not exhaust the stack
        loc, value = stack.pop()
        if isinstance(value, str):
            if char := _bad_in_text(value):
                found.append((loc, char))
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if char := _bad_in_text(key):
                    found.append(((*loc, _shown(key)), char))
                stack.append(((*loc, _shown(key)), item))
        elif isinstance(value, list):
            stack.extend(((*loc, i), item) for i, item in reversed(list(enumerate(value))))
    return found


def _bad_in_text(text: str) -> str:
    match = BAD.search(text)
    return match.group() if match else ""


def _bad_in_bytes(raw: bytes) -> str:
    match = BAD_BYTES.search(raw)
    return match.group().decode("utf-8", "surrogatepass") if match else ""


def _shown(text: str) -> str:
    """A name fit for the answer (itself UTF-8 JSON): the offending characters as \\u escapes."""
    return BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _field(loc: Loc) -> str:
    if loc[0] == "query":
        return f"query parameter {loc[1]!r}"
    name = str(loc[0])
    for part in loc[1:]:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name


def _why(char: str) -> str:
    if char == "\x00":
        return "contains U+0000 (NUL), which cannot be stored; remove it"
    return f"contains a lone surrogate U+{ord(char):04X}, which is not a character; send valid Unicode text"


def _refuse(found: list[tuple[Loc, str]]) -> Any:
    errors = [{"loc": list(loc), "msg": _why(char), "type": "invalid_character"} for loc, char in found]
    (loc, char), more = found[0], len(found) - 1
    detail = f"{_field(loc)} {_why(char)}" + (f" (and {more} more)" if more else "")
    return problems.problem(422, detail, slug="validation", errors=errors)
