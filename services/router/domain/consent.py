"""Consent per channel: may the desk contact this customer on that channel? Pure.

The customer's profile holds a ``consent`` map, channel → bool (``{"email": false, "sms": true}``). A channel
set to false is withdrawn, and withdrawal binds everything the desk originates on it from then on: agents'
replies, satisfaction surveys, acknowledgements and follow-ups alike (GDPR Art. 7(3): consent can be withdrawn
at any time). A channel the map does not name is not withdrawn: the customer chose to write to us there.
Keys other than channel names (``"marketing"``) do not bear on where replies may go. Every sender asks
``refusal`` before it sends, and acts on the answer: an agent's reply is refused, a survey skipped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from services.router.domain.errors import InvalidCommand

REASON = "consent_withdrawn"


class Purpose(StrEnum):
    """What the desk meant to send: named in the refusal and on the timeline."""

    REPLY = "reply"
    SURVEY = "survey"
    ACKNOWLEDGEMENT = "acknowledgement"
    FOLLOW_UP = "follow_up"


@dataclass(frozen=True, slots=True)
class Refusal:
    channel: str
    purpose: Purpose
    withdrawn: frozenset[str]  # every channel the customer withdrew, casefolded
    allowed: tuple[str, ...] = ()  # channels the customer can still be contacted on, once ``among`` named them

    def among(self, reachable: Iterable[str]) -> Refusal:
        """The refusal naming which of ``reachable`` (channels where the customer has an address and a connector
        delivers) are still allowed. Asked only once refused, so the usual send looks up nothing more."""
        allowed = tuple(sorted({c for c in reachable if c.casefold() not in self.withdrawn}))
        return replace(self, allowed=allowed)

    @property
    def detail(self) -> str:
        where = ", ".join(self.allowed) if self.allowed else "none"
        what = self.purpose.value.replace("_", "-")
        return (
            f"The customer has withdrawn consent to be contacted on {self.channel}: no {what} goes there. "
            f"Channels allowed: {where}."
        )

    def timeline_data(self) -> dict[str, Any]:
        """What the timeline entry of the refusal records (JSON-ready)."""
        return {
            "reason": REASON,
            "purpose": self.purpose.value,
            "channel": self.channel,
            "allowed_channels": list(self.allowed),
        }


class ConsentWithdrawn(InvalidCommand):
    """A send to a withdrawn channel: an ``InvalidCommand``, so the API answers 409 with the refusal's detail."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.refusal = refusal


def withdrawn_channels(consent: Mapping[str, object]) -> frozenset[str]:
    """The keys set to false, casefolded: if one spelling of a channel says false, it is withdrawn whatever
    another says."""
    return frozenset(key.casefold() for key, value in consent.items() if value is False)


def refusal(consent: Mapping[str, object], channel: str, purpose: Purpose) -> Refusal | None:
    """None if ``purpose`` may go out to the customer on ``channel``; else why not."""
    withdrawn = withdrawn_channels(consent)
    if channel.casefold() not in withdrawn:
        return None
    return Refusal(channel, purpose, withdrawn)
