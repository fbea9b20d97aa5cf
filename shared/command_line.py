"""The ``switchboard`` command line: what the modules that register its subcommands share."""

from __future__ import annotations

import argparse
from typing import Any


def documented_subcommand(subparsers: Any, name: str, summary: str, doc: str | None) -> argparse.ArgumentParser:
    """The subcommand ``name`` on ``subparsers``, listed with ``summary``; its ``--help`` shows ``doc`` (the
    docstring of the module that runs it) as written, paragraphs and lists kept."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=summary, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    return parser
