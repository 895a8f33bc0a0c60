"""The files beside an exported model: config.json (what running it needs) and the model card."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from core.export.escaping import markdown_text as md
from core.usecases.training.results import Evaluation, TrainReport

INTENDED_USE = {
    "head": "Classify images like the project's (same domain, same classes) with the CLIP image encoder the "
            "project was embedded with plus the head adapted to its labels.",
    "student": "A small, fast network for the project's classes on images like the project's, where the CLIP "
               "model is too large or slow to deploy.",
}


def versions() -> dict[str, str]:
    found = {}
    for package in ("clipmark", "torch", "open_clip_torch", "timm", "onnx", "onnxruntime"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def write_config(folder: Path, config: dict[str, Any]) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps({**config, "versions": versions()}, indent=2), encoding="utf-8")
    return path


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def evaluation_lines(evaluation: Evaluation) -> list[str]:
    if not evaluation.images:
        return ["No held-out human labels (holdout 0 or too few labels): no held-out accuracy."]
    low, high = evaluation.interval or (0.0, 0.0)
    lines = [f"Held-out accuracy: {percent(evaluation.accuracy)} on {evaluation.images} human labels "
             f"(95% interval {percent(low)} to {percent(high)}); these labels were never trained on.", "",
             "| class | held-out labels | correct | precision | recall |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {md(c.name)} | {c.support} | {c.correct} | {percent(c.precision)} | {percent(c.recall)} |"
              for c in evaluation.per_class]
    if evaluation.confusion_png:
        lines += ["", f"![confusion matrix]({Path(evaluation.confusion_png).name})"]
    return lines


def model_card(report: TrainReport, *, config: dict[str, Any]) -> str:
    sources = ", ".join(f"{md(name)}: {count}" for name, count in sorted(report.label_sources.items())) or "none"
    lines = [f"# {md(config['name'])}: {report.kind} model of project '{md(report.project)}'", "",
             f"Classes ({len(report.class_names)}): {', '.join(md(name) for name in report.class_names)}.", "",
             "## Data", "",
             f"- Human labels trained on: {report.trained_on}; label sources: {sources}.",
             f"- Confident pseudo-labels trained on (soft targets from the CLIP classifier): {report.pseudo_labels}.",
             f"- Images that failed to decode during training (skipped): {len(report.failed_images)}.",
             f"- CLIP model: {md(report.model_id)}.", "",
             "## Accuracy", "", f"Audit estimate of the project's labels: {report.audit_estimate}.", "",
             *evaluation_lines(report.evaluation)]
    if report.kind == "student":
        lines += ["", f"Agreement with the CLIP classifier on {report.agreement_images} held-out unlabeled "
                      f"images: {percent(report.agreement)}.", "",
                  f"Student: {md(config.get('student'))} ({md(report.weights)}); {report.steps} steps, "
                  f"{report.images_per_second or 0:.1f} images/s"
                  + (f", resumed from step {report.resumed_from}" if report.resumed_from is not None else "") + "."]
    pre = config["preprocess"]
    lines += ["", "## Running it", "",
              f"`model.onnx` (opset {config['opset']}): input `image` float32 (batch, 3, {pre['image_size']}, "
              f"{pre['image_size']}), batch axis dynamic; output `probs` (batch, {len(report.class_names)}).",
              f"Preprocessing: resize the shortest side to {pre['resize_size']} ({pre['interpolation']}), centre "
              f"crop {pre['crop_size']}, scale to [0, 1], normalise with mean {pre['mean']} and std {pre['std']}.",
              "`pip install clipmark[classify]` (numpy, Pillow, onnxruntime; no torch) then "
              "`clipmark classify --model THIS_FOLDER images/ --out predictions.csv`.", "",
              "## Intended use", "", INTENDED_USE[report.kind], "",
              "## Limits", "",
              "- It knows only these classes: every image gets one of them, even when none applies.",
              "- The held-out labels come from the same project; other cameras, places or periods may score lower.",
              "- Labels chosen by uncertainty sampling are harder than average, so the held-out accuracy is "
              "likely pessimistic for typical images, while pseudo-labels carry the CLIP model's own mistakes."]
    return "\n".join(lines) + "\n"
