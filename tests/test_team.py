"""Team labeling in the service layer: roles, logins, leases, overlap, agreement, review, history."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings
from core.errors import Conflict, PermissionDenied
from core.service import Service
from tests.helpers import load_npz, project_from_vectors

PASSWORD = "correct horse"


@pytest.fixture()
def team(embeddings_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    emb, labels, names, head = load_npz(embeddings_dir / "pets25-val-clip-vitb32.npz")
    service = Service(Settings(db=str(tmp_path / "team.sqlite")))
    ids = project_from_vectors(service, "pets", embeddings=emb, class_names=names, head=head)
    for name, role in (("boss", "admin"), ("rita", "reviewer"), ("ann", "annotator"), ("bob", "annotator")):
        service.team.add_user(name, role=role, password=PASSWORD)
    yield service, {i: names[y] for i, y in zip(ids, labels, strict=True)}
    service.close()


def test_logins_and_unknown_users(team) -> None:  # type: ignore[no-untyped-def]
    service, _ = team
    assert service.team.team_mode()
    assert service.team.authenticate("ann", PASSWORD) and not service.team.authenticate("ann", "wrong password")
    assert not service.team.authenticate("nobody", PASSWORD)
    with pytest.raises(PermissionDenied, match="unknown user 'mallory'"):
        service.labeling.next_items("pets", annotator="mallory")
    service.team.disable_user("bob", annotator="boss")
    assert not service.team.authenticate("bob", PASSWORD)
    with pytest.raises(PermissionDenied, match="disabled"):
        service.labeling.next_items("pets", annotator="bob")


def test_roles_are_checked_in_the_service(team, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service, truth = team
    with pytest.raises(PermissionDenied, match="export"):
        service.exporting.export("pets", fmt="csv", out=tmp_path / "x.csv", annotator="ann")
    with pytest.raises(PermissionDenied, match="manage users"):
        service.team.add_user("eve", role="admin", password=PASSWORD, annotator="ann")
    image_id = next(iter(truth))
    with pytest.raises(PermissionDenied, match="review"):
        service.team.resolve("pets", image_id=image_id, label=truth[image_id], annotator="ann")
    with pytest.raises(PermissionDenied, match="manage projects"):
        service.team.set_overlap("pets", share=0.5, annotator="rita")
    service.team.resolve("pets", image_id=image_id, label=truth[image_id], annotator="rita")
    assert service.exporting.export("pets", fmt="csv", out=tmp_path / "x.csv", annotator="boss").counts["images"] == 497


def test_two_annotators_never_get_the_same_item(team) -> None:  # type: ignore[no-untyped-def]
    service, truth = team
    a = [i.image_id for i in service.labeling.next_items("pets", annotator="ann", n=10)]
    b = [i.image_id for i in service.labeling.next_items("pets", annotator="bob", n=10)]
    assert len(set(a)) == 10 and not set(a) & set(b)
    with pytest.raises(Conflict, match="assigned to someone else"):
        service.labeling.decide("pets", image_id=a[0], action="correct", label=truth[a[0]], annotator="bob")
    service.labeling.decide("pets", image_id=a[1], action="skip", annotator="ann")  # skip gives it back
    service.labeling.decide("pets", image_id=a[1], action="correct", label=truth[a[1]], annotator="bob")
    assert service.team.release_leases("ann", "pets") == 9
    assert a[0] in [i.image_id for i in service.labeling.next_items("pets", annotator="bob", n=80)]


def test_overlap_agreement_conflicts_and_review(team) -> None:  # type: ignore[no-untyped-def]
    service, truth = team
    service.team.set_overlap("pets", share=1.0, annotators=2, annotator="boss")
    names = sorted(set(truth.values()))
    first = [i.image_id for i in service.labeling.next_items("pets", annotator="ann", n=6)]
    for image_id in first:
        service.labeling.decide("pets", image_id=image_id, action="correct", label=truth[image_id], annotator="ann")
    second = [i.image_id for i in service.labeling.next_items("pets", annotator="bob", n=6)]
    assert second == sorted(first)  # the overlap items come first, blind second opinions
    for k, image_id in enumerate(second):
        label = truth[image_id] if k < 4 else next(n for n in names if n != truth[image_id])
        service.labeling.decide("pets", image_id=image_id, action="correct", label=label, annotator="bob")
    report = service.team.agreement("pets", annotator="rita")
    assert report["overlap_items"] == 6 and report["pairs"][0]["items"] == 6
    assert report["annotators"]["ann"]["items"] == 6
    assert 0.5 < report["pairs"][0]["cohen_kappa"] < 0.8
    conflicts = service.team.review_queue("pets", annotator="rita").conflicts
    assert len(conflicts) == 2 and {v.annotator for v in conflicts[0].votes} == {"ann", "bob"}
    image_id = conflicts[0].image_id
    service.team.resolve("pets", image_id=image_id, label=truth[image_id], annotator="rita")
    assert len(service.team.review_queue("pets", annotator="rita").conflicts) == 1
    import csv

    exported = Path(service.settings.db).parent / "team.csv"
    service.exporting.export("pets", fmt="csv", out=exported, annotator="boss")
    rows = {int(r["image_id"]): r for r in csv.DictReader(exported.open())}
    assert rows[image_id]["agreement"] == "reviewer"
    assert sorted(rows[i]["agreement"] for i in first) == ["conflict"] + ["majority"] * 4 + ["reviewer"]
    history = service.team.history("pets", by="rita", annotator="boss")
    assert [h.action for h in history] == ["review"] and history[0].after == truth[image_id]
    assert all(h.annotator == "bob" for h in service.team.history("pets", by="bob", action="correct", annotator="ann"))


def test_cli_user_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import io

    from core.cli import main

    db = str(tmp_path / "cli.sqlite")
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    assert main(["user", "add", "zoe", "--role", "reviewer", "--db", db]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["user", "add", "yan", "--db", db]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert main(["user", "add", "x", "--role", "boss", "--db", db]) == 2
    assert "unknown 'boss' (valid: annotator, reviewer, admin)" in capsys.readouterr().err
    assert main(["user", "disable", "zoe", "--db", db]) == 0
    capsys.readouterr()
    assert main(["user", "list", "--db", db]) == 0
    assert "zoe\treviewer\tdisabled" in capsys.readouterr().out
    service = Service(Settings(db=db))
    assert not service.team.authenticate("zoe", "s3cret-password")
    service.close()


def test_cli_team_commands(team, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    import json

    from core.cli import main

    service, truth = team
    db = service.settings.db
    assert main(["overlap", "--db", db, "--project", "pets", "--share", "1", "--annotators", "2"]) == 0
    items = [i.image_id for i in service.labeling.next_items("pets", annotator="ann", n=2)]
    for image_id in items:
        service.labeling.decide("pets", image_id=image_id, action="correct", label=truth[image_id], annotator="ann")
        other = next(n for n in sorted(set(truth.values())) if n != truth[image_id])
        service.labeling.decide("pets", image_id=image_id, action="correct", label=other, annotator="bob")
    capsys.readouterr()
    assert main(["agreement", "--db", db, "--project", "pets"]) == 0
    assert json.loads(capsys.readouterr().out)["overlap_items"] == 2
    assert main(["review", "--db", db, "--project", "pets"]) == 0
    assert len(json.loads(capsys.readouterr().out)["conflicts"]) == 2
    assert main(["resolve", "--db", db, "--project", "pets", "--image-id", str(items[0]),
                 "--label", truth[items[0]], "--user", "rita"]) == 0
    capsys.readouterr()
    assert main(["history", "--db", db, "--project", "pets", "--user", "rita"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "\treview\t" in lines[0] and lines[0].endswith(truth[items[0]])
    assert main(["resolve", "--db", db, "--project", "pets", "--image-id", str(items[1]),
                 "--label", truth[items[1]], "--user", "ann"]) == 2
    assert "may not review" in capsys.readouterr().err


def test_login_throttle_delays_then_locks_and_forgets() -> None:
    from core.config import LoginPolicy
    from core.usecases.team.throttle import LoginThrottle, keys_of

    now = [0.0]
    throttle = LoginThrottle(LoginPolicy(free_failures=2, delay_s=1.0, lockout_after=6, lockout_s=60.0),
                             clock=lambda: now[0])
    keys = keys_of("Ann", "10.0.0.1")
    for _ in range(2):  # free failures: checked at once
        assert throttle.admit(keys) == (None, []) and throttle.failed(keys) == []
    assert throttle.admit(keys)[0] is not None  # third right away: wait 1 s (and it counts)
    now[0] += 1.0
    assert throttle.admit(keys)[0] is None and throttle.failed(keys) == []  # waited: checked, wrong
    refusal, started = throttle.admit(keys)  # the 5th failure, early
    assert refusal is not None and not refusal.locked and "try again in 2 seconds" in refusal.message()
    now[0] += 2.0
    assert throttle.admit(keys)[0] is None and throttle.failed(keys) == [("user", "ann"), ("address", "10.0.0.1")]
    refusal, _ = throttle.admit(keys_of("ann", None))  # the name is locked, whatever its case
    assert refusal is not None and refusal.message() == "too many failed logins for 'ann': try again in 1 minute"
    now[0] += 61.0  # the lockout is over: a fresh start
    assert throttle.admit(keys) == (None, []) and throttle.failures(("user", "ann")) == 1
    throttle.succeeded(keys)
    assert throttle.failures(("user", "ann")) == 0


def test_a_team_behind_one_address_logs_in_at_once() -> None:
    """Twenty people behind one office address sign in at the same moment: none is refused (the
    address counts wrong passwords, not logins in flight); wrong ones from it still add up."""
    from core.config import LoginPolicy
    from core.usecases.team.throttle import LoginThrottle, keys_of

    throttle = LoginThrottle(LoginPolicy(free_failures=2, delay_s=1.0, lockout_after=6, lockout_s=60.0),
                             clock=lambda: 0.0)
    in_flight = [keys_of(f"ann{k}", "10.0.0.9") for k in range(20)]
    assert all(throttle.admit(keys) == (None, []) for keys in in_flight)
    for keys in in_flight:
        throttle.succeeded(keys)
    assert throttle.failures(("address", "10.0.0.9")) == 0
    for k in range(2):  # two wrong passwords for two names: the address's free failures
        assert throttle.admit(keys_of(f"bob{k}", "10.0.0.9"))[0] is None
        throttle.failed(keys_of(f"bob{k}", "10.0.0.9"))
    assert throttle.admit(keys_of("carl", "10.0.0.9"))[0] is not None  # a third name from it must wait


def test_cli_role_and_sign_in_log(team, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from core.cli import main

    service, _ = team
    db = service.settings.db
    assert main(["user", "role", "ann", "reviewer", "--db", db]) == 0
    assert '"before": "annotator"' in capsys.readouterr().out
    assert main(["user", "role", "ann", "boss", "--db", db]) == 2
    assert "unknown 'boss' (valid: annotator, reviewer, admin)" in capsys.readouterr().err
    assert main(["user", "role", "nobody", "admin", "--db", db]) != 0
    assert "no user named 'nobody'" in capsys.readouterr().err
    assert not service.team.login("ann", "wrong password", address="10.1.2.3").accepted
    assert main(["user", "events", "--db", db, "--limit", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "\tlogin-failed\tann\t10.1.2.3\t" in lines[0] + "\t" and "\trole-changed\tann\t" in lines[1]
    assert main(["user", "events", "--db", db, "--limit", "5000"]) == 2
    assert "limit: 5000 is out of range; give 1 to 1,000" in capsys.readouterr().err
    with pytest.raises(PermissionDenied, match="signed out: user 'bob' was disabled"):
        service.team.disable_user("bob", annotator="boss")
        service.team.signed_in("bob", session="s1")
    assert service.team.signed_in("ann", session="s2").role == "reviewer"  # the new role, at once


def test_limits_and_ids_are_validated(team) -> None:  # type: ignore[no-untyped-def]
    from core.errors import InvalidInput

    service, _ = team
    for limit in (10**9, -1, 0, 1.5):
        with pytest.raises(InvalidInput, match="limit"):
            service.team.review_queue("pets", annotator="rita", limit=limit)
    with pytest.raises(InvalidInput, match="limit"):
        service.team.history("pets", annotator="rita", limit=10**9)
    with pytest.raises(InvalidInput, match="image_id: expected a whole number"):
        service.team.resolve("pets", image_id=1.5, label="x", annotator="rita")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="action: unknown 'steal'"):
        service.team.history("pets", action="steal", annotator="rita")
    with pytest.raises(InvalidInput, match="name: contains a control character"):
        service.team.add_user("ev\0e", role="annotator", password=PASSWORD, annotator="boss")
    with pytest.raises(InvalidInput, match="password: empty or only whitespace"):
        service.team.add_user("eve", role="annotator", password=" " * 8, annotator="boss")
