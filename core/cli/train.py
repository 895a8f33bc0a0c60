"""Model commands: train (and export) a deployable model, classify files with it, make it a project's
classifier."""

from __future__ import annotations

import argparse
import os
import sys

from core.cli.common import Command, add_db_project, open_service, print_json
from core.config import Settings
from core.usecases.training.results import StudentOptions


def _train_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--out", required=True, help="new folder for the model (a zip of it is written beside it)")
    p.add_argument("--kind", default="head", choices=["head", "student"],
                   help="head: the CLIP encoder + the project's classifier as one ONNX graph (fast); "
                   "student: a small timm network distilled from it")
    p.add_argument("--student", default="mobilenetv3_small_100",
                   help="timm model name, e.g. mobilenetv3_small_100, resnet18, efficientnet_b0")
    p.add_argument("--epochs", type=int, default=5, help="student: passes over the training images")
    p.add_argument("--image-size", type=int, default=224, help="student: input size in pixels")
    p.add_argument("--batch-size", type=int, default=64, help="student: images per step")
    p.add_argument("--workers", type=int, help="student: image decoding workers (default 1 on CPU, up to 8 on GPU)")
    p.add_argument("--no-pretrained", action="store_true", help="student: random init (no ImageNet download)")
    p.add_argument("--holdout", type=float, default=0.2,
                   help="share of the human labels held out for the evaluation (never trained on)")
    p.add_argument("--resume", action="store_true", help="student: continue an interrupted run from its checkpoint")
    p.add_argument("--user", help="annotator name (env CLIPMARK_USER)")


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    # Before torch loads: OpenMP threads spinning between ops starve the decoding workers on a small CPU
    # (1 worker: 0.32 of the bare model's images/s with the default policy, 1.09 with PASSIVE; docs/training.md)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    student = StudentOptions(name=args.student, epochs=args.epochs, image_size=args.image_size,
                             batch_size=args.batch_size, num_workers=args.workers,
                             pretrained=not args.no_pretrained, resume=args.resume)
    report = open_service(args, settings).training.train(
        args.project, out=args.out, kind=args.kind, student=student, holdout=args.holdout, annotator=args.user)
    evaluation = report.evaluation
    print(f"{report.kind} model in {report.folder} ({report.zip_path}); trained on {report.trained_on} human "
          f"labels and {report.pseudo_labels} pseudo-labels; held-out accuracy "
          f"{'n/a' if evaluation.accuracy is None else f'{evaluation.accuracy:.3f}'} on {evaluation.images} labels; "
          f"{len(report.failed_images)} images failed to decode")
    return 0


def _classify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a folder `clipmark train` wrote")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files and folders (searched deeply)")
    p.add_argument("--out", help="CSV of path,label,confidence,top-k (default: print JSON)")
    p.add_argument("--top-k", type=int, default=3, help="how many classes per image (default 3)")


def cmd_classify(args: argparse.Namespace, settings: Settings) -> int:
    """Runs without a database and without torch: numpy, Pillow and onnxruntime only."""
    from core.usecases.training.classify import classify_files  # lazy: onnxruntime loads only for this command

    report = classify_files(args.model, args.inputs, out=args.out, top_k=args.top_k, progress=True,
                            max_pixels=settings.max_pixels)
    for error in report.errors:
        print(f"  skipped {error}", file=sys.stderr)
    if args.out:
        print(f"classified {len(report.predictions)} images into {args.out}; {len(report.errors)} skipped")
    else:
        print_json(report)
    return 0


def _set_classifier_args(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--model", required=True, help="a folder `clipmark train` wrote, with the project's classes")
    p.add_argument("--user", help="annotator name (env CLIPMARK_USER)")


def cmd_set_classifier(args: argparse.Namespace, settings: Settings) -> int:
    summary = open_service(args, settings).training.set_classifier(args.project, args.model, annotator=args.user)
    print(f"predicted {summary.images} images with {summary.model_version} (prediction run {summary.run_id})")
    return 0


COMMANDS = (
    Command("train", "train and export a deployable model (ONNX + safetensors + model card) from the labels",
            _train_args, cmd_train),
    Command("classify", "classify image files with an exported model (onnxruntime, no torch)", _classify_args,
            cmd_classify),
    Command("set-classifier", "use an exported model as the project's classifier (stores its predictions)",
            _set_classifier_args, cmd_set_classifier),
)
