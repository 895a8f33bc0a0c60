"""The facade the CLI and the web app talk to. It builds the shared parts once (in main(), never at
import time): the Context (settings, engine, one transaction per user action), the model provider,
the projects' live labeling states and the workspace (background jobs, thumbnails); and composes the
use cases over them, one attribute per user-facing area:

    service.projects   create, list, describe, status, class admin
    service.importing  images into a project; labels made elsewhere
    service.embedding  embed with a model, store predictions
    service.labeling   next items, decide (+ the next items), undo, item, progress, suspects
    service.team       users, leases, overlap, agreement, review, history
    service.browse     grid, search, dashboard, thumbnails
    service.exporting  every export format
    service.jobs       background import/embed/predict/model check
    service.regions    Segment Anything masks, instances, region proposals
    service.training   train/export a deployable model, classify files, an exported model as classifier
"""

from __future__ import annotations

from core.config import Settings
from core.usecases.browse import Browse
from core.usecases.context import Context
from core.usecases.demo import DemoResult, prepare_demo
from core.usecases.embedding import Embedding
from core.usecases.exporting import Exporting
from core.usecases.importing import Importing
from core.usecases.jobs.usecase import Jobs
from core.usecases.jobs.workspace import Workspace
from core.usecases.labeling.crops import StateCropClassifier
from core.usecases.labeling.loop import Labeling
from core.usecases.labeling.states import ProjectStates
from core.usecases.models import ModelProvider
from core.usecases.projects import Projects
from core.usecases.regions import Regions
from core.usecases.team.usecase import Team
from core.usecases.training.usecase import Training

__all__ = ["Service", "Settings"]


class Service:
    def __init__(self, settings: Settings, *, migrate: bool = True, background_refit: bool = False) -> None:
        """`background_refit`: the web server answers a decision after a cheap re-rank and refits on
        all labels in a worker thread; the CLI (default) refits before returning."""
        self.settings = settings
        self.context = Context(settings, migrate=migrate)
        self.models = ModelProvider(settings)
        self.states = ProjectStates(self.context, self.models, background_refit=background_refit)
        self.workspace = Workspace.create(settings)
        self.projects = Projects(self.context, self.models, self.states)
        self.importing = Importing(self.context, self.states)
        self.embedding = Embedding(self.context, self.models, self.states)
        self.labeling = Labeling(self.context, self.states)
        self.team = Team(self.context, self.states)
        self.browse = Browse(self.context, models=self.models, states=self.states, thumbnails=self.workspace.thumbs)
        self.exporting = Exporting(self.context)
        self.training = Training(self.context, self.models, self.states, self.workspace,
                                 estimate=self.labeling.estimate)
        self.jobs = Jobs(self.context, models=self.models, importing=self.importing, embedding=self.embedding,
                         workspace=self.workspace, predict_exported=self.training.predict_exported)
        self.regions = Regions(self.context, classifier=StateCropClassifier(self.context, self.models, self.states),
                               thumbnails=self.workspace.thumbs, jobs=self.workspace.jobs,
                               model_id_of=self.states.model_id)

    def prepare_demo(self, project: str | None = None) -> DemoResult:
        """Create the demo project (once) and start its import + embedding + prediction job."""
        return prepare_demo(self.projects, self.jobs, media_dir=self.settings.resolved_media_dir(),
                            **({"project": project} if project else {}))

    def wait_for_refits(self, timeout: float = 60.0) -> bool:
        return self.states.wait_for_refits(timeout)

    def close(self) -> None:
        self.states.close()
        self.regions.close()
        self.context.close()
