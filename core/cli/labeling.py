"""The labeling loop from a terminal: next, label, undo, suspects."""

from __future__ import annotations

import argparse

from core.cli.common import Command, Subparsers, add_commands, add_db_project, open_service, print_json
from core.config import Settings


def _next_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("-n", type=int, default=10, help="how many items")
    p.add_argument("-k", type=int, default=3, help="top-k labels per item")
    p.add_argument("--user", help="annotator name (env CLIPMARK_USER)")


def cmd_next(args: argparse.Namespace, settings: Settings) -> int:
    for item in open_service(args, settings).labeling.next_items(args.project, annotator=args.user, n=args.n, k=args.k):
        top = ", ".join(f"{t.label} {t.confidence:.2f}" for t in item.top)
        why = f"[{item.reason.strategy} {item.reason.score:.3f}]" if item.reason else "[]"
        print(f"{item.image_id}\t{item.path}\t{top}\t{why}")
    return 0


def _label_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--image-id", type=int, required=True)
    p.add_argument("--action", choices=["accept", "correct", "skip"], default="correct")
    p.add_argument("--label", help="the class (needed for correct; accept takes the proposal)")
    p.add_argument("--user", help="annotator name (env CLIPMARK_USER)")


def cmd_label(args: argparse.Namespace, settings: Settings) -> int:
    print_json(open_service(args, settings).labeling.decide(args.project, image_id=args.image_id, action=args.action,
                                                   label=args.label, annotator=args.user).decision)
    return 0


def _undo_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--user", help="annotator name (env CLIPMARK_USER)")


def cmd_undo(args: argparse.Namespace, settings: Settings) -> int:
    print_json(open_service(args, settings).labeling.undo(args.project, annotator=args.user))
    return 0


def _suspects_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--limit", type=int, default=50)


def cmd_suspects(args: argparse.Namespace, settings: Settings) -> int:
    print_json(open_service(args, settings).labeling.suspects(args.project, limit=args.limit))
    return 0


COMMANDS = (
    Command("next", "the next items to label, most useful first, with their top-k labels", _next_args, cmd_next),
    Command("label", "record a decision on one image (accept, correct, skip)", _label_args, cmd_label),
    Command("undo", "undo your latest decision", _undo_args, cmd_undo),
    Command("suspects", "human labels the model contradicts, and conflicting near-duplicates", _suspects_args,
            cmd_suspects),
)


def register(subparsers: Subparsers) -> None:
    add_commands(subparsers, COMMANDS)
