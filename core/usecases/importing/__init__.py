"""Importing images (folders, zip files, single files) into a project."""

from core.usecases.importing.results import FileProblem, ImportSummary
from core.usecases.importing.usecase import Importing

__all__ = ["FileProblem", "Importing", "ImportSummary"]
