"""The settings model: prefix, defaults, fail-fast validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import Settings


def test_settings_come_from_switchboard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_HTTP_PORT", "9001")
    monkeypatch.setenv("SWITCHBOARD_KAFKA_BOOTSTRAP", "k:9092")
    s = Settings()
    assert (s.http_port, s.kafka_bootstrap, s.uses_kafka) == (9001, "k:9092", True)


def test_an_empty_variable_means_unset_never_an_empty_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_TELEGRAM_SECRET_TOKEN", "")
    monkeypatch.setenv("SWITCHBOARD_IMAP_HOST", "")
    s = Settings()
    assert s.telegram_secret_token is None and s.imap_host is None


def test_prod_refuses_placeholder_secrets_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        Settings(environment="prod", bootstrap_api_key="changeme")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Settings(http_port=70000)
    assert Settings(environment="dev", bootstrap_api_key="changeme").bootstrap_api_key is not None  # type: ignore[arg-type]


def test_the_settings_reference_is_generated_from_the_model() -> None:
    from pathlib import Path

    from shared.settings_doc import settings_markdown

    doc = (Path(__file__).parents[2] / "docs/settings.md").read_text()
    assert doc == settings_markdown(), "run: switchboard settings > docs/settings.md"
    assert all(f"SWITCHBOARD_{name.upper()}" in doc for name in Settings.model_fields)
