"""SQLAlchemy 2 tables. The schema itself is created only by the Alembic migrations in migrations/;
these classes describe it for queries, and a test checks that they match the migrated DDL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("admin", "reviewer", "annotator")
ACTIONS = ("accept", "correct", "skip", "undo", "import", "review")
SOURCES = ("human", "model", "import", "review", "model-accepted")  # model-accepted: "accept the rest"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="annotator")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    model_arch: Mapped[str | None] = mapped_column(String(200))
    model_pretrained: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LabelClass(Base):
    __tablename__ = "label_classes"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_label_classes_project_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    prompts: Mapped[list[str] | None] = mapped_column(JSON)
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        Index(
            "uq_images_project_sha256_ok",
            "project_id",
            "sha256",
            unique=True,
            sqlite_where=text("status = 'ok'"),
            postgresql_where=text("status = 'ok'"),
        ),
        Index("ix_images_project_status_id", "project_id", "status", "id"),  # counts, pages, what to embed
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str | None] = mapped_column(String(64))
    original_path: Mapped[str] = mapped_column(Text)
    file_path: Mapped[str | None] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    format: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="ok")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Embedding(Base):
    __tablename__ = "embeddings"
    __table_args__ = (
        UniqueConstraint("image_id", "model_id", name="uq_embeddings_image_model"),
        Index("ix_embeddings_model_image", "model_id", "image_id"),  # a model's vectors in image order
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(String(300), index=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class EmbeddingCount(Base):
    """How many embeddings of each model a project's images have, kept by repo.add_embeddings in the
    same transaction as the rows, so status reads one row per model instead of counting a join."""
    __tablename__ = "embedding_counts"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    # a new random value with every change of these vectors: the vector file (core.store.vectors)
    # is current when its header holds the same one
    revision: Mapped[str | None] = mapped_column(String(32), nullable=True)


class TextHead(Base):
    """The zero-shot classifier of a project for one model and one set of prompts."""

    __tablename__ = "text_heads"
    __table_args__ = (
        UniqueConstraint("project_id", "model_id", "prompts_hash", name="uq_text_heads_key"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(String(300))
    prompts_hash: Mapped[str] = mapped_column(String(64))
    label_ids: Mapped[list[int]] = mapped_column(JSON)
    dim: Mapped[int] = mapped_column(Integer)
    vectors: Mapped[bytes] = mapped_column(LargeBinary)
    logit_scale: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PredictionRun(Base):
    """One scoring pass: which model, which prompts, which classifier version, which class order."""

    __tablename__ = "prediction_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(300))
    model_version: Mapped[str] = mapped_column(String(100))
    prompts_hash: Mapped[str | None] = mapped_column(String(64))
    label_ids: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("run_id", "image_id", name="uq_predictions_run_image"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("prediction_runs.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    probs: Mapped[bytes] = mapped_column(LargeBinary)
    label_id: Mapped[int] = mapped_column(ForeignKey("label_classes.id", ondelete="CASCADE"))
    confidence: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Event(Base):
    """The append-only history of decisions. Rows are only ever inserted."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    label_before_id: Mapped[int | None] = mapped_column(ForeignKey("label_classes.id"))
    label_after_id: Mapped[int | None] = mapped_column(ForeignKey("label_classes.id"))
    undoes_event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id", ondelete="SET NULL"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("accept_batches.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AcceptBatch(Base):
    """One "accept the rest": the pseudo-labels accepted in one bulk action (events.batch_id), with
    the threshold and the estimate shown before it; undone as one action."""

    __tablename__ = "accept_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    images: Mapped[int] = mapped_column(Integer)
    min_confidence: Mapped[float] = mapped_column(Float)
    estimate: Mapped[float | None] = mapped_column(Float)
    low: Mapped[float | None] = mapped_column(Float)
    high: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # the audits (image ids) at or above the threshold then: they stand for what the batch took, so the
    # estimate of the remaining pool leaves them out while the batch stands (migration 0010)
    covered_audits: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)


