"""Leases: expiry, renewal, release, overlap slots, and concurrent claims from many processes."""

from __future__ import annotations

import multiprocessing as mp
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.store import repo
from core.store.db import make_engine, make_sessionmaker
from core.store.migrate import upgrade
from core.store.repo import ClassSpec
from core.store.schema import Lease, utcnow
from core.usecases.team.leases import claim, complete, overlap_slots, release, release_all, renew_all
from tests import pg


def _setup(url: str, images: int = 3, users: int = 3) -> tuple[int, list[int], list[int]]:
    engine = make_engine(url)
    upgrade(engine)
    with make_sessionmaker(engine).begin() as session:
        project = repo.create_project(session, name="p", classes=[ClassSpec("a")])
        ids = [repo.add_image(session, project_id=project.id, sha256=f"{k:064x}", original_path=f"{k}.jpg",
                              file_path=f"{k}.jpg", width=1, height=1, format="JPEG").id for k in range(images)]
        people = [repo.get_or_create_user(session, name=f"u{k}").id for k in range(users)]
        pid = project.id
    engine.dispose()
    return pid, ids, people


@pytest.fixture()
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = str(tmp_path / "lease.sqlite")
    pid, ids, users = _setup(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine), pid, ids, users
    engine.dispose()


def test_one_holder_until_expiry_then_another(db) -> None:  # type: ignore[no-untyped-def]
    sessions, pid, ids, (a, b, _) = db
    now = utcnow()
    with sessions.begin() as s:
        assert claim(s, project_id=pid, image_id=ids[0], user_id=a, now=now, seconds=60) == 0
    with sessions.begin() as s:
        assert claim(s, project_id=pid, image_id=ids[0], user_id=b, now=now + timedelta(seconds=30)) is None
    with sessions.begin() as s:  # a renews: still a's at +90 s
        assert claim(s, project_id=pid, image_id=ids[0], user_id=a, now=now + timedelta(seconds=50), seconds=60) == 0
    with sessions.begin() as s:
        assert claim(s, project_id=pid, image_id=ids[0], user_id=b, now=now + timedelta(seconds=90)) is None
    with sessions.begin() as s:  # expired at +110 s: b takes it over
        assert claim(s, project_id=pid, image_id=ids[0], user_id=b, now=now + timedelta(seconds=111)) == 0
        assert s.get(Lease, (ids[0], 0)).user_id == b


def test_release_complete_and_logout(db) -> None:  # type: ignore[no-untyped-def]
    sessions, pid, ids, (a, b, _) = db
    with sessions.begin() as s:
        claim(s, project_id=pid, image_id=ids[0], user_id=a)
        claim(s, project_id=pid, image_id=ids[1], user_id=a)
        claim(s, project_id=pid, image_id=ids[2], user_id=a)
    with sessions.begin() as s:
        release(s, image_id=ids[0], user_id=a)  # skip gives it back at once
        assert claim(s, project_id=pid, image_id=ids[0], user_id=b) == 0
        complete(s, project_id=pid, image_id=ids[1], user_id=a)
        assert renew_all(s, user_id=a) == 1  # only the live one (ids[2])
        assert release_all(s, user_id=a) == 1
        assert claim(s, project_id=pid, image_id=ids[2], user_id=b) == 0
        assert claim(s, project_id=pid, image_id=ids[1], user_id=b) is None  # done: never handed out again
        assert claim(s, project_id=pid, image_id=ids[1], user_id=a) is None  # not twice to its labeler


def test_overlap_items_take_distinct_annotators(db) -> None:  # type: ignore[no-untyped-def]
    sessions, pid, ids, (a, b, c) = db
    with sessions.begin() as s:
        assert claim(s, project_id=pid, image_id=ids[0], user_id=a, slots=2) == 0
        assert claim(s, project_id=pid, image_id=ids[0], user_id=a, slots=2) == 0  # the same person: same slot
        assert claim(s, project_id=pid, image_id=ids[0], user_id=b, slots=2) == 1
        assert claim(s, project_id=pid, image_id=ids[0], user_id=c, slots=2) is None


def test_overlap_share_is_stable_and_close_to_asked() -> None:
    chosen = [overlap_slots(project_id=1, image_id=i, share=0.1, annotators=2) for i in range(5000)]
    assert chosen == [overlap_slots(project_id=1, image_id=i, share=0.1, annotators=2) for i in range(5000)]
    assert 0.08 < chosen.count(2) / 5000 < 0.12
    assert overlap_slots(project_id=1, image_id=3, share=0.0, annotators=2) == 1


def _claimer(url: str, pid: int, ids: list[int], user: int, queue: mp.Queue) -> None:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    got = []
    for image_id in ids:
        with sessions.begin() as s:
            if claim(s, project_id=pid, image_id=image_id, user_id=user) is not None:
                got.append(image_id)
    engine.dispose()
    queue.put(got)


def _race(url: str) -> None:
    pid, ids, users = _setup(url, images=60, users=6)
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(url, pid, ids, u, queue)) for u in users]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    claimed = [i for got in results for i in got]
    assert sorted(claimed) == sorted(ids), "every item claimed exactly once across processes"
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as s:
        assert len(s.scalars(select(Lease)).all()) == len(ids)
    engine.dispose()


def test_concurrent_claims_sqlite_processes(tmp_path: Path) -> None:
    _race(str(tmp_path / "race.sqlite"))


@pytest.mark.postgres
def test_concurrent_claims_postgres_processes() -> None:
    reason = pg.available()
    if reason:
        pytest.skip(reason)
    with pg.postgres_server() as url:
        _race(url)
