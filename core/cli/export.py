"""Dataset commands: export, import-labels."""

from __future__ import annotations

import argparse
import sys

from core.cli.common import Command, add_db_project, open_service, print_json, print_problems
from core.config import Settings


def _export_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
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


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    report = open_service(args, settings).exporting.export(
        args.project, fmt=args.format, out=args.out, include=args.include, min_confidence=args.min_confidence,
        status=args.status, link=args.link, split=args.split, seed=args.seed, overwrite=args.overwrite,
        leak_threshold=None if args.no_leak_check else args.leak_threshold, masks=args.masks, progress=True)
    print_json(report)
    return 0


def _import_labels_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("source", help="the labels: a folder (imagefolder, or an export folder) or a file")
    p.add_argument("--format", required=True, choices=["imagefolder", "csv", "coco", "jsonl"])
    p.add_argument("--include", default="human", choices=["human", "all"],
                   help="all: also rows an export marked as model pseudo-labels")
    p.add_argument("--add-classes", action="store_true", help="add classes the project does not have yet")
    p.add_argument("--replace", action="store_true", help="overwrite labels the images already have")
    p.add_argument("--user", help="annotator name recorded on the import events (env CLIPMARK_USER)")


def cmd_import_labels(args: argparse.Namespace, settings: Settings) -> int:
    report = open_service(args, settings).importing.labels(
        args.project, args.source, fmt=args.format, include=args.include, add_classes=args.add_classes,
        replace=args.replace, annotator=args.user)
    print_problems("label", report["problems"])
    for name, count in report["unknown_classes"].items():
        print(f"  unknown class '{name}' ({count} rows): not imported; --add-classes adds it", file=sys.stderr)
    print(f"labeled {report['labeled']}, unchanged {report['unchanged']}, kept existing {report['kept_existing']}, "
          f"unmatched {report['unmatched']}, skipped pseudo-labels {report['skipped_model']}")
    return 0


COMMANDS = (
    Command("export", "write the dataset in a format training code loads", _export_args, cmd_export),
    Command("import-labels", "label the project's images from labels made elsewhere", _import_labels_args,
            cmd_import_labels),
)
