"""The labeling loop from a terminal: next, label, undo, suspects; the audit estimate, accept-rest and
the audit share."""

from __future__ import annotations

import argparse

from core.cli.common import Command, add_db_project, open_service, print_json
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


def _estimate_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--json", action="store_true", help="the whole estimate (history, labels saved) as JSON")
    p.add_argument("--user", help="annotator name (env CLIPMARK_USER)")


def cmd_estimate(args: argparse.Namespace, settings: Settings) -> int:
    found = open_service(args, settings).labeling.estimate(args.project, annotator=args.user)
    if args.json:
        print_json(found)
        return 0
    acc = found.accuracy
    if acc.value is None:
        print(f"{found.pool:,} unlabeled images; no audit answered yet ({found.audits_served} served, "
              f"audit share {found.audit_share:.0%}): no estimate")
        return 0
    print(f"{found.pool:,} unlabeled images: {acc.value:.1%} of their pseudo-labels right (95% interval "
          f"{acc.low:.1%} to {acc.high:.1%}), from {acc.answered} answered audits ({acc.skipped} skipped)")
    for row in found.per_class:
        print(f"  predicted {row.label}: {row.accuracy.value or 0.0:.1%} ({row.accuracy.low:.1%} to "
              f"{row.accuracy.high:.1%}, {row.accuracy.answered} audits)")
    if found.labels_saved is not None:
        print(f"labels saved against random order: {found.labels_saved:,.0f}")
    return 0


def _accept_rest_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--min-confidence", type=float, help="accept only pseudo-labels at least this confident (0..1)")
    p.add_argument("--target-accuracy", type=float,
                   help="choose the lowest threshold whose estimated accuracy (95%% low end) reaches this")
    p.add_argument("--yes", action="store_true", help="accept without asking")
    p.add_argument("--user", help="annotator name (env CLIPMARK_USER)")


def cmd_accept_rest(args: argparse.Namespace, settings: Settings) -> int:
    labeling = open_service(args, settings).labeling
    options = {"min_confidence": args.min_confidence, "target_accuracy": args.target_accuracy}
    plan = labeling.accept_rest_preview(args.project, annotator=args.user, **options)
    acc = plan.accuracy
    accuracy = "no audit answered yet" if acc.value is None else f"{acc.value:.1%} ({acc.low:.1%} to {acc.high:.1%})"
    print(f"accept {plan.images:,} pseudo-labels at confidence >= {plan.min_confidence:.3f}; "
          f"estimated accuracy {accuracy}, from {acc.answered} audits")
    if not args.yes and input("accept them? [y/N] ").strip().lower() not in ("y", "yes"):
        print("nothing accepted")
        return 1
    # exactly what was shown: the threshold it named, and refused if the count changed meanwhile
    print_json(labeling.accept_rest(args.project, annotator=args.user, min_confidence=plan.min_confidence,
                                    expect_images=plan.images or None))
    return 0


def _audit_share_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("share", type=float, help="share of served items that are blind random audits (0..1; 0 = none)")
    p.add_argument("--user", help="annotator name (env CLIPMARK_USER)")


def cmd_audit_share(args: argparse.Namespace, settings: Settings) -> int:
    share = open_service(args, settings).labeling.set_audit_share(args.project, args.share, annotator=args.user)
    print_json({"project": args.project, "audit_share": share})
    return 0


COMMANDS = (
    Command("next", "the next items to label, most useful first, with their top-k labels", _next_args, cmd_next),
    Command("label", "record a decision on one image (accept, correct, skip)", _label_args, cmd_label),
    Command("undo", "undo your latest decision", _undo_args, cmd_undo),
    Command("suspects", "human labels the model contradicts, and conflicting near-duplicates", _suspects_args,
            cmd_suspects),
    Command("estimate", "accuracy of the remaining pseudo-labels, from blind random audits (95%% interval)",
            _estimate_args, cmd_estimate),
    Command("accept-rest", "accept the remaining pseudo-labels (source model-accepted; one undo reverses it)",
            _accept_rest_args, cmd_accept_rest),
    Command("audit-share", "the share of served items that are blind random audits (default 0.05)",
            _audit_share_args, cmd_audit_share),
)
