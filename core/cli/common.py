"""What every command group shares: the flags several commands take, the service they call, printing,
and the table a group declares its commands in. A group module lists `COMMANDS` and exposes
`register(subparsers)`; `core.cli` names the groups explicitly."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeAlias

from core.config import Settings
from core.errors import ClipmarkError

if TYPE_CHECKING:
    from core.service import Service

__all__ = [
    "EXIT_ERROR", "Command", "Handler", "Subparsers", "add_commands", "add_db", "add_db_project",
    "add_model_args", "add_sam_args", "open_service", "print_json", "print_problems", "run", "settings_from",
]

Handler = Callable[[argparse.Namespace, Settings], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
EXIT_ERROR = 2  # argparse's own exit status for a usage error: a ClipmarkError is the user's input too


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_args: Callable[[argparse.ArgumentParser], None]
    handler: Handler


def add_commands(subparsers: Subparsers,
                 commands: Iterable[Command]) -> None:
    """One subcommand per entry; the parsed namespace carries its handler (argparse's set_defaults idiom)."""
    for command in commands:
        parser = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_args(parser)
        parser.set_defaults(handler=command.handler)


# -- flags several commands share ------------------------------------------------------------------


def add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="SQLite file or SQLAlchemy URL (env CLIPMARK_DB)")


def add_db_project(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--project", required=True, help="project name")


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="open_clip architecture, e.g. ViT-B-32 (env CLIPMARK_MODEL)")
    p.add_argument("--pretrained",
                   help="hub tag or local checkpoint file (env CLIPMARK_PRETRAINED); 'none' for random weights")
    p.add_argument("--model-config", help="local open_clip model config JSON (registered as --model)")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")


def add_sam_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sam-model", help="Segment Anything model: vit_b, vit_l, vit_h, vit_t (MobileSAM) or tiny "
                   "(env CLIPMARK_SAM_MODEL; default vit_b)")
    p.add_argument("--sam-checkpoint", help="local SAM checkpoint .pth (env CLIPMARK_SAM_CHECKPOINT); 'random' for "
                   "random weights; unset: the official download (vit_b/l/h)")


# -- settings, service, output ---------------------------------------------------------------------

OVERRIDES = {"db": "db", "model": "model", "model_config": "model_config", "device": "device",
             "batch_size": "batch_size", "num_workers": "workers", "sam_model": "sam_model",
             "sam_checkpoint": "sam_checkpoint"}


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment first, then every flag the user actually gave."""
    settings = Settings.from_env().with_overrides(
        **{field: getattr(args, flag, None) for field, flag in OVERRIDES.items()})
    pretrained = getattr(args, "pretrained", None)
    if pretrained is not None:
        settings = replace(settings, pretrained=None if pretrained.lower() in ("", "none", "random")
                           else pretrained)
    return settings


def open_service(args: argparse.Namespace, settings: Settings) -> Service:
    from core.service import Service  # lazy: SQLAlchemy and every use case; `clipmark --help` needs none

    return Service(settings)


def print_json(data: Any) -> None:
    """A use case's answer as JSON (its dataclasses as objects), converted as the web app converts it."""
    from core.usecases.results import jsonable  # lazy: the result types pull SQLAlchemy; `--help` needs none

    print(json.dumps(jsonable(data), indent=2, default=str))


def print_problems(title: str, problems: Sequence[dict[str, str]]) -> None:
    for item in problems:
        print(f"  {title}: {item['file']}: {item['reason']}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """The parsed command's handler; a ClipmarkError becomes one line on stderr and exit status 2."""
    try:
        handler: Handler = args.handler
        return handler(args, settings_from(args))
    except ClipmarkError as exc:
        print(f"clipmark {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
