"""What an import answers: counts, and every file that was not imported with the reason."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileProblem:
    """One file (or label-file line) and why it was not imported or labeled."""

    file: str
    reason: str


@dataclass(frozen=True)
class ImportSummary:
    """Every file the import walked is counted once: imported, a duplicate, or in `errors`.
    `cancelled`: stopped between files on request; what was done before stays."""

    imported: int
    duplicates: int
    labeled: int
    failed: int
    errors: tuple[FileProblem, ...]
    label_problems: tuple[FileProblem, ...]
    cancelled: bool = False
