"""The active-learning simulation: label-efficiency curves with an oracle, outside any project."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.common import Command, add_model_args, print_json
from core.config import Settings
from core.errors import InvalidInput


def _simulate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder for curve.csv, curve.png, summary.json")
    p.add_argument("--strategies", default="auto,margin_diverse,random",
                   help="comma-separated strategy names")
    p.add_argument("--budget", type=int, required=True, help="labels the oracle gives in all")
    p.add_argument("--step", type=int, required=True, help="labels per round")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--audit", type=float, default=0.05,
                   help="share of labels drawn as blind random audits (0..1; their estimate of the unlabeled "
                        "pool's accuracy goes next to the truth in curve.csv; 0 = none)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--embeddings", help=".npz with image_embeddings, labels, class_names[, text_embeddings]")
    source.add_argument("--manifest", help="CSV of path,label (with --root and a model)")
    p.add_argument("--root", help="folder the manifest paths are relative to")
    add_model_args(p)
    p.add_argument("--batch-size", type=int)


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from core.labeling.simulate import load_npz, run_simulation  # lazy: numpy and the strategies; --help needs none

    scale = 100.0
    if args.embeddings:
        data = load_npz(args.embeddings)
    else:
        from core.models.base import ModelSpec  # lazy, as above
        from core.usecases.simulate_inputs import sim_data_from_manifest

        if not args.root:
            raise InvalidInput("--root: needed with --manifest")
        spec = ModelSpec(arch=settings.model, pretrained=settings.pretrained, config=settings.model_config)
        data, scale = sim_data_from_manifest(args.manifest, root=args.root, spec=spec,
                                             batch_size=settings.batch_size, device=settings.device)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    summary = run_simulation(data, strategies=strategies, budget=args.budget, step=args.step, seeds=args.seeds,
                             out_dir=Path(args.out), logit_scale=scale, audit=args.audit)
    print_json(summary)
    return 0


COMMANDS = (
    Command("simulate", "active-learning simulation with an oracle: label-efficiency curves", _simulate_args,
            cmd_simulate),
)
