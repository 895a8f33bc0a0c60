"""Import-like driver for core.io tests: every walked file ends admitted or refused with a reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ImageError
from core.io.intake import Admitted, admit
from core.io.sources import Candidate, SourceError, iter_candidates


@dataclass
class Outcome:
    admitted: dict[str, Admitted] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.admitted) + len(self.failed)


def run(paths: Sequence[str | Path], *, media_dir: Path, **caps: int) -> Outcome:
    """What run_import does with core.io, minus the store: one outcome per walked item."""
    outcome = Outcome()
    for item in iter_candidates(paths, **caps):
        if isinstance(item, SourceError):
            outcome.failed[item.source] = item.reason
            continue
        assert isinstance(item, Candidate)
        try:
            outcome.admitted[item.source] = admit(item, media_dir=media_dir)
        except ImageError as exc:
            assert exc.source == item.source
            outcome.failed[item.source] = exc.reason
    return outcome
