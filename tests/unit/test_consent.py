"""Consent per channel (domain/consent.py): the one check every sender asks before it sends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.router.domain.consent import REASON, ConsentWithdrawn, Purpose, refusal, withdrawn_channels
from services.router.domain.errors import InvalidCommand
from shared.events import Channel

CHANNELS = [c.value for c in Channel]


def test_a_channel_set_to_false_is_refused_for_every_purpose() -> None:
    for purpose in Purpose:
        refused = refusal({"email": False, "sms": True}, "email", purpose)
        assert refused is not None and (refused.channel, refused.purpose) == ("email", purpose)


def test_a_channel_set_to_true_or_not_named_is_allowed() -> None:
    consent = {"email": False, "sms": True}
    assert refusal(consent, "sms", Purpose.REPLY) is None
    assert refusal(consent, "whatsapp", Purpose.SURVEY) is None
    assert refusal({}, "email", Purpose.REPLY) is None


def test_only_false_withdraws_and_keys_that_are_not_channels_do_not_bear_on_channels() -> None:
    consent: dict[str, object] = {"email": None, "sms": 0, "marketing": False}
    assert all(refusal(consent, c, Purpose.REPLY) is None for c in CHANNELS)


def test_keys_compare_case_insensitively_and_false_wins_over_another_spelling() -> None:
    assert refusal({"Email": False}, "email", Purpose.REPLY) is not None
    assert refusal({"email": True, "EMAIL": False}, "email", Purpose.REPLY) is not None


def test_the_refusal_names_the_reachable_channels_still_allowed_sorted() -> None:
    refused = refusal({"email": False, "sms": False, "whatsapp": True}, "email", Purpose.REPLY)
    assert refused is not None
    named = refused.among(["whatsapp", "email", "sms", "chat", "chat"])
    assert named.allowed == ("chat", "whatsapp")
    assert named.detail == (
        "The customer has withdrawn consent to be contacted on email: no reply goes there. "
        "Channels allowed: chat, whatsapp."
    )
    assert refused.allowed == ()  # ``among`` returns a new refusal


def test_with_nowhere_left_the_refusal_says_none_and_its_timeline_entry_says_why() -> None:
    refused = refusal({"sms": False}, "sms", Purpose.SURVEY)
    assert refused is not None
    named = refused.among(["sms"])
    assert named.detail.endswith("no survey goes there. Channels allowed: none.")
    assert named.timeline_data() == {
        "reason": REASON,
        "purpose": "survey",
        "channel": "sms",
        "allowed_channels": [],
    }


def test_the_error_is_an_invalid_command_carrying_the_refusal() -> None:
    refused = refusal({"in_app": False}, "in_app", Purpose.REPLY)
    assert refused is not None
    error = ConsentWithdrawn(refused.among(["email"]))
    assert isinstance(error, InvalidCommand)  # the API's problem table answers it with 409
    assert error.refusal.allowed == ("email",) and str(error) == error.refusal.detail


@given(st.dictionaries(st.sampled_from([*CHANNELS, "marketing"]), st.booleans() | st.none()), st.sampled_from(CHANNELS))
def test_refused_exactly_when_the_map_sets_the_channel_to_false(consent: dict[str, object], channel: str) -> None:
    assert (refusal(consent, channel, Purpose.REPLY) is not None) is (consent.get(channel) is False)
    assert withdrawn_channels(consent) == {k for k, v in consent.items() if v is False}
