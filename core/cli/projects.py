"""The command line: the same service the web app uses. `clipmark --help` lists the commands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from core.config import Settings
from core.errors import ClipmarkError, InvalidInput

Handler = Callable[[argparse.Namespace, Settings], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {}


def command(name: str, help_text: str, add_args: Callable[[argparse.ArgumentParser], None]):  # type: ignore[no-untyped-def]
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = (help_text, add_args, handler)
        return handler
    return register


def _db_project(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="SQLite file or SQLAlchemy URL (env CLIPMARK_DB)")
    p.add_argument("--project", required=True, help="project name")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="open_clip architecture, e.g. ViT-B-32 (env CLIPMARK_MODEL)")
    p.add_argument("--pretrained",
                   help="hub tag or local checkpoint file (env CLIPMARK_PRETRAINED); 'none' for random weights")
    p.add_argument("--model-config", help="local open_clip model config JSON (registered as --model)")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")


def _sam_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sam-model", help="Segment Anything model: vit_b, vit_l, vit_h, vit_t (MobileSAM) or tiny "
                   "(env CLIPMARK_SAM_MODEL; default vit_b)")
    p.add_argument("--sam-checkpoint", help="local SAM checkpoint .pth (env CLIPMARK_SAM_CHECKPOINT); 'random' for "
                   "random weights; unset: the official download (vit_b/l/h)")


def _service(args: argparse.Namespace, settings: Settings):  # type: ignore[no-untyped-def]
    from core.service import Service

    return Service(settings)


def _print(data: Any, as_json: bool = True) -> None:
    print(json.dumps(data, indent=2, default=str) if as_json else data)


def _print_problems(title: str, problems: Sequence[dict[str, str]]) -> None:
    for item in problems:
        print(f"  {title}: {item['file']}: {item['reason']}", file=sys.stderr)


# -- commands ----------------------------------------------------------------------------------


def _init_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--labels", help='comma-separated class names, e.g. "cat,dog,bird"')
    group.add_argument("--labels-file", help="one class per line, or JSON {class: [prompts]}")


@command("init", "create a project with its classes", _init_args)
def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from core.classes import load_labels_file, parse_label_list

    classes = parse_label_list(args.labels) if args.labels else load_labels_file(args.labels_file)
    _print(_service(args, settings).create_project(args.project, classes=classes))
    return 0


def _import_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    p.add_argument("paths", nargs="+", help="folders (recursive), zip files or image files")
    p.add_argument("--labels-from", help="'folders' (parent folder = class) or a CSV of path,label")


@command("import", "import images (folders, zip files, files)", _import_args)
def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    summary = _service(args, settings).import_images(args.project, args.paths,
                                                      labels_from=args.labels_from).as_dict()
    _print_problems("failed", summary["errors"])  # type: ignore[arg-type]
    _print_problems("label", summary["label_problems"])  # type: ignore[arg-type]
    print(f"imported {summary['imported']}, skipped {summary['duplicates']} duplicates, "
          f"failed {summary['failed']}, labeled {summary['labeled']}")
    return 0


def _embed_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    _model_args(p)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--workers", type=int, help="decoding worker processes")


@command("embed", "compute and cache CLIP image embeddings", _embed_args)
def cmd_embed(args: argparse.Namespace, settings: Settings) -> int:
    summary = _service(args, settings).embed(args.project).as_dict()
    _print_problems("failed", summary["errors"])  # type: ignore[arg-type]
    print(f"model {summary['model_id']}: embedded {summary['computed']}, "
          f"cached {summary['cached']}, failed {summary['failed']}")
    return 0


@command("predict", "zero-shot pseudo-labels for every embedded image", _db_project)
def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    summary = _service(args, settings).predict(args.project).as_dict()
    print(f"predicted {summary['images']} images with {summary['model_id']} "
          f"({summary['model_version']}, prompts {summary['prompts_hash']})")
    return 0


def _status_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


@command("status", "counts, failures, models and the latest predictions", _status_args)
def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    status = _service(args, settings).status(args.project)
    if args.json:
        _print(status)
        return 0
    print(f"project {status['project']}: {status['images']} images, {status['labeled']} labeled, "
          f"{len(status['failed'])} failed")
    for model_id, count in status["embedded"].items():
        print(f"  embeddings {model_id}: {count}")
    for name, sources in status["classes"].items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sources.items()))
    if status["latest_prediction"]:
        lp = status["latest_prediction"]
        print(f"  predictions: run {lp['run_id']} {lp['model_id']} {lp['model_version']}")
    return 0


def _export_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    p.add_argument("--format", default="csv", help="export format (default csv); coco, yolo-detect and "
                   "yolo-segment also write region instances",
                   choices=["imagefolder", "yolo", "csv", "jsonl", "coco", "hf", "yolo-detect", "yolo-segment"])
    p.add_argument("--masks", default="rle", choices=["rle", "polygons"],
                   help="coco: instance masks as compressed RLE (exact, default) or polygons")
    p.add_argument("--out", required=True, help="output folder; for csv/jsonl/coco a .csv/.jsonl/.json file also works")
    p.add_argument("--include", default="all", choices=["all", "human", "model"],
                   help="label sources: human (incl. import/review), model (pseudo-labels), all (human first)")
    p.add_argument("--min-confidence", type=float, default=0.0, help="drop pseudo-labels below this confidence")
    p.add_argument("--status", default="all", choices=["all", "labeled", "unlabeled"], help="which images")
    p.add_argument("--link", choices=["copy", "hardlink", "symlink"],
                   help="how image files get into the export (folder formats default to copy)")
    p.add_argument("--split", help="stratified train,val[,test] fractions, e.g. 0.8,0.1,0.1 (yolo: 0.8,0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split")
    p.add_argument("--leak-threshold", type=float, default=0.95,
                   help="cosine above which images count as near-duplicates and stay in one split")
    p.add_argument("--no-leak-check", action="store_true", help="split without the near-duplicate check")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file or previous export")


@command("export", "write the dataset in a format training code loads", _export_args)
def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    report = _service(args, settings).export(
        args.project, fmt=args.format, out=args.out, include=args.include, min_confidence=args.min_confidence,
        status=args.status, link=args.link, split=args.split, seed=args.seed, overwrite=args.overwrite,
        leak_threshold=None if args.no_leak_check else args.leak_threshold, masks=args.masks, progress=True)
    _print(report)
    return 0


def _import_labels_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    p.add_argument("source", help="the labels: a folder (imagefolder, or an export folder) or a file")
    p.add_argument("--format", required=True, choices=["imagefolder", "csv", "coco", "jsonl"])
    p.add_argument("--include", default="human", choices=["human", "all"],
                   help="all: also rows an export marked as model pseudo-labels")
    p.add_argument("--add-classes", action="store_true", help="add classes the project does not have yet")
    p.add_argument("--replace", action="store_true", help="overwrite labels the images already have")
    p.add_argument("--user", help="annotator name recorded on the import events (env CLIPMARK_USER)")


@command("import-labels", "label the project's images from labels made elsewhere", _import_labels_args)
def cmd_import_labels(args: argparse.Namespace, settings: Settings) -> int:
    report = _service(args, settings).import_labels(
        args.project, args.source, fmt=args.format, include=args.include, add_classes=args.add_classes,
        replace=args.replace, user=args.user)
    _print_problems("label", report["problems"])
    for name, count in report["unknown_classes"].items():
        print(f"  unknown class '{name}' ({count} rows): not imported; --add-classes adds it", file=sys.stderr)
    print(f"labeled {report['labeled']}, unchanged {report['unchanged']}, kept existing {report['kept_existing']}, "
          f"unmatched {report['unmatched']}, skipped pseudo-labels {report['skipped_model']}")
    return 0


def _next_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    p.add_argument("-n", type=int, default=10, help="how many items")
    p.add_argument("-k", type=int, default=3, help="top-k labels per item")
    p.add_argument("--user", help="annotator name (env CLIPMARK_USER)")


@command("next", "the next items to label, most useful first, with their top-k labels", _next_args)
def cmd_next(args: argparse.Namespace, settings: Settings) -> int:
    for item in _service(args, settings).next_items(args.project, annotator=args.user, n=args.n, k=args.k):
        top = ", ".join(f"{t['label']} {t['confidence']:.2f}" for t in item["top"])
        print(f"{item['image_id']}\t{item['path']}\t{top}\t[{item['reason']['strategy']} "
              f"{item['reason']['score']:.3f}]")
    return 0


def _label_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    p.add_argument("--image-id", type=int, required=True)
    p.add_argument("--action", choices=["accept", "correct", "skip"], default="correct")
    p.add_argument("--label", help="the class (needed for correct; accept takes the proposal)")
    p.add_argument("--user", help="annotator name (env CLIPMARK_USER)")


@command("label", "record a decision on one image (accept, correct, skip)", _label_args)
def cmd_label(args: argparse.Namespace, settings: Settings) -> int:
    _print(_service(args, settings).decide(args.project, image_id=args.image_id, action=args.action,
                                           label=args.label, annotator=args.user))
    return 0


def _undo_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    p.add_argument("--user", help="annotator name (env CLIPMARK_USER)")


@command("undo", "undo your latest decision", _undo_args)
def cmd_undo(args: argparse.Namespace, settings: Settings) -> int:
    _print(_service(args, settings).undo(args.project, annotator=args.user))
    return 0


def _suspects_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    p.add_argument("--limit", type=int, default=50)


@command("suspects", "human labels the model contradicts, and conflicting near-duplicates", _suspects_args)
def cmd_suspects(args: argparse.Namespace, settings: Settings) -> int:
    _print(_service(args, settings).suspects(args.project, limit=args.limit))
    return 0


def _simulate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder for curve.csv, curve.png, summary.json")
    p.add_argument("--strategies", default="margin_diverse,margin,random",
                   help="comma-separated strategy names")
    p.add_argument("--budget", type=int, required=True, help="labels the oracle gives in all")
    p.add_argument("--step", type=int, required=True, help="labels per round")
    p.add_argument("--seeds", type=int, default=3)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--embeddings", help=".npz with image_embeddings, labels, class_names[, text_embeddings]")
    source.add_argument("--manifest", help="CSV of path,label (with --root and a model)")
    p.add_argument("--root", help="folder the manifest paths are relative to")
    _model_args(p)
    p.add_argument("--batch-size", type=int)


@command("simulate", "active-learning simulation with an oracle: label-efficiency curves", _simulate_args)
def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from core.labeling.simulate import load_npz, run_simulation

    scale = 100.0
    if args.embeddings:
        data = load_npz(args.embeddings)
    else:
        from core.models.base import ModelSpec
        from core.simulate_inputs import sim_data_from_manifest

        if not args.root:
            raise InvalidInput("--root: needed with --manifest")
        spec = ModelSpec(arch=settings.model, pretrained=settings.pretrained, config=settings.model_config)
        data, scale = sim_data_from_manifest(args.manifest, root=args.root, spec=spec,
                                             batch_size=settings.batch_size, device=settings.device)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    summary = run_simulation(data, strategies=strategies, budget=args.budget, step=args.step, seeds=args.seeds,
                             out_dir=Path(args.out), logit_scale=scale)
    _print(summary)
    return 0


def _serve_args(p: argparse.ArgumentParser, *, demo_flag: bool = True) -> None:
    p.add_argument("--db", help="SQLite file or SQLAlchemy URL (env CLIPMARK_DB)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    _model_args(p)
    _sam_args(p)
    if demo_flag:
        p.add_argument("--demo", action="store_true",
                       help="also create the demo project (scikit-image photographs) if it is missing")


@command("serve", "start the web app", _serve_args)
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from webapp.app import serve

    serve(settings, host=args.host, port=args.port, demo=args.demo)
    return 0


@command("demo", "the web app on a ready demo project (scikit-image photographs, a few classes)",
         lambda p: _serve_args(p, demo_flag=False))
def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from webapp.app import serve

    serve(settings, host=args.host, port=args.port, demo=True)
    return 0


def _user_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("verb", choices=["add", "list", "disable"])
    p.add_argument("name", nargs="?", help="user name (add, disable)")
    p.add_argument("--role", default="annotator", help="annotator, reviewer or admin (add)")
    p.add_argument("--db", help="SQLite file or SQLAlchemy URL (env CLIPMARK_DB)")


def _read_password() -> str:
    """From a prompt (asked twice) on a terminal, else the first line of standard input."""
    import getpass

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InvalidInput("password: the two entries differ")
    return first


@command("user", "team members: add NAME --role ROLE (password from a prompt or stdin), list, disable NAME",
         _user_args)
def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    service = _service(args, settings)
    if args.verb == "list":
        for user in service.list_users():
            state = "disabled" if user["disabled"] else ("active" if user["password"] else "no password")
            print(f"{user['name']}\t{user['role']}\t{state}")
        return 0
    if not args.name:
        raise InvalidInput(f"user {args.verb}: give the user's name")
    if args.verb == "add":
        _print(service.add_user(args.name, role=args.role, password=_read_password()))
    else:
        _print(service.disable_user(args.name))
    return 0


def _overlap_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    p.add_argument("--share", type=float, required=True, help="share of the items labeled by several people (0..1)")
    p.add_argument("--annotators", type=int, default=2, help="people per overlap item")


@command("overlap", "send a share of the items to several annotators, blind, to measure agreement", _overlap_args)
def cmd_overlap(args: argparse.Namespace, settings: Settings) -> int:
    _print(_service(args, settings).set_overlap(args.project, share=args.share, annotators=args.annotators))
    return 0


@command("agreement", "Cohen's kappa per pair, Fleiss' kappa, confusion, agreement with the final label", _db_project)
def cmd_agreement(args: argparse.Namespace, settings: Settings) -> int:
    _print(_service(args, settings).agreement(args.project))
    return 0


@command("review", "the review queue: conflicts (who said what) and label-error suspects", _suspects_args)
def cmd_review(args: argparse.Namespace, settings: Settings) -> int:
    _print(_service(args, settings).review_queue(args.project, limit=args.limit))
    return 0


def _resolve_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    p.add_argument("--image-id", type=int, required=True)
    p.add_argument("--label", required=True, help="the final label")
    p.add_argument("--user", help="the reviewer (env CLIPMARK_USER)")


@command("resolve", "a reviewer's final label for an item (conflict or suspect)", _resolve_args)
def cmd_resolve(args: argparse.Namespace, settings: Settings) -> int:
    _print(_service(args, settings).resolve(args.project, image_id=args.image_id, label=args.label,
                                            reviewer=args.user))
    return 0


def _history_args(p: argparse.ArgumentParser) -> None:
    _db_project(p)
    p.add_argument("--user", help="only this user's events")
    p.add_argument("--action", help="accept, correct, skip, undo, import, review, or a region action: region-add, "
                   "region-delete, region-relabel, region-accept, region-reject, region-undo")
    p.add_argument("--image-id", type=int)
    p.add_argument("--limit", type=int, default=200)


@command("history", "every event, newest first, filterable", _history_args)
def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    for e in _service(args, settings).history(args.project, user=args.user, action=args.action,
                                              image_id=args.image_id, limit=args.limit):
        print(f"{e['event_id']}\t{e['at']}\t{e['annotator'] or ''}\t{e['action']}\t{e['image_id']}\t"
              f"{e['before'] or ''} -> {e['after'] or ''}")
    return 0


# -- entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    import core.cli_regions  # noqa: F401  (registers the region commands)

    parser = argparse.ArgumentParser(prog="clipmark", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][2](args, settings_from(args))
    except ClipmarkError as exc:
        print(f"clipmark {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # `python -m core.cli`: run the importable module, whose table the plugins fill
    from core.cli import main as module_main

    sys.exit(module_main())
