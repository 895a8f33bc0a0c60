"""core.validation at the use cases' boundary (issue 12, defects 7 and 14): names, descriptions and
prompts of projects and classes; ids (1.5 is not image 1); list and limit caps; and the same
through the web API with gradio_client. Each case is one of the issue's probes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from sqlalchemy import func, select

from core.errors import Conflict, InvalidInput, NotFound
from core.service import Service
from core.store.schema import Event
from tests.helpers import project_from_vectors
from tests.webapp.conftest import launch, tiny_settings
from webapp.app import build_app

MEGABYTE = "x" * (1 << 20)
INVISIBLE = "\u200b\u202e\u200f\u2066"  # zero-width space and text-direction marks only
LIMITS = (10**9, -1, 0, 1.5, True, "ten")


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tiny_settings(tmp_path))
    yield svc
    svc.close()


def vectors(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    head = rng.standard_normal((2, 16)).astype(np.float32)
    head /= np.linalg.norm(head, axis=1, keepdims=True)
    emb = head[rng.integers(0, 2, size=n)] + 0.3 * rng.standard_normal((n, 16)).astype(np.float32)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True), head


def make_project(service: Service, name: str = "p", n: int = 12) -> list[int]:
    emb, head = vectors(n)
    return project_from_vectors(service, name, embeddings=emb, class_names=["cat", "dog"], head=head)


def events(service: Service) -> int:
    with service.context.sessions.begin() as session:
        return session.scalar(select(func.count()).select_from(Event)) or 0


# -- project and class names ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "message"), [
    (MEGABYTE, "--project: 1,048,576 characters; at most 100"),
    ("cl\0ass", "--project: contains a control character U\\+0000 at position 3"),
    (INVISIBLE, "--project: contains a format character"),
    ("   ", "--project: empty"),
])
def test_bad_project_names_are_refused(service: Service, name: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        service.projects.create(name, classes=["cat"])
    assert len(str(raised.value)) < 300  # never the whole 1 MB value
    assert service.projects.names() == []


def test_project_names_are_unique_ignoring_case_and_normalised(service: Service) -> None:
    assert service.projects.create("  Cat  ", classes=["a"]).project == "Cat"
    with pytest.raises(InvalidInput, match="a project named 'Cat' already exists .*ignoring case"):
        service.projects.create("cat", classes=["a"])
    assert service.projects.create("dog", classes=["a"]).project == "dog"
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert service.projects.create(decomposed, classes=["a"]).project == composed  # stored NFC
    with pytest.raises(InvalidInput, match="already exists"):
        service.projects.create(composed.upper(), classes=["a"])
    assert service.projects.names() == sorted(["Cat", "dog", composed])


def test_class_names_on_create_are_checked_and_unique_ignoring_case(service: Service) -> None:
    with pytest.raises(InvalidInput, match="classes: class 2: contains a control character"):
        service.projects.create("p", classes=["dog", "cl\0ass"])
    with pytest.raises(Conflict, match="'Cat' is already taken by 'cat'"):
        service.projects.create("p", classes=["cat", "Cat"])
    with pytest.raises(InvalidInput, match="class 1: contains a format character"):
        service.projects.create("p", classes=[INVISIBLE])
    assert service.projects.names() == []


def test_class_edits_check_names_descriptions_and_prompts(service: Service) -> None:
    service.projects.create("p", classes=["cat", "dog"])
    with pytest.raises(InvalidInput, match="name: contains a control character"):
        service.projects.add_class("p", "cl\0ass")
    with pytest.raises(Conflict, match="already has a class 'cat' .*ignoring case"):
        service.projects.add_class("p", "CAT")
    with pytest.raises(InvalidInput, match="description: 1,048,576 characters; at most 2,000"):
        service.projects.add_class("p", "bird", description=MEGABYTE)
    with pytest.raises(InvalidInput, match="prompts: prompt 2: contains a control character"):
        service.projects.add_class("p", "bird", prompts=["a bird", "a\0bird"])
    with pytest.raises(InvalidInput, match="prompts: expected a list of prompts"):
        service.projects.add_class("p", "bird", prompts="a bird")  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="already has a class 'cat'"):
        service.projects.rename_class("p", "dog", "Cat")
    with pytest.raises(InvalidInput, match="name: contains a format character"):
        service.projects.rename_class("p", "dog", INVISIBLE)
    with pytest.raises(InvalidInput, match="description: 1,048,576 characters"):
        service.projects.describe_class("p", "dog", description=MEGABYTE)
    assert service.projects.rename_class("p", "cat", "Cat").label == "Cat"  # its own name in another case
    added = service.projects.add_class("p", " bird ", description=" small\tand\nloud ", prompts=[" a bird ", " "])
    assert added.label == "bird"
    info = {c.label: c for c in service.projects.info("p").classes}
    assert set(info) == {"Cat", "dog", "bird"}
    assert info["bird"].description == "small\tand\nloud" and info["bird"].prompts == ("a bird",)


def test_a_deleted_class_comes_back_under_any_case(service: Service) -> None:
    service.projects.create("p", classes=["cat", "dog"])
    service.projects.delete_class("p", "dog")
    assert service.projects.add_class("p", "Dog").restored is False  # deleted outright: no history
    ids = make_project(service, "q")
    service.labeling.decide("q", image_id=ids[0], action="correct", label="dog")
    service.projects.delete_class("q", "dog")  # archived: an event mentions it
    assert service.projects.add_class("q", "DOG").restored is True
    assert {c.label for c in service.projects.info("q").classes} == {"cat", "DOG"}


def test_merge_and_delete_take_existing_names_and_echo_them_short(service: Service) -> None:
    service.projects.create("p", classes=["cat", "dog"])
    with pytest.raises(NotFound, match=r"label: 'xxxx.*'\.\.\. is not a class") as raised:
        service.projects.delete_class("p", MEGABYTE)
    assert len(str(raised.value)) < 300
    with pytest.raises(NotFound, match="'Cat' is not a class"):
        service.projects.merge_classes("p", "Cat", "dog")


# -- ids and caps in the labeling loop -----------------------------------------------------------


@pytest.mark.parametrize("bad", [1.5, 1.0, True, "1.0", "-1", -1, 0, " 1", "\uff11", None, 2**63])
def test_decide_takes_whole_ids_only(service: Service, bad: object) -> None:
    make_project(service)
    with pytest.raises(InvalidInput, match="image_id: "):
        service.labeling.decide("p", image_id=bad, action="correct", label="cat")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="image_id: "):
        service.labeling.item("p", bad)  # type: ignore[arg-type]
    assert events(service) == 0


def test_an_id_as_digits_is_that_id(service: Service) -> None:
    ids = make_project(service)
    assert service.labeling.decide("p", image_id=str(ids[1]), action="correct", label="cat").decision.image_id == ids[1]  # type: ignore[arg-type]
    assert service.labeling.item("p", np.int64(ids[1])).label == "cat"  # type: ignore[arg-type]


def test_decide_many_dedupes_and_caps(service: Service) -> None:
    ids = make_project(service)
    done = service.labeling.decide_many("p", image_ids=[ids[0]] * 5000 + [ids[1], ids[0]], action="correct",
                                        label="dog")
    assert [d.image_id for d in done] == [ids[0], ids[1]] and events(service) == 2
    with pytest.raises(InvalidInput, match="image_ids: more than 500 different ids in one call"):
        service.labeling.decide_many("p", image_ids=range(1, 502), action="correct", label="dog")
    with pytest.raises(InvalidInput, match=r"image_ids\[1\]: expected a whole number"):
        service.labeling.decide_many("p", image_ids=[ids[2], 1.5], action="correct", label="dog")  # type: ignore[list-item]
    with pytest.raises(NotFound, match="image_id: no image 13"):  # 500 pass the cap; ids past 12 do not exist
        service.labeling.decide_many("p", image_ids=range(1, 501), action="skip")
    assert events(service) == 2  # one transaction: the skips of images 1..12 were rolled back


@pytest.mark.parametrize("bad", LIMITS)
def test_counts_and_limits_are_capped(service: Service, bad: object) -> None:
    make_project(service)
    for call, message in [
        (lambda: service.labeling.next_items("p", n=bad), "n: "),  # type: ignore[arg-type]
        (lambda: service.labeling.next_items("p", k=bad), "k: "),  # type: ignore[arg-type]
        (lambda: service.labeling.decide("p", image_id=1, action="skip", next_n=bad), "next_n: "),  # type: ignore[arg-type]
        (lambda: service.labeling.suspects("p", limit=bad), "limit: "),  # type: ignore[arg-type]
        (lambda: service.team.review_queue("p", limit=bad), "limit: "),  # type: ignore[arg-type]
        (lambda: service.regions.next_proposals("p", limit=bad), "limit: "),  # type: ignore[arg-type]
        (lambda: service.browse.grid("p", "cat", page_size=bad), "page_size: "),  # type: ignore[arg-type]
        (lambda: service.browse.search("p", "a cat", limit=bad), "limit: "),  # type: ignore[arg-type]
    ]:
        if message == "next_n: " and bad == 0:
            continue  # next_n=0: no next items, a valid choice
        with pytest.raises(InvalidInput, match=message):
            call()
    assert events(service) == 0


def test_the_caps_themselves_are_allowed(service: Service) -> None:
    make_project(service)
    assert len(service.labeling.next_items("p", n=100, k=50)) == 12
    assert service.labeling.suspects("p", limit=500).suspects == ()
    assert service.regions.next_proposals("p", limit=500) == []
    assert service.browse.grid("p", "cat", page=10**6, page_size=200).page == 0  # past the end: the last page


@pytest.mark.parametrize("bad", [1.5, -1, True, "one"])
def test_grid_page_is_a_whole_number(service: Service, bad: object) -> None:
    make_project(service)
    with pytest.raises(InvalidInput, match="page "):
        service.browse.grid("p", "cat", page=bad)  # type: ignore[arg-type]


def test_region_ids_are_whole_numbers(service: Service) -> None:
    make_project(service)
    regions = service.regions
    for call, field in [
        (lambda: regions.instances("p", 1.5), "image: "),  # type: ignore[arg-type]
        (lambda: regions.view("p", True), "image: "),  # type: ignore[arg-type]
        (lambda: regions.delete_instance("p", 1.5), "instance_id: "),  # type: ignore[arg-type]
        (lambda: regions.relabel_instance("p", "1.0", "cat"), "instance_id: "),  # type: ignore[arg-type]
        (lambda: regions.decide_proposal("p", 1.5, accept=False), "proposal_id: "),  # type: ignore[arg-type]
        (lambda: regions.next_proposals("p", image_id=1.5), "image_id: "),  # type: ignore[arg-type]
        (lambda: regions.propose("p", image_ids=[1.5]), r"image_ids\[0\]: "),  # type: ignore[list-item]
    ]:
        with pytest.raises(InvalidInput, match=field):
            call()
    with pytest.raises(NotFound, match="proposal: no proposal #7"):
        regions.decide_proposal("p", "7", accept=False)  # type: ignore[arg-type]


def test_an_interrupted_imports_partial_files_are_removed(service: Service) -> None:
    media = service.settings.resolved_media_dir()
    (media / "ab").mkdir(parents=True)
    left = [media / ".incoming-1.part", media / "ab" / ".incoming-2.part"]
    kept = media / "ab" / "abcdef.png"
    for path in [*left, kept]:
        path.write_bytes(b"partial")
    assert service.importing.clean_interrupted() == 2
    assert not any(p.exists() for p in left) and kept.exists()


# -- the web API ---------------------------------------------------------------------------------


@pytest.fixture()
def web(service: Service) -> Iterator[tuple[Client, Service, list[int]]]:
    ids = make_project(service)
    app = build_app(service)
    client = Client(launch(app), verbose=False)
    yield client, service, ids
    client.close()
    app.close()


def test_the_web_api_refuses_a_fractional_id_and_dedupes_label_many(web) -> None:  # type: ignore[no-untyped-def]
    client, service, ids = web
    with pytest.raises(AppError, match="image_id: expected a whole number .*got float 1.5"):
        client.predict("p", 1.5, "correct", "cat", api_name="/decide")
    assert events(service) == 0
    done = client.predict("p", [ids[0]] * 5000, "correct", "dog", api_name="/label_many")
    assert [d["image_id"] for d in done] == [ids[0]] and events(service) == 1
    with pytest.raises(AppError, match="limit: 1000000000 is out of range; give 1 to 500"):
        client.predict("p", 10**9, api_name="/suspects")
    with pytest.raises(AppError, match="limit: -1 is out of range"):
        client.predict("p", None, -1, api_name="/proposals")
    with pytest.raises(AppError, match="instance_id: expected a whole number"):
        client.predict("p", 2.5, "", api_name="/delete_instance")
