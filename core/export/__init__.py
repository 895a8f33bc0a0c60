"""Exports in the formats training code loads, and import of labels made elsewhere.

FORMATS (core.export.formats) is a dict registry of small writers: each takes the staging target, a
stream of items (record + split) and the export's metadata. `export_project` validates the options,
streams the records, and writes through `atomic.staged` so a failed export never looks complete.
`import_labels` reads imagefolder, csv, coco and our own jsonl back into a project."""

from __future__ import annotations

from core.export.archive import remove_interrupted, zip_folder_atomically
from core.export.driver import export_project
from core.export.formats import FORMATS, FormatSpec
from core.export.label_import import IMPORT_FORMATS, import_labels

__all__ = ["FORMATS", "IMPORT_FORMATS", "FormatSpec", "export_project", "import_labels", "remove_interrupted",
           "zip_folder_atomically"]
