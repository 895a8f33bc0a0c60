"""Read-only actions begin deferred transactions on SQLite, so they must never write: a deferred
transaction that writes fails with "database is locked" when another writer went first (20
annotators signing in together on a fresh server hit it). The one write such an action could need,
creating the acting user, happens in a short transaction of its own."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event

from core.config import Settings
from core.service import Service
from core.store.db import READ_ONLY
from core.store.repo import ClassSpec

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def test_read_only_actions_write_nothing_inside_their_transaction(tmp_path: Path) -> None:
    service = Service(Settings(db=str(tmp_path / "c.sqlite"), user="operator"))
    service.projects.create("p", classes=[ClassSpec("cat"), ClassSpec("dog")], annotator="boss")
    written: list[str] = []

    @event.listens_for(service.context.engine, "before_cursor_execute")
    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if conn.get_execution_options().get(READ_ONLY) and statement.lstrip().upper().startswith(WRITES):
            written.append(statement)

    for annotator in (None, "newcomer"):  # the local operator and a first-time user: both created now
        assert service.labeling.progress("p", annotator=annotator).images == 0
        assert service.projects.info("p", annotator=annotator).project == "p"
    assert written == []
    with service.context.sessions.begin() as session:
        from core.store import repo

        assert repo.user_by_name(session, name="operator") is not None
        assert repo.user_by_name(session, name="newcomer") is not None
    service.close()


def test_a_state_built_in_a_read_only_action_stores_its_text_head_in_a_transaction_of_its_own(
        tmp_path: Path) -> None:
    from core.models.clip import load_image_text_model
    from core.models.tiny import tiny_spec
    from core.store import repo
    from core.usecases.scoring import ensure_text_head

    service = Service(Settings(db=str(tmp_path / "h.sqlite")))
    service.projects.create("p", classes=[ClassSpec("cat"), ClassSpec("dog")])
    model = load_image_text_model(tiny_spec(), device="cpu")
    written: list[str] = []

    @event.listens_for(service.context.engine, "before_cursor_execute")
    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if conn.get_execution_options().get(READ_ONLY) and statement.lstrip().upper().startswith(WRITES):
            written.append(statement)

    with service.context.read_sessions.begin() as session:
        project = repo.project_by_name(session, name="p")
        classes = repo.classes_of(session, project_id=project.id)
        head, _, key = ensure_text_head(session, lambda: model, project_id=project.id, model_id=model.model_id,
                                        classes=classes, writer=service.context.sessions.begin)
    assert written == [] and head.shape[0] == 2
    with service.context.read_sessions.begin() as session:
        assert repo.text_head(session, project_id=project.id, model_id=model.model_id, prompts_hash=key) is not None
    service.close()
