"""Exporting a project's labels in every format core.export offers."""

from core.usecases.exporting.results import ExportReport
from core.usecases.exporting.usecase import Exporting

__all__ = ["ExportReport", "Exporting"]
