"""Browsing a project: the grid of predictions per class, text search, the dashboard, thumbnails."""

from core.usecases.browse.usecase import Browse

__all__ = ["Browse"]
