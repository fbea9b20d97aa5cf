"""The identity graph's rules, exhaustively on small worlds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.router.domain.identity.graph import Ident, resolve

PHONE = Ident("phone", "+14155550100", verified=True)
EMAIL_V = Ident("email", "x@example.com", verified=True)
EMAIL_U = Ident("email", "x@example.com", verified=False)
APP = Ident("app_user", "u-1", verified=True)
VISITOR = Ident("chat_visitor", "v-1")


def test_a_known_identity_maps_to_its_customer() -> None:
    r = resolve(PHONE, [], {PHONE.key: "c1"})
    assert r.customer_id == "c1" and r.attach == () and r.merge == ()


def test_an_unknown_identity_without_evidence_is_a_new_customer_owning_it() -> None:
    r = resolve(APP, [EMAIL_V], {})
    assert r.customer_id is None
    assert r.attach == (APP, EMAIL_V)


def test_a_new_identity_with_a_verified_identifier_links_to_its_owner() -> None:
    r = resolve(APP, [EMAIL_V], {EMAIL_V.key: "c1"})
    assert r.customer_id == "c1" and r.attach == (APP,) and r.merge == ()


def test_an_unverified_claim_never_links_but_is_suggested() -> None:
    r = resolve(VISITOR, [EMAIL_U], {EMAIL_U.key: "c1"})
    assert r.customer_id is None
    assert r.attach == (VISITOR,)  # the unverified email is not taken
    assert r.suggest == (("c1", EMAIL_U),)


def test_verified_identifiers_of_two_customers_merge_them_into_the_oldest() -> None:
    r = resolve(APP, [EMAIL_V, PHONE], {EMAIL_V.key: "c2", PHONE.key: "c1"}, {"c1": 1, "c2": 2})
    assert r.customer_id == "c1" and r.merge == ("c2",)


def test_a_known_sender_keeps_its_customer_and_absorbs_a_proven_other() -> None:
    r = resolve(APP, [EMAIL_V], {APP.key: "c9", EMAIL_V.key: "c1"}, {"c1": 1, "c9": 9})
    assert r.customer_id == "c9" and r.merge == ("c1",)


idents = st.builds(
    Ident,
    st.sampled_from(["phone", "email", "app_user"]),
    st.sampled_from(["a", "b", "c"]),
    st.booleans(),
)


@given(
    idents,
    st.lists(idents, max_size=4),
    st.dictionaries(
        st.tuples(st.sampled_from(["phone", "email", "app_user"]), st.sampled_from(["a", "b", "c"])),
        st.sampled_from(["c1", "c2", "c3"]),
    ),
)
def test_resolution_invariants(sender: Ident, claims: list[Ident], owners: dict[tuple[str, str], str]) -> None:
    r = resolve(sender, claims, owners)
    # the sender's identity is either already owned by the target, or attached to it
    assert owners.get(sender.key) == r.customer_id or sender in r.attach
    # nothing already owned is attached again; only verified claims are attached
    assert all(i.key not in owners for i in r.attach)
    assert all(i == sender or i.verified for i in r.attach)
    # merges only on verified evidence, never the target itself
    proven = {owners[c.key] for c in claims if c.verified and c.key in owners}
    assert set(r.merge) <= proven and r.customer_id not in r.merge
    # suggestions only from unverified claims
    assert all(not claim.verified for _, claim in r.suggest)