class ServedItem(Base):
    """The first time the queue served an image: whether it was a blind random audit (drawn
    uniformly from the unlabeled pool), the pool's size then, and the pseudo-label shown with its
    confidence and classifier version. Answered = the image has a human label now."""

    __tablename__ = "served_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    audit: Mapped[bool] = mapped_column(Boolean)
    pool_size: Mapped[int] = mapped_column(Integer)
    label_id: Mapped[int | None] = mapped_column(ForeignKey("label_classes.id", ondelete="SET NULL"))
    confidence: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str | None] = mapped_column(String(64))
    served_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CurrentLabel(Base):
    """The label each image has now: derived from `events`, kept in the same transaction."""

    __tablename__ = "current_labels"
    __table_args__ = (Index("ix_current_labels_project_source", "project_id", "source", "label_id"),)
    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label_classes.id"))
    source: Mapped[str] = mapped_column(String(20))
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    policy: Mapped[str | None] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Lease(Base):
    """An item handed to one annotator for a while. One row per (image, slot): slot 0 for every
    item, slots 1.. for the extra annotators of overlap items. Claims are conditional updates or
    inserts on this key, so two annotators can never hold the same slot."""

    __tablename__ = "leases"
    __table_args__ = (Index("ix_leases_project_done", "project_id", "done", "expires_at"),)  # live leases
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# -- regions (Segment Anything) -----------------------------------------------------------------

REGION_ACTIONS = ("add", "delete", "relabel", "accept_proposal", "reject_proposal", "undo")
PROPOSAL_STATUSES = ("open", "accepted", "rejected")


class Instance(Base):
    """A region of an image with a class: a mask (COCO RLE), its box and area. The current state;
    every change to it is also a row of `region_events`. Deleted instances are kept, flagged."""

    __tablename__ = "instances"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label_classes.id"))
    rle: Mapped[dict] = mapped_column(JSON)                 # {"size": [h, w], "counts": "<COCO compressed>"}
    bbox: Mapped[list[float]] = mapped_column(JSON)         # COCO [x, y, w, h] in image pixels
    area: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)      # SAM's predicted IoU of the mask
    label_confidence: Mapped[float | None] = mapped_column(Float)  # CLIP's probability of the chosen class
    source: Mapped[str] = mapped_column(String(20))         # "click" (drawn by a person) | "proposal"
    prompts: Mapped[dict | None] = mapped_column(JSON)      # the clicks and box that made the mask
    segmenter_id: Mapped[str] = mapped_column(String(300))
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("region_proposals.id", ondelete="SET NULL"))
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RegionProposal(Base):
    """A region the automatic mask generator found, with CLIP's class probabilities for it. Open
    proposals are queued by uncertainty; accepted ones became instances; rejected ones are kept so a
    new proposal run does not offer them again."""

    __tablename__ = "region_proposals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    segmenter_id: Mapped[str] = mapped_column(String(300))
    model_id: Mapped[str | None] = mapped_column(String(300))   # the CLIP model that named it
    rle: Mapped[dict] = mapped_column(JSON)
    bbox: Mapped[list[float]] = mapped_column(JSON)
    area: Mapped[int] = mapped_column(Integer)
    predicted_iou: Mapped[float] = mapped_column(Float)
    stability: Mapped[float] = mapped_column(Float)
    label_ids: Mapped[list[int] | None] = mapped_column(JSON)   # class order of `probs`
    probs: Mapped[bytes | None] = mapped_column(LargeBinary)    # float32
    label_id: Mapped[int | None] = mapped_column(ForeignKey("label_classes.id", ondelete="SET NULL"))
    confidence: Mapped[float | None] = mapped_column(Float)
    uncertainty: Mapped[float] = mapped_column(Float, default=0.0)  # 1 - (p1 - p2): higher is less sure
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RegionEvent(Base):
    """The append-only history of region decisions (add, delete, relabel, accept or reject a
    proposal, undo): who, when, before, after, and why when given. Rows are only ever inserted."""

    __tablename__ = "region_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("region_proposals.id", ondelete="CASCADE"))
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    label_before_id: Mapped[int | None] = mapped_column(ForeignKey("label_classes.id"))
    label_after_id: Mapped[int | None] = mapped_column(ForeignKey("label_classes.id"))
    undoes_event_id: Mapped[int | None] = mapped_column(ForeignKey("region_events.id"))
    reason: Mapped[str | None] = mapped_column(String(500))   # why (relabel, delete): optional
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuthEvent(Base):
    """The append-only sign-in log an admin reads: failed logins, lockouts, sessions signed out,
    users added, disabled or given another role. `user_name` is text, not a key: a failed login may
    name nobody who exists. Rows are only ever inserted."""

    __tablename__ = "auth_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    user_name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
