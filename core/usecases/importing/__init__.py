"""Importing images (folders, zip files, single files) into a project."""

from core.usecases.importing.importer import ImportSummary
from core.usecases.importing.usecase import Importing

__all__ = ["ImportSummary", "Importing"]
