"""Project commands: init, import, embed, predict, status."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from core.cli.common import (
    Command,
    add_db_project,
    add_model_args,
    open_service,
    print_json,
    print_problems,
)
from core.config import Settings, path_map
from core.errors import InvalidInput


def _init_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--labels", help='comma-separated class names, e.g. "cat,dog,bird"')
    group.add_argument("--labels-file", help="one class per line, or JSON {class: [prompts]}")


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    # lazy: the store's tables; --help needs none
    from core.usecases.projects.classes import load_labels_file, parse_label_list

    classes = parse_label_list(args.labels) if args.labels else load_labels_file(args.labels_file)
    print_json(open_service(args, settings).projects.create(args.project, classes=classes))
    return 0


def _import_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("paths", nargs="+", help="folders (recursive), zip files or image files")
    p.add_argument("--labels-from", help="'folders' (parent folder = class) or a CSV of path,label")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Ctrl-C is the cancel: the first one stops the import after the current file (what it imported
    stays, and is reported); a second one interrupts at once."""
    with first_interrupt_sets() as stop:
        summary = open_service(args, settings).importing.images(args.project, args.paths, labels_from=args.labels_from,
                                                                cancelled=stop.is_set)
    print_problems("failed", [{"file": p.file, "reason": p.reason} for p in summary.errors])
    print_problems("label", [{"file": p.file, "reason": p.reason} for p in summary.label_problems])
    stopped = " (cancelled with Ctrl-C; run the same import again to continue)" if summary.cancelled else ""
    print(f"imported {summary.imported}, skipped {summary.duplicates} duplicates, "
          f"failed {summary.failed}, labeled {summary.labeled}{stopped}")
    return 130 if summary.cancelled else 0


@contextmanager
def first_interrupt_sets() -> Iterator[threading.Event]:
    """An Event the first SIGINT sets (the previous handler is back for the second, and on leaving)."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)
        print("stopping after the current file (Ctrl-C again to interrupt now)", file=sys.stderr)

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if in_main else None
    if in_main:
        signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)


def _embed_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    add_model_args(p)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--workers", type=int, help="decoding worker processes (local engine)")
    add_engine_args(p)


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """`--engine local|ray` and the Ray job's flags (embed, sam-embed)."""
    p.add_argument("--engine", choices=("local", "ray"),
                   help="local: this process; ray: a pool of model actors on Ray "
                        "(default: ray when --address or CLIPMARK_RAY_ADDRESS is set, else CLIPMARK_ENGINE or local)")
    p.add_argument("--address", help="Ray cluster address, e.g. ray://head:10001 or auto (env CLIPMARK_RAY_ADDRESS); "
                   "unset with --engine ray: a local Ray on this machine")
    p.add_argument("--actors", type=int, help="model actors of a Ray job, one GPU each where there are GPUs "
                   "(env CLIPMARK_RAY_ACTORS; default 2)")
    p.add_argument("--map-path", action="append", metavar="STORE=CLUSTER",
                   help="read images under STORE_PREFIX from CLUSTER_PREFIX on the actors, e.g. "
                        "/data/images=s3://bucket/images (repeatable; env CLIPMARK_RAY_PATH_MAP)")


def engine_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings with the engine flags the user gave."""
    try:
        mapped = path_map(";".join(args.map_path)) if args.map_path else None
    except ValueError as exc:
        raise InvalidInput(str(exc).replace("CLIPMARK_RAY_PATH_MAP", "--map-path")) from exc
    return settings.with_overrides(engine=args.engine, engine_address=args.address, engine_actors=args.actors,
                                   engine_path_map=mapped)


def cmd_embed(args: argparse.Namespace, settings: Settings) -> int:
    settings = engine_settings(args, settings)
    summary = open_service(args, settings).embedding.embed(args.project, engine=args.engine).as_dict()
    print_problems("failed", summary["errors"])  # type: ignore[arg-type]
    print(f"model {summary['model_id']}: embedded {summary['computed']}, "
          f"cached {summary['cached']}, failed {summary['failed']}")
    return 0


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    summary = open_service(args, settings).embedding.predict(args.project).as_dict()
    print(f"predicted {summary['images']} images with {summary['model_id']} "
          f"({summary['model_version']}, prompts {summary['prompts_hash']})")
    return 0


def _status_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    status = open_service(args, settings).projects.status(args.project)
    if args.json:
        print_json(status)
        return 0
    print(f"project {status.project}: {status.images} images, {status.labeled} labeled, "
          f"{len(status.failed)} failed")
    for model_id, count in status.embedded.items():
        print(f"  embeddings {model_id}: {count}")
    for name, sources in status.classes.items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sources.items()))
    if status.latest_prediction:
        lp = status.latest_prediction
        print(f"  predictions: run {lp.run_id} {lp.model_id} {lp.model_version}")
    return 0


COMMANDS = (
    Command("init", "create a project with its classes", _init_args, cmd_init),
    Command("import", "import images (folders, zip files, files)", _import_args, cmd_import),
    Command("embed", "compute and cache CLIP image embeddings", _embed_args, cmd_embed),
    Command("predict", "zero-shot pseudo-labels for every embedded image", add_db_project, cmd_predict),
    Command("status", "counts, failures, models and the latest predictions", _status_args, cmd_status),
)
