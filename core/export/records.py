"""One record per image with its label and where that label came from: what every export writes.

Records are streamed from one joined query (images + current label + latest prediction), so an
export holds one batch of rows at a time, never the whole project. A record carries the live region
instances of its image too, fetched with one query per batch of records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, not_, or_, select
from sqlalchemy.orm import Session, aliased

from core.errors import InvalidInput
from core.store import regions, repo
from core.store.schema import AcceptBatch, CurrentLabel, Event, Image, Instance, Prediction, User

INCLUDES = ("all", "human", "model")  # which label sources may supply the label
ACCEPTED = "model-accepted"  # pseudo-labels taken by "accept the rest": a model label, kept at any confidence
STATUSES = ("all", "labeled", "unlabeled")
# What makes an image "labeled" for --status: its class label (classification formats), a class label
# or a live region instance (coco), a person's class label or an instance (the yolo region formats).
LABELED_BY = ("label", "label_or_instance", "human_or_instance")
INSTANCE_BATCH = 500  # records whose instances are fetched with one query


@dataclass(frozen=True)
class Record:
    image_id: int
    path: str
    file_path: str
    sha256: str
    width: int
    height: int
    label: str | None
    source: str | None          # human | import | review | model | model-accepted | None (no label)
    confidence: float | None    # the model's confidence for model labels
    annotator: str | None
    model_id: str | None
    model_version: str | None
    timestamp: datetime | None
    agreement: str | None = None  # final-label policy where several labeled: single/majority/reviewer/conflict
    instances: tuple[dict[str, Any], ...] = ()  # live region instances (core.store.regions.instance_rows)


@dataclass(frozen=True)
class RecordFilter:
    """`include`: human labels (human/import/review), model labels (pseudo-labels and the accepted
    ones, source model-accepted), or both (human first);
    `min_confidence`: pseudo-labels below it are dropped; `status`: keep labeled, unlabeled or all;
    `labeled_by`: what counts as labeled for `status` (LABELED_BY)."""

    include: str = "all"
    min_confidence: float = 0.0
    status: str = "all"
    labeled_by: str = "label"

    def __post_init__(self) -> None:
        if self.include not in INCLUDES:
            raise InvalidInput(f"--include: unknown '{self.include}' (valid: {', '.join(INCLUDES)})")
        if self.status not in STATUSES:
            raise InvalidInput(f"--status: unknown '{self.status}' (valid: {', '.join(STATUSES)})")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise InvalidInput(f"--min-confidence: {self.min_confidence} is not between 0 and 1")
        if self.labeled_by not in LABELED_BY:
            raise InvalidInput(f"labeled_by: unknown '{self.labeled_by}' (valid: {', '.join(LABELED_BY)})")


def iter_records(
    session: Session, *, project_id: int, batch: int = 2000, where: RecordFilter | None = None,
) -> Iterator[Record]:
    """Records in image id order. With the default filter: the human (or import/review) label when
    there is one, else the latest prediction, else no label; each with its image's live instances."""
    where = where or RecordFilter()
    names = repo.class_names(session, project_id=project_id)
    run = repo.latest_run(session, project_id=project_id)
    query = _query(project_id, None if run is None else run.id, where)
    has_instances = regions.count_instances(session, project_id=project_id) > 0
    # the Core connection, not the ORM session: plain rows, without the ORM's per-row wrapping (~15% of a CSV export)
    rows = session.connection().execute(query.execution_options(yield_per=batch))
    records = (_record(row, names, run, where) for row in rows)
    yield from _with_instances(session, records) if has_instances else records


def _with_instances(session: Session, records: Iterable[Record]) -> Iterator[Record]:
    """The records with their instances attached, one instance query per INSTANCE_BATCH records."""
    records = iter(records)
    while chunk := list(islice(records, INSTANCE_BATCH)):
        found = regions.instance_rows(session, image_ids=[r.image_id for r in chunk])
        for record in chunk:
            rows = found.get(record.image_id)
            yield record if rows is None else replace(record, instances=tuple(rows))


