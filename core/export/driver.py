"""The export use case: options -> one read snapshot -> (split plan) -> streamed writer -> manifest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from core.errors import InvalidInput, NotFound
from core.export.atomic import staged
from core.export.formats import FORMATS, FormatSpec
from core.export.names import class_folders
from core.export.options import SPLIT_NAMES, ExportOptions, build_options
from core.export.records import RecordFilter, count_records, iter_records
from core.export.rows import ExportMeta, Item
from core.export.split import SplitPlan, plan_split
from core.store import regions, repo
from core.store.schema import Project


@dataclass
class Stats:
    regions: bool = False  # the format writes instances: count them, and images with one are labeled
    images: int = 0
    labeled: int = 0
    per_class: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    per_split: Counter[str] = field(default_factory=Counter)
    instances: Counter[str] = field(default_factory=Counter)
    with_instances: int = 0

    def add(self, item: Item) -> None:
        record = item.record
        self.images += 1
        self.labeled += record.label is not None or (self.regions and bool(record.instances))
        if record.label is not None:
            self.per_class[record.label] += 1
        self.by_source[record.source or "unlabeled"] += 1
        if item.split is not None:
            self.per_split[item.split] += 1
        if self.regions and record.instances:
            self.with_instances += 1
            self.instances.update(instance["label"] for instance in record.instances)

    def counts(self, *, skipped_unlabeled: int) -> dict[str, Any]:
        counts = {"images": self.images, "labeled": self.labeled, "unlabeled": self.images - self.labeled,
                  "skipped_unlabeled": skipped_unlabeled, "per_class": dict(self.per_class),
                  "by_source": dict(self.by_source), "per_split": dict(self.per_split) or None}
        if self.regions:
            counts.update(instances=sum(self.instances.values()), images_with_instances=self.with_instances,
                          instances_per_class=dict(self.instances))
        return counts


def resolve(spec: FormatSpec, opts: ExportOptions) -> tuple[ExportOptions, str | None]:
    """Per-format defaults and checks; returns the options and the single file name (or None)."""
    opts = replace(opts, where=replace(opts.where, labeled_by=spec.labeled_by))
    if spec.images in ("folder", "copied") and opts.link is None:
        opts = replace(opts, link="copy")
    if spec.images == "embedded" and opts.link is not None:
        raise InvalidInput(f"--link: the {opts.fmt} format embeds the image bytes; --link does not apply")
    if opts.split is None and spec.default_split is not None:
        opts = replace(opts, split=spec.default_split)
    if not spec.holds_unlabeled and opts.where.status == "unlabeled":
        raise InvalidInput(f"--status unlabeled: the {opts.fmt} format cannot hold unlabeled images "
                           "(use csv, jsonl, coco or hf)")
    single = spec.file_name if spec.file_name and opts.out.suffix == Path(spec.file_name).suffix else None
    if single and opts.link is not None:
        raise InvalidInput(f"--link: copying images needs a folder --out, not the file '{opts.out.name}'")
    if single and opts.split is not None and opts.fmt == "coco":
        raise InvalidInput("--split: a coco export with a split writes one file per split; give a folder --out")
    return opts, single


def export_project(
    sessions: sessionmaker[Session], *, project_id: int, fmt: str, out: str | Path, **options: Any,
) -> dict[str, Any]:
    """Export one project. Options: include, min_confidence, status, link, split, seed, leak_threshold,
    overwrite, progress (tqdm), on_progress(done, total), masks (coco: rle | polygons). Returns the
    report (the manifest's counts)."""
    opts = build_options(fmt=fmt, out=out, formats=tuple(FORMATS), **options)
    spec = FORMATS[fmt]
    opts, single = resolve(spec, opts)
    with sessions.begin() as session:  # one snapshot: the plan and the files agree
        project = session.get(Project, project_id)
        if project is None:
            raise NotFound(f"project: no project with id {project_id}")
        return _export(session, project, spec, opts, single)


def _export(session: Session, project: Project, spec: FormatSpec, opts: ExportOptions,
            single: str | None) -> dict[str, Any]:
    classes = tuple(c.name for c in repo.classes_of(session, project_id=project.id, include_archived=True))
    where, skipped = _writable(session, project.id, spec, opts.where)
    plan = _plan(session, project, where, opts)
    meta = ExportMeta(project=project.name, classes=classes, split_names=plan.names if plan else (), options=opts,
                      has_instances=regions.count_instances(session, project_id=project.id) > 0)
    total = count_records(session, project_id=project.id, where=where)
    stats = Stats(regions=spec.labeled_by != "label")
    with staged(opts.out, overwrite=opts.overwrite, single_file=single) as target:
        items = _items(iter_records(session, project_id=project.id, where=where), plan, stats, opts, total)
        spec.write(target, items, meta)
        manifest = _manifest(meta, spec, stats, skipped, plan)
        committed = target.commit(manifest)
        placed, changed = target.images_placed, target.changed_since_import
    report = {"out": str(opts.out), **{k: v for k, v in manifest.items() if k != "class_folders"}, **committed}
    report.update(images_written=placed, changed_since_import=changed)
    return report


def _writable(session: Session, project_id: int, spec: FormatSpec, where: RecordFilter) -> tuple[RecordFilter, int]:
    """Formats without room for unlabeled images export the labeled ones; the rest are counted."""
    if spec.holds_unlabeled or where.status == "labeled":
        return where, 0
    skipped = count_records(session, project_id=project_id, where=replace(where, status="unlabeled"))
    return replace(where, status="labeled"), skipped


def _plan(session: Session, project: Project, where: RecordFilter, opts: ExportOptions) -> SplitPlan | None:
    if opts.split is None:
        return None
    return plan_split(session, iter_records(session, project_id=project.id, where=where), project=project,
                      names=SPLIT_NAMES[len(opts.split)], fractions=opts.split, seed=opts.seed,
                      leak_threshold=opts.leak_threshold)


def _items(records, plan: SplitPlan | None, stats: Stats, opts: ExportOptions,  # type: ignore[no-untyped-def]
           total: int) -> Iterator[Item]:
    """Records with their split, counted, with progress reported as they go out."""
    step = max(1, total // 100)
    with tqdm(total=total, unit="img", desc=f"export {opts.fmt}", disable=not opts.progress) as bar:
        for done, record in enumerate(records, start=1):
            item = Item(record, None if plan is None else plan.split_of(record.image_id))
            stats.add(item)
            yield item
            bar.update(1)
            if opts.on_progress is not None and (done % step == 0 or done == total):
                opts.on_progress(done, total)


def _manifest(meta: ExportMeta, spec: FormatSpec, stats: Stats, skipped: int,
              plan: SplitPlan | None) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": meta.options.fmt, "project": meta.project, "created_at": datetime.now(UTC).isoformat(),
        "options": meta.options.summary(), "classes": list(meta.classes),
        "counts": stats.counts(skipped_unlabeled=skipped),
    }
    if plan is not None:
        manifest["leak_check"] = plan.leak_check
        empty = [name for name in plan.names if not stats.per_split.get(name)]
        if empty:
            manifest["warnings"] = [f"split '{name}' is empty (too few images, or near-duplicates kept "
                                    "together)" for name in empty]
    if spec.images == "folder":
        manifest["class_folders"] = {folder: name for name, folder in class_folders(meta.classes).items()}
    return manifest
