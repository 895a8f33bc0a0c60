"""The region commands of the CLI (Segment Anything): segment, instances, propose, proposals,
sam-embed. core.cli lists this group; register() adds its commands to the parser."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from core.cli.common import Command, add_db_project, add_sam_args, open_service, print_json
from core.cli.projects import add_engine_args, engine_settings
from core.config import Settings
from core.errors import InvalidInput

if TYPE_CHECKING:
    from core.usecases.regions import LabelScore, Regions, Segmentation


def _numbers(text: str, *, flag: str, count: tuple[int, ...]) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise InvalidInput(f"{flag}: '{text}' is not comma-separated numbers") from exc
    if len(values) not in count:
        raise InvalidInput(f"{flag}: '{text}' needs {' or '.join(map(str, count))} numbers")
    return values


def prompts_from(args: argparse.Namespace) -> dict[str, Any]:
    """--point X,Y[,1|0] (repeatable; 0 = negative) and --box X0,Y0,X1,Y1, in image pixels."""
    points = []
    for text in args.point or []:
        values = _numbers(text, flag="--point", count=(2, 3))
        points.append([values[0], values[1], int(values[2]) if len(values) == 3 else 1])
    box = _numbers(args.box, flag="--box", count=(4,)) if args.box else None
    return {"points": points, "box": box}


def _segment_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    add_sam_args(p)
    p.add_argument("--image", type=int, required=True, help="image id (see `clipmark next` or the web app)")
    p.add_argument("--point", action="append", help="X,Y or X,Y,0 for a negative point (repeatable)")
    p.add_argument("--box", help="X0,Y0,X1,Y1")
    p.add_argument("--choice", type=int, help="which of SAM's masks (0-2); default: SAM's best")
    p.add_argument("--save", action="store_true", help="save the mask as an instance")
    p.add_argument("--label", help="class of the saved instance (default: CLIP's proposal)")
    p.add_argument("--user", help="annotator recorded on the event (env CLIPMARK_USER)")


def cmd_segment(args: argparse.Namespace, settings: Settings) -> int:
    regions = open_service(args, settings).regions
    prompts = prompts_from(args)
    if args.save:
        print_json(regions.add_instance(args.project, args.image, prompts, choice=args.choice, label=args.label,
                                        annotator=args.user))
        return 0
    from core.usecases.regions import as_json  # lazy: the use case pulls SQLAlchemy; `--help` needs none

    result = regions.segment(args.project, args.image, prompts, annotator=args.user)
    labels = _candidate_labels(regions, args, prompts, result)
    print_json({**as_json(result), "labels": as_json(labels)})  # as_json leaves the PNGs out
    return 0


def _candidate_labels(regions: Regions, args: argparse.Namespace, prompts: dict[str, Any], result: Segmentation
                      ) -> tuple[LabelScore, ...]:
    """CLIP's classes for the chosen mask; none when that mask is empty (a bad --choice still fails)."""
    choice = result.best if args.choice is None else args.choice
    if 0 <= choice < len(result.masks) and result.masks[choice].area == 0:
        return ()
    return regions.candidate_labels(args.project, args.image, prompts, args.choice, annotator=args.user)


def _instances_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("verb", choices=["list", "delete", "relabel", "undo"])
    p.add_argument("instance", nargs="?", type=int, help="instance id (delete, relabel)")
    p.add_argument("label", nargs="?", help="new class (relabel)")
    add_db_project(p)
    p.add_argument("--image", type=int, help="image id (list)")
    p.add_argument("--user", help="annotator recorded on the event (env CLIPMARK_USER)")
    p.add_argument("--reason", help="why (delete, relabel; at most 500 characters): kept in the history")


def cmd_instances(args: argparse.Namespace, settings: Settings) -> int:
    regions = open_service(args, settings).regions
    if args.verb == "undo":
        print_json(regions.undo(args.project, annotator=args.user))
    elif args.verb == "list":
        if args.image is None:
            raise InvalidInput("--image: give the image whose instances to list")
        print_json(regions.instances(args.project, args.image, annotator=args.user))
    elif args.instance is None:
        raise InvalidInput(f"instance: `clipmark instances {args.verb}` needs an instance id")
    elif args.verb == "delete":
        print_json(regions.delete_instance(args.project, args.instance, reason=args.reason, annotator=args.user))
    else:
        if not args.label:
            raise InvalidInput("label: `clipmark instances relabel ID LABEL` needs the new class")
        print_json(regions.relabel_instance(args.project, args.instance, args.label, reason=args.reason,
                                            annotator=args.user))
    return 0


