"""Projects and their classes: create, list, describe, status, and class administration."""

from core.usecases.projects.admin import Projects

__all__ = ["Projects"]
