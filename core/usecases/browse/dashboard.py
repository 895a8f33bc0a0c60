"""The numbers behind the dashboard: counts per class and source, estimated pseudo-label accuracy,
the label-efficiency curve and per-annotator throughput. Queries take a session and never commit;
the curve is numpy in, numpy out."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime

import numpy as np
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from core.labeling.adapt import fit_classifier
from core.store import repo
from core.store.schema import CurrentLabel, Event, Prediction, PredictionRun, User
from core.usecases.browse.results import (
    Accuracy,
    AnnotatorRate,
    ClassCount,
    CurvePoint,
    HourCount,
    RunAccuracy,
    Throughput,
)

HUMAN_SOURCES = ("human", "review")
DECISION_ACTIONS = ("accept", "correct", "skip", "undo")
IDLE_GAP_S = 300.0
MIN_ACTIVE_S = 60.0  # below a minute of activity a rate per hour means little
MIN_EVALUATED = 5


def class_counts(session: Session, *, project_id: int, model_counts: dict[int, int]) -> list[ClassCount]:
    """One row per class: labels by source (human, import, review) and unlabeled images the model
    currently predicts as that class (`model_counts`: label_id -> count)."""
    rows: dict[int, ClassCount] = {
        c.id: {"label": c.name, "human": 0, "import": 0, "review": 0, "model": model_counts.get(c.id, 0)}
        for c in repo.classes_of(session, project_id=project_id)}
    for label_id, source, count in repo.label_counts(session, project_id=project_id):
        if label_id in rows and source in ("human", "import", "review"):
            rows[label_id][source] += count  # type: ignore[literal-required]  # source is one of the three
    return list(rows.values())


def wilson(agree: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = agree / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def pseudo_label_accuracy(session: Session, *, project_id: int) -> Accuracy:
    """Agreement of stored predictions with the human labels made after them: each human label is
    compared with the latest prediction run made before it."""
    runs = list(session.scalars(select(PredictionRun).where(PredictionRun.project_id == project_id)
                                .order_by(PredictionRun.id)))
    per_run: list[RunAccuracy] = []
    for k, run in enumerate(runs):
        end = runs[k + 1].created_at if k + 1 < len(runs) else None
        compared, agree = _agreement(session, project_id=project_id, run=run, end=end)
        per_run.append({"run_id": run.id, "model_version": run.model_version, "created_at": run.created_at.isoformat(),
                        "compared": compared, "agree": agree,
                        "accuracy": agree / compared if compared else None})
    compared = sum(r["compared"] for r in per_run)
    agree = sum(r["agree"] for r in per_run)
    low, high = wilson(agree, compared)
    return {"estimate": agree / compared if compared else None, "compared": compared, "agree": agree,
            "low": low, "high": high, "per_run": per_run}


def _agreement(session: Session, *, project_id: int, run: PredictionRun, end: datetime | None) -> tuple[int, int]:
    window = [CurrentLabel.project_id == project_id, CurrentLabel.source.in_(HUMAN_SOURCES),
              CurrentLabel.updated_at >= run.created_at]
    if end is not None:
        window.append(CurrentLabel.updated_at < end)
    same = case((Prediction.label_id == CurrentLabel.label_id, 1), else_=0)
    compared, agree = session.execute(
        select(func.count(), func.coalesce(func.sum(same), 0)).select_from(CurrentLabel)
        .join(Prediction, and_(Prediction.image_id == CurrentLabel.image_id, Prediction.run_id == run.id))
        .where(*window)
    ).one()
    return int(compared), int(agree)


def labels_in_order(session: Session, *, project_id: int) -> list[tuple[int, int]]:
    """(image_id, label_id) of the current human labels, in the order they were made."""
    rows = session.execute(
        select(CurrentLabel.image_id, CurrentLabel.label_id)
        .where(CurrentLabel.project_id == project_id, CurrentLabel.source.in_(HUMAN_SOURCES))
        .order_by(CurrentLabel.event_id))
    return [(int(i), int(label)) for i, label in rows]


def checkpoints(total: int, *, most: int = 9) -> list[int]:
    """0, 5, 10, 20, 40 ... labels, each leaving at least MIN_EVALUATED later labels to test on."""
    points, n = [0], 5
    while n <= total - MIN_EVALUATED and len(points) < most:
        points.append(n)
        n *= 2
    return points if total >= MIN_EVALUATED else []


def efficiency_curve(
    embeddings: np.ndarray, rows: np.ndarray, labels: np.ndarray, *, num_classes: int,
    text_head: np.ndarray | None, logit_scale: float, rng: np.random.Generator,
) -> list[CurvePoint]:
    """Accuracy on the labels made later when the classifier learns from the first n labels.

    `rows`/`labels`: state rows and class indices of the human labels in the order they were made."""
    center = embeddings.mean(axis=0) if embeddings.shape[0] else None
    curve: list[CurvePoint] = []
    for n in checkpoints(int(rows.size)):
        classifier = fit_classifier(embeddings[rows[:n]], labels[:n], num_classes=num_classes,
                                    text_head=text_head, logit_scale=logit_scale, rng=rng, center=center)
        later = rows[n:]
        predicted = classifier.predict_proba(embeddings[later]).argmax(axis=1)
        curve.append({"labels": n, "accuracy": float((predicted == labels[n:]).mean()),
                      "evaluated": int(later.size), "version": classifier.version})
    return curve


def throughput(session: Session, *, project_id: int, idle_gap_s: float = IDLE_GAP_S) -> Throughput:
    """Decisions per annotator: counts by action, active time (gaps over `idle_gap_s` do not count),
    decisions per active hour, and decisions per hour of the day they were made."""
    rows = session.execute(
        select(User.name, Event.action, Event.created_at).join(User, User.id == Event.annotator_id)
        .where(Event.project_id == project_id, Event.action.in_(DECISION_ACTIONS), Event.source == "human")
        .order_by(Event.id))
    times: dict[str, list[datetime]] = defaultdict(list)
    actions: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(DECISION_ACTIONS, 0))
    hourly: dict[tuple[str, datetime], int] = defaultdict(int)
    for name, action, created in rows:
        times[name].append(created)
        actions[name][action] += 1
        hourly[(name, created.replace(minute=0, second=0, microsecond=0))] += 1
    people: list[AnnotatorRate] = []
    for name, stamps in times.items():
        gaps = np.diff(np.array([t.timestamp() for t in stamps])) if len(stamps) > 1 else np.zeros(0)
        active = float(gaps[gaps <= idle_gap_s].sum())
        decisions = len(stamps)
        done = actions[name]
        people.append({"annotator": name, "decisions": decisions, "accept": done["accept"], "correct": done["correct"],
                       "skip": done["skip"], "undo": done["undo"], "active_minutes": round(active / 60, 2),
                       "per_hour": round(decisions / (active / 3600), 1) if active >= MIN_ACTIVE_S else None})
    timeline: list[HourCount] = [{"annotator": name, "hour": hour.isoformat(), "decisions": count}
                                 for (name, hour), count in sorted(hourly.items())]
    return {"annotators": sorted(people, key=lambda p: -p["decisions"]), "timeline": timeline}
