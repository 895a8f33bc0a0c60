"""What an export answers, and the choices an export offers (for the front ends' pickers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.export.formats import FORMATS as EXPORT_FORMATS
from core.export.options import MASKS
from core.export.records import INCLUDES, STATUSES

FORMATS = tuple(EXPORT_FORMATS)
SINGLE_FILE_FORMATS = tuple(name for name, spec in EXPORT_FORMATS.items() if spec.file_name)

__all__ = ["FORMATS", "INCLUDES", "MASKS", "SINGLE_FILE_FORMATS", "STATUSES", "ExportReport"]


@dataclass(frozen=True)
class ExportReport:
    """The export's manifest: where it is, what it holds. `download` is the one file to hand a person
    (the file itself, or a zip of a folder export); None when the export was written elsewhere."""

    out: str
    format: str
    project: str
    created_at: str
    options: Mapping[str, object]
    classes: tuple[str, ...]
    counts: Mapping[str, object]
    images_written: int
    changed_since_import: int
    files: int | None = None
    leak_check: Mapping[str, object] | None = None
    warnings: tuple[str, ...] = ()
    download: str | None = None
