"""The settings reference, generated from the settings model (docs/settings.md is this function's output)."""

from __future__ import annotations

from pydantic import SecretStr

from shared.settings import Settings


def settings_markdown() -> str:
    lines = [
        "# Settings reference",
        "",
        "Generated from `shared/settings.py` by `switchboard settings`; do not edit by hand.",
        "Every setting is an environment variable with the prefix `SWITCHBOARD_`.",
        "",
        "| variable | default | secret | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "" if default is None else f"`{default}`" if not isinstance(default, SecretStr) else "(secret)"
        secret = "yes" if "SecretStr" in str(field.annotation) else ""
        doc = (field.description or "").replace("|", "\\|")
        lines.append(f"| `SWITCHBOARD_{name.upper()}` | {shown} | {secret} | {doc} |")
    return "\n".join(lines) + "\n"