def _propose_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    add_sam_args(p)
    p.add_argument("--image", type=int, action="append", help="image id (repeatable; default: every image)")
    p.add_argument("--min-confidence", type=float, default=0.3,
                   help="drop regions whose best class CLIP gives less than this (default 0.3)")
    p.add_argument("--points-per-side", type=int, default=16, help="grid of prompts of the mask generator")
    p.add_argument("--max-regions", type=int, default=50, help="at most this many regions per image")
    p.add_argument("--pred-iou-thresh", type=float,
                   help="drop masks whose predicted IoU is below this (default: SAM's 0.8; 0: off)")
    p.add_argument("--stability-score-thresh", type=float,
                   help="drop masks whose stability score is below this (default: SAM's 0.85; 0: off)")
    p.add_argument("--user", help="who asked (env CLIPMARK_USER)")


def cmd_propose(args: argparse.Namespace, settings: Settings) -> int:
    filters = {"pred_iou_thresh": args.pred_iou_thresh, "stability_score_thresh": args.stability_score_thresh}
    summary = open_service(args, settings).regions.propose(
        args.project, image_ids=args.image, min_confidence=args.min_confidence, points_per_side=args.points_per_side,
        max_regions=args.max_regions, annotator=args.user, progress=True,
        **{name: value for name, value in filters.items() if value is not None})
    for problem in summary.errors:
        print(f"  image: {problem['file']}: {problem['reason']}", file=sys.stderr)
    print_json(summary)
    return 0


def _proposals_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("verb", nargs="?", default="list", choices=["list", "accept", "reject"])
    p.add_argument("proposal", nargs="?", type=int, help="proposal id (accept, reject)")
    add_db_project(p)
    p.add_argument("--image", type=int, help="only this image's proposals (list)")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--label", help="class of the accepted instance (default: the proposal's best class)")
    p.add_argument("--user", help="annotator recorded on the event (env CLIPMARK_USER)")


def cmd_proposals(args: argparse.Namespace, settings: Settings) -> int:
    from core.usecases.regions import as_json  # lazy: the use case pulls SQLAlchemy; `--help` needs none

    regions = open_service(args, settings).regions
    if args.verb == "list":
        rows = regions.next_proposals(args.project, image_id=args.image, limit=args.limit, annotator=args.user)
        print_json([{k: v for k, v in row.items() if k != "rle"} for row in as_json(rows)])
        return 0
    if args.proposal is None:
        raise InvalidInput(f"proposal: `clipmark proposals {args.verb}` needs a proposal id")
    print_json(regions.decide_proposal(args.project, args.proposal, accept=args.verb == "accept", label=args.label,
                                       annotator=args.user))
    return 0


def _sam_embed_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    add_sam_args(p)
    p.add_argument("--image", type=int, action="append", help="image id (repeatable; default: every image)")
    add_engine_args(p)


def cmd_sam_embed(args: argparse.Namespace, settings: Settings) -> int:
    settings = engine_settings(args, settings)
    service = open_service(args, settings)
    if (args.engine or settings.default_engine) == "ray":
        from core.usecases.distributed.sam_job import sam_embed_ray  # lazy: the store and the SAM adapter

        regions = service.regions
        print_json(sam_embed_ray(service.context, regions.cache, regions.runtime.spec, project=args.project,
                                 image_ids=args.image, options=service.embedding.ray_options()))
        return 0
    print_json(service.regions.embed_all(args.project, image_ids=args.image, progress=True))
    return 0


COMMANDS = (
    Command("segment", "Segment Anything from points/a box on one image; --save keeps the mask as an instance",
            _segment_args, cmd_segment),
    Command("instances", "list, delete, relabel region instances; undo your latest region action", _instances_args,
            cmd_instances),
    Command("propose", "find regions with SAM's automatic mask generator and name them with CLIP", _propose_args,
            cmd_propose),
    Command("proposals", "the region proposal queue (least certain first): list, accept, reject", _proposals_args,
            cmd_proposals),
    Command("sam-embed", "compute and cache the Segment Anything image embeddings (before a session)",
            _sam_embed_args, cmd_sam_embed),
)
