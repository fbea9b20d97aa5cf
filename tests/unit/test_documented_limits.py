"""The limits the documentation states are the ones the code applies: each `SWITCHBOARD_*` limit named in
docs/security.md's Limits section with a number is that setting's default, and docs/api.md's body-size row
says the same."""

from __future__ import annotations

import os
import re

import pytest

from shared.settings import Settings
from tests.support.processes import ROOT

SECURITY = (ROOT / "docs" / "security.md").read_text()
LIMITS = SECURITY[SECURITY.index("## Limits") : SECURITY.index("## ", SECURITY.index("## Limits") + 3)]
# "(`SWITCHBOARD_MAX_TEXT_CHARS`, 20,000 characters" or "burst `SWITCHBOARD_RATE_LIMIT_BURST`, 200,"
STATED = re.compile(r"`SWITCHBOARD_([A-Z_]+)`,\s*([\d,]+)")


@pytest.fixture(autouse=True)
def no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("SWITCHBOARD_")]:
        monkeypatch.delenv(name)


def test_every_limit_the_security_page_states_is_the_settings_default() -> None:
    stated = {name.lower(): int(number.replace(",", "")) for name, number in STATED.findall(LIMITS)}
    # the limits a reader of the page must find there (a dropped sentence fails too)
    assert {"max_body_bytes", "max_text_chars", "rate_limit_per_s", "rate_limit_burst"} <= set(stated)
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert {name: getattr(defaults, name) for name in stated} == stated


def test_the_api_reference_states_the_same_body_limit() -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    kib = int(re.search(r"`SWITCHBOARD_MAX_BODY_BYTES` \((\d+) KiB by default\)", api).group(1))  # type: ignore[union-attr]
    assert kib * 1024 == Settings(_env_file=None).max_body_bytes  # type: ignore[call-arg]
