"""The command line: the same service the web app uses. `clipmark --help` lists the commands."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from core.cli import export, labeling, projects, regions, serve, simulate, team, train
from core.cli.common import Command, add_commands, run

# Every command group's commands, in the order `clipmark --help` lists them.
GROUPS: tuple[tuple[Command, ...], ...] = (
    projects.COMMANDS, export.COMMANDS, labeling.COMMANDS, simulate.COMMANDS, serve.COMMANDS, team.COMMANDS,
    regions.COMMANDS, train.COMMANDS,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipmark", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for commands in GROUPS:
        add_commands(subparsers, commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
