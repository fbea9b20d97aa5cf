"""The `switchboard simulate` command line as the tests parse it."""

from __future__ import annotations

import argparse

from services.router.simulation import cli


def simulate_args(*argv: str) -> argparse.Namespace:
    """The arguments of `switchboard simulate *argv`, parsed by the command's own parser."""
    parser = argparse.ArgumentParser(prog="switchboard")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["simulate", *argv])
