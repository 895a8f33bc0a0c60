"""The labeling loop: the next items for an annotator, decisions (each with the items to show next,
in the same transaction), undo, one item, progress. The live state is updated in memory before the
commit; when the transaction fails it is forgotten, so the next action rebuilds it from the store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import validation
from core.errors import Conflict, InvalidInput, NotFound
from core.store import repo
from core.store.schema import CurrentLabel, Image
from core.usecases.context import Action, Context
from core.usecases.labeling import accept, annotate, estimates
from core.usecases.labeling.audits import record_served, served_rows
from core.usecases.labeling.claims import Overlap, next_claimed
from core.usecases.labeling.queue import ProjectState
from core.usecases.labeling.results import Accepted, AcceptPreview, AccuracyEstimate
from core.usecases.labeling.states import ProjectStates
from core.usecases.labeling.suspects import find_suspects
from core.usecases.results import Decided, Decision, Guess, Item, Progress, Reason, Suspects, Undone
from core.usecases.team import auth, events, leases

MAX_ITEMS = 100      # items leased in one call (next_items n, decide next_n)
MAX_TOP_K = 50       # guesses shown per item
MAX_MANY = 500       # different images in one decide_many
MAX_SUSPECTS = 500   # suspects and near-duplicate pairs in one answer


class Labeling:
    def __init__(self, context: Context, states: ProjectStates) -> None:
        self.context = context
        self.states = states
        self._scored: dict[int, tuple[tuple[object, ...], estimates.Scored]] = {}

    @contextmanager
    def _action(self, project: str, annotator: str | None, *, permission: str = "label",
                write: bool = True, image_id: int | None = None) -> Iterator[tuple[Action, ProjectState]]:
        """One transaction and the project's live state. When the action fails after it changed the state
        in memory, the state is forgotten (the next action rebuilds it from the store); a refusal
        before any change (a Conflict on someone else's item, an unknown image) keeps it."""
        state: ProjectState | None = None
        before = 0
        try:
            with self.context.action(project, annotator=annotator, permission=permission, write=write,
                                     image_id=image_id) as act:
                state = self.states.get(act.session, act.require_project())
                before = state.changes
                yield act, state
        except BaseException:
            if state is not None and state.changes != before:
                self.states.forget(state.project_id)
            raise

    def next_items(self, project: str, *, annotator: str | None = None, n: int = 1, k: int = 3) -> list[Item]:
        """The next n items for this annotator, each now leased to them: overlap items that still need
        another (blind) opinion first, then the queue. Nobody else is handed these items meanwhile."""
        n, k = _counts(n, k)
        with self._action(project, annotator) as (act, state):
            return self._next(act, state, n=n, k=k)

    def decide(self, project: str, *, image_id: int, action: str, label: str | None = None,
               annotator: str | None = None, next_n: int = 0, k: int = 3) -> Decided:
        """Persist one decision, re-rank the queue (and refit: before returning, or right after in the
        background on the web server) and lease the next `next_n` items, in one transaction. Conflict
        when the item is someone else's (their lease, or labeled by them outside overlap)."""
        _check_action(action)
        image_id = validation.record_id(image_id, field="image_id")
        if next_n:
            next_n, k = _counts(next_n, k, n_field="next_n")
        with self._action(project, annotator, image_id=image_id) as (act, state):
            decision = self._decide(act, state, [image_id], action=action, label=label, strict=True)[0]
            return Decided(decision, tuple(self._next(act, state, n=next_n, k=k)) if next_n else ())

    def decide_many(self, project: str, *, image_ids: Sequence[int], action: str, label: str | None = None,
                    annotator: str | None = None, strict: bool = False) -> list[Decision]:
        """The same decision on several images (grid accept-all, search selection): one transaction,
        then one refit. `accept` without a label takes each proposal. Images that are someone else's
        are left out (strict: Conflict instead). Repeated ids count once; at most MAX_MANY ids."""
        _check_action(action)
        image_ids = validation.unique_ids(image_ids, field="image_ids", maximum=MAX_MANY)
        with self._action(project, annotator) as (act, state):
            return self._decide(act, state, image_ids, action=action, label=label, strict=strict)

    def undo(self, project: str, *, annotator: str | None = None) -> Undone:
        with self._action(project, annotator) as (act, state):
            user_id = act.annotator.id
            batch = accept.latest_batch(act.session, project_id=act.project_id, user_id=user_id)
            if batch is not None:
                return self._undo_batch(act, state, batch)
            target, undo = annotate.undo_last(act.session, project_id=act.project_id, user_id=user_id)
            leases.reopen(act.session, project_id=act.project_id, image_id=target.image_id, user_id=user_id)
            current = repo.current_label(act.session, image_id=target.image_id)
            restored = current.label_id if current else None
            with state.lock:
                state.unskip(target.image_id)
                state.set_label(target.image_id, restored,
                                accepted=current is not None and current.source == annotate.ACCEPTED_SOURCE)
                self.states.after_change(state)
            return Undone(event_id=undo.id, undid=target.id, image_id=target.image_id, action=target.action,
                          label=state.class_names.get(restored) if restored is not None else None)

    def _undo_batch(self, act: Action, state: ProjectState, batch: int) -> Undone:
        """Undo a whole "accept the rest": every image it labeled goes back to the pool. It takes
        the role accepting took (an admin demoted since cannot reverse thousands of labels)."""
        auth.require(user=act.annotator.name, role=act.annotator.role, permission="manage_projects")
        last, removed = accept.undo_batch(act.session, project_id=act.project_id, user_id=act.annotator.id,
                                          batch_id=batch)
        skips = accept.standing_skips(act.session, project_id=act.project_id, image_ids=removed)
        with state.lock:
            for image_id in removed:
                state.set_label(image_id, None)
                if image_id in skips:  # skipped before the batch took it: skipped again, as a restart has it
                    state.skip(image_id, skips[image_id])
            self.states.after_change(state)
        return Undone(event_id=last.id, undid=last.undoes_event_id or 0, image_id=last.image_id, action="accept",
                      label=None, images=len(removed))

    def estimate(self, project: str, *, annotator: str | None = None) -> AccuracyEstimate:
        """The honest accuracy of the remaining pseudo-labels, from the blind random audits."""
        with self._action(project, annotator, permission="view", write=False) as (act, state):
            served = served_rows(act.session, project_id=act.project_id)
        return estimates.summary(state, served, self._score(state, served))

    def accept_rest_preview(self, project: str, *, min_confidence: float | None = None,
                            target_accuracy: float | None = None, annotator: str | None = None) -> AcceptPreview:
        """What accept_rest would accept (how many images) and their estimated accuracy."""
        with self._action(project, annotator, permission="manage_projects", write=False) as (act, state):
            served = served_rows(act.session, project_id=act.project_id)
        return accept.preview(self._score(state, served), min_confidence=min_confidence,
                              target_accuracy=target_accuracy)

    def accept_rest(self, project: str, *, min_confidence: float | None = None, target_accuracy: float | None = None,
                    annotator: str | None = None, expect_images: int | None = None) -> Accepted:
        """Accept the remaining pseudo-labels (above the threshold the preview names) as one bulk
        action: one event per image, source model-accepted; one undo reverses it. Admins only.
        `expect_images`: the count the person confirmed (the preview's); when the pool or the
        classifier changed since, nothing is accepted (Conflict) and they preview again."""
        if expect_images is not None and (isinstance(expect_images, bool) or not isinstance(expect_images, int)
                                          or expect_images < 1):
            raise InvalidInput(f"expect_images: a whole number >= 1, got {expect_images!r}")
        plan = self.accept_rest_preview(project, min_confidence=min_confidence, target_accuracy=target_accuracy,
                                        annotator=annotator)
        if not plan.images:
            raise InvalidInput(f"accept_rest: no unlabeled image has a pseudo-label at confidence >= "
                               f"{plan.min_confidence:.3f}; nothing to accept")
        with self._action(project, annotator, permission="manage_projects") as (act, state):
            done, pairs = accept.accept(act.session, state, plan, project_id=act.project_id,
                                        user_id=act.annotator.id, expect_images=expect_images)
            with state.lock:
                for image_id, label_id in pairs:
                    state.set_label(image_id, label_id, accepted=True)
                state.rerank()
            return done

    def set_audit_share(self, project: str, share: float, *, annotator: str | None = None) -> float:
        """The share (0..1) of served items that are blind random audits; 0 turns audits off."""
        if share is None:
            raise InvalidInput("audit_share: a number between 0 and 1 (0 turns audits off), got None")
        value = accept.check_fraction(share, field="audit_share")
        with self.context.action(project, annotator=annotator, permission="manage_projects") as act:
            row = act.require_project()
            row.settings = {**(row.settings or {}), "audit_share": value}
        self.states.forget(act.project_id)
        return float(value or 0.0)

    def _score(self, state: ProjectState, served: estimates.ServedRows) -> estimates.Scored:
        key = (state.labels_version, state.classifier.version if state.classifier else None,
               served.human.tobytes(), len(state.skipped), served.covered.tobytes())
        cached = self._scored.get(state.project_id)
        if cached is None or cached[0] != key:
            cached = (key, estimates.score(state, served))
            self._scored[state.project_id] = cached
        return cached[1]

    def item(self, project: str, image_id: int, *, k: int = 5, annotator: str | None = None) -> Item:
        """One image as the labeling queue shows it: file, top-k of the live classifier, label now."""
        image_id = validation.record_id(image_id, field="image_id")
        k = validation.capped_limit(k, field="k", maximum=MAX_TOP_K)
        with self._action(project, annotator, permission="view", write=False) as (act, state):
            image = annotate.check_image(act.session, project_id=act.project_id, image_id=image_id)
            current = repo.current_label(act.session, image_id=image_id)
            with state.lock:
                top = _guesses(state, image_id, k)
            return Item(image_id=image.id, path=image.original_path, file_path=image.file_path or image.original_path,
                        sha256=image.sha256,
                        top=top, label=state.class_names.get(current.label_id) if current else None)

    def progress(self, project: str, *, annotator: str | None = None) -> Progress:
        """Counts from the live state (no table scan): labeled, images, embedded, skipped."""
        with self._action(project, annotator, permission="view", write=False) as (_, state):
            return progress_of(state)

    def state(self, project: str) -> ProjectState:
        """The project's live state (for benches and tests that look inside the queue)."""
        with self._action(project, None, permission="view", write=False) as (_, state):
            return state

    def suspects(self, project: str, *, limit: int = 100, annotator: str | None = None) -> Suspects:
        """Human labels the out-of-fold model contradicts, and near-duplicates labeled differently
        (at most `limit` of each, 1 to MAX_SUSPECTS)."""
        limit = validation.capped_limit(limit, field="limit", maximum=MAX_SUSPECTS)
        with self._action(project, annotator, permission="view", write=False) as (_, state):
            return find_suspects(state, limit=limit)

    def _next(self, act: Action, state: ProjectState, *, n: int, k: int) -> list[Item]:
        chosen, files = next_claimed(act.session, state, project_id=act.project_id, user_id=act.annotator.id,
                                     overlap=Overlap.of(act.project), n=n)  # type: ignore[arg-type]
        record_served(act.session, state, chosen, project_id=act.project_id, user_id=act.annotator.id)
        with state.lock:
            return [Item(image_id=r.image_id, path=files[r.image_id][0], file_path=files[r.image_id][1],
                         sha256=files[r.image_id][2], top=_guesses(state, r.image_id, k),
                         reason=Reason(r.strategy, r.score)) for r in chosen]

    def _decide(self, act: Action, state: ProjectState, image_ids: Sequence[int], *, action: str,
                label: str | None, strict: bool) -> list[Decision]:
        with state.lock:
            given = None if label is None else state.live_class_id(label)
        overlap = Overlap.of(act.project)  # type: ignore[arg-type]
        done: list[tuple[int, int, int | None]] = []
        for image_id in image_ids:
            current = _locked_image(act, image_id=image_id)
            if not _take(act.session, act.project_id, image_id, act.annotator.id, action, overlap):
                if strict:
                    raise Conflict(f"image {image_id} is assigned to someone else (their lease is live, or they "
                                   "labeled it); your decision was not recorded, take the next item")
                continue
            with state.lock:
                label_id = given if given is not None or action != "accept" else _proposal(state, image_id)
            event = annotate.append_decision(act.session, project_id=act.project_id, image_id=image_id,
                                             action=action, label_id=label_id, user_id=act.annotator.id,
                                             current=current)
            if action != "skip" and overlap.slots(project_id=act.project_id, image_id=image_id) > 1:
                events.apply_policy(act.session, project_id=act.project_id, image_id=image_id)
                now = repo.current_label(act.session, image_id=image_id)
                label_id = now.label_id if now else label_id
            done.append((event.id, image_id, label_id))
        return self._apply(state, done, action, label)

    def _apply(self, state: ProjectState, done: list[tuple[int, int, int | None]], action: str,
               label: str | None) -> list[Decision]:
        with state.lock:
            for event_id, image_id, label_id in done:
                if action == "skip":
                    state.skip(image_id, event_id)
                else:
                    state.set_label(image_id, label_id)
            if action == "skip" and not self.states.refits_in_background:
                state.rerank()
            else:
                self.states.after_change(state)
            version = state.classifier.version if state.classifier else None
            return [Decision(event_id=e, image_id=i, action=action, update_seconds=state.update_seconds,
                             label=label if label is not None else state.class_names.get(label_id or -1),
                             model_version=version) for e, i, label_id in done]


def progress_of(state: ProjectState) -> Progress:
    with state.lock:
        return Progress(labeled=int((state.labels != -1).sum()) + len(state.labeled_unembedded),
                        images=len(state.image_ids) + len(state.unembedded), embedded=len(state.image_ids),
                        skipped=len(state.skipped), strategy=state.strategy,
                        model_version=state.classifier.version if state.classifier else None)


def _guesses(state: ProjectState, image_id: int, k: int) -> tuple[Guess, ...]:
    return tuple(Guess(state.class_names.get(label_id), p) for label_id, p in state.top_k(image_id, k))


def _counts(n: object, k: object, *, n_field: str = "n") -> tuple[int, int]:
    """How many items (1..MAX_ITEMS) and how many guesses each (1..MAX_TOP_K)."""
    return (validation.capped_limit(n, field=n_field, maximum=MAX_ITEMS),
            validation.capped_limit(k, field="k", maximum=MAX_TOP_K))


def _check_action(action: str) -> None:
    if action not in annotate.DECISIONS:
        raise InvalidInput(f"action: unknown '{action}' (valid: {', '.join(annotate.DECISIONS)})")


def _locked_image(act: Action, *, image_id: int) -> CurrentLabel | None:
    """Check the image (row-locked on PostgreSQL) and read its current label, in one query (none when
    the action's first query already read them)."""
    image: Image | None
    if act.image is not None and act.image.row.id == image_id:
        image, current = act.image.row, act.image.current
    else:
        row = act.session.execute(
            select(Image, CurrentLabel).outerjoin(CurrentLabel, CurrentLabel.image_id == Image.id)
            .where(Image.id == image_id).with_for_update(of=Image)).first()
        image, current = (None, None) if row is None else (row[0], row[1])
    if image is None or image.project_id != act.project_id or image.status != "ok":
        raise NotFound(f"image_id: no image {image_id} in this project")
    return current


def _take(session: Session, project_id: int, image_id: int, user_id: int, action: str, overlap: Overlap) -> bool:
    """Hold the item for this decision: the annotator's own lease (or a fresh claim) is completed on
    a label and given back on a skip. False when it is someone else's."""
    if action != "skip" and leases.complete_mine(session, image_id=image_id, user_id=user_id):
        return True
    if leases.holder_slot(session, image_id=image_id, user_id=user_id) is None and leases.claim(
            session, project_id=project_id, image_id=image_id, user_id=user_id,
            slots=overlap.slots(project_id=project_id, image_id=image_id)) is None:
        return False
    if action == "skip":
        leases.release(session, image_id=image_id, user_id=user_id)
    else:
        leases.complete(session, project_id=project_id, image_id=image_id, user_id=user_id)
    return True


def _proposal(state: ProjectState, image_id: int) -> int:
    top = state.top_k(image_id, 1)
    if not top:
        raise InvalidInput(f"accept: image {image_id} has no proposal yet; choose a label")
    return top[0][0]

