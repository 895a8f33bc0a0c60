"""The Dashboard's estimate, labels-saved plot and "accept the rest" handlers (no browser)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.service import Service
from core.usecases.demo import DEMO_CLASSES
from tests.webapp.conftest import write_images
from webapp.views import dashboard


@pytest.fixture()
def labeled_service(service: Service, tmp_path: Path) -> Service:
    write_images(tmp_path / "photos", 12)
    service.projects.create("p", classes=list(DEMO_CLASSES[:3]))
    job = service.jobs.start_import("p", [tmp_path / "photos"])
    assert service.jobs.wait(job.job_id, timeout=120).status == "done"
    return service


def _label_all_but(service: Service, keep: int) -> None:
    """Accept what the queue serves until `keep` images are left (audits among them, share 50%)."""
    service.labeling.set_audit_share("p", 0.5)
    while service.labeling.progress("p").labeled < service.labeling.progress("p").images - keep:
        item = service.labeling.next_items("p", n=1)[0]
        service.labeling.decide("p", image_id=item.image_id, action="accept")


def test_dashboard_shows_the_estimate_its_history_and_labels_saved(labeled_service: Service) -> None:
    _label_all_but(labeled_service, 4)
    head, *_, history, saved = dashboard.ui_dashboard(labeled_service, "p")
    assert "Estimated accuracy of the 4 remaining pseudo-labels" in head and "95% interval" in head
    assert set(history["series"]) == {"estimate", "95% low", "95% high"} and len(history) % 3 == 0
    assert set(saved["series"]) >= {"queue", "random order (expected)"} or saved.empty


def test_accept_rest_asks_first_with_count_and_estimate(labeled_service: Service) -> None:
    _label_all_but(labeled_service, 4)
    with pytest.raises(InvalidInput, match="preview first"):  # Confirm without a preview accepts nothing
        dashboard.ui_accept(labeled_service, None)
    question, confirm, shown = dashboard.ui_accept_preview(labeled_service, "p", 0.0, 0.0)
    assert "Accept <b>4</b> remaining pseudo-labels" in question and "estimated accuracy" in question
    assert confirm["visible"] is True and labeled_service.labeling.progress("p").labeled == 8  # nothing yet
    assert shown == {"project": "p", "min_confidence": 0.0, "images": 4}
    assert dashboard._forget_preview()[1] is None  # a changed project or field drops what was shown
    done, confirm, shown = dashboard.ui_accept(labeled_service, shown)
    assert "Accepted 4 pseudo-labels" in done and confirm["visible"] is False and shown is None
    assert labeled_service.labeling.progress("p").labeled == 12
    assert "5%" in dashboard.ui_audit_share(labeled_service, "p", 5)
    with pytest.raises(InvalidInput):
        dashboard.ui_accept_preview(labeled_service, "p", 0.0, 0.99999)