def count_records(session: Session, *, project_id: int, where: RecordFilter | None = None) -> int:
    """How many records `iter_records` yields with the same filter."""
    run = repo.latest_run(session, project_id=project_id)
    query = _query(project_id, None if run is None else run.id, where or RecordFilter())
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _query(project_id: int, run_id: int | None, where: RecordFilter) -> Select:  # type: ignore[type-arg]
    annotator = aliased(User)
    # an accepted pseudo-label's model is its batch's (the classifier that proposed it), looked up only
    # for accepted rows: the CASE keeps the subquery off every other row of a million-image export
    batch_model = case((CurrentLabel.source == ACCEPTED, select(AcceptBatch.model_version)
                        .join(Event, Event.batch_id == AcceptBatch.id)
                        .where(Event.id == CurrentLabel.event_id).scalar_subquery()), else_=None)
    query = (
        select(Image.id, Image.original_path, Image.file_path, Image.sha256, Image.width, Image.height,
               CurrentLabel.label_id, CurrentLabel.source, CurrentLabel.updated_at, annotator.name,
               Prediction.label_id, Prediction.confidence, Prediction.created_at, CurrentLabel.policy,
               batch_model)
        .outerjoin(CurrentLabel, CurrentLabel.image_id == Image.id)
        .outerjoin(annotator, annotator.id == CurrentLabel.annotator_id)
        .outerjoin(Prediction, and_(Prediction.image_id == Image.id, Prediction.run_id == (run_id or -1)))
        .where(Image.project_id == project_id, Image.status == "ok")
        .order_by(Image.id)
    )
    accepted = func.coalesce(CurrentLabel.source, "") == ACCEPTED  # never NULL: not_() must see false
    human = and_(CurrentLabel.image_id.is_not(None), ~accepted)
    model = or_(accepted,
                and_(Prediction.id.is_not(None), Prediction.confidence >= where.min_confidence))
    labeled = {"all": or_(human, model), "human": human, "model": model}[where.include]
    if where.labeled_by != "label":
        instance = exists().where(Instance.image_id == Image.id, Instance.deleted.is_(False))
        labeled = or_(instance, labeled if where.labeled_by == "label_or_instance" else human)
    if where.status == "labeled":
        query = query.where(labeled)
    elif where.status == "unlabeled":
        query = query.where(not_(labeled))
    return query


def _record(row, names: dict[int, str], run, where: RecordFilter) -> Record:  # type: ignore[no-untyped-def]
    (image_id, path, file_path, sha, width, height, human_label, human_source, human_time, annotator,
     model_label, confidence, model_time, policy, _) = row
    base = dict(image_id=image_id, path=path, file_path=file_path or "", sha256=sha or "",
                width=width or 0, height=height or 0)
    if human_source == ACCEPTED:
        return _accepted(base, row, names, run, where)
    if human_label is not None and where.include in ("all", "human"):
        return Record(**base, label=names.get(human_label), source=human_source, confidence=None,
                      annotator=annotator, model_id=None, model_version=None, timestamp=human_time,
                      agreement=policy)
    usable = model_label is not None and confidence >= where.min_confidence
    if usable and where.include in ("all", "model"):
        return Record(**base, label=names.get(model_label), source="model", confidence=float(confidence),
                      annotator=None, model_id=run.model_id, model_version=run.model_version,
                      timestamp=model_time)
    return Record(**base, label=None, source=None, confidence=None, annotator=None, model_id=None,
                  model_version=None, timestamp=None)


def _accepted(base: dict[str, Any], row, names: dict[int, str], run, where: RecordFilter) -> Record:  # type: ignore[no-untyped-def]
    """An accepted pseudo-label: a model label (include all/model), with who accepted it and when."""
    label, _, when, annotator, predicted, confidence = row[6], row[7], row[8], row[9], row[10], row[11]
    batch_model = row[14]
    if where.include == "human":
        return Record(**base, label=None, source=None, confidence=None, annotator=None, model_id=None,
                      model_version=None, timestamp=None)
    # the classifier the batch recorded proposed it (the latest prediction run may be another one)
    version = batch_model or (run.model_version if run else None)
    return Record(**base, label=names.get(label), source=ACCEPTED,
                  confidence=float(confidence) if predicted == label and confidence is not None else None,
                  annotator=annotator, model_id=run.model_id if run else None,
                  model_version=version, timestamp=when)
