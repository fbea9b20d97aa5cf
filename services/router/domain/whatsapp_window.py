"""WhatsApp's customer service window: may the desk send a WhatsApp customer free text now? Pure.

WhatsApp Business Platform policy: a business may send free-form messages only within 24 hours of the
customer's last message to it; after that only an approved template message reaches the customer, and Meta
answers anything else with error 131047 (re-engagement message) in a later status webhook, which the agent
would never see. So the desk decides first: inside the window free text goes out, outside it a reply must be a
template, and free text is refused (409) with when the window closed.

The window is counted from when the customer's latest WhatsApp message in the conversation arrived: when the
connector received it (``received_at``), or when the router stored it if that is earlier by the router's clock
(a connector clock running ahead), so the window never closes more than 24 hours after the router first saw
the message. Not from the payload's ``timestamp``: that is the sender's claim, accepted from the year 2000 on
(shared/events.py ``plausible``), and would open or close the window on a wrong clock. A message the customer
wrote in another conversation is not counted: there the desk refuses free text Meta would still take (a
template always goes). A webhook Meta delivered late (it retries a connector that was down) opens the window
later here than at Meta; Meta's refusal of free text then shows as before, after ``sent``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.router.domain.errors import InvalidCommand

WINDOW = timedelta(hours=24)
REASON = "whatsapp_window_closed"


@dataclass(frozen=True, slots=True)
class Window:
    closes_at: datetime | None  # None: the customer has not written on WhatsApp in the conversation
    open: bool


def opened_at(received_at: datetime | None, stored_at: datetime | None) -> datetime | None:
    """When the customer's message opened the window: the earlier of the connector's receipt and the router's
    storing it (None: no message)."""
    known = [at for at in (received_at, stored_at) if at is not None]
    return min(known) if known else None


def closes_at(opened: datetime | None) -> datetime | None:
    """When the window the customer's latest WhatsApp message opened closes, 24 hours on."""
    return opened + WINDOW if opened is not None else None


def window(opened: datetime | None, now: datetime) -> Window:
    """The window the customer's latest WhatsApp message opened (None: none): open while ``now`` is before it
    closes; at exactly 24 hours it is closed."""
    closes = closes_at(opened)
    return Window(closes, closes is not None and now < closes)


def utc_text(at: datetime) -> str:
    """``2026-01-02T03:04:05Z``: how a refusal names the time the window closed."""
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class WindowClosed(InvalidCommand):
    """Free text to a WhatsApp customer outside the 24-hour customer service window: an ``InvalidCommand``, so
    the API answers 409; a template would go."""

    def __init__(self, closed: Window, purpose: str) -> None:
        self.window = closed
        self.purpose = purpose
        if closed.closes_at is None:
            why = "The customer has not written on WhatsApp in this conversation, so no customer service window is open"
        else:
            why = (
                f"The WhatsApp customer service window closed at {utc_text(closed.closes_at)}, 24 hours after the "
                "customer's last message"
            )
        super().__init__(
            f"{why}: WhatsApp delivers no free text now. Send an approved template instead "
            "(template: name, language, parameters)."
        )

    def timeline_data(self) -> dict[str, Any]:
        """What the timeline entry of the refusal records (JSON-ready)."""
        closed = self.window.closes_at
        return {
            "reason": REASON,
            "purpose": self.purpose,
            "channel": "whatsapp",
            "window_closed_at": closed.astimezone(UTC).isoformat() if closed else None,
        }
