"""The command line: the same service the web app uses. `clipmark --help` lists the commands."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from core.cli import export, labeling, projects, regions, serve, simulate, team, train
from core.cli.common import CommandGroup, run

# Every command group, in the order `clipmark --help` lists them.
GROUPS: tuple[CommandGroup, ...] = (projects, export, labeling, simulate, serve, team, regions, train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipmark", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
