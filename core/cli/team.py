"""Team commands: user, overlap, agreement, review, resolve, history."""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import replace

from core.cli.common import Command, add_db, add_db_project, open_service, print_json
from core.config import Settings
from core.errors import InvalidInput
from core.usecases.team.results import HISTORY_ACTIONS

USER_VERBS = ("add", "list", "disable", "role", "events")


def _user_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("verb", choices=USER_VERBS)
    p.add_argument("name", nargs="?", help="user name (add, disable, role)")
    p.add_argument("new_role", nargs="?", metavar="ROLE", help="role NAME ROLE: annotator, reviewer or admin")
    p.add_argument("--role", default="annotator", help="annotator, reviewer or admin (add)")
    p.add_argument("--limit", type=int, default=200, help="events: how many, newest first (at most 1000)")
    add_db(p)


def add_login_args(p: argparse.ArgumentParser) -> None:
    """`clipmark serve` flags for login throttling (env CLIPMARK_LOGIN_*; docs/team.md)."""
    p.add_argument("--login-free-failures", type=int, help="wrong passwords answered at once (default 5)")
    p.add_argument("--login-delay", type=float, help="seconds to wait after them, doubling per failure (default 1)")
    p.add_argument("--login-lockout-after", type=int, help="failures that lock a name or address (default 20)")
    p.add_argument("--login-lockout-minutes", type=float, help="how long a lockout lasts (default 15)")


def login_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    minutes = getattr(args, "login_lockout_minutes", None)
    policy = settings.login.with_overrides(
        free_failures=getattr(args, "login_free_failures", None), delay_s=getattr(args, "login_delay", None),
        lockout_after=getattr(args, "login_lockout_after", None), lockout_s=None if minutes is None else minutes * 60)
    return replace(settings, login=policy)


def _read_password() -> str:
    """From a prompt (asked twice) on a terminal, else the first line of standard input."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InvalidInput("password: the two entries differ")
    return first


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    team = open_service(args, settings).team
    if args.verb == "list":
        for user in team.list_users():
            state = "disabled" if user.disabled else ("active" if user.password else "no password")
            print(f"{user.name}\t{user.role}\t{state}")
    elif args.verb == "events":
        for event in team.auth_events(limit=args.limit):
            print(f"{event.at}\t{event.kind}\t{event.user}\t{event.address or ''}\t{event.detail or ''}")
    elif not args.name:
        raise InvalidInput(f"user {args.verb}: give the user's name")
    elif args.verb == "add":
        print_json(team.add_user(args.name, role=args.role, password=_read_password()))
    elif args.verb == "role":
        if not args.new_role:
            raise InvalidInput("user role: give the name and the new role (annotator, reviewer or admin)")
        print_json(team.set_role(args.name, args.new_role))
    else:
        print_json(team.disable_user(args.name))
    return 0


def _overlap_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--share", type=float, required=True, help="share of the items labeled by several people (0..1)")
    p.add_argument("--annotators", type=int, default=2, help="people per overlap item")


def cmd_overlap(args: argparse.Namespace, settings: Settings) -> int:
    team = open_service(args, settings).team
    print_json(team.set_overlap(args.project, share=args.share, annotators=args.annotators))
    return 0


def cmd_agreement(args: argparse.Namespace, settings: Settings) -> int:
    print_json(open_service(args, settings).team.agreement(args.project))
    return 0


def _review_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--limit", type=int, default=50)


def cmd_review(args: argparse.Namespace, settings: Settings) -> int:
    print_json(open_service(args, settings).team.review_queue(args.project, limit=args.limit))
    return 0


def _resolve_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--image-id", type=int, required=True)
    p.add_argument("--label", required=True, help="the final label")
    p.add_argument("--user", help="the reviewer (env CLIPMARK_USER)")


def cmd_resolve(args: argparse.Namespace, settings: Settings) -> int:
    print_json(open_service(args, settings).team.resolve(args.project, image_id=args.image_id, label=args.label,
                                                         annotator=args.user))
    return 0


def _history_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--user", help="only this user's events")
    p.add_argument("--action", help=f"one of: {', '.join(HISTORY_ACTIONS)}")
    p.add_argument("--image-id", type=int)
    p.add_argument("--limit", type=int, default=200)


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    for e in open_service(args, settings).team.history(args.project, by=args.user, action=args.action,
                                                       image_id=args.image_id, limit=args.limit):
        print(f"{e.event_id}\t{e.at}\t{e.annotator or ''}\t{e.action}\t{e.image_id}\t"
              f"{e.before or ''} -> {e.after or ''}\t{e.reason or ''}")
    return 0


COMMANDS = (
    Command("user", "team members: add NAME --role ROLE (password from a prompt or stdin), list, disable NAME, "
            "role NAME ROLE, events (the sign-in log: failed logins, lockouts, signed-out sessions)",
            _user_args, cmd_user),
    Command("overlap", "send a share of the items to several annotators, blind, to measure agreement",
            _overlap_args, cmd_overlap),
    Command("agreement", "Cohen's kappa per pair, Fleiss' kappa, confusion, agreement with the final label",
            add_db_project, cmd_agreement),
    Command("review", "the review queue: conflicts (who said what) and label-error suspects", _review_args,
            cmd_review),
    Command("resolve", "a reviewer's final label for an item (conflict or suspect)", _resolve_args, cmd_resolve),
    Command("history", "every event, newest first, filterable", _history_args, cmd_history),
)
