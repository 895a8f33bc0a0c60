"""Files and jobs through gradio_client against the launched app with logins (issue 12, defects 1
and 2; issue 11, item 7): server paths only inside the import roots, a FileData naming a server file is
no upload, jobs are private to their owner and admins and can be cancelled, every optional parameter
of the documented API has its default, and the export downloads from a media folder in the home
directory with the server started elsewhere."""

from __future__ import annotations

import inspect
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from core.service import Service
from core.store.repo import ClassSpec
from tests.webapp.conftest import free_port, tiny_settings, write_images
from webapp.app import API, build_app, serve
from webapp.login import launch_options

PASSWORDS = {"boss": "boss-secret-1", "ann": "ann-secret-1"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Client], Service, Path]]:
    tmp = tmp_path_factory.mktemp("files")
    root = tmp / "root"
    write_images(root / "cats", 3)
    service = Service(tiny_settings(tmp, import_roots=(root,)))
    service.projects.create("p", classes=[ClassSpec("cats"), ClassSpec("dogs")])
    service.team.add_user("boss", role="admin", password=PASSWORDS["boss"])
    service.team.add_user("ann", role="annotator", password=PASSWORDS["ann"])
    app = build_app(service)
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                           **launch_options(service))
    clients = {name: Client(url, auth=(name, password), verbose=False) for name, password in PASSWORDS.items()}
    yield clients, service, tmp
    for client in clients.values():
        client.close()
    app.close()
    service.close()


def refused(client: Client, *args: Any, api_name: str) -> str:
    with pytest.raises(AppError) as caught:
        client.predict(*args, api_name=api_name)
    return str(caught.value)


def test_server_paths_outside_the_import_roots_are_refused(site) -> None:  # type: ignore[no-untyped-def]
    clients, _, tmp = site
    boss = clients["boss"]
    answers = {path: refused(boss, "p", path, "", False, api_name="/import_folder")
               for path in ("/etc", str(tmp / "no-such-folder"), str(tmp / "root" / ".." / ".."))}
    assert all("folder" in text and "import roots" in text for text in answers.values())
    assert len(set(answers.values())) == 1  # nothing says which paths exist
    text = refused(boss, "p", str(tmp / "root"), "/etc/passwd", False, api_name="/import_folder")
    assert "labels_from" in text and "root:" not in text


