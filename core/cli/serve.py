"""The web app: serve, demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.common import Command, add_db, add_model_args, add_sam_args
from core.cli.team import add_login_args, login_settings
from core.config import Settings


def add_import_root_args(p: argparse.ArgumentParser) -> None:
    """The folders web callers may import from (the CLI itself is not limited)."""
    p.add_argument("--import-root", action="append", metavar="DIR", default=None,
                   help="a server folder web users may import from (repeatable; env CLIPMARK_IMPORT_ROOTS, "
                        "folders separated by ':'); without one, the web app imports uploads only")


def import_root_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    roots = getattr(args, "import_root", None)
    return settings.with_overrides(import_roots=tuple(Path(root) for root in roots) if roots else None)


def _serve_args(p: argparse.ArgumentParser, *, demo_flag: bool = True) -> None:
    add_db(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    add_model_args(p)
    add_sam_args(p)
    add_login_args(p)
    add_import_root_args(p)
    if demo_flag:
        p.add_argument("--demo", action="store_true",
                       help="also create the demo project (scikit-image photographs) if it is missing")


def _demo_args(p: argparse.ArgumentParser) -> None:
    _serve_args(p, demo_flag=False)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from webapp.app import serve  # lazy: gradio takes seconds to import; only these two commands need it

    serve(import_root_settings(args, login_settings(args, settings)), host=args.host, port=args.port, demo=args.demo)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from webapp.app import serve  # lazy, as above

    serve(import_root_settings(args, login_settings(args, settings)), host=args.host, port=args.port, demo=True)
    return 0


COMMANDS = (
    Command("serve", "start the web app", _serve_args, cmd_serve),
    Command("demo", "the web app on a ready demo project (scikit-image photographs, a few classes)", _demo_args,
            cmd_demo),
)
