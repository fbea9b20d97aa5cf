"""Switchboard's version, as installed (``pyproject.toml``): the one the CLI, the OpenAPI and logs report."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("switchboard")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0+unknown"