def raw_call(url: str, user: str, api_name: str, data: list[Any]) -> str:
    """One call over plain HTTP (gradio_client would upload a local file a FileData names): the
    event stream's text."""
    with httpx.Client(base_url=url, timeout=60) as http:
        http.post("login", data={"username": user, "password": PASSWORDS[user]}).raise_for_status()
        event = http.post(f"gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
        return http.get(f"gradio_api/call/{api_name}/{event}").text


def test_a_filedata_naming_a_server_file_is_not_an_upload(site) -> None:  # type: ignore[no-untyped-def]
    clients, service, _ = site
    before = len(service.jobs.list())
    refused(clients["boss"], "p", [{"path": "/etc/passwd"}], "", False, api_name="/import_files")
    url = clients["boss"].src
    for fake in ({"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, {"path": "/etc/passwd"}):
        answer = raw_call(url, "boss", "import_files", ["p", [fake], "", False])
        assert "event: error" in answer and "job_id" not in answer, answer
    assert len(service.jobs.list()) == before
    assert not list((service.settings.resolved_media_dir() / "uploads").rglob("passwd"))


def test_jobs_are_private_and_cancellable(site) -> None:  # type: ignore[no-untyped-def]
    clients, service, tmp = site
    boss, ann = clients["boss"], clients["ann"]
    started = boss.predict("p", str(tmp / "root"), "folders", False, api_name="/import_folder")
    job = service.jobs.wait(started["job_id"], timeout=60)
    assert job.status == "done" and job.result is not None
    assert [j["job_id"] for j in boss.predict(api_name="/jobs")] == [started["job_id"]]
    assert ann.predict(api_name="/jobs") == []
    for endpoint in ("/job", "/cancel_job"):
        assert "no such job" in refused(ann, started["job_id"], api_name=endpoint)
    assert boss.predict(started["job_id"], api_name="/job")["result"]["import"]["imported"] == 3
    assert boss.predict(started["job_id"], api_name="/cancel_job")["status"] == "done"  # finished: left as it is


def test_every_optional_parameter_has_its_default(site) -> None:  # type: ignore[no-untyped-def]
    clients, _, _ = site
    named = clients["boss"].view_api(return_format="dict", print_info=False)["named_endpoints"]
    missing = []
    for fn in API:
        params = {p["parameter_name"]: p for p in named[f"/{fn.__name__}"]["parameters"]}
        for name, param in list(inspect.signature(fn).parameters.items())[1:]:
            if param.default is not inspect.Parameter.empty and name in params:
                if not params[name]["parameter_has_default"]:
                    missing.append(f"/{fn.__name__} {name}")
    export = {p["parameter_name"]: p["parameter_has_default"] for p in named["/export"]["parameters"]}
    missing += [f"/export {name}" for name, has in export.items() if name != "project" and not has]
    assert missing == []


@pytest.fixture()
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder that is neither the working directory nor under the temp folder Gradio allows."""
    home, cwd, temp = tmp_path / "home", tmp_path / "cwd", tmp_path / "systemp"
    for folder in (home, cwd, temp):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return home


def test_export_downloads_from_a_media_folder_in_the_home_directory(elsewhere: Path, tmp_path: Path) -> None:
    settings = tiny_settings(tmp_path, db=f"sqlite:///{tmp_path / 'db' / 'app.sqlite'}").with_overrides()
    settings = type(settings)(**{**settings.__dict__, "media_dir": None})
    assert settings.resolved_media_dir() == elsewhere / ".clipmark" / "media"
    (tmp_path / "db").mkdir()
    leftover = elsewhere / ".clipmark" / "media" / "exports" / "old.zip.partial"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"killed mid-way")
    app, service = serve(settings, port=free_port(), prevent_thread_lock=True)
    try:
        assert not leftover.exists()  # interrupted exports are cleaned at start
        write_images(tmp_path / "photos" / "cats", 2)
        service.projects.create("p", classes=[ClassSpec("cats")])
        service.importing.images("p", [tmp_path / "photos"], labels_from="folders", progress=False)
        client = Client(app.local_url, verbose=False, download_files=str(tmp_path / "downloads"))
        for fmt, suffix in (("csv", ".csv"), ("imagefolder", ".zip")):
            path, report = client.predict("p", fmt, api_name="/export")
            assert Path(path).suffix == suffix and Path(path).stat().st_size > 0, report
        served = httpx.get(f"{app.local_url}gradio_api/file={service.settings.resolved_media_dir()}/x").status_code
        assert served in (403, 404)
        client.close()
    finally:
        app.close()
        service.close()
        time.sleep(0.1)


def test_a_checkpoint_path_from_the_web_is_read_only_inside_the_import_roots(site) -> None:  # type: ignore[no-untyped-def]
    """`/embed`'s `pretrained` may name a checkpoint file: from a web caller only one inside the import
    roots, with one answer for a file elsewhere, a missing one and a relative name the server's
    working folder would resolve; hub tags and 'none' are not paths and pass."""
    clients, service, tmp = site
    boss = clients["boss"]
    outside = tmp / "weights.pt"
    outside.write_bytes(b"#not a checkpoint")
    answers = {path: refused(boss, "p", "clipmark-tiny", path, api_name="/embed")
               for path in ("/etc/passwd", str(outside), str(tmp / "missing.pt"), "README.md",
                            str(tmp / "root" / ".." / "weights.pt"))}
    assert all("pretrained" in text and "import roots" in text for text in answers.values())
    assert len(set(answers.values())) == 1
    inside = tmp / "root" / "weights.pt"
    inside.write_bytes(b"#not a checkpoint either")
    job = boss.predict("p", "clipmark-tiny", str(inside), api_name="/embed")  # accepted: the job reports the load
    assert service.jobs.wait(job["job_id"], timeout=120).status in ("done", "failed")
    job = boss.predict("p", "clipmark-tiny", "none", api_name="/embed")
    assert service.jobs.wait(job["job_id"], timeout=120).status == "done"
